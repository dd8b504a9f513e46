#!/usr/bin/env bash
# Scale: the scan, memory and start-from-cache figures on trees of growing size, against the
# peers, to show that time and memory grow linearly with the number of entries.
#
# Usage: benches/scale.sh [DIR:ENTRIES ...]
#        (default: /tmp/dtui-bench-tree:500000 /tmp/dtui-bench-2m:2000000)
#
# Env overrides: SEED (42), WARMUP (1), RUNS (7), CACHE_BASE (/tmp/dtui-scale-cache).
#
# Per tree: generate it with benches/gen_tree.py unless it is there with the same parameters;
# make a cache for it (two cached scans); one `hyperfine -N` run over `dtui scan --no-cache`,
# `dtui scan --no-catch-up --cache-dir` (start from the cache) and every peer installed (pdu,
# du, ncdu, gdu, diskus, dust, dua); peak RSS of each command once with /usr/bin/time;
# `arena_bytes` from `dtui scan --json`; the load average before and after. Then one table
# across the trees, with the growth of each figure against the growth of the entry count.
# Results: benches/results/scale-<date>.md (+ one hyperfine .json per tree).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SEED=${SEED:-42}
WARMUP=${WARMUP:-1}
RUNS=${RUNS:-7}
CACHE_BASE=${CACHE_BASE:-/tmp/dtui-scale-cache}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

die() { echo "scale.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
have hyperfine || die "hyperfine not found (apt-get install -y hyperfine)"
have python3 || die "python3 not found"
[[ -x /usr/bin/time ]] || die "GNU time not found (apt-get install -y time)"

SPECS=("$@")
if ((${#SPECS[@]} == 0)); then
    SPECS=(/tmp/dtui-bench-tree:500000 /tmp/dtui-bench-2m:2000000)
fi

echo "==> cargo build --release"
cargo build --release
DTUI="${CARGO_TARGET_DIR:-$ROOT/target}/release/dtui"
[[ -x "$DTUI" ]] || die "$DTUI not found after build"
QD=$(printf '%q' "$DTUI")

mkdir -p "$ROOT/benches/results"
STAMP=$(date +%Y-%m-%d_%H%M%S)
OUT="$ROOT/benches/results/scale-$STAMP.md"
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")

{
    echo "# dtui scale benchmark — $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "- dtui: $DTUI @ $GIT_REV; hyperfine -N --warmup $WARMUP --runs $RUNS, one run per tree"
} >"$OUT"

for spec in "${SPECS[@]}"; do
    TREE=${spec%:*}
    ENTRIES=${spec##*:}
    echo "==> tree: $TREE ($ENTRIES entries)"
    python3 "$ROOT/benches/gen_tree.py" "$TREE" --entries "$ENTRIES" --seed "$SEED"
    TREE=$(cd "$TREE" && pwd)
    Q=$(printf '%q' "$TREE")
    CACHE="$CACHE_BASE/$(basename "$TREE")"
    QC=$(printf '%q' "$CACHE")
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    # The first scan writes the cache; the second starts from it and catches up, so the
    # start below maps an arena that is clean and current.
    "$DTUI" scan --cache-dir "$CACHE" "$TREE" >/dev/null
    "$DTUI" scan --cache-dir "$CACHE" "$TREE" >/dev/null

    NAMES=(dtui "dtui start from cache")
    CMDS=("$QD scan --no-cache $Q" "$QD scan --no-catch-up --cache-dir $QC $Q")
    add() { NAMES+=("$1"); CMDS+=("$2"); }
    have pdu && add pdu "pdu $Q"
    have du && add du "du -s $Q"
    have ncdu && add ncdu "ncdu -0 -o /dev/null $Q"
    have gdu && add gdu "gdu -npc $Q"
    have diskus && add diskus "diskus $Q"
    have dust && add dust "dust -d 0 $Q"
    have dua && add dua "dua aggregate $Q"

    HF_ARGS=()
    for i in "${!CMDS[@]}"; do HF_ARGS+=(--command-name "${NAMES[$i]}" "${CMDS[$i]}"); done
    HF_JSON="$ROOT/benches/results/scale-$STAMP-$(basename "$TREE").json"
    HF_MD=$(mktemp)
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$HF_JSON" \
        --export-markdown "$HF_MD" "${HF_ARGS[@]}"
    LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

    RSS_TMP=$(mktemp)
    RSS=()
    for i in "${!CMDS[@]}"; do
        eval "set -- ${CMDS[$i]}"
        /usr/bin/time -f '%M' -o "$RSS_TMP" "$@" >/dev/null 2>&1 || echo failed >"$RSS_TMP"
        RSS+=("$(tail -n 1 "$RSS_TMP")")
    done
    rm -f "$RSS_TMP"
    JSON=$("$DTUI" scan --json --no-cache "$TREE")
    FILES=$(printf '%s\n' "${NAMES[@]}" | paste -sd '|')
    KIBS=$(printf '%s\n' "${RSS[@]}" | paste -sd '|')

    python3 - "$HF_JSON" "$HF_MD" "$FILES" "$KIBS" "$JSON" "$TREE" "$LOAD_BEFORE" "$LOAD_AFTER" \
        "$SUMMARY" >>"$OUT" <<'EOF'
import json, sys
hf, md, names, kibs, scan, tree, lb, la, summary = sys.argv[1:]
res = {r["command"]: r for r in json.load(open(hf))["results"]}
names, kibs = names.split("|"), kibs.split("|")
rss = dict(zip(names, kibs))
scan = json.loads(scan)
entries = scan["items"] + 1  # the root too
d, s, p = res["dtui"], res["dtui start from cache"], res.get("pdu")
print(f"\n## {tree}: {scan['items']:,} entries below the root\n")
print(f"Load average before / after the hyperfine run: {lb} / {la}\n")
print(open(md).read())
print("| command | median [ms] | / pdu | CPU, user + sys [ms] | peak RSS [MiB] | RSS bytes/entry |")
print("|:---|---:|---:|---:|---:|---:|")
for n in names:
    r = res[n]
    ratio = f"{r['median'] / p['median']:.2f}" if p else "-"
    k = rss.get(n, "failed")
    mib = f"{int(k) / 1024:.1f}" if k.isdigit() else k
    per = f"{int(k) * 1024 / entries:.1f}" if k.isdigit() else "-"
    cpu = (r["user"] + r["system"]) * 1000
    print(f"| `{n}` | {r['median'] * 1000:.1f} | {ratio} | {cpu:.0f} | {mib} | {per} |")
arena = scan["arena_bytes"] / entries
print(f"\nArena (nodes, directory records, names): {scan['arena_bytes']:,} bytes = "
      f"{arena:.1f} bytes/entry. Totals: {scan['disk']:,} bytes on disk, "
      f"{scan['apparent']:,} apparent.")
row = {
    "tree": tree, "entries": entries, "scan": d["median"], "start": s["median"],
    "pdu": p["median"] if p else None,
    # CPU time (user + system, means): less at the mercy of other processes than wall time.
    "cpu": d["user"] + d["system"],
    "pdu_cpu": p["user"] + p["system"] if p else None,
    "rss": int(rss["dtui"]) * 1024 if rss["dtui"].isdigit() else None,
    "pdu_rss": int(rss["pdu"]) * 1024 if rss.get("pdu", "").isdigit() else None,
    "arena": scan["arena_bytes"], "load": f"{lb} / {la}",
}
with open(summary, "a") as f:
    f.write(json.dumps(row) + "\n")
EOF
    rm -f "$HF_MD"
done

python3 - "$SUMMARY" >>"$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n## Scale\n")
print("| tree | entries | dtui scan [ms] | pdu [ms] | dtui / pdu | scan µs/entry | dtui CPU [ms] | pdu CPU [ms] | CPU µs/entry | peak RSS [MiB] | RSS B/entry | arena B/entry | start from cache [ms] | load (before / after) |")
print("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    pdu = f"{r['pdu'] * 1000:.0f}" if r["pdu"] else "-"
    ratio = f"{r['scan'] / r['pdu']:.2f}" if r["pdu"] else "-"
    rss = f"{r['rss'] / 1048576:.1f}" if r["rss"] else "-"
    rsse = f"{r['rss'] / r['entries']:.1f}" if r["rss"] else "-"
    pcpu = f"{r['pdu_cpu'] * 1000:.0f}" if r["pdu_cpu"] else "-"
    print(f"| `{r['tree']}` | {r['entries']:,} | {r['scan'] * 1000:.0f} | {pdu} | {ratio} | "
          f"{r['scan'] * 1e6 / r['entries']:.2f} | {r['cpu'] * 1000:.0f} | {pcpu} | "
          f"{r['cpu'] * 1e6 / r['entries']:.2f} | {rss} | {rsse} | {r['arena'] / r['entries']:.1f} | "
          f"{r['start'] * 1000:.1f} | {r['load']} |")
if len(rows) > 1:
    a, b = rows[0], rows[-1]
    k = b["entries"] / a["entries"]
    def g(key):
        return f"{b[key] / a[key]:.2f}x" if a.get(key) and b.get(key) else "-"
    print(f"\nGrowth from the first tree to the last: entries {k:.2f}x; dtui scan {g('scan')} "
          f"(CPU {g('cpu')}), pdu {g('pdu')} (CPU {g('pdu_cpu')}), peak RSS {g('rss')} "
          f"(pdu {g('pdu_rss')}), arena {g('arena')}, "
          f"start from cache {g('start')}. Linear means each close to {k:.2f}x.")
EOF

echo
cat "$OUT"
echo
echo "==> written $OUT"
