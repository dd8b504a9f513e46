#!/usr/bin/env python3
"""Interleaved timing of several commands: median wall time and median CPU time of each.

On a shared machine the wall time of a scan swings with the other load; the CPU time (user +
system of the process and all its threads, io_uring workers included, from wait4) does not, so
it is the figure that tells whether a change made the work itself smaller.

Usage: ROUNDS=10 WARM=2 benches/cpu_wall.py 'CMD1 ARGS' 'CMD2 ARGS' ...
Each round runs every command once (the order rotated per round), stdout to /dev/null; ratios
are to the first command's median wall time and median CPU time.
"""
import os
import shlex
import statistics
import sys
import time


def run(cmd):
    argv = shlex.split(cmd)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        null = os.open("/dev/null", os.O_WRONLY)
        os.dup2(null, 1)
        os.execvp(argv[0], argv)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {cmd}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_utime, ru.ru_stime


def main():
    rounds = int(os.environ.get("ROUNDS", "10"))
    warm = int(os.environ.get("WARM", "2"))
    cmds = sys.argv[1:]
    if not cmds:
        sys.exit(__doc__)
    res = {c: [] for c in cmds}
    for _ in range(warm):
        for c in cmds:
            run(c)
    print("load before:", open("/proc/loadavg").read().strip())
    for r in range(rounds):
        k = r % len(cmds)
        for c in cmds[k:] + cmds[:k]:
            res[c].append(run(c))
    med = {c: [statistics.median(x[i] for x in res[c]) for i in range(4)] for c in cmds}
    base, base_cpu = med[cmds[0]][0], med[cmds[0]][1]
    print(f"{'command':60s} {'wall ms':>8s} {'/first':>6s} {'cpu ms':>7s} {'/first':>6s} {'usr':>5s}"
          f" {'sys':>5s}  (medians of {rounds})")
    for c in cmds:
        w, cpu, u, s = med[c]
        print(f"{c[-60:]:60s} {w * 1000:8.0f} {w / base:6.3f} {cpu * 1000:7.0f} {cpu / base_cpu:6.3f}"
              f" {u * 1000:5.0f} {s * 1000:5.0f}")
    print("load after:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
