#!/usr/bin/env python3
"""Deterministic generator of a realistic directory tree for dtui benchmarks.

Usage: python3 benches/gen_tree.py DEST [--entries N] [--seed S] [--jobs J] [--force]

The tree contains (at the default N=500000):
  * a few huge flat directories (5,000-20,000 files: maildir, DCIM, log archive, cache),
  * a few directory chains 30-60 levels deep,
  * a node_modules-like area (many small package dirs with index.js/package.json/...),
  * a home-directory-like general area with heavy-tailed directory sizes,
  * mostly small files (0-16 KiB, log-uniform; ~6% are sparse via ftruncate),
  * a handful of large files (5-50 MiB, real data) plus one large sparse file,
  * ~1% hard links (extra names for files inside the tree),
  * ~3% symlinks (to files, to directories, and dangling ones),
  * some empty directories.

The total number of entries below DEST (dirs + file names incl. hard links +
symlinks + the `.gen_done` marker itself) is exactly N, i.e.
`find DEST | wc -l` prints N + 1 (find also lists DEST).

If DEST already holds a `.gen_done` marker written with the same parameters,
generation is skipped.  A marker with different parameters means DEST is an
older generated tree: it is removed and regenerated.  A non-empty DEST without a
marker is refused unless --force is given.
"""

import argparse
import json
import math
import multiprocessing
import os
import posixpath
import random
import shutil
import sys
import time

GEN_VERSION = 1
MARKER = ".gen_done"
KIB = 1024
MIB = 1024 * 1024

WORDS = (
    "app api core util utils config data test main index server client model view "
    "controller service handler helper common shared build assets images img icons "
    "fonts styles theme layout report invoice budget notes draft final backup archive "
    "export import photo scan meeting project summary schema migration user account "
    "auth session cache queue worker parser lexer render engine kernel driver module "
    "plugin widget button modal table chart graph network socket stream buffer file "
    "path system monitor metrics logger event store state router route page home about "
    "contact profile settings admin dashboard search filter sort list item node tree "
    "vector matrix image audio video track album song playlist holiday wedding birthday "
    "family trip beach mountain paris tokyo berlin alpha beta release debug legacy "
    "payment order cart product customer ticket issue task job batch sync async "
    "loader reader writer format encode decode crypto hash token key cert proxy "
    "gateway client2 storage bucket blob record entry index2 thesis chapter slides "
    "recipe resume letter contract scan2 receipt tax"
).split()

EXTS = [
    # (extension, weight)
    ("txt", 6), ("md", 5), ("json", 6), ("js", 8), ("ts", 5), ("py", 6), ("rs", 4),
    ("go", 2), ("c", 3), ("h", 3), ("cpp", 2), ("html", 3), ("css", 3), ("png", 6),
    ("jpg", 7), ("jpeg", 1), ("gif", 1), ("svg", 2), ("pdf", 4), ("docx", 2),
    ("xlsx", 1), ("csv", 2), ("log", 3), ("gz", 2), ("zip", 1), ("tar", 1),
    ("yaml", 2), ("toml", 1), ("xml", 2), ("mp3", 2), ("flac", 1), ("o", 2), ("so", 1),
    ("class", 1), ("java", 2), ("lock", 1), ("sh", 2), ("", 4),
]
_EXT_NAMES = [e for e, _ in EXTS]
_EXT_CUM = []
_acc = 0
for _e, _w in EXTS:
    _acc += _w
    _EXT_CUM.append(_acc)

TOP_DIRS = [
    "Documents", "Downloads", "Pictures", "Music", "Videos", "Desktop", "src",
    ".cache", ".local/share", ".config", "work", "backup",
]


class Planner:
    """Builds the full list of operations in memory before touching the disk."""

    def __init__(self, rng, budget):
        self.rng = rng
        self.remaining = budget  # regular entries (dirs + files) still to plan
        self.dirs = []           # relative paths, parents before children
        self.files = []          # (path, size, kind) kind: 0 data, 1 sparse, 2 big
        self.names = {"": []}    # dir -> list of names (order matters: determinism)
        self.name_sets = {"": set()}
        self.link_dirs = []      # dirs eligible to receive hard links / symlinks
        self.link_files = []     # indices into self.files eligible as link targets

    # -- naming ---------------------------------------------------------
    def _unique(self, parent, name):
        s = self.name_sets[parent]
        if name in s:
            stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
            i = 1
            while True:
                cand = f"{stem}-{i}{dot}{ext}" if dot else f"{stem}-{i}"
                if cand not in s:
                    name = cand
                    break
                i += 1
        s.add(name)
        self.names[parent].append(name)
        return name

    def word_stem(self, max_words=3):
        rng = self.rng
        n = rng.randint(1, max_words)
        words = [rng.choice(WORDS) for _ in range(n)]
        style = rng.random()
        if style < 0.35:
            stem = "_".join(words)
        elif style < 0.65:
            stem = "-".join(words)
        elif style < 0.8:
            stem = words[0] + "".join(w.capitalize() for w in words[1:])
        else:
            stem = "".join(words)
        r = rng.random()
        if r < 0.15:
            stem += str(rng.randint(0, 99))
        elif r < 0.22:
            stem += "_%04d" % rng.randint(0, 9999)
        elif r < 0.26:
            stem = "%d-%02d-%02d_" % (rng.randint(2012, 2024), rng.randint(1, 12),
                                       rng.randint(1, 28)) + stem
        return stem

    def file_name(self):
        rng = self.rng
        stem = self.word_stem()
        ext = _EXT_NAMES[_bisect(_EXT_CUM, rng.random() * _EXT_CUM[-1])]
        if rng.random() < 0.03:
            stem = "." + stem
        return _clamp(stem, ext, rng)

    def dir_name(self):
        rng = self.rng
        stem = self.word_stem(max_words=2)
        if rng.random() < 0.04:
            stem = "." + stem
        return _clamp(stem, "", rng)

    # -- planning primitives --------------------------------------------
    def add_dir(self, parent, name, linkable=True):
        name = self._unique(parent, name)
        path = posixpath.join(parent, name) if parent else name
        self.dirs.append(path)
        self.names[path] = []
        self.name_sets[path] = set()
        self.remaining -= 1
        if linkable:
            self.link_dirs.append(path)
        return path

    def add_file(self, parent, name, size, kind=0, linkable=True):
        name = self._unique(parent, name)
        path = posixpath.join(parent, name) if parent else name
        if linkable:
            self.link_files.append(len(self.files))
        self.files.append((path, size, kind))
        self.remaining -= 1
        return path

    def small_size(self):
        """0-16 KiB, log-uniform (mean ~1.7 KiB) with extra mass at 0."""
        rng = self.rng
        if rng.random() < 0.05:
            return 0
        return int(math.exp(rng.random() * math.log(16 * KIB + 1))) - 1

    def small_file(self, parent, name=None, linkable=True):
        if name is None:
            name = self.file_name()
        size = self.small_size()
        kind = 1 if (size > 0 and self.rng.random() < 0.06) else 0
        return self.add_file(parent, name, size, kind, linkable)


def _bisect(cum, x):
    lo, hi = 0, len(cum)
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, len(cum) - 1)


def _clamp(stem, ext, rng):
    """Keep names between 3 and 30 characters."""
    suffix = "." + ext if ext else ""
    maxstem = 30 - len(suffix)
    if len(stem) > maxstem:
        stem = stem[:maxstem].rstrip("-_.") or "x" * 3
    while len(stem) + len(suffix) < 3:
        stem += rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
    return stem + suffix


# ---------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------

def plan_skeleton(p):
    tops = {}
    for t in TOP_DIRS:
        parent = ""
        for part in t.split("/"):
            cand = posixpath.join(parent, part) if parent else part
            if cand not in p.names:
                p.add_dir(parent, part)
            parent = cand
        tops[t] = parent
    return tops


def plan_large(p, tops):
    rng = p.rng
    names = [
        ("Downloads", "ubuntu-22.04-server.iso"),
        ("Videos", "holiday_2019_raw.mp4"),
        ("backup", "home-backup.tar.gz"),
        ("work", "dataset_full.parquet"),
        ("Music", "concert_live.flac"),
        ("Downloads", "installer-x86_64.bin"),
    ]
    count = rng.randint(5, 6)
    for parent, name in names[:count]:
        size = rng.randint(5 * MIB, 50 * MIB)
        p.add_file(tops[parent], name, size, kind=2)
    # One large sparse file (e.g. a VM image): big apparent size, few blocks.
    vm = p.add_dir(tops[".local/share"], "libvirt")
    p.add_file(vm, "disk0.qcow2", 64 * MIB, kind=3, linkable=False)


def plan_big_dirs(p, tops, scale):
    rng = p.rng
    specs = [
        # (parent top, subpath, base count, name function)
        ("Documents", "Mail/INBOX/cur", 20000, "maildir"),
        ("Pictures", "2019/DCIM", 12000, "dcim"),
        (".cache", "thumbnails/normal", 8000, "thumb"),
        ("work", "logs/archive", 5000, "log"),
    ]
    for top, sub, base, kind in specs:
        parent = tops[top]
        for part in sub.split("/"):
            cand = posixpath.join(parent, part)
            parent = cand if cand in p.names else p.add_dir(parent, part)
        count = max(10, int(base * scale))
        count = min(count, max(0, p.remaining // 4))
        t0 = 1546300800
        for i in range(count):
            if kind == "maildir":
                name = "%d.M%dP%d.mx:2,S" % (t0 + i * 37, rng.randint(100000, 999999), 1000 + i)
            elif kind == "dcim":
                name = "IMG_%05d.JPG" % (1000 + i)
            elif kind == "thumb":
                name = "%032x.png" % rng.getrandbits(128)
                name = name[-30:]
            else:
                d = 1 + i % 28
                m = 1 + (i // 28) % 12
                name = "app-%d-%02d-%02d.%d.log.gz" % (2015 + i // 336, m, d, i % 7)
            p.small_file(parent, name, linkable=(i % 50 == 0))


def plan_deep_chains(p, tops, scale):
    rng = p.rng
    nchains = 4
    roots = [tops["src"], tops["work"], tops[".cache"], tops["Documents"]]
    for c in range(nchains):
        depth = rng.randint(30, 60)
        if scale < 0.02:  # tiny trees: keep chains proportionate
            depth = max(5, int(depth * scale * 50))
        parent = p.add_dir(roots[c], ["java-project", "nested", "bazel-out", "deep"][c])
        for lvl in range(depth):
            if c == 0:
                name = ["com", "example", "internal", "platform"][lvl % 4] + (str(lvl // 4) if lvl >= 4 else "")
            elif c == 1:
                name = "level_%02d" % lvl
            else:
                name = p.dir_name()
            parent = p.add_dir(parent, name)
            for _ in range(rng.randint(0, 3)):
                p.small_file(parent)
        # a bunch of files at the bottom
        for _ in range(rng.randint(5, 20)):
            p.small_file(parent)


PKG_FILES_JS = ["index.js", "utils.js", "parse.js", "index.d.ts", "index.js.map",
                "helpers.js", "constants.js", "types.d.ts", "core.js", "browser.js"]


def plan_node_modules(p, tops, budget):
    rng = p.rng
    stop_at = p.remaining - budget
    scopes = ["@babel", "@types", "@eslint", "@jest", "@vue", "@angular", "@aws-sdk"]

    def pkg_name():
        n = rng.randint(1, 2)
        return _clamp("-".join(rng.choice(WORDS) for _ in range(n)), "", rng)

    def package(nm_dir, depth):
        if rng.random() < 0.15:
            scope = rng.choice(scopes)
            sdir = posixpath.join(nm_dir, scope)
            if sdir not in p.names:
                sdir = p.add_dir(nm_dir, scope)
            pdir = p.add_dir(sdir, pkg_name())
        else:
            pdir = p.add_dir(nm_dir, pkg_name())
        p.small_file(pdir, "package.json")
        p.small_file(pdir, "README.md")
        p.small_file(pdir, "LICENSE")
        p.small_file(pdir, "index.js")
        if rng.random() < 0.5:
            p.small_file(pdir, "CHANGELOG.md")
        for sub in ("lib", "dist", "src"):
            if rng.random() < 0.45:
                sd = p.add_dir(pdir, sub)
                for f in rng.sample(PKG_FILES_JS, rng.randint(1, 6)):
                    p.small_file(sd, f)
                for _ in range(rng.randint(0, 4)):
                    p.small_file(sd, p.word_stem(2) + rng.choice([".js", ".mjs", ".cjs", ".d.ts"]))
        if depth < 3 and rng.random() < 0.12:
            nested = p.add_dir(pdir, "node_modules")
            for _ in range(rng.randint(1, 4)):
                if p.remaining <= stop_at + 40:
                    break
                package(nested, depth + 1)

    projects = tops["src"]
    while p.remaining > stop_at + 60:
        proj = p.add_dir(projects, p.word_stem(2)[:24] + "-app")
        p.small_file(proj, "package.json")
        p.small_file(proj, "package-lock.json")
        nm = p.add_dir(proj, "node_modules")
        p.add_dir(nm, ".bin", linkable=False)
        for _ in range(rng.randint(150, 900)):
            if p.remaining <= stop_at + 60:
                break
            package(nm, 1)


def plan_empty_dirs(p, tops, count):
    rng = p.rng
    parents = [tops[t] for t in TOP_DIRS]
    for _ in range(count):
        p.add_dir(rng.choice(parents), rng.choice(["tmp", "empty", "old", "new", "logs", "cache", "out"]) + str(rng.randint(0, 999)), linkable=False)


def plan_general(p, tops):
    """Fill the remaining budget exactly with a heavy-tailed home-like tree."""
    rng = p.rng
    roots = [tops[t] for t in TOP_DIRS]
    queue = []
    qi = 0
    while p.remaining > 0:
        if qi >= len(queue):
            # start a new subtree under one of the top-level dirs
            queue.append((p.add_dir(rng.choice(roots), p.dir_name()), 1))
            continue
        d, depth = queue[qi]
        qi += 1
        # heavy-tailed file count: Pareto(alpha=1.2) scaled, capped
        nfiles = min(int(rng.paretovariate(1.2) * 3) - 2, 2000)
        for _ in range(max(0, nfiles)):
            if p.remaining <= 0:
                return
            p.small_file(d)
        if depth < 14:
            mean_sub = max(0.0, 2.4 - depth * 0.17)
            nsub = int(rng.expovariate(1.0 / mean_sub)) if mean_sub > 0 else 0
            for _ in range(min(nsub, 12)):
                if p.remaining <= 0:
                    return
                queue.append((p.add_dir(d, p.dir_name()), depth + 1))


def plan_links(p, n_hard, n_sym):
    rng = p.rng
    hard = []
    for _ in range(n_hard):
        fi = rng.choice(p.link_files)
        target = p.files[fi][0]
        d = rng.choice(p.link_dirs)
        base = posixpath.basename(target)
        name = base if rng.random() < 0.5 else p.file_name()
        name = p._unique(d, name)
        hard.append((target, posixpath.join(d, name)))

    syms = []
    for i in range(n_sym):
        d = rng.choice(p.link_dirs)
        r = rng.random()
        if i == 0:
            target = "../this-target-does-not-exist"
            name = "broken-link"
        elif i == 1:
            target = "/nonexistent/dtui-bench/dangling"
            name = "dangling-abs"
        elif r < 0.25:
            td = rng.choice(p.link_dirs)
            while td == d or d.startswith(td + "/"):  # avoid loops to ancestors
                td = rng.choice(p.link_dirs)
            target = posixpath.relpath(td, d)
            name = posixpath.basename(td) if rng.random() < 0.5 else p.dir_name()
        else:
            tf = p.files[rng.choice(p.link_files)][0]
            target = posixpath.relpath(tf, d)
            name = posixpath.basename(tf) if rng.random() < 0.4 else p.file_name()
        name = p._unique(d, name)
        syms.append((target, posixpath.join(d, name)))
    return hard, syms


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

_DATA = None


def _init_worker(data):
    global _DATA
    _DATA = data


def _write_files(args):
    dest, files = args
    os.chdir(dest)
    data = _DATA
    small = memoryview(data)[: 16 * KIB + 1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    written = 0
    for path, size, kind in files:
        fd = os.open(path, flags, 0o644)
        try:
            if kind == 0:
                if size:
                    os.write(fd, small[:size])
                    written += size
            elif kind == 1:
                # sparse-ish: small written head (sometimes none), rest is a hole
                head = size % 7 == 0 and min(size, 512) or 0
                if head:
                    os.write(fd, small[:head])
                    written += head
                os.ftruncate(fd, size)
            elif kind == 2:
                left = size
                mv = memoryview(data)
                while left:
                    n = os.write(fd, mv[: min(left, len(data))])
                    left -= n
                written += size
            else:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)
    return written


def execute(dest, p, hard, syms, jobs, rng):
    os.makedirs(dest, exist_ok=True)
    os.chdir(dest)
    for d in p.dirs:
        os.mkdir(d)
    # 1 MiB of pseudo-random (non-compressible) data, deterministic.
    data = rng.randbytes(MIB)
    # Split the files between workers by parent directory (balanced greedily),
    # so the order in which entries are added to each directory -- and hence
    # e.g. ext4 directory sizes -- does not depend on --jobs.
    groups = {}
    for f in p.files:
        groups.setdefault(posixpath.dirname(f[0]), []).append(f)
    chunks = [[] for _ in range(jobs)]
    for g in sorted(groups.values(), key=len, reverse=True):
        min(chunks, key=len).extend(g)
    if jobs > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(data,)) as pool:
            written = sum(pool.map(_write_files, [(dest, c) for c in chunks]))
    else:
        _init_worker(data)
        written = _write_files((dest, chunks[0]))
    for target, path in hard:
        os.link(target, path)
    for target, path in syms:
        os.symlink(target, path)
    return written


def read_marker(dest):
    try:
        with open(os.path.join(dest, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def print_counts(c):
    print("dirs:      %d" % c["dirs"])
    print("files:     %d  (regular files = unique inodes, incl. %s marker)" % (c["files"], MARKER))
    print("symlinks:  %d  (incl. %d dangling)" % (c["symlinks"], c["dangling"]))
    print("hardlinks: %d  (extra names for existing files)" % c["hardlinks"])
    print("entries:   %d  (dirs + files + hardlinks + symlinks, excluding DEST)" % c["entries"])
    print("bytes:     %d apparent (%.1f MiB), %d written as data (%.1f MiB)" % (
        c["bytes_apparent"], c["bytes_apparent"] / MIB, c["bytes_written"], c["bytes_written"] / MIB))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--entries", type=int, default=500000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                    help="parallel file writers (does not affect the result)")
    ap.add_argument("--force", action="store_true",
                    help="wipe a non-empty DEST that has no %s marker" % MARKER)
    a = ap.parse_args()
    if a.entries < 1000:
        ap.error("--entries must be >= 1000")
    dest = os.path.abspath(a.dest)
    params = {"version": GEN_VERSION, "entries": a.entries, "seed": a.seed}

    if os.path.isdir(dest):
        m = read_marker(dest)
        if m is not None and m.get("params") == params:
            print("%s: already generated with %s, skipping" % (dest, json.dumps(params)))
            print_counts(m["counts"])
            return 0
        if os.listdir(dest):
            if m is None and not a.force:
                sys.exit("%s exists, is not empty and has no %s marker; "
                         "refusing to wipe it (use --force)" % (dest, MARKER))
            print("%s: removing old tree (%s)" % (
                dest, "params %s" % json.dumps(m.get("params")) if m else "--force"))
            shutil.rmtree(dest)
    elif os.path.exists(dest):
        sys.exit("%s exists and is not a directory" % dest)

    t0 = time.monotonic()
    rng = random.Random(a.seed)
    n = a.entries
    n_sym = round(n * 0.03)
    n_hard = round(n * 0.01)
    budget = n - 1 - n_sym - n_hard  # -1: the marker file
    scale = n / 500000.0
    p = Planner(rng, budget)
    tops = plan_skeleton(p)
    plan_large(p, tops)
    plan_big_dirs(p, tops, scale)
    plan_deep_chains(p, tops, scale)
    plan_node_modules(p, tops, int(budget * 0.28))
    plan_empty_dirs(p, tops, max(3, n // 10000))
    plan_general(p, tops)
    assert p.remaining == 0, p.remaining
    hard, syms = plan_links(p, n_hard, n_sym)
    t_plan = time.monotonic() - t0
    print("planned %d entries in %.1fs, writing to %s ..." % (n, t_plan, dest), flush=True)

    written = execute(dest, p, hard, syms, max(1, a.jobs), rng)
    apparent = sum(f[1] for f in p.files)
    counts = {
        "dirs": len(p.dirs),
        "files": len(p.files) + 1,
        "symlinks": len(syms),
        "dangling": 2,
        "hardlinks": len(hard),
        "entries": len(p.dirs) + len(p.files) + 1 + len(syms) + len(hard),
        "bytes_apparent": apparent,
        "bytes_written": written,
    }
    assert counts["entries"] == n, counts
    elapsed = time.monotonic() - t0
    with open(os.path.join(dest, MARKER), "w") as f:
        json.dump({"params": params, "counts": counts, "seconds": round(elapsed, 1)}, f)
    print("generated %s in %.1fs" % (dest, elapsed))
    print_counts(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
