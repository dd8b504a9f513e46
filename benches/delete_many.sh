#!/bin/bash
# Many marks: 5,000 files 40 directories deep, all named to one `dtui delete --no-cache`; the
# time to its prompt (answered n: nothing is deleted). Usage: benches/delete_many.sh [DTUI]
set -e
R=${TMPDIR:-/tmp}/dtui-delete-many; rm -rf $R; mkdir -p $R
D=$R; for i in $(seq 40); do D=$D/d$i; done; mkdir -p $D
python3 - "$D" <<'P'
import sys,os
d=sys.argv[1]
for i in range(5000): open(os.path.join(d,'f%d'%i),'w').close()
P
ls $D | sed "s|^|$D/|" > $R.paths
BIN=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/release/dtui}
start=$EPOCHREALTIME
echo n | xargs -s 1900000 -a $R.paths $BIN delete --no-cache $R >/dev/null 2>$R.err || true
end=$EPOCHREALTIME
awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f s to the prompt\n", b - a }'; tail -c 200 "$R.err"; echo
rm -rf "$R" "$R.paths" "$R.err"
