#!/usr/bin/env python3
"""Time to a running watch, and the memory it holds: `dtui watch` with each backend, alternated.

Usage: benches/watch_start.py [TREE] [DTUI]   (env ROUNDS=5, BACKENDS="inotify notify")

Each run starts `dtui watch --no-cache --watch-backend B TREE` and takes the time until it
prints `watching` (every directory watched; the scan has not begun), then the resident memory
once the scan's `tree:` line is out (the watch and the tree both held). One warm-up listing of
the tree first, so no run pays for reading directories from the disk. Medians per backend.
"""
import os
import statistics
import subprocess
import sys
import time


def one(dtui, tree, backend):
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [dtui, "watch", "--no-cache", "--watch-backend", backend, tree],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    started = rss = None
    for line in p.stdout:
        if started is None and line.startswith(b"watching"):
            started = time.perf_counter() - t0
        if line.startswith(b"tree:"):
            with open(f"/proc/{p.pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
            break
    p.kill()
    p.wait()
    if started is None or rss is None:
        sys.exit(f"{backend}: no watching/tree line")
    return started, rss


def main():
    tree = sys.argv[1] if len(sys.argv) > 1 else "/tmp/dtui-bench-tree"
    dtui = sys.argv[2] if len(sys.argv) > 2 else "target/release/dtui"
    rounds = int(os.environ.get("ROUNDS", "5"))
    backends = os.environ.get("BACKENDS", "inotify notify").split()
    subprocess.run(["find", tree, "-type", "d"], stdout=subprocess.DEVNULL, check=True)
    res = {b: [] for b in backends}
    print(f"load before: {open('/proc/loadavg').read().strip()}")
    for r in range(rounds):
        order = backends[r % len(backends):] + backends[: r % len(backends)]
        for b in order:
            res[b].append(one(dtui, tree, b))
    print(f"load after: {open('/proc/loadavg').read().strip()}")
    print(f"{'backend':10} {'watching s (median)':>20} {'min':>6} {'max':>6} {'RSS MiB (median)':>17}")
    for b in backends:
        starts = [s for s, _ in res[b]]
        rss = [m for _, m in res[b]]
        print(
            f"{b:10} {statistics.median(starts):20.2f} {min(starts):6.2f} {max(starts):6.2f}"
            f" {statistics.median(rss) / 1024:17.1f}"
        )


if __name__ == "__main__":
    main()
