#!/usr/bin/env bash
# Benchmark `dtui scan` against other disk usage tools on the same generated tree
# (warm page cache).
#
# Usage: benches/scan.sh [TREE_DIR]        (default /tmp/dtui-bench-tree)
#
# Env overrides: ENTRIES (default 500000), SEED (default 42), WARMUP (3), RUNS (10).
#
# Steps: cargo build --release; generate the tree with benches/gen_tree.py unless
# it already exists with the same parameters; smoke-run every command once
# (drops tools that fail); one hyperfine invocation comparing all commands;
# peak RSS of each command once via /usr/bin/time; results written to
# benches/results/scan-<date>.md (+ .json) and printed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TREE=${1:-/tmp/dtui-bench-tree}
ENTRIES=${ENTRIES:-500000}
SEED=${SEED:-42}
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-10}
# Tools installed with `cargo install` live here.
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

die() { echo "scan.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

have hyperfine || die "hyperfine not found (apt-get install -y hyperfine)"
have python3 || die "python3 not found"

# ---------------------------------------------------------------- build
echo "==> cargo build --release"
cargo build --release
DTUI="${CARGO_TARGET_DIR:-$ROOT/target}/release/dtui"
[[ -x "$DTUI" ]] || die "$DTUI not found after build"
QD=$(printf '%q' "$DTUI")

# ---------------------------------------------------------------- tree
echo "==> tree: $TREE"
python3 "$ROOT/benches/gen_tree.py" "$TREE" --entries "$ENTRIES" --seed "$SEED"
TREE=$(cd "$TREE" && pwd)
# hyperfine -N splits command lines shell-style: quote the path.
Q=$(printf '%q' "$TREE")

# ---------------------------------------------------------------- commands
NAMES=()   # display names (hyperfine --command-name)
CMDS=()    # command lines (no shell is used to run them)
SKIPPED=()

add() { NAMES+=("$1"); CMDS+=("$2"); }

# dtui: prefer --no-cache if this build supports it.
dtui_help=$("$DTUI" scan --help 2>&1 || true)
if grep -q -- 'no-cache' <<<"$dtui_help"; then
    add "dtui" "$QD scan --no-cache $Q"
else
    echo "note: 'dtui scan' has no --no-cache option, benchmarking plain 'dtui scan'"
    add "dtui" "$QD scan $Q"
fi

if have du; then add "du" "du -s $Q"; else SKIPPED+=(du); fi

if have ncdu; then
    ncdu_help=$(ncdu --help 2>&1 || true)
    if grep -qi 'thread' <<<"$ncdu_help"; then
        add "ncdu" "ncdu -t2 -0 -o /dev/null $Q"
    else
        add "ncdu" "ncdu -0 -o /dev/null $Q"
    fi
else
    SKIPPED+=(ncdu)
fi

if have pdu; then add "pdu" "pdu $Q"; else SKIPPED+=(pdu); fi
if have diskus; then add "diskus" "diskus $Q"; else SKIPPED+=(diskus); fi
if have dust; then add "dust" "dust -d 0 $Q"; else SKIPPED+=(dust); fi
if have dua; then add "dua" "dua aggregate $Q"; else SKIPPED+=(dua); fi
if have gdu; then add "gdu" "gdu -npc $Q"; else SKIPPED+=(gdu); fi

if ((${#SKIPPED[@]})); then
    echo "skipped (not installed): ${SKIPPED[*]}"
fi

# Run a command line the way hyperfine -N does (shell-word split, no shell).
run_cmd() { eval "set -- $1"; "$@"; }

# ---------------------------------------------------------------- smoke test
# Also warms the page cache. A failing peer is dropped instead of aborting
# the whole benchmark; a failing dtui is fatal.
echo "==> smoke run (also warms the cache)"
N2=(); C2=()
for i in "${!CMDS[@]}"; do
    if run_cmd "${CMDS[$i]}" >/dev/null 2>"/tmp/dtui-bench-smoke.$$"; then
        N2+=("${NAMES[$i]}"); C2+=("${CMDS[$i]}")
    else
        rc=$?
        echo "warning: '${CMDS[$i]}' failed (exit $rc):" >&2
        tail -n 5 "/tmp/dtui-bench-smoke.$$" >&2 || true
        [[ "${NAMES[$i]}" == dtui ]] && die "dtui failed"
        SKIPPED+=("${NAMES[$i]}(failed)")
    fi
done
rm -f "/tmp/dtui-bench-smoke.$$"
NAMES=("${N2[@]}"); CMDS=("${C2[@]}")

# ---------------------------------------------------------------- hyperfine
mkdir -p "$ROOT/benches/results"
STAMP=$(date +%Y-%m-%d_%H%M%S)
OUT="$ROOT/benches/results/scan-$STAMP.md"
HF_MD=$(mktemp)
HF_JSON="$ROOT/benches/results/scan-$STAMP.json"
trap 'rm -f "$HF_MD"' EXIT

HF_ARGS=()
for i in "${!CMDS[@]}"; do
    HF_ARGS+=(--command-name "${NAMES[$i]}" "${CMDS[$i]}")
done

echo "==> hyperfine (${#CMDS[@]} commands, warmup $WARMUP, runs $RUNS)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
    --export-markdown "$HF_MD" --export-json "$HF_JSON" \
    "${HF_ARGS[@]}"

# ---------------------------------------------------------------- peak RSS
RSS_MD="| Command | Peak RSS [MiB] |
|:---|---:|"
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; then
    echo "==> peak RSS (/usr/bin/time -f %M)"
    RSS_TMP=$(mktemp)
    for i in "${!CMDS[@]}"; do
        eval "set -- ${CMDS[$i]}"
        if /usr/bin/time -f '%M' -o "$RSS_TMP" "$@" >/dev/null 2>&1; then
            kib=$(tail -n 1 "$RSS_TMP")
            mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
        else
            mib="failed"
        fi
        RSS_MD+=$'\n'"| \`${NAMES[$i]}\` | $mib |"
    done
    rm -f "$RSS_TMP"
else
    echo "warning: GNU /usr/bin/time not found (apt-get install -y time), no RSS numbers" >&2
    RSS_MD+=$'\n'"| (GNU time not installed) | - |"
fi

# ---------------------------------------------------------------- ratio
RATIO=$(python3 - "$HF_JSON" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
d, p = res.get("dtui"), res.get("pdu")
if d and p:
    print("dtui median / pdu median = %.3f s / %.3f s = **%.2fx**"
          % (d["median"], p["median"], d["median"] / p["median"]))
else:
    print("dtui/pdu ratio: n/a (pdu not benchmarked)")
EOF
)

# ---------------------------------------------------------------- report
TREE_INFO=$(python3 - "$TREE/.gen_done" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
c, p = m["counts"], m["params"]
print("%d entries (seed %d): %d dirs, %d files, %d hardlinks, %d symlinks, %.0f MiB apparent"
      % (c["entries"], p["seed"], c["dirs"], c["files"], c["hardlinks"], c["symlinks"],
         c["bytes_apparent"] / 1048576))
EOF
)

GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ "$GIT_REV" != "no commit" ]] && ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then
    GIT_REV+=" (dirty)"
fi
version() { "$@" 2>/dev/null | head -n 1 || true; }
{
    echo "# dtui scan benchmark — $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- Tree: \`$TREE\` — $TREE_INFO"
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "- Filesystem: $(df -PT "$TREE" | awk 'NR==2 { print $2 }')"
    echo "- dtui: $DTUI @ $GIT_REV"
    echo "- Peers: $(for n in "${NAMES[@]}"; do
                        [[ $n != dtui ]] && printf '%s ' "$n=$(version "$n" --version | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1)"
                     done)"
    if ((${#SKIPPED[@]})); then echo "- Skipped: ${SKIPPED[*]}"; fi
    echo "- Warm cache, hyperfine -N --warmup $WARMUP --runs $RUNS"
    echo
    echo "## Wall time"
    echo
    cat "$HF_MD"
    echo
    echo "$RATIO"
    echo
    echo "## Peak memory"
    echo
    echo "$RSS_MD"
} >"$OUT"

echo
cat "$OUT"
echo
echo "==> written $OUT (raw: $HF_JSON)"
