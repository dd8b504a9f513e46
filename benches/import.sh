#!/usr/bin/env bash
# Benchmark opening an ncdu JSON export: `dtui -f` against `ncdu -f`, on an export of the
# generated 500,000-entry tree (warm page cache).
#
# Usage: benches/import.sh [TREE_DIR]        (default /tmp/dtui-bench-tree; only read)
#
# Env overrides: ENTRIES (default 500000), SEED (42), RUNS (10), UI_RUNS (5), OUT (a temp dir).
#
# Steps: cargo build --release; generate the tree with benches/gen_tree.py unless it exists;
# `ncdu -0 -o` writes the export (and zstd a compressed copy); then
#  1. hyperfine: `dtui scan -f EXPORT` (load into the tree, print the summary) against
#     `ncdu -f EXPORT -o /dev/null` (ncdu 1.x converts that as a stream, without a tree: a
#     lower bound on ncdu's reading, not its browser), and `dtui scan -f EXPORT.zst`;
#  2. peak RSS of each once via /usr/bin/time;
#  3. benches/import_load.py: each browser in tmux until its first full screen (both hold
#     the whole tree then): median time and peak RSS (VmHWM).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TREE=${1:-/tmp/dtui-bench-tree}
ENTRIES=${ENTRIES:-500000}
SEED=${SEED:-42}
RUNS=${RUNS:-10}
UI_RUNS=${UI_RUNS:-5}
OUT=${OUT:-$(mktemp -d)}

die() { echo "import.sh: $*" >&2; exit 1; }
for t in hyperfine python3 ncdu zstd tmux; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (apt-get install -y $t)"
done

echo "==> cargo build --release"
cargo build --release
DTUI="${CARGO_TARGET_DIR:-$ROOT/target}/release/dtui"

if [[ ! -e "$TREE/.gen_done" ]]; then
  echo "==> generating $TREE ($ENTRIES entries)"
  python3 benches/gen_tree.py "$TREE" --entries "$ENTRIES" --seed "$SEED"
fi

EXPORT="$OUT/ncdu.json"
echo "==> ncdu -o $EXPORT"
ncdu -0 -o "$EXPORT" "$TREE" </dev/null >/dev/null
zstd -q -f "$EXPORT" -o "$EXPORT.zst"
ls -l "$EXPORT" "$EXPORT.zst"

echo "==> hyperfine"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$OUT/hyperfine.json" \
  -n "dtui scan -f" "$DTUI scan -f $EXPORT" \
  -n "dtui scan -f (zstd)" "$DTUI scan -f $EXPORT.zst" \
  -n "ncdu -f -o /dev/null" "ncdu -f $EXPORT -o /dev/null"

python3 - "$OUT/hyperfine.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"median {r['median'] * 1000:7.1f} ms  user {r['user'] * 1000:6.1f} ms  "
          f"system {r['system'] * 1000:5.1f} ms  {r['command']}")
PY

echo "==> peak RSS"
for cmd in "$DTUI scan -f $EXPORT" "$DTUI scan -f $EXPORT.zst" "ncdu -f $EXPORT -o /dev/null"; do
  /usr/bin/time -f "%M KiB  $cmd" $cmd >/dev/null 2>"$OUT/time.txt" || true
  tail -1 "$OUT/time.txt"
done

echo "==> the browsers, to the first full screen"
python3 benches/import_load.py "$EXPORT" --runs "$UI_RUNS" --dtui "$DTUI"
