#!/usr/bin/env bash
# The start from the cache against a scan (issue 14, goal 3; issue 8's first frame), in one
# run on the same tree:
#   1. hyperfine, interleaved: `pdu TREE` (parallel-disk-usage, the fastest peer's full
#      scan), `dtui scan --no-catch-up --cache-dir C TREE` (the tree from the cache, printed);
#   2. the browser's first complete frame from the same cache, in a pseudo-terminal
#      (`cargo bench --bench ui -- TREE --warm-only`: median of 15 starts);
#   3. where that start goes, phase by phase (`cargo bench --bench start -- ARENA`);
# then both starts as a fraction of pdu's scan (goal: at most 0.02x).
#
# Usage: benches/start.sh [TREE]        (default /tmp/dtui-bench-tree; generated with
#                                        benches/gen_tree.py if missing)
# Env: OLD=/path/to/another/dtui also times that build's two starts (its own cache dir),
#      WARMUP (3), RUNS (20).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TREE=${1:-/tmp/dtui-bench-tree}
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-20}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
command -v hyperfine >/dev/null || { echo "start.sh: hyperfine not found (apt-get install hyperfine)" >&2; exit 1; }
command -v pdu >/dev/null || cargo install --locked parallel-disk-usage
[[ -d $TREE ]] || python3 benches/gen_tree.py "$TREE"
cargo build --release
DTUI=$ROOT/target/release/dtui
CACHE=$(mktemp -d /tmp/dtui-start-bench.XXXXXX)
trap 'rm -rf "$CACHE"' EXIT
"$DTUI" scan --cache-dir "$CACHE/new" "$TREE" >/dev/null
cmds=("pdu $TREE" "$DTUI scan --no-catch-up --cache-dir $CACHE/new $TREE")
if [[ -n ${OLD:-} ]]; then
  "$OLD" scan --cache-dir "$CACHE/old" "$TREE" >/dev/null
  cmds+=("$OLD scan --no-catch-up --cache-dir $CACHE/old $TREE")
fi
echo "== load: $(uptime)"
hyperfine -N -w "$WARMUP" -r "$RUNS" --export-json "$CACHE/h.json" "${cmds[@]}"
ui() { cargo bench --bench ui -- "$TREE" --warm-only "$@" 2>/dev/null | grep '^first frame'; }
FRAME=$(ui)
echo "$FRAME"
[[ -n ${OLD:-} ]] && echo "old: $(ui --bin "$OLD")"
cargo bench --bench start -- "$(ls "$CACHE"/new/*.arena)" 2>/dev/null | grep '^start'
python3 - "$CACHE/h.json" "$FRAME" <<'PY'
import json, re, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(r["times"]) * 1e3 for r in res]
frame = float(re.search(r"warm \(cache\) median ([0-9.]+) ms", sys.argv[2]).group(1))
print(f"pdu scan {med[0]:.1f} ms; dtui scan --no-catch-up {med[1]:.1f} ms = {med[1]/med[0]:.3f}x; "
      f"first frame from the cache {frame:.1f} ms = {frame/med[0]:.3f}x (goal <= 0.02x)")
if len(med) > 2:
    print(f"old build: scan --no-catch-up {med[2]:.1f} ms = {med[2]/med[0]:.3f}x")
PY
echo "== load: $(uptime)"
