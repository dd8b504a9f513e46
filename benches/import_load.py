#!/usr/bin/env python3
"""Time and peak memory of opening an ncdu JSON export in a browser, to its first full screen.

Usage: python3 benches/import_load.py EXPORT [--runs N] [--dtui PATH]

Runs `dtui -f EXPORT` and `ncdu -f EXPORT` each in its own tmux server (socket
`dtui-import-bench`), polls the screen until the footer shows "Total disk usage",
reads the process's peak RSS (VmHWM) from /proc, quits it and prints the median of N runs
for each. Both tools build their whole tree in memory before that footer is drawn.
"""

import argparse
import os
import statistics
import subprocess
import time

SOCKET = "dtui-import-bench"


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True)


def one_run(cmd):
    tmux("kill-server")
    t0 = time.monotonic()
    tmux("new-session", "-d", "-x", "120", "-y", "40", "exec " + cmd)
    pid = None
    while True:
        if pid is None:
            out = tmux("display", "-p", "#{pane_pid}").stdout.strip()
            pid = int(out) if out.isdigit() else None
        screen = tmux("capture-pane", "-p").stdout
        if "Total disk usage" in screen:
            elapsed = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 120:
            raise SystemExit(f"timed out: {cmd}\n{screen}")
        time.sleep(0.005)
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    tmux("send-keys", "q")
    tmux("send-keys", "y")  # ncdu may ask to confirm
    time.sleep(0.2)
    tmux("kill-server")
    return elapsed, hwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dtui", default="target/release/dtui")
    a = ap.parse_args()
    export = os.path.abspath(a.export)
    for name, cmd in [
        ("dtui -f", f"{os.path.abspath(a.dtui)} -f '{export}'"),
        ("ncdu -f", f"ncdu -f '{export}'"),
    ]:
        runs = [one_run(cmd) for _ in range(a.runs)]
        secs = statistics.median(r[0] for r in runs)
        kib = statistics.median(r[1] for r in runs)
        print(f"{name}: median {secs * 1000:.0f} ms to the first screen, "
              f"peak RSS {kib / 1024:.1f} MiB ({a.runs} runs: "
              + ", ".join(f"{r[0] * 1000:.0f} ms" for r in runs) + ")")


if __name__ == "__main__":
    main()
