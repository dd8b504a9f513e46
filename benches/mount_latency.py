# Mount/unmount -> applied batch latency of `dtui watch` (issue 21 goal 2). Run as root, in a
# private mount namespace (its mounts never reach the machine):
#   unshare -m --propagation private python3 benches/mount_latency.py target/debug/dtui inotify 20
import os, subprocess, sys, tempfile, time, statistics, select
dtui, backend, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = tempfile.mkdtemp(prefix="dtui-mount-lat-", dir="/tmp")
root = os.path.join(base, "root")
os.makedirs(os.path.join(root, "m"))
open(os.path.join(root, "m", "hidden"), "wb").write(b"x" * 5000)
p = subprocess.Popen([dtui, "watch", "--no-cache", "--watch-backend", backend, root],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
buf = b""
def line(deadline):
    global buf
    while b"\n" not in buf:
        r, _, _ = select.select([p.stdout], [], [], max(0, deadline - time.time()))
        if not r:
            raise SystemExit("timeout")
        buf += os.read(p.stdout.fileno(), 65536)
    l, buf = buf.split(b"\n", 1)
    return l.decode(errors="replace")
import atexit
import shutil
atexit.register(lambda: (p.terminate(), p.wait(), subprocess.run(["umount", "-q", m]),
                         shutil.rmtree(base, ignore_errors=True)))
m = os.path.join(root, "m")
while not line(time.time() + 30).startswith("tree:"):
    pass
res = {"mount": [], "umount": []}
m = os.path.join(root, "m")
for i in range(rounds):
    for what, cmd in (("mount", ["mount", "-t", "tmpfs", "none", m]), ("umount", ["umount", m])):
        t0 = time.time()
        subprocess.run(cmd, check=True)
        while True:
            l = line(t0 + 10)
            if l.startswith("batch") and (l.endswith(" m") or " m  " in l):
                res[what].append((time.time() - t0) * 1000)
                break
for k, v in res.items():
    print(f"{backend} {k}: n={len(v)} median {statistics.median(v):.0f} ms, max {max(v):.0f} ms")
