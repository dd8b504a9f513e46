#!/usr/bin/env bash
# Hardening benchmarks (issue 8), this worktree's dtui ("new") against an older revision
# ("old", default c933049, before the fixes), side by side:
#   1. deep chains: `dtui scan --no-cache` new vs old vs `du -s`, and the catch-up of each
#      chain (`dtui scan --cache-dir C` after a first cached scan) new vs old;
#   2. a 3,000-level chain with a side branch at each level under `ulimit -n 256`;
#   3. start from the cache on the 500,000-entry tree (`--no-catch-up`), and the browser's
#      first complete frame from the cache (`cargo bench --bench ui`, run in both worktrees).
#
# Usage: benches/hardening.sh [TREE]      (default /tmp/dtui-bench-tree)
#
# Env: CHAINS ("10000 20000 100000"; /tmp/chainN, made if missing: a d/d/d... chain with a
# 100-byte file f at each level), DEEP_WARMUP / DEEP_RUNS (1 / 2: the table of chains of
# 100,000 levels or more, where the old binary takes about a minute per run), BRANCHY
# (/tmp/branchy3000, made if missing: a chain down/ with an empty side/ at each level),
# UI_RUNS (3: runs of the ui bench in each worktree), SKIP ("chains catchup branchy start
# ui": leave any out), plus NEW, OLD, OLD_REV, OLD_WT, WORK, WARMUP, RUNS of
# benches/compare-lib.sh. Writes benches/results/hardening-<date>.md (+ raw JSON).
source "$(dirname "${BASH_SOURCE[0]}")/compare-lib.sh"

TREE=${1:-/tmp/dtui-bench-tree}
CHAINS=${CHAINS:-10000 20000 100000}
DEEP_WARMUP=${DEEP_WARMUP:-1}
DEEP_RUNS=${DEEP_RUNS:-2}
BRANCHY=${BRANCHY:-/tmp/branchy3000}
UI_RUNS=${UI_RUNS:-3}
SKIP=${SKIP:-}
skip() { [[ " $SKIP " == *" $1 "* ]]; }

build_binaries
report_header "Hardening: deep trees, low fd limits, start from the cache" hardening
Q() { printf '%q' "$1"; }
N=$(Q "$NEW_BIN")
O=$(Q "$OLD_BIN")

# ------------------------------------------------------------------ trees
make_chain() { # TOP DEPTH
    python3 - "$1" "$2" <<'EOF'
import os, sys
top, depth = sys.argv[1], int(sys.argv[2])
os.makedirs(top)
fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
for i in range(depth):
    os.mkdir("d", dir_fd=fd)
    f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd); os.write(f, b"x" * 100); os.close(f)
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd); os.close(fd); fd = nfd
EOF
}
make_branchy() { # TOP DEPTH
    python3 - "$1" "$2" <<'EOF'
import os, sys
top, depth = sys.argv[1], int(sys.argv[2])
os.makedirs(top)
fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
for i in range(depth):
    os.mkdir("down", dir_fd=fd); os.mkdir("side", dir_fd=fd)
    nfd = os.open("down", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd); os.close(fd); fd = nfd
EOF
}
for depth in $CHAINS; do
    [[ -d /tmp/chain$depth ]] || { echo "==> making /tmp/chain$depth" >&2; make_chain "/tmp/chain$depth" "$depth"; }
done
[[ -d $BRANCHY ]] || { echo "==> making $BRANCHY" >&2; make_branchy "$BRANCHY" 3000; }
python3 "$ROOT/benches/gen_tree.py" "$TREE" >&2
TREE=$(cd "$TREE" && pwd)

# ------------------------------------------------------------------ 1. deep chains
{ echo; echo "## 1. Deep chains"; } >>"$REPORT"
for depth in $CHAINS; do
    C=$(Q "/tmp/chain$depth")
    w=$WARMUP r=$RUNS
    ((depth >= 100000)) && w=$DEEP_WARMUP r=$DEEP_RUNS
    skip chains || table "chain$depth-scan" "Scan, chain of $depth levels" "$w" "$r" "" \
        new "$N scan --no-cache $C" \
        old "$O scan --no-cache $C" \
        "du -s" "du -s $C"
    if ! skip catchup; then
        # A first cached scan by each binary, into its own cache dir.
        rm -rf "$WORK/chain$depth-new" "$WORK/chain$depth-old"
        "$NEW_BIN" scan --cache-dir "$WORK/chain$depth-new" "/tmp/chain$depth" >/dev/null
        "$OLD_BIN" scan --cache-dir "$WORK/chain$depth-old" "/tmp/chain$depth" >/dev/null
        table "chain$depth-catchup" "Catch-up, chain of $depth levels (cache loaded, nothing changed)" "$w" "$r" "" \
            new "$N scan --cache-dir $(Q "$WORK/chain$depth-new") $C" \
            old "$O scan --cache-dir $(Q "$WORK/chain$depth-old") $C"
    fi
done

# ------------------------------------------------------------------ 2. low fd limit
if ! skip branchy; then
    { echo; echo "## 2. $BRANCHY under ulimit -n 256"; } >>"$REPORT"
    B=$(Q "$BRANCHY")
    lim() { printf "bash -c %q" "ulimit -Sn 256 -Hn 256; exec $1"; }
    table branchy "Scan of $BRANCHY, 256 fds (and without the limit)" "$WARMUP" "$RUNS" "" \
        "new, ulimit -n 256" "$(lim "$N scan --no-cache $B")" \
        "old, ulimit -n 256" "$(lim "$O scan --no-cache $B")" \
        "new" "$N scan --no-cache $B" \
        "old" "$O scan --no-cache $B"
fi

# ------------------------------------------------------------------ 3. start from the cache
T=$(Q "$TREE")
if ! skip start; then
    { echo; echo "## 3. Start from the cache, $TREE"; } >>"$REPORT"
    rm -rf "$WORK/tree-new" "$WORK/tree-old"
    for _ in 1 2; do
        "$NEW_BIN" scan --cache-dir "$WORK/tree-new" "$TREE" >/dev/null
        "$OLD_BIN" scan --cache-dir "$WORK/tree-old" "$TREE" >/dev/null
    done
    table start "Start from the cache: scan --no-catch-up (cache → complete tree, reported)" "$WARMUP" "$RUNS" "" \
        new "$N scan --no-catch-up --cache-dir $(Q "$WORK/tree-new") $T" \
        old "$O scan --no-catch-up --cache-dir $(Q "$WORK/tree-old") $T"
    {
        echo
        echo "Cache files (bytes; 500,001 entries):"
        for v in new old; do
            arena=$(stat -c %s "$WORK/tree-$v"/*.arena) db=$(stat -c %s "$WORK/tree-$v"/*.db)
            echo "- $v: arena $arena B, db $db B"
        done
    } | tee -a "$REPORT"
fi

if ! skip ui; then
    # The ui bench builds its own cache (a temp dir, one cached scan) and prints medians of 7
    # starts; run it UI_RUNS times in each worktree, alternating.
    (cd "$ROOT" && cargo bench --bench ui --no-run >&2)
    [[ -d $OLD_WT ]] || die "no worktree $OLD_WT for the old ui bench (set OLD_WT)"
    (cd "$OLD_WT" && cargo bench --bench ui --no-run >&2)
    { echo; echo "### Browser: first complete frame (cargo bench --bench ui -- $TREE)"; echo; } >>"$REPORT"
    for i in $(seq "$UI_RUNS"); do
        for v in new old; do
            dir=$ROOT
            [[ $v == old ]] && dir=$OLD_WT
            line=$(cd "$dir" && cargo bench --bench ui -- "$TREE" 2>/dev/null | grep -E '^first frame|^frame with')
            printf -- '- %s run %d: %s\n' "$v" "$i" "$(tr '\n' ';' <<<"$line")" | tee -a "$REPORT"
        done
    done
fi

echo >&2
echo "==> written $REPORT" >&2
