#!/bin/sh
# The cache under churn (issue 20, item 5): `dtui watch` on a fresh root while another
# process makes and removes directories with unique names and files at the end of a 3.6 KiB
# path, as fast as it can; prints the bytes of every file of the cache every STEP seconds,
# then after dtui stops.
#
# usage: benches/cache_churn.sh DTUI SECONDS STEP [dtui watch options...]
# e.g.:  benches/cache_churn.sh target/release/dtui 20 5 --cache-max-bytes 1M
set -eu
dtui=$1 secs=$2 step=$3
shift 3
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
mkdir "$base/root" "$base/cache"
"$dtui" watch "$@" --cache-dir "$base/cache" "$base/root" > "$base/watch.out" 2>&1 &
pid=$!
until grep -q '^tree:' "$base/watch.out"; do sleep 0.1; done
(
    cd "$base/root"
    long=$(printf 'x%.0s' $(seq 200))
    deep=$long
    for _ in $(seq 17); do deep="$deep/$long"; done
    mkdir -p "$deep"
    end=$(( $(date +%s) + secs ))
    i=0
    while [ "$(date +%s)" -lt "$end" ]; do
        for j in 1 2 3 4 5 6 7 8 9 10; do
            mkdir "d$i-$j" && rmdir "d$i-$j"
            : > "$deep/f$i-$j" && rm "$deep/f$i-$j"
        done
        i=$((i + 1))
    done
    echo "$i" > "$base/cycles"
) &
churn=$!
t=0
while [ "$t" -lt "$secs" ]; do
    sleep "$step"
    t=$((t + step))
    printf '%ss: %s  ' "$t" "$(du -sb "$base/cache" | cut -f1)"
done
wait "$churn"
sleep 2
kill "$pid"
wait "$pid" || true
printf 'after: %s  (%s rounds of 10)\n' "$(du -sb "$base/cache" | cut -f1)" "$(cat "$base/cycles")"
