#!/usr/bin/env bash
# Memory per entry: what the in-memory tree holds, part by part, and the peak RSS of a scan,
# against the peers on the same tree.
#
# Usage: benches/memory.sh [TREE]     (default: /tmp/dtui-bench-tree, from benches/gen_tree.py)
#
# Env: RUNS (3, peak RSS runs per command: the median is shown), OLD_BIN (a dtui binary to
# compare with: its peak RSS, and a `hyperfine -N -w 2 -r 8` of both scans).
#
# The parts come from `dtui scan --json --no-cache` ("memory"): nodes, directory records,
# rare records, names, the child index (as the scan left it, and at its most: every directory
# of 32 children or more indexed, as a long watch that touched each could leave it, or its
# budget of 3/4 byte per entry when that is less), the table
# that shares repeated names, the hard-link groups, the header. Peak RSS: "Maximum resident
# set size" of /usr/bin/time -v (KiB, times 1024). Results: benches/results/memory-<date>.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TREE=${1:-/tmp/dtui-bench-tree}
RUNS=${RUNS:-3}
OLD_BIN=${OLD_BIN:-}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

die() { echo "memory.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
[[ -d "$TREE" ]] || die "$TREE: no such tree (python3 benches/gen_tree.py makes one)"
[[ -x /usr/bin/time ]] || die "GNU time not found (apt-get install -y time)"
have python3 || die "python3 not found"

cargo build --release >&2
DTUI="${CARGO_TARGET_DIR:-$ROOT/target}/release/dtui"

# Peak RSS in bytes of a command (the median of RUNS runs).
peak() {
    local runs=()
    for _ in $(seq "$RUNS"); do
        runs+=("$(/usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')")
    done
    printf '%s\n' "${runs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] * 1024}'
}

JSON=$("$DTUI" scan --json --no-cache "$TREE")
declare -A RSS
RSS[dtui]=$(peak "$DTUI" scan --no-cache "$TREE")
[[ -n "$OLD_BIN" ]] && RSS["dtui (OLD_BIN)"]=$(peak "$OLD_BIN" scan --no-cache "$TREE")
have pdu && RSS[pdu]=$(peak pdu "$TREE")
have ncdu && RSS[ncdu]=$(peak ncdu -0 -o /dev/null "$TREE")
have gdu && RSS[gdu]=$(peak gdu -npc "$TREE")

mkdir -p benches/results
OUT="benches/results/memory-$(date +%Y-%m-%d_%H%M%S).md"
{
    echo "# dtui memory per entry — $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- Tree: \`$TREE\`; dtui @ $(git rev-parse --short HEAD 2>/dev/null || echo '?'); peak RSS: median of $RUNS runs"
    echo
    RSS_LINES=$(for k in "${!RSS[@]}"; do echo "$k=${RSS[$k]}"; done)
    JSON="$JSON" RSS_LINES="$RSS_LINES" python3 - <<'EOF'
import json, os
d = json.loads(os.environ["JSON"])
m = d["memory"]
n = d["items"] + 1  # the root too
rows = [
    ("nodes (28 B each)", m["nodes"]),
    ("directory records (56 B each)", m["dirs"]),
    ("rare records (48 B each)", m["rares"]),
    ("names (repeated names shared)", m["names"]),
    ("child index, as the scan left it", m["index"]),
    ("child index at its most (every wide directory, or its budget)", m["index_all_wide"]),
    ("name-sharing table", m["name_cache"]),
    ("hard-link groups", m["links"]),
    ("header", m["header"]),
]
print(f"{n:,} entries ({d['dirs']:,} directories)")
print()
print("| part | bytes | bytes/entry |")
print("|---|---:|---:|")
for name, b in rows:
    print(f"| {name} | {b:,} | {b / n:.2f} |")
as_left = m["all_in"] - max(m["index"], m["index_all_wide"]) + m["index"]
print(f"| **all in, index as the scan left it** | {as_left:,} | **{as_left / n:.2f}** |")
print(f"| **all in, the index at its most** | {m['all_in']:,} | **{m['all_in'] / n:.2f}** |")
print()
print("| command | peak RSS [MiB] | bytes/entry |")
print("|---|---:|---:|")
for line in sorted(os.environ["RSS_LINES"].splitlines()):
    k, v = line.split("=", 1)
    v = int(v)
    print(f"| {k} | {v / 2**20:.1f} | {v / n:.1f} |")
EOF
} | tee "$OUT"

if [[ -n "$OLD_BIN" ]] && have hyperfine; then
    echo
    hyperfine -N -w 2 -r 8 "$OLD_BIN scan --no-cache $TREE" "$DTUI scan --no-cache $TREE" | tee -a "$OUT"
fi
echo "memory.sh: wrote $OUT" >&2
