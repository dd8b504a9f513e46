# Shared by benches/hardening.sh and benches/catchup.sh (sourced, not run): build this
# worktree's dtui ("new") and an older revision's ("old", in a detached worktree of its
# own), then run side-by-side tables: one hyperfine run per table, peak RSS of each
# command from /usr/bin/time, and a summary with medians and ratios.
#
# Env: NEW / OLD (dtui binaries; built when unset), OLD_REV (default c933049, the last
# commit before the hardening and exact-reconcile work), OLD_WT (its worktree, default
# ${TMPDIR:-/tmp}/dtui-old-<rev>), WORK (scratch: binary copies and cache dirs; default a
# new temp dir), WARMUP (2), RUNS (10).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_REV=${OLD_REV:-c933049}
OLD_WT=${OLD_WT:-${TMPDIR:-/tmp}/dtui-old-$OLD_REV}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-10}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/dtui-compare.XXXXXX")}
mkdir -p "$WORK" "$ROOT/benches/results"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine not found"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) not found"

# Copies of the binaries: a later `cargo bench` in the same worktree rebuilds
# target/release/dtui (other features), which must not change a table halfway.
build_binaries() {
    if [[ -z "${NEW:-}" ]]; then
        echo "==> cargo build --release ($ROOT)" >&2
        (cd "$ROOT" && cargo build --release)
        NEW="$ROOT/target/release/dtui"
    fi
    if [[ -z "${OLD:-}" ]]; then
        if [[ ! -d "$OLD_WT" ]]; then
            echo "==> git worktree add --detach $OLD_WT $OLD_REV" >&2
            git -C "$ROOT" worktree add --detach "$OLD_WT" "$OLD_REV"
        fi
        echo "==> cargo build --release ($OLD_WT)" >&2
        (cd "$OLD_WT" && cargo build --release)
        OLD="$OLD_WT/target/release/dtui"
    fi
    cp "$NEW" "$WORK/dtui-new"
    cp "$OLD" "$WORK/dtui-old"
    NEW_BIN="$WORK/dtui-new"
    OLD_BIN="$WORK/dtui-old"
    NEW_DESC="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    OLD_DESC="$OLD_REV"
}

# A command line the way hyperfine -N runs it (shell words, no shell).
run_words() { eval "set -- $1"; "$@"; }

# Peak RSS in KiB of one run (after PREPARE, if any).
peak_rss() {
    local prepare=$1 cmd=$2 out
    out=$(mktemp)
    [[ -n "$prepare" ]] && run_words "$prepare" >/dev/null 2>&1
    eval "set -- $cmd"
    /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1 || true
    tail -n 1 "$out"
    rm -f "$out"
}

# table ID "Title" WARMUP RUNS PREPARE name1 cmd1 [name2 cmd2 ...]
# One hyperfine run over all commands; ratios are medians against the first command.
# Appends the summary to $REPORT and keeps hyperfine's JSON and markdown next to it.
table() {
    local id=$1 title=$2 warmup=$3 runs=$4 prepare=$5
    shift 5
    local names=() cmds=() args=() rss=()
    while (($#)); do names+=("$1"); cmds+=("$2"); shift 2; done
    echo "==> $title" >&2
    # Peak RSS first: it doubles as a first warm-up of the page cache.
    for i in "${!cmds[@]}"; do
        rss+=("$(peak_rss "$prepare" "${cmds[$i]}")")
    done
    for i in "${!cmds[@]}"; do args+=(--command-name "${names[$i]}" "${cmds[$i]}"); done
    local pre=()
    [[ -n "$prepare" ]] && pre=(--prepare "$prepare")
    local json="$RESULTS-$id.json"
    hyperfine -N --warmup "$warmup" --runs "$runs" "${pre[@]}" \
        --export-json "$json" --export-markdown "$RESULTS-$id.hf.md" "${args[@]}" >&2
    {
        echo
        echo "### $title"
        echo
        echo "hyperfine -N --warmup $warmup --runs $runs${prepare:+ --prepare \"$prepare\"}"
        echo
        python3 - "$json" "${rss[@]}" <<'EOF'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
rss = sys.argv[2:]
base = res[0]["median"]
print("| Command | Median [ms] | Mean ± σ [ms] | Min [ms] | Max [ms] | Median / first | Peak RSS [MiB] |")
print("|:---|---:|---:|---:|---:|---:|---:|")
for r, k in zip(res, rss):
    sd = r["stddev"] or 0.0
    mib = "%.1f" % (int(k) / 1024) if k.strip().isdigit() else "?"
    print("| `%s` | %.1f | %.1f ± %.1f | %.1f | %.1f | %.2f | %s |" % (
        r["command"], r["median"] * 1e3, r["mean"] * 1e3, sd * 1e3,
        r["min"] * 1e3, r["max"] * 1e3, r["median"] / base, mib))
noisy = [r["command"] for r in res if r["mean"] and (r["stddev"] or 0) / r["mean"] > 0.10]
if noisy:
    print("\nnoisy (σ > 10% of the mean): " + ", ".join(noisy))
EOF
        echo
        for i in "${!cmds[@]}"; do echo "- \`${names[$i]}\`: \`${cmds[$i]}\`"; done
    } | tee -a "$REPORT"
}

# The report's header: machine, binaries, load.
report_header() {
    local title=$1
    STAMP=$(date +%Y-%m-%d_%H%M%S)
    RESULTS="$ROOT/benches/results/$2-$STAMP"
    REPORT="$RESULTS.md"
    {
        echo "# $title — $(date '+%Y-%m-%d %H:%M:%S %Z')"
        echo
        echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "- new: dtui @ $NEW_DESC; old: dtui @ $OLD_DESC"
        echo "- Scratch (caches): $WORK"
    } >"$REPORT"
}
