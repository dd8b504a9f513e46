#!/usr/bin/env python3
"""CPU per live change against tree size, A/B: alternates bench builds for N rounds on one
ext4 image (loop-mounted in a private namespace) and prints, per build and phase, the medians
of us/change at 10k and 500k entries and of each round's own 500k/10k ratio.

  sudo python3 benches/cpu_ab.py ROUNDS LIVE_BENCH_EXE [LIVE_BENCH_EXE...]

An exe is a built `benches/live.rs` (`cargo bench --bench live --no-run`, then copy
target/release/deps/live-* away per build). The image must hold the trees: run
`DTUI_LIVEBENCH_IMG=$IMG sh benches/live.sh --only cpu --sizes 10000,500000` once (IMG and its
mount point: $DTUI_AB_IMG, $DTUI_AB_MNT; default /tmp/dtui-livebench.img and -fs).
"""
import collections
import os
import re
import statistics
import subprocess
import sys

IMG = os.environ.get("DTUI_AB_IMG", "/tmp/dtui-livebench.img")
MNT = os.environ.get("DTUI_AB_MNT", "/tmp/dtui-livebench-fs")
rounds = int(sys.argv[1]); exes = sys.argv[2:]
res = collections.defaultdict(list)  # (exe, size, phase) -> [us]
parts = collections.defaultdict(list)
for r in range(rounds):
    for exe in exes:
        out = subprocess.run(['unshare','-m','--propagation','private','sh','-c',
            'mount -o loop "$1" "$2" && shift 2 && exec "$@"', 'sh', IMG, MNT,
            exe,'--base',MNT,'--only','cpu','--sizes','10000,500000','--changes','1000'],
            capture_output=True, text=True).stdout
        for m in re.finditer(r'^(\d+) (create|grow|remove): .*?= ([\d.]+) us/change \[engine ([\d.]+), store ([\d.]+), watcher ([\d.]+)', out, re.M):
            size, ph = m.group(1), m.group(2)
            res[(exe,size,ph)].append(float(m.group(3)))
            parts[(exe,size,ph)].append(tuple(float(m.group(i)) for i in (4,5,6)))
        print(f"round {r} {exe} done", file=sys.stderr, flush=True)
for exe in exes:
    print(f"\n{exe}")
    for ph in ('create','grow','remove'):
        a = res[(exe,'10000',ph)]; b = res[(exe,'500000',ph)]
        ratios = [y/x for x,y in zip(a,b)]
        med = lambda v: statistics.median(v) if v else float('nan')
        pa = [med([p[i] for p in parts[(exe,'10000',ph)]]) for i in range(3)]
        pb = [med([p[i] for p in parts[(exe,'500000',ph)]]) for i in range(3)]
        print(f"  {ph:7s} 10k {med(a):6.1f} us  500k {med(b):6.1f} us  ratio median {med(ratios):.2f} (each: {', '.join(f'{x:.2f}' for x in ratios)})  [e/s/w 10k {pa[0]:.1f}/{pa[1]:.1f}/{pa[2]:.1f}, 500k {pb[0]:.1f}/{pb[1]:.1f}/{pb[2]:.1f}]")
