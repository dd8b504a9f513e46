#!/usr/bin/env bash
# The scan against the syscall floor (issue 25): `benches/floor.c` (getdents64 + fstatat, no
# tree), `dtui scan --no-cache` and `pdu`, in ONE hyperfine run per tree, then dtui's ratios to
# the floor (wall: medians; CPU: user + system, hyperfine's means, the only CPU figure it
# keeps), dtui's peak RSS and its tree in bytes per entry. The hyperfine run holds only those
# three (and OTHER): hyperfine runs each command's runs back to back, so every command put
# between the floor and dtui is time for the machine's load to drift between the two. The
# floor's variants (floor+tree, floor-early) are measured in the interleaved rounds.
#
# Usage: benches/floor.sh [TREE...]       (default /tmp/dtui-bench-tree; a 2M tree is
#                                          /tmp/dtui-bench-2m, from gen_tree.py --entries 2000000)
#
# Env: WARMUP (2), RUNS (8), THREADS (the floor's threads; nproc, dtui's default),
#      OTHER=/path/to/dtui (another dtui build in the same run, e.g. main's, for an A/B),
#      RSS_RUNS (3, peak RSS runs: the median is shown), NO_BUILD=1 (use the built binary),
#      INTERLEAVED=N (also N rounds of benches/cpu_wall.py: the commands take turns, so drift
#      in the machine's load does not land on one of them; CPU medians, not means),
#      TREE_BYTES (48: "floor+tree" in the interleaved rounds, the floor that also writes this
#      many bytes per entry to memory, what holding a tree that size costs; 0 leaves it out),
#      EARLY (1: "floor-early" in the interleaved rounds, the floor ending a listing where ext4
#      says it ends, without the empty getdents64, as dtui does on ext4; 0 leaves it out).
# Goal (issue 25): dtui at most 1.10x the floor's wall time and 1.15x its CPU, peak RSS at most
# 64 B/entry, the tree at most 52 B/entry. The load average is printed before and after:
# on a shared machine compare only ratios within one run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-8}
THREADS=${THREADS:-$(nproc)}
RSS_RUNS=${RSS_RUNS:-3}
INTERLEAVED=${INTERLEAVED:-0}
TREE_BYTES=${TREE_BYTES:-48}
EARLY=${EARLY:-1}
OTHER=${OTHER:-}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
TREES=("$@")
((${#TREES[@]})) || TREES=(/tmp/dtui-bench-tree)

die() { echo "floor.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
have hyperfine || die "hyperfine not found (apt-get install -y hyperfine)"
have pdu || die "pdu not found (cargo install --locked parallel-disk-usage)"
have cc || die "no C compiler (cc)"
have python3 || die "python3 not found"
[[ -x /usr/bin/time ]] || die "GNU time not found (apt-get install -y time)"

[[ -n "${NO_BUILD:-}" ]] || cargo build --release --locked >&2
DTUI="${CARGO_TARGET_DIR:-$ROOT/target}/release/dtui"
[[ -x "$DTUI" ]] || die "$DTUI not found"
FLOOR=$(mktemp /tmp/dtui-floor.XXXXXX)
WORK=$(mktemp -d)
trap 'rm -rf "$FLOOR" "$WORK"' EXIT
cc -O2 -pthread -o "$FLOOR" benches/floor.c

peak() { # peak RSS in bytes, the median of RSS_RUNS runs
    for _ in $(seq "$RSS_RUNS"); do
        /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}'
    done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] * 1024}'
}

mkdir -p benches/results
OUT="benches/results/floor-$(date +%Y-%m-%d_%H%M%S).md"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD 2>/dev/null || REV+=" (dirty)"
{
    echo "# dtui scan against the syscall floor — $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- dtui @ $REV; floor: benches/floor.c, $THREADS threads; pdu $(pdu --version | awk '{print $2}')"
    echo "- hyperfine -N --warmup $WARMUP --runs $RUNS; $(nproc) CPUs, kernel $(uname -r)"
} | tee "$OUT"

for TREE in "${TREES[@]}"; do
    [[ -d "$TREE" ]] || die "$TREE: no such tree (benches/gen_tree.py makes one)"
    Q=$(printf '%q' "$TREE")
    FLOOR_TREE="$FLOOR $Q $THREADS $TREE_BYTES"
    FLOOR_EARLY="$FLOOR $Q $THREADS 0 early"
    ARGS=(--command-name floor "$FLOOR $Q $THREADS")
    ARGS+=(--command-name dtui "$(printf '%q' "$DTUI") scan --no-cache $Q")
    [[ -n "$OTHER" ]] && ARGS+=(--command-name other "$(printf '%q' "$OTHER") scan --no-cache $Q")
    ARGS+=(--command-name pdu "pdu $Q")
    LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/hf.json" "${ARGS[@]}" >&2
    LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
    "$DTUI" scan --json --no-cache "$TREE" >"$WORK/scan.json"
    RSS=$(peak "$DTUI" scan --no-cache "$TREE")
    {
        echo
        echo "## $TREE (load average before $LOAD0, after $LOAD1)"
        echo
        python3 - "$WORK/hf.json" "$WORK/scan.json" "$RSS" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
scan = json.load(open(sys.argv[2]))
rss, n = int(sys.argv[3]), scan["items"] + 1
cpu = lambda r: r["user"] + r["system"]
f = res["floor"]
print("| command | median wall [ms] | min–max [ms] | CPU user+sys [ms] | wall / floor | CPU / floor |")
print("|---|---:|---:|---:|---:|---:|")
for name, r in res.items():
    print(f"| {name} | {r['median'] * 1e3:.0f} | {r['min'] * 1e3:.0f}–{r['max'] * 1e3:.0f} "
          f"| {cpu(r) * 1e3:.0f} ({r['user'] * 1e3:.0f} + {r['system'] * 1e3:.0f}) "
          f"| {r['median'] / f['median']:.3f} | {cpu(r) / cpu(f):.3f} |")
d = res["dtui"]
wall, cpur = d["median"] / f["median"], cpu(d) / cpu(f)
tree = scan["memory"]["all_in"]
print()
print(f"dtui / floor: wall **{wall:.3f}x** (goal 1.10), CPU **{cpur:.3f}x** (goal 1.15); "
      f"dtui / pdu wall {d['median'] / res['pdu']['median']:.3f}x")
print(f"{n:,} entries: peak RSS {rss / 2**20:.1f} MiB = **{rss / n:.1f} B/entry** (goal 64), "
      f"tree all in {tree:,} B = **{tree / n:.2f} B/entry** (goal 52)")
EOF
    } | tee -a "$OUT"
    if ((INTERLEAVED > 0)); then
        # hyperfine runs each command's runs back to back, so load that drifts during the
        # run lands on one command; here the commands take turns, round by round.
        CMDS=("$FLOOR $Q $THREADS")
        ((TREE_BYTES > 0)) && CMDS+=("$FLOOR_TREE")
        ((EARLY > 0)) && CMDS+=("$FLOOR_EARLY")
        CMDS+=("$(printf '%q' "$DTUI") scan --no-cache $Q")
        [[ -n "$OTHER" ]] && CMDS+=("$(printf '%q' "$OTHER") scan --no-cache $Q")
        {
            echo
            LEGEND=""
            ((TREE_BYTES > 0)) && LEGEND+="; \"$THREADS $TREE_BYTES\" is floor+tree"
            ((EARLY > 0)) && LEGEND+="; \"$THREADS 0 early\" is floor-early"
            echo "Interleaved, $INTERLEAVED rounds (benches/cpu_wall.py; medians; /first is wall / floor$LEGEND):"
            echo
            echo '```'
            ROUNDS=$INTERLEAVED WARM=1 python3 benches/cpu_wall.py "${CMDS[@]}" 2>&1
            echo '```'
        } | tee -a "$OUT"
    fi
done
echo "floor.sh: wrote $OUT" >&2
