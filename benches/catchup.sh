#!/usr/bin/env bash
# Catch-up against a full scan (issue 9), time and peak RSS, this worktree's dtui ("new")
# against an older revision ("old", default c933049), side by side:
#   - nothing changed on disk: `dtui scan --cache-dir C` (the cache loaded, then a full
#     catch-up: every directory checked, every file stat'ed) against `dtui scan --no-cache`;
#   - the listings changed: before each run the directory (WIDE) or every directory (TREE)
#     gets another old mtime (`touch -d @<random 2000s time>`, which also moves its ctime),
#     so the catch-up re-reads each listing and merges it with the cached children.
#
# Usage: benches/catchup.sh [WIDE] [TREE]   (defaults /tmp/wide1m, /tmp/dtui-bench-tree)
#
# WIDE is one directory of 1,000,000 empty files (made if missing), TREE the 500,000-entry
# benchmark tree (benches/gen_tree.py). Env: RUNS (5), SKIP ("wide tree": leave either out),
# plus NEW, OLD, OLD_REV, OLD_WT, WORK, WARMUP of benches/compare-lib.sh.
# Writes benches/results/catchup-<date>.md (+ raw JSON).
RUNS=${RUNS:-5}
source "$(dirname "${BASH_SOURCE[0]}")/compare-lib.sh"

WIDE=${1:-/tmp/wide1m}
TREE=${2:-/tmp/dtui-bench-tree}
SKIP=${SKIP:-}
skip() { [[ " $SKIP " == *" $1 "* ]]; }

build_binaries
report_header "Catch-up against a full scan" catchup
Q() { printf '%q' "$1"; }
N=$(Q "$NEW_BIN")
O=$(Q "$OLD_BIN")

if [[ ! -d $WIDE ]] && ! skip wide; then
    echo "==> making $WIDE (1,000,000 empty files)" >&2
    python3 - "$WIDE" <<'EOF'
import os, sys
os.makedirs(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for i in range(1_000_000):
    os.close(os.open("file%07d" % i, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
EOF
fi
skip tree || { python3 "$ROOT/benches/gen_tree.py" "$TREE" >&2; TREE=$(cd "$TREE" && pwd); }

# The totals each binary reports, to show that the catch-ups agree with a scan.
totals() { "$@" 2>/dev/null | grep -E '^ *(disk usage|items)' | tr -s ' ' | tr '\n' ';'; }

# bench ID DIR TOUCH: the two tables for one directory. TOUCH is the prepare command that
# changes the listings' times (run before each catch-up of the second table).
bench() {
    local id=$1 dir=$2 touch=$3
    local D CN CO
    D=$(Q "$dir") CN=$(Q "$WORK/$id-new") CO=$(Q "$WORK/$id-old")
    rm -rf "$WORK/$id-new" "$WORK/$id-old"
    for _ in 1 2; do
        "$NEW_BIN" scan --cache-dir "$WORK/$id-new" "$dir" >/dev/null
        "$OLD_BIN" scan --cache-dir "$WORK/$id-old" "$dir" >/dev/null
    done
    { echo; echo "## $dir"; } >>"$REPORT"
    table "$id" "$dir, nothing changed: catch-up vs full scan" "$WARMUP" "$RUNS" "" \
        "new catch-up" "$N scan --cache-dir $CN $D" \
        "new full scan" "$N scan --no-cache $D" \
        "old catch-up" "$O scan --cache-dir $CO $D" \
        "old full scan" "$O scan --no-cache $D"
    table "$id-touched" "$dir, listings re-read (prepare: $touch)" "$WARMUP" "$RUNS" "$touch" \
        "new catch-up" "$N scan --cache-dir $CN $D" \
        "old catch-up" "$O scan --cache-dir $CO $D" \
        "new full scan" "$N scan --no-cache $D"
    {
        echo
        echo "Totals after a touch (disk usage; items):"
        run_words "$touch"
        echo "- new catch-up: $(totals "$NEW_BIN" scan --cache-dir "$WORK/$id-new" "$dir")"
        run_words "$touch"
        echo "- old catch-up: $(totals "$OLD_BIN" scan --cache-dir "$WORK/$id-old" "$dir")"
        echo "- new full scan: $(totals "$NEW_BIN" scan --no-cache "$dir")"
    } | tee -a "$REPORT"
}

# A random time in 2000-2003, different at each run: a catch-up never sees the mtime it
# stored (the old binary compares whole seconds of mtime only).
stamp='$((946684800 + SRANDOM % 100000000))'
skip wide || bench wide "$WIDE" "bash -c $(Q "touch -d @$stamp $(Q "$WIDE")")"
skip tree || bench tree "$TREE" \
    "bash -c $(Q "find $(Q "$TREE") -type d -exec touch -d @$stamp {} +")"

echo >&2
echo "==> written $REPORT" >&2
