#!/usr/bin/env python3
"""The README's screenshot: a real browser session, captured from tmux and drawn as SVG.

Runs the release binary in a tmux server of its own at a fixed size on a real tree, waits
until the first scan is done (the footer says `[live]`), presses a few keys, captures the
pane with its colours (`tmux capture-pane -e -p`) and converts the ANSI text to SVG with
`rich`. Writes `assets/dtui.svg` and the same screen as plain text,
`assets/browser-usr-share.txt`. A developer's tool: CI does not run it.

Usage (from the repository's top):
    cargo build --release
    python3 -m venv /tmp/dtui-shot && /tmp/dtui-shot/bin/pip install rich
    /tmp/dtui-shot/bin/python scripts/screenshot.py [TREE] [KEYS...]
TREE defaults to /usr/share; KEYS (tmux key names) default to `c m j j`: the item count and
mtime columns shown, the cursor moved down twice. The cache goes to a temporary directory,
removed at the end, so the session starts with a real first scan and leaves nothing behind.
"""
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.text import Text

WIDTH, HEIGHT = 100, 30
SERVER = "dtui-screenshot"  # a tmux server of our own (-L), never the user's
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tmux(*args, check=True):
    return subprocess.run(
        ["tmux", "-L", SERVER, *args], check=check, capture_output=True, text=True
    ).stdout


def capture(colours):
    return tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "shot")


def wait_for(pred, what, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        screen = capture(False)
        if pred(screen):
            return screen
        time.sleep(0.2)
    sys.exit(f"screenshot: timed out waiting for {what}:\n{capture(False)}")


def footer_live(screen):
    lines = screen.rstrip().splitlines()
    return bool(lines) and "[live]" in lines[-1]


def main():
    tree = sys.argv[1] if len(sys.argv) > 1 else "/usr/share"
    keys = sys.argv[2:] or ["c", "m", "j", "j"]
    binary = os.path.join(TOP, "target", "release", "dtui")
    if not os.access(binary, os.X_OK):
        sys.exit("screenshot: build first: cargo build --release")
    cache = tempfile.mkdtemp(prefix="dtui-shot-cache-")
    try:
        cmd = f"exec env TERM=xterm-256color {binary} --cache-dir {cache} {tree}"
        tmux("new-session", "-d", "-s", "shot", "-x", str(WIDTH), "-y", str(HEIGHT), cmd)
        # The first scan is over and the watch is on when the footer's state says live.
        wait_for(footer_live, "the first scan")
        for key in keys:
            tmux("send-keys", "-t", "shot", key)
            time.sleep(0.3)
        # Two captures a moment apart that agree: nothing is still being drawn.
        before = None
        for _ in range(50):
            time.sleep(0.3)
            now = capture(True)
            if now == before:
                break
            before = now
        ansi, plain = capture(True), capture(False)
        tmux("send-keys", "-t", "shot", "q")
        time.sleep(1.0)
    finally:
        tmux("kill-server", check=False)
        shutil.rmtree(cache, ignore_errors=True)

    console = Console(record=True, width=WIDTH, file=io.StringIO(), color_system="256")
    console.print(Text.from_ansi(ansi.rstrip("\n")), end="", overflow="crop", no_wrap=True)
    svg = os.path.join(TOP, "assets", "dtui.svg")
    console.save_svg(svg, title=f"dtui {tree}")
    text = os.path.join(TOP, "assets", "browser-usr-share.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(line.rstrip() for line in plain.rstrip("\n").splitlines()) + "\n")
    print(f"wrote {svg} and {text}")


if __name__ == "__main__":
    main()
