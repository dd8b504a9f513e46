//! The live engine's benchmarks, in-process through the real `Engine` (cache dir included, so
//! every batch's SQLite transaction is paid) with a real watch backend, while another process
//! (this binary re-run as `--producer`, so its syscalls are not counted as ours and fanotify
//! does not drop its events as our own) changes the tree:
//! 1. `cpu`: CPU per applied change (10,000 files created, then grown, then removed, spread
//!    over 500 random directories) in trees of 10k, 100k and 1M entries;
//! 2. `grow`: one file growing (appends) in a 100,000-entry directory: per-batch apply time
//!    (`TreeDelta::elapsed`) and CPU per batch;
//! 3. `mv`: the rename of a directory holding 100,000 entries (and of a 100,000-entry nested
//!    tree) inside the root: time to apply, and that it was applied as a move;
//! 4. `rate`: sustained applied events per second with no loss, 1, 2 and 4 producer threads;
//! 5. `soak`: RSS and arena sizes over a million events of create/delete cycles;
//! 6. `foreign`: the watcher's CPU for events outside the root on the same filesystem (other
//!    processes' file creations, unlinks, appends to a log at 2,000/s and directory renames),
//!    which a filesystem mark also reports.
//! 7. `links`: `cp -al` of a directory of `--changes` files (a backup snapshot) inside trees
//!    of each `--sizes`, a write through every new name, then the snapshot removed: CPU per
//!    linked file (flat in the tree's size: O(files linked)), and the inode fingerprints'
//!    memory per entry.
//!
//! CPU is the process's (`getrusage(RUSAGE_SELF)`, producer excluded) over each phase, with a
//! per-thread split from `/proc/self/task/*/schedstat` (engine, store, watcher, other).
//!
//! `cargo bench --bench live -- [--backend fanotify|fanotify-mount|notify] [--base DIR]
//! [--only cpu,grow,mv,rate,soak,foreign,links] [--sizes 10000,100000,1000000] [--soak-events N]
//! [--threads 1,2,4]` (as root for fanotify). Trees are generated under `--base`
//! (default `/tmp/dtui-livebench`) with `benches/gen_tree.py` when missing, and kept.

#[path = "support/mod.rs"]
mod support;
use support::gen_tree;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use disktracker::cache::CacheOptions;
use disktracker::engine::{ChangeKind, Engine, EngineMsg, EngineOptions};
use disktracker::scan::ScanOptions;
use disktracker::tree::{self, Kind, NodeId, Tree, flags};
use disktracker::watch::Choice;

const FILE_BYTES: usize = 4096;

// ---------------------------------------------------------------------------------------------
// CPU, memory

/// CPU time of this process so far (all threads, those that ended included).
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own; the result is checked.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) };
    assert_eq!(
        rc, 0,
        "getrusage(RUSAGE_SELF) cannot fail with valid arguments"
    );
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU nanoseconds per thread group (engine, store, watcher, other), from `schedstat`.
fn thread_cpu() -> BTreeMap<&'static str, u64> {
    let mut by = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let comm = comm.trim();
        let group = if comm == "dtui-engine" {
            "engine"
        } else if comm == "dtui-store" {
            "store"
        } else if comm.starts_with("dtui-fanotify")
            || comm.starts_with("notify-rs")
            || comm.starts_with("dtui-notify")
        {
            "watcher"
        } else {
            "other"
        };
        *by.entry(group).or_insert(0) += ns;
    }
    by
}

#[derive(Clone)]
struct CpuMark {
    total: Duration,
    threads: BTreeMap<&'static str, u64>,
}

impl CpuMark {
    fn now() -> CpuMark {
        CpuMark {
            total: process_cpu(),
            threads: thread_cpu(),
        }
    }

    /// (process CPU, engine, store, watcher) since `self`.
    fn since(&self) -> CpuSpent {
        let now = CpuMark::now();
        let d = |k: &str| {
            let a = now.threads.get(k).copied().unwrap_or(0);
            let b = self.threads.get(k).copied().unwrap_or(0);
            Duration::from_nanos(a.saturating_sub(b))
        };
        CpuSpent {
            total: now.total.saturating_sub(self.total),
            engine: d("engine"),
            store: d("store"),
            watcher: d("watcher"),
            other: d("other"),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct CpuSpent {
    total: Duration,
    engine: Duration,
    store: Duration,
    watcher: Duration,
    /// Every other thread: the benchmark's own (draining, reading `/proc`) among them.
    other: Duration,
}

/// Waits until everything but the watcher is idle (its CPU moves less than 2 ms in 250 ms, four
/// times in a row): the store's transactions run behind the engine's `Applied`, and the first
/// snapshot after a scan is copied and written by other threads. The watcher is left out: on a
/// shared filesystem it also sees (and drops) other processes' events.
fn settle() {
    let busy = || {
        let t = thread_cpu();
        t.iter()
            .filter(|(k, _)| **k != "watcher")
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    let end = Instant::now() + Duration::from_secs(300);
    let mut calm = 0;
    let mut last = busy();
    while calm < 4 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        let now = busy();
        calm = if now.saturating_sub(last) < 2_000_000 {
            calm + 1
        } else {
            0
        };
        last = now;
    }
}

/// (VmRSS, RssAnon, RssFile) in KiB.
fn rss() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("RssAnon:"), get("RssFile:"))
}

// ---------------------------------------------------------------------------------------------
// The producer: this binary re-run, taking one command per line and answering `ok SECONDS`.

fn producer_main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> u64 { w[i].parse().expect("a number in the command") };
        let t0 = Instant::now();
        match w.first().copied() {
            Some("create" | "grow") => {
                let dirs = read_dirs(Path::new(w[3]));
                let buf = vec![b'x'; num(2) as usize];
                for i in 0..num(1) as usize {
                    let p = dirs[i % dirs.len()].join(format!("dtui-live-{i}"));
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .expect("producer: open");
                    f.write_all(&buf).expect("producer: write");
                }
            }
            Some("remove") => {
                let dirs = read_dirs(Path::new(w[2]));
                for i in 0..num(1) as usize {
                    let p = dirs[i % dirs.len()].join(format!("dtui-live-{i}"));
                    std::fs::remove_file(&p).expect("producer: unlink");
                }
            }
            Some("append") => {
                let buf = vec![b'y'; num(4) as usize];
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(w[1])
                    .expect("producer: open for append");
                let every = Duration::from_micros(num(3));
                for k in 0..num(2) {
                    f.write_all(&buf).expect("producer: append");
                    pace(t0, every * k as u32 + every);
                }
            }
            Some("rename") => std::fs::rename(w[1], w[2]).expect("producer: rename"),
            Some("dirmv") => {
                // A new name each time: the kernel merges an event identical to one still
                // queued, so x -> y -> x -> y would be mostly merged away.
                let d = Path::new(w[1]);
                for k in 0..num(2) {
                    std::fs::rename(d.join(format!("x{k}")), d.join(format!("x{}", k + 1)))
                        .expect("producer: rename a directory");
                }
            }
            Some("flood") => flood(num(1) as usize, num(2) as usize, Path::new(w[3])),
            Some("unflood") => {
                // What `flood` made, removed in the same order (a delete event each).
                for t in 0..num(1) {
                    let d = Path::new(w[3]).join(format!("t{t}"));
                    for i in 0..num(2) {
                        std::fs::remove_file(d.join(format!("f{i}"))).expect("producer: unlink");
                    }
                }
            }
            Some("soak") => soak(num(1), num(2), num(3), &read_dirs(Path::new(w[4]))),
            Some("cplinks") => {
                let ok = Command::new("cp")
                    .args(["-al", w[1], w[2]])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "producer: cp -al {} {}", w[1], w[2]);
            }
            Some("appendall") => {
                // One append through each name of `dir` (in name order).
                let buf = vec![b'z'; num(2) as usize];
                let mut names: Vec<PathBuf> = std::fs::read_dir(w[1])
                    .expect("producer: list")
                    .map(|e| e.expect("producer: list").path())
                    .collect();
                names.sort();
                for p in names {
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&p)
                        .expect("producer: open for append");
                    f.write_all(&buf).expect("producer: append");
                }
            }
            Some("rmtree") => std::fs::remove_dir_all(w[1]).expect("producer: rm -r"),
            _ => break,
        }
        let _ = writeln!(out, "ok {}", t0.elapsed().as_secs_f64());
        let _ = out.flush();
    }
}

fn pace(t0: Instant, at: Duration) {
    std::thread::sleep(at.saturating_sub(t0.elapsed()));
}

fn read_dirs(file: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(file)
        .expect("producer: the directory list")
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// `threads` threads each create `per_thread` empty files in `dir/tK` (open O_CREAT, close:
/// a create and a close-write event each) as fast as they can.
fn flood(threads: usize, per_thread: usize, dir: &Path) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let d = dir.join(format!("t{t}"));
                for i in 0..per_thread {
                    std::fs::File::create(d.join(format!("f{i}"))).expect("producer: create");
                }
            });
        }
    });
}

/// Create/delete cycles: file `i` is created, file `i - window` removed, at `rate` cycles/s;
/// what is left is removed at the end.
fn soak(cycles: u64, window: u64, rate: u64, dirs: &[PathBuf]) {
    let t0 = Instant::now();
    let name = |i: u64| dirs[i as usize % dirs.len()].join(format!("soak-{i}"));
    for i in 0..cycles {
        std::fs::File::create(name(i)).expect("producer: create");
        if i >= window {
            std::fs::remove_file(name(i - window)).expect("producer: unlink");
        }
        if i % 64 == 0 {
            pace(t0, Duration::from_secs_f64(i as f64 / rate as f64));
        }
    }
    for i in cycles.saturating_sub(window)..cycles {
        std::fs::remove_file(name(i)).expect("producer: unlink");
    }
}

struct Producer {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Producer {
    fn spawn() -> Producer {
        let exe = std::env::current_exe().expect("the bench binary's own path");
        let mut child = Command::new(exe)
            .arg("--producer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the producer");
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        Producer {
            child,
            input,
            output,
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.input, "{cmd}").expect("producer: command");
        self.input.flush().expect("producer: command");
    }

    /// Its answer to the last command: how long it took (seconds).
    fn done(&mut self) -> f64 {
        let mut line = String::new();
        self.output.read_line(&mut line).expect("producer: answer");
        line.trim()
            .strip_prefix("ok ")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("producer failed: {line:?}"))
    }

    fn run(&mut self, cmd: &str) -> f64 {
        self.send(cmd);
        self.done()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The engine side

struct Live {
    engine: Engine,
    rx: Receiver<EngineMsg>,
}

/// What the `Applied` messages of one phase said.
#[derive(Default, Debug)]
struct Seen {
    batches: u64,
    events: u64,
    elapsed: Vec<Duration>,
    stale: Vec<String>,
    failed: Vec<String>,
    moved: u64,
    added: u64,
    removed: u64,
    changed: u64,
    verified: u64,
    last: Option<Instant>,
}

impl Seen {
    fn take(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Applied(d) => {
                self.last = Some(Instant::now());
                self.batches += 1;
                self.events += d.events;
                self.elapsed.push(d.elapsed);
                for l in &d.lines {
                    match l.kind {
                        ChangeKind::Moved => self.moved += 1,
                        ChangeKind::Added => self.added += 1,
                        ChangeKind::Removed => self.removed += 1,
                        ChangeKind::Changed => self.changed += 1,
                        ChangeKind::Verified => self.verified += 1,
                    }
                }
            }
            EngineMsg::Stale(why) => self.stale.push(why),
            EngineMsg::Failed(why) => self.failed.push(why),
            _ => {}
        }
    }

    fn apply_total(&self) -> Duration {
        self.elapsed.iter().sum()
    }

    fn no_loss(&self) -> bool {
        self.stale.is_empty() && self.failed.is_empty()
    }
}

impl Live {
    fn start(root: &Path, cache: &Path, choice: Choice) -> Live {
        let mut opts = EngineOptions::new(
            CacheOptions {
                dir: Some(cache.to_path_buf()),
                disabled: false,
            },
            ScanOptions::default(),
        );
        opts.watch = Some(choice);
        opts.watch_required = true;
        let (tx, rx) = crossbeam_channel::unbounded();
        let engine = Engine::start(root, opts, tx).expect("the engine starts");
        let live = Live { engine, rx };
        let mut seen = Seen::default();
        let end = Instant::now() + Duration::from_secs(900);
        loop {
            match live.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(EngineMsg::Ready) => break,
                Ok(m) => seen.take(m),
                Err(_) => assert!(Instant::now() < end, "the first pass did not end"),
            }
        }
        assert!(
            seen.failed.is_empty(),
            "first pass failed: {:?}",
            seen.failed
        );
        settle();
        // Batches of the first pass (if any) are not part of what is measured.
        while live.rx.try_recv().is_ok() {}
        live
    }

    fn tree(&self) -> std::sync::RwLockReadGuard<'_, Tree> {
        tree::read(&self.engine.tree)
    }

    /// Takes messages until `done(tree)` holds (checked after each, and every 100 ms), or
    /// `limit` passes.
    fn until(&self, seen: &mut Seen, limit: Duration, done: impl Fn(&Tree) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if done(&self.tree()) {
                return true;
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => seen.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
            if Instant::now() > end {
                return done(&self.tree());
            }
        }
    }

    /// Takes what arrives until nothing has for `quiet`.
    fn drain(&self, seen: &mut Seen, quiet: Duration) {
        while let Ok(m) = self.rx.recv_timeout(quiet) {
            seen.take(m);
        }
    }

    fn node_at(&self, rel: &Path) -> Option<NodeId> {
        let t = self.tree();
        t.lookup(&t.root_path().join(rel))
    }
}

/// A small deterministic generator (splitmix64) for picking directories.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `count` random scanned directories of the tree (the root excluded), written one per line.
fn pick_dirs(t: &Tree, count: usize, seed: u64, file: &Path) -> usize {
    let unscanned = flags::NOT_CHARGED | flags::READ_ERROR | flags::FREE;
    let root = t.root();
    let dirs: Vec<NodeId> = (0..t.arena().nodes().len() as u32)
        .map(NodeId)
        .filter(|&id| {
            id != root && t.is_live(id) && t.kind(id) == Kind::Dir && t.flags(id) & unscanned == 0
        })
        .collect();
    let mut rng = Rng(seed);
    let mut chosen = Vec::with_capacity(count);
    for _ in 0..count.min(dirs.len()) {
        chosen.push(dirs[(rng.next() % dirs.len() as u64) as usize]);
    }
    chosen.sort_unstable();
    chosen.dedup();
    let mut text = String::new();
    for &d in &chosen {
        let _ = writeln!(text, "{}", t.path_of(d).display());
    }
    std::fs::write(file, text).expect("write the directory list");
    chosen.len()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A directory of `n` empty files (`f000000`..), made once.
fn flat_dir(dir: &Path, n: usize) {
    let marker = dir.join(format!(".flat-{n}"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the flat directory");
    for i in 0..n - 1 {
        std::fs::File::create(dir.join(format!("f{i:06}"))).expect("create a flat file");
    }
    std::fs::File::create(marker).expect("create the marker");
}

fn fresh_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create a fresh directory");
}

// ---------------------------------------------------------------------------------------------
// The benchmarks

struct Args {
    choice: Choice,
    backend: String,
    base: PathBuf,
    only: Vec<String>,
    sizes: Vec<u64>,
    soak_events: u64,
    threads: Vec<usize>,
    /// Changes per phase of `cpu` (`--changes N`).
    changes: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        choice: Choice::Fanotify,
        backend: "fanotify".into(),
        base: PathBuf::from("/tmp/dtui-livebench"),
        only: ["cpu", "grow", "mv", "rate", "soak"]
            .map(String::from)
            .to_vec(),
        sizes: vec![10_000, 100_000, 1_000_000],
        soak_events: 1_000_000,
        threads: vec![1, 2, 4],
        changes: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        let list = |v: String| -> Vec<u64> {
            v.split(',')
                .map(|s| s.trim().parse().expect("a list of numbers"))
                .collect()
        };
        match arg.as_str() {
            "--backend" => {
                a.backend = value();
                a.choice = a.backend.parse().expect("--backend fanotify|notify|...");
            }
            "--base" => a.base = PathBuf::from(value()),
            "--only" => a.only = value().split(',').map(String::from).collect(),
            "--sizes" => a.sizes = list(value()),
            "--soak-events" => a.soak_events = value().parse().expect("--soak-events N"),
            "--threads" => a.threads = list(value()).into_iter().map(|t| t as usize).collect(),
            "--changes" => a.changes = value().parse().expect("--changes N"),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    a
}

/// What the run found: raw lines and the summary table's rows.
#[derive(Default)]
struct Report {
    raw: String,
    rows: Vec<[String; 4]>,
}

impl Report {
    fn say(&mut self, line: &str) {
        println!("{line}");
        self.raw.push_str(line);
        self.raw.push('\n');
    }

    fn row(&mut self, what: String, value: String, target: &str, cmd: String) {
        self.rows.push([what, value, target.to_string(), cmd]);
    }
}

fn us(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// 1. CPU per applied change.
#[expect(
    clippy::too_many_lines,
    reason = "one measurement per tree size: start, three phases, report"
)]
fn bench_cpu(a: &Args, r: &mut Report) {
    let changes = a.changes;
    for &size in &a.sizes {
        let root = a.base.join(format!("tree-{size}"));
        gen_tree(&root, size);
        let cache = a.base.join(format!("cache-{}-{size}", a.backend));
        let t0 = Instant::now();
        let live = Live::start(&root, &cache, a.choice);
        let entries = live.tree().len();
        r.say(&format!(
            "\n## cpu: {} ({entries} entries, ready and settled in {:.1} s, {}, watching {:?})",
            root.display(),
            t0.elapsed().as_secs_f64(),
            live.engine.origin,
            live.engine.watching
        ));
        let list = a.base.join(format!("dirs-{size}.txt"));
        let ndirs = pick_dirs(&live.tree(), 500, size, &list);
        let (len0, app0) = {
            let t = live.tree();
            (t.len(), t.totals(t.root()).apparent)
        };
        // Directories grow on disk as names are added (their own size counts in the totals):
        // what the root should show is computed from them as they are after each phase.
        let dirs: Vec<PathBuf> = read_dirs(&list);
        let dir_bytes = |dirs: &[PathBuf]| -> u64 {
            dirs.iter()
                .map(|d| std::fs::symlink_metadata(d).map_or(0, |m| m.len()))
                .sum()
        };
        let dirs0 = dir_bytes(&dirs);
        let mut p = Producer::spawn();
        let file_bytes = changes * FILE_BYTES as u64;
        let phases = [
            (
                "create",
                format!("create {changes} {FILE_BYTES} {}", list.display()),
                changes,
                file_bytes,
            ),
            (
                "grow",
                format!("grow {changes} {FILE_BYTES} {}", list.display()),
                changes,
                2 * file_bytes,
            ),
            (
                "remove",
                format!("remove {changes} {}", list.display()),
                0,
                0,
            ),
        ];
        for (name, cmd, added, bytes) in phases {
            let mark = CpuMark::now();
            let w0 = Instant::now();
            let produced = p.run(&cmd);
            // (500 lstat calls, about a millisecond: inside the measured window.)
            let want_app = app0 + bytes + dir_bytes(&dirs) - dirs0;
            let mut seen = Seen::default();
            let ok = live.until(&mut seen, Duration::from_secs(120), |t| {
                t.len() == len0 + added && t.totals(t.root()).apparent == want_app
            });
            settle();
            live.drain(&mut seen, Duration::from_millis(10));
            // (The tree can be seen changed before its `Applied` arrives: read after draining.)
            let applied_at = seen.last.map_or(0.0, |l| (l - w0).as_secs_f64());
            let cpu = mark.since();
            r.say(&format!(
                "{size} {name}: {changes} changes in {ndirs} dirs, producer {produced:.3} s, \
                 last Applied received at {applied_at:.3} s, {} batches, {} events, apply (engine, \
                 TreeDelta::elapsed) {:.1} ms; CPU process {:.1} ms = {:.1} us/change \
                 [engine {:.1}, store {:.1}, watcher {:.1} us/change]; equal: {ok}; stale: {:?}",
                seen.batches,
                seen.events,
                ms(seen.apply_total()),
                ms(cpu.total),
                us(cpu.total, changes),
                us(cpu.engine, changes),
                us(cpu.store, changes),
                us(cpu.watcher, changes),
                seen.stale
            ));
            r.row(
                format!(
                    "CPU per change, {name}, {} entries ({} batches)",
                    group(size),
                    seen.batches
                ),
                format!(
                    "{:.1} µs (engine {:.1} + store {:.1} + watcher {:.1}){}",
                    us(cpu.total, changes),
                    us(cpu.engine, changes),
                    us(cpu.store, changes),
                    us(cpu.watcher, changes),
                    if ok && seen.no_loss() {
                        ""
                    } else {
                        " NOT EQUAL/LOSS"
                    }
                ),
                "≤ 200 µs at 1M, flat",
                format!(
                    "`cargo bench --bench live -- --backend {} --only cpu --sizes {size}`",
                    a.backend
                ),
            );
        }
        drop(p);
        let _ = live.engine.shutdown();
    }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The root for `grow` and `mv`: `flat/` (100,000 entries), `nested/` (a generated 100,000
/// entry tree) and `a/` (where they move to and back).
fn big_root(a: &Args) -> PathBuf {
    let root = a.base.join("big");
    flat_dir(&root.join("flat"), 100_000);
    gen_tree(&root.join("nested"), 100_000);
    std::fs::create_dir_all(root.join("a")).expect("create big/a");
    // Left over from an interrupted run.
    for d in ["flat", "nested"] {
        if root.join("a").join(d).exists() {
            std::fs::rename(root.join("a").join(d), root.join(d)).expect("move back");
        }
    }
    root
}

/// 2. One file growing in a 100,000-entry directory.
fn bench_grow(a: &Args, r: &mut Report) {
    let root = big_root(a);
    let live = Live::start(
        &root,
        &a.base.join(format!("cache-{}-big", a.backend)),
        a.choice,
    );
    r.say(&format!(
        "\n## grow: {} ({} entries)",
        root.display(),
        live.tree().len()
    ));
    let file = root.join("flat/f000000");
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file);
    live.drain(&mut Seen::default(), Duration::from_millis(300));
    settle();
    let mut p = Producer::spawn();
    // Continuous appends (a batch at the 1 s maximum delay), then spaced ones (a batch each).
    for (count, every_us) in [(2_500u64, 2_000u64), (20, 150_000)] {
        let mark = CpuMark::now();
        let produced = p.run(&format!(
            "append {} {count} {every_us} {FILE_BYTES}",
            file.display()
        ));
        let mut seen = Seen::default();
        let want = std::fs::metadata(&file).map_or(0, |m| m.len());
        let id = live
            .node_at(Path::new("flat/f000000"))
            .expect("the file is in the tree");
        let ok = live.until(&mut seen, Duration::from_secs(30), |t| {
            t.own(id).apparent == want
        });
        settle();
        live.drain(&mut seen, Duration::from_millis(10));
        let cpu = mark.since();
        let max = seen.elapsed.iter().max().copied().unwrap_or_default();
        let med = median(&mut seen.elapsed);
        let label = format!("{count} appends every {} ms", every_us as f64 / 1e3);
        r.say(&format!(
            "grow, {label}: producer {produced:.2} s, {} batches, {} events, apply per batch \
             median {:.3} ms max {:.3} ms; CPU per batch {:.3} ms [engine {:.3}, store {:.3}, \
             watcher {:.3}]; size equal: {ok}; stale {:?}",
            seen.batches,
            seen.events,
            ms(med),
            ms(max),
            ms(cpu.total) / seen.batches.max(1) as f64,
            ms(cpu.engine) / seen.batches.max(1) as f64,
            ms(cpu.store) / seen.batches.max(1) as f64,
            ms(cpu.watcher) / seen.batches.max(1) as f64,
            seen.stale
        ));
        r.row(
            format!(
                "one file growing in a 100,000-entry dir ({label}, {} batches)",
                seen.batches
            ),
            format!(
                "apply {:.3} ms/batch (median, max {:.3}); CPU {:.3} ms/batch",
                ms(med),
                ms(max),
                ms(cpu.total) / seen.batches.max(1) as f64
            ),
            "O(1): flat in the dir size",
            format!(
                "`cargo bench --bench live -- --backend {} --only grow`",
                a.backend
            ),
        );
    }
    drop(p);
    let _ = live.engine.shutdown();
}

/// 3. The rename of a directory holding 100,000 entries.
fn bench_mv(a: &Args, r: &mut Report) {
    let root = big_root(a);
    let live = Live::start(
        &root,
        &a.base.join(format!("cache-{}-big", a.backend)),
        a.choice,
    );
    let entries = live.tree().len();
    r.say(&format!("\n## mv: {} ({entries} entries)", root.display()));
    let mut p = Producer::spawn();
    for d in ["flat", "nested"] {
        let id = live.node_at(Path::new(d)).expect("in the tree");
        let items = live.tree().totals(id).items;
        let mut applied = Vec::new();
        let mut all_moves = true;
        for rep in 0..6 {
            let (from, to) = if rep % 2 == 0 {
                (root.join(d), root.join("a").join(d))
            } else {
                (root.join("a").join(d), root.join(d))
            };
            let mark = CpuMark::now();
            let w0 = Instant::now();
            p.run(&format!("rename {} {}", from.display(), to.display()));
            let mut seen = Seen::default();
            let ok = live.until(&mut seen, Duration::from_secs(60), |t| {
                t.lookup(&to) == Some(id)
            });
            let wall = seen.last.map_or(Duration::ZERO, |l| l - w0);
            live.drain(&mut seen, Duration::from_millis(200));
            settle();
            let cpu = mark.since();
            let moved = seen.moved == 1 && seen.added == 0 && seen.removed == 0;
            all_moves &= moved && ok && entries == live.tree().len();
            applied.push(seen.apply_total());
            r.say(&format!(
                "mv {} -> {} ({items} entries below): apply {:.3} ms, event→applied {:.1} ms \
                 (75 ms quiet window included), CPU {:.2} ms [engine {:.2}, store {:.2}, \
                 watcher {:.2}], {} batches, lines moved {} added {} removed {} verified {}, \
                 same node id: {ok}, entries unchanged: {}",
                from.display(),
                to.display(),
                ms(seen.apply_total()),
                ms(wall),
                ms(cpu.total),
                ms(cpu.engine),
                ms(cpu.store),
                ms(cpu.watcher),
                seen.batches,
                seen.moved,
                seen.added,
                seen.removed,
                seen.verified,
                entries == live.tree().len()
            ));
        }
        let max = applied.iter().max().copied().unwrap_or_default();
        r.row(
            format!("`mv` of a directory holding {} entries ({d})", group(items)),
            format!(
                "{:.3} ms apply (median of 6, max {:.3}); {}",
                ms(median(&mut applied)),
                ms(max),
                if all_moves {
                    "applied as a move (ids kept)"
                } else {
                    "NOT a move"
                }
            ),
            "a few ms, a move",
            format!(
                "`cargo bench --bench live -- --backend {} --only mv`",
                a.backend
            ),
        );
    }
    drop(p);
    let _ = live.engine.shutdown();
}

/// 4. Sustained applied events per second, no loss.
fn bench_rate(a: &Args, r: &mut Report) {
    const FILES: usize = 100_000;
    for &threads in &a.threads {
        let root = a.base.join("rate");
        fresh_dir(&root);
        for t in 0..threads {
            std::fs::create_dir(root.join(format!("t{t}"))).expect("create a flood dir");
        }
        let cache = a.base.join(format!("cache-{}-rate", a.backend));
        let _ = std::fs::remove_dir_all(&cache);
        let live = Live::start(&root, &cache, a.choice);
        let len0 = live.tree().len();
        let per = FILES / threads;
        let total = (per * threads) as u64;
        let mut p = Producer::spawn();
        let mark = CpuMark::now();
        let w0 = Instant::now();
        let produced = p.run(&format!("flood {threads} {per} {}", root.display()));
        let mut seen = Seen::default();
        let ok = live.until(&mut seen, Duration::from_secs(300), |t| {
            t.len() == len0 + total
        });
        let span = seen.last.map_or(Duration::ZERO, |l| l - w0);
        live.drain(&mut seen, Duration::from_millis(300));
        settle();
        let cpu = mark.since();
        let eps = seen.events as f64 / span.as_secs_f64();
        let fps = total as f64 / span.as_secs_f64();
        let producer_eps = seen.events as f64 / produced;
        // The engine is done within a quiet window plus one batch's work of the producer: the
        // producer set the pace.
        let bound = if span.as_secs_f64() < produced * 1.15 + 0.3 {
            "producer-bound"
        } else {
            "engine-bound"
        };
        r.say(&format!(
            "\n## rate, {threads} producer threads: {total} files created (producer {produced:.2} \
             s = {producer_eps:.0} events/s), {} events in {} batches applied by {:.2} s: \
             {eps:.0} events/s, {fps:.0} files/s ({bound}); apply {:.0} ms; CPU {:.2} s \
             [engine {:.2}, store {:.2}, watcher {:.2}]; lines added {} verified (dir re-reads) \
             {}; equal: {ok}; stale {:?}; failed {:?}",
            seen.events,
            seen.batches,
            span.as_secs_f64(),
            ms(seen.apply_total()),
            cpu.total.as_secs_f64(),
            cpu.engine.as_secs_f64(),
            cpu.store.as_secs_f64(),
            cpu.watcher.as_secs_f64(),
            seen.added,
            seen.verified,
            seen.stale,
            seen.failed
        ));
        r.row(
            format!("sustained applied events/s, {threads} producer thread(s)"),
            format!(
                "{eps:.0} events/s ({fps:.0} files/s, {bound}; producer alone {producer_eps:.0}); {}",
                if ok && seen.no_loss() {
                    "no loss"
                } else {
                    "LOSS / not equal"
                }
            ),
            "≥ 50,000/s, no loss",
            format!(
                "`cargo bench --bench live -- --backend {} --only rate --threads {threads}`",
                a.backend
            ),
        );
        drop(p);
        let _ = live.engine.shutdown();
    }
}

/// 5. RSS over a soak of a million events.
#[expect(
    clippy::too_many_lines,
    reason = "one soak: start, produce, sample at each quarter, report"
)]
fn bench_soak(a: &Args, r: &mut Report) {
    let root = a.base.join("soak");
    fresh_dir(&root);
    for d in 0..100 {
        std::fs::create_dir(root.join(format!("s{d:02}"))).expect("create a soak dir");
    }
    let cache = a.base.join(format!("cache-{}-soak", a.backend));
    let _ = std::fs::remove_dir_all(&cache);
    let live = Live::start(&root, &cache, a.choice);
    let list = a.base.join("dirs-soak.txt");
    pick_dirs(&live.tree(), 1000, 7, &list);
    r.say(&format!(
        "\n## soak: {} ({} events wanted)",
        root.display(),
        a.soak_events
    ));
    let arena = |live: &Live| {
        let t = live.tree();
        let h = *t.arena().header();
        (h.names_len, h.node_count, h.live_nodes)
    };
    let sample = |r: &mut Report, live: &Live, events: u64, t0: Instant| {
        let (vm, anon, file) = rss();
        let (names, nodes, lives) = arena(live);
        r.say(&format!(
            "soak at {events} events ({:.1} s): VmRSS {vm} KiB (anon {anon}, file {file}), \
             names_len {names} B, node_count {nodes}, live {lives}",
            t0.elapsed().as_secs_f64()
        ));
        (vm, anon, names)
    };
    let t0 = Instant::now();
    let mut samples = vec![(0, sample(r, &live, 0, t0))];
    // Each cycle is a create, a close-write and a delete (fanotify); a few cycles spare.
    let cycles = a.soak_events / 3 + 20_000;
    let mut p = Producer::spawn();
    p.send(&format!("soak {cycles} 20000 6000 {}", list.display()));
    let mut seen = Seen::default();
    let mut next = a.soak_events / 4;
    let mut producer_done = None;
    while producer_done.is_none() || seen.events < a.soak_events {
        if let Ok(m) = live.rx.recv_timeout(Duration::from_millis(200)) {
            seen.take(m);
        }
        while seen.events >= next && next <= a.soak_events {
            samples.push((next, sample(r, &live, seen.events, t0)));
            next += a.soak_events / 4;
        }
        if producer_done.is_none() && t0.elapsed() > Duration::from_secs(5) {
            // The answer comes once all cycles are done; poll without blocking forever.
            if let Some(e) = poll_done(&mut p) {
                producer_done = Some(e);
            }
        }
        if producer_done.is_some()
            && seen
                .last
                .is_some_and(|l| l.elapsed() > Duration::from_secs(2))
        {
            break;
        }
    }
    live.drain(&mut seen, Duration::from_millis(500));
    settle();
    let end = sample(r, &live, seen.events, t0);
    let live_end = live.tree().len();
    r.say(&format!(
        "soak done: {} events in {} batches, lines added {} removed {} verified {}, stale {:?}, \
         entries at the end {live_end} (the root and 100 dirs: 101)",
        seen.events, seen.batches, seen.added, seen.removed, seen.verified, seen.stale
    ));
    let mut cells = String::new();
    for (at, (vm, _, names)) in &samples {
        let _ = write!(
            cells,
            "{}: {:.1} MiB ({} KiB names); ",
            group(*at),
            *vm as f64 / 1024.0,
            names / 1024
        );
    }
    let _ = write!(
        cells,
        "end: {:.1} MiB ({} KiB names){}",
        end.0 as f64 / 1024.0,
        end.2 / 1024,
        if seen.no_loss() {
            "; no loss"
        } else {
            "; LOSS"
        }
    );
    r.row(
        format!(
            "RSS over a soak of {} events (create/delete cycles)",
            group(a.soak_events)
        ),
        cells,
        "flat",
        format!(
            "`cargo bench --bench live -- --backend {} --only soak`",
            a.backend
        ),
    );
    drop(p);
    let _ = live.engine.shutdown();
}

/// 6. Events outside the root, on the same filesystem: what the watcher pays to drop them.
fn bench_foreign(a: &Args, r: &mut Report) {
    const FILES: u64 = 20_000;
    const APPENDS: u64 = 2_000;
    const RENAMES: u64 = 2_000;
    for &size in &a.sizes {
        let root = a.base.join(format!("tree-{size}"));
        gen_tree(&root, size);
        let outside = a.base.join("outside");
        fresh_dir(&outside);
        std::fs::create_dir_all(outside.join("t0")).expect("create outside/t0");
        std::fs::create_dir_all(outside.join("x0")).expect("create outside/x0");
        let log = outside.join("log");
        std::fs::write(&log, b"").expect("create outside/log");
        let live = Live::start(
            &root,
            &a.base.join(format!("cache-{}-{size}", a.backend)),
            a.choice,
        );
        r.say(&format!(
            "\n## foreign: root {} ({} entries)",
            root.display(),
            live.tree().len()
        ));
        let mut p = Producer::spawn();
        let out = outside.display();
        for (what, cmd, n) in [
            ("file creations", format!("flood 1 {FILES} {out}"), FILES),
            ("file unlinks", format!("unflood 1 {FILES} {out}"), FILES),
            (
                "appends to a log, 2,000/s",
                format!("append {} {APPENDS} 500 100", log.display()),
                APPENDS,
            ),
            (
                "directory renames",
                format!("dirmv {out} {RENAMES}"),
                RENAMES,
            ),
        ] {
            let mark = CpuMark::now();
            let produced = p.run(&cmd);
            std::thread::sleep(Duration::from_millis(300));
            let mut seen = Seen::default();
            // The watcher may still be reading: wait until it is idle too.
            let end = Instant::now() + Duration::from_secs(600);
            let mut last = thread_cpu().get("watcher").copied().unwrap_or(0);
            loop {
                live.drain(&mut seen, Duration::from_millis(250));
                let now = thread_cpu().get("watcher").copied().unwrap_or(0);
                if now - last < 5_000_000 || Instant::now() > end {
                    break;
                }
                last = now;
            }
            let cpu = mark.since();
            r.say(&format!(
                "foreign {what} ({n}, producer {produced:.2} s) with a {size}-entry root: \
                 watcher CPU {:.1} ms = {:.2} us each; process {:.1} ms = {:.2} us each \
                 (engine {:.1} ms, store {:.1} ms, other threads {:.1} ms: the benchmark's \
                 own among them); batches applied {}; stale {:?}",
                ms(cpu.watcher),
                us(cpu.watcher, n),
                ms(cpu.total),
                us(cpu.total, n),
                ms(cpu.engine),
                ms(cpu.store),
                ms(cpu.other),
                seen.batches,
                seen.stale
            ));
            r.row(
                format!(
                    "watcher CPU per foreign {what} (outside the root), {}-entry root",
                    group(size)
                ),
                format!(
                    "{:.2} µs (process {:.2} µs; producer rate {:.0}/s){}",
                    us(cpu.watcher, n),
                    us(cpu.total, n),
                    n as f64 / produced,
                    if seen.no_loss() {
                        ""
                    } else {
                        "; LOSS (overflow)"
                    }
                ),
                "≤ 1 µs",
                format!(
                    "`sh benches/live.sh --backend {} --only foreign --sizes {size}`",
                    a.backend
                ),
            );
        }
        drop(p);
        let _ = live.engine.shutdown();
    }
}

/// The producer's answer if it is there (a non-blocking look at its stdout).
/// 7. A hard-linked snapshot (`cp -al`) of `--changes` files, written through, then removed.
#[expect(
    clippy::too_many_lines,
    reason = "one measurement per tree size: start, memory, three phases, report"
)]
fn bench_links(a: &Args, r: &mut Report) {
    let files = a.changes;
    for &size in &a.sizes {
        let root = a.base.join(format!("links-{size}"));
        gen_tree(&root.join("tree"), size);
        // The files to snapshot: one byte each (so one block each), made afresh.
        let src = root.join("src");
        let snap = root.join("snap");
        let _ = std::fs::remove_dir_all(&snap);
        fresh_dir(&src);
        for i in 0..files {
            std::fs::write(src.join(format!("f{i:06}")), b"x").expect("create a source file");
        }
        let cache = a.base.join(format!("cache-{}-links-{size}", a.backend));
        let live = Live::start(&root, &cache, a.choice);
        let (len0, app0, disk0, mem) = {
            let t = live.tree();
            let tot = t.totals(t.root());
            (t.len(), tot.apparent, tot.disk, t.memory())
        };
        let per = |b: u64| b as f64 / len0 as f64;
        r.say(&format!(
            "\n## links: {} ({len0} entries), {} backend; memory all in (every wide directory \
             indexed) {:.2} B/entry, of which inode fingerprints {:.2} B/entry; without the \
             wide index {:.2} B/entry",
            root.display(),
            a.backend,
            per(mem.all_in()),
            per(mem.inodes),
            per(mem.all_in() - mem.index.max(mem.index_all_wide) + mem.index),
        ));
        r.row(
            format!(
                "inode fingerprints, watched tree of {} entries",
                group(len0)
            ),
            format!("{:.2} B/entry", per(mem.inodes)),
            "4 B/entry",
            format!(
                "`cargo bench --bench live -- --backend {} --only links --sizes {size}`",
                a.backend
            ),
        );
        let mut p = Producer::spawn();
        let dir_len = |d: &Path| std::fs::symlink_metadata(d).map_or(0, |m| m.len());
        let dir_disk = |d: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(d).map_or(0, |m| m.blocks() * 512)
        };
        let phases = [
            (
                "cp -al",
                format!("cplinks {} {}", src.display(), snap.display()),
            ),
            (
                "a write through each new name",
                format!("appendall {} 1", snap.display()),
            ),
            (
                "rm -r of the snapshot",
                format!("rmtree {}", snap.display()),
            ),
        ];
        for (k, (name, cmd)) in phases.into_iter().enumerate() {
            let mark = CpuMark::now();
            let produced = p.run(&cmd);
            // The links are charged once: the snapshot adds its directory, and each write
            // one byte to the one charge of its inode.
            let (want_len, want_app, want_disk) = match k {
                0 => (
                    len0 + files + 1,
                    app0 + dir_len(&snap),
                    disk0 + dir_disk(&snap),
                ),
                1 => (
                    len0 + files + 1,
                    app0 + dir_len(&snap) + files,
                    disk0 + dir_disk(&snap),
                ),
                _ => (len0, app0 + files, disk0),
            };
            let mut seen = Seen::default();
            let ok = live.until(&mut seen, Duration::from_secs(300), |t| {
                let tot = t.totals(t.root());
                t.len() == want_len && tot.apparent == want_app && tot.disk == want_disk
            });
            settle();
            live.drain(&mut seen, Duration::from_millis(10));
            let cpu = mark.since();
            if !ok {
                let t = live.tree();
                let tot = t.totals(t.root());
                r.say(&format!(
                    "{size} {name}: NOT EQUAL: entries {} (want {want_len}), apparent {} \
                     (want {want_app}), disk {} (want {want_disk})",
                    t.len(),
                    tot.apparent,
                    tot.disk
                ));
            }
            r.say(&format!(
                "{size} {name}: {files} files, producer {produced:.2} s, {} batches, {} events, \
                 apply {:.1} ms; CPU {:.1} ms = {:.1} us/file [engine {:.1}, store {:.1}, \
                 watcher {:.1}]; equal: {ok}; stale {:?}",
                seen.batches,
                seen.events,
                ms(seen.apply_total()),
                ms(cpu.total),
                us(cpu.total, files),
                us(cpu.engine, files),
                us(cpu.store, files),
                us(cpu.watcher, files),
                seen.stale
            ));
            r.row(
                format!(
                    "{name}, {} files, {} entries ({} batches)",
                    group(files),
                    group(size),
                    seen.batches
                ),
                format!(
                    "{:.1} µs/file (engine {:.1}){}",
                    us(cpu.total, files),
                    us(cpu.engine, files),
                    if ok && seen.no_loss() {
                        ""
                    } else {
                        " NOT EQUAL/LOSS"
                    }
                ),
                "O(files linked): flat in the tree's size",
                format!(
                    "`cargo bench --bench live -- --backend {} --only links --sizes {size} \
                     --changes {files}`",
                    a.backend
                ),
            );
        }
        drop(p);
        let _ = live.engine.shutdown();
    }
}

fn poll_done(p: &mut Producer) -> Option<f64> {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: p.output.get_ref().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack, zero timeout.
    let n = unsafe { libc::poll(&raw mut fds, 1, 0) };
    (n > 0).then(|| p.done())
}

fn main() {
    if std::env::args().any(|a| a == "--producer") {
        producer_main();
        return;
    }
    let a = parse_args();
    std::fs::create_dir_all(&a.base).expect("create the base directory");
    let mut r = Report::default();
    r.say(&format!(
        "# live engine benchmarks: backend {}, base {}, {} cores",
        a.backend,
        a.base.display(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    ));
    for what in a.only.clone() {
        match what.as_str() {
            "cpu" => bench_cpu(&a, &mut r),
            "grow" => bench_grow(&a, &mut r),
            "mv" => bench_mv(&a, &mut r),
            "rate" => bench_rate(&a, &mut r),
            "soak" => bench_soak(&a, &mut r),
            "foreign" => bench_foreign(&a, &mut r),
            "links" => bench_links(&a, &mut r),
            other => eprintln!("unknown benchmark {other:?}"),
        }
    }
    let mut table = String::from("\n| figure | measured | target | command |\n|---|---|---|---|\n");
    for [w, v, t, c] in &r.rows {
        let _ = writeln!(table, "| {w} | {v} | {t} | {c} |");
    }
    r.say(&table);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let file = dir.join(format!(
        "live-{}-{}-{stamp}.txt",
        a.backend,
        a.only.join("+")
    ));
    if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&file, &r.raw).is_ok() {
        println!("raw results: {}", file.display());
    }
}
