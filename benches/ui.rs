//! The browser's benchmarks:
//! 1. time from process start to the first complete frame, on a real tree, with no cache
//!    (cold: the first scan starts in the background) and with a cache (warm), the real binary
//!    in a pseudo-terminal;
//! 2. the render time of one frame with a 100,000-entry directory open (`TestBackend`);
//! 3. the live browser (`--live DIR`, a generated tree of its own that the benchmark writes
//!    into: `python3 benches/gen_tree.py DIR`): write-to-row latency over 120 writes, frame
//!    time while 1,000 writes/s arrive in the open directory, the UI's CPU idle and while
//!    10,000 writes/s arrive elsewhere.
//!
//! `cargo bench --bench ui -- [TREE] [--live DIR] [--live-only] [--first-frame-only]
//! [--warm-only] [--bin PATH]` (default TREE: the 500,000-entry benchmark tree; `--bin`: the
//! first frames of another build of dtui)

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use disktracker::cache::CacheOptions;
use disktracker::engine::{Engine, EngineMsg, EngineOptions, Freshness};
use disktracker::scan::{ProgressSnapshot, ScanOptions};
use disktracker::tree::{Arena, EntryInfo, Kind, Tree};
use disktracker::ui::{App, Event, Status, draw_frame, render};
use disktracker::watch::Choice;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Spawns dtui in a PTY and returns the time until the screen shows a full frame (footer).
fn first_frame(bin: &Path, args: &[&str]) -> f64 {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(bin);
    cmd.args(args);
    cmd.env("TERM", "xterm-256color");
    let t0 = Instant::now();
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = vt100::Parser::new(40, 120, 0);
    let elapsed = loop {
        let bytes = rx.recv_timeout(Duration::from_secs(30)).expect("output");
        parser.process(&bytes);
        if parser.screen().contents().contains("Total disk usage") {
            break t0.elapsed().as_secs_f64();
        }
    };
    let _ = writer.write_all(b"q");
    let _ = child.wait();
    drop(pair.master);
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let live_tree = args
        .iter()
        .position(|a| a == "--live")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    if args.first().is_some_and(|a| a == "--writer") {
        let num = |i: usize| args.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let n = write_loop(Path::new(&args[1]), num(2) as usize, num(3), num(4) as f64);
        println!("{n}");
        return;
    }
    // `--bin PATH`: time another build's first frames (to compare two builds in one run).
    let bin = args
        .iter()
        .position(|a| a == "--bin")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dtui")), PathBuf::from);
    if let Some(t) = &live_tree {
        live(&bin, t);
    }
    if args.iter().any(|a| a == "--live-only") {
        return;
    }
    let tree_dir = args
        .iter()
        .enumerate()
        .find(|&(i, a)| {
            !a.starts_with('-') && (i == 0 || (args[i - 1] != "--live" && args[i - 1] != "--bin"))
        })
        .map_or_else(
            || PathBuf::from("/tmp/dtui-bench-tree"),
            |(_, a)| PathBuf::from(a),
        );
    first_frames(&bin, &tree_dir, !args.iter().any(|a| a == "--warm-only"));
    if !args
        .iter()
        .any(|a| a == "--first-frame-only" || a == "--warm-only")
    {
        wide_directory_frames();
    }
}

/// Process start to the first complete frame, without and with a cache.
fn first_frames(bin: &Path, tree_dir: &Path, cold_too: bool) {
    let cache = tempfile::tempdir().expect("tempdir");
    let tree_arg = tree_dir.to_str().expect("utf-8 path");
    let cache_arg = cache.path().to_str().expect("utf-8 path");

    let cold: Vec<f64> = (0..if cold_too { 7 } else { 1 })
        .map(|_| first_frame(bin, &["--no-cache", tree_arg]))
        .collect();
    // Build the cache once, then measure starts from it.
    let _ = std::process::Command::new(bin)
        .args(["scan", "--cache-dir", cache_arg, tree_arg])
        .output();
    let warm: Vec<f64> = (0..15)
        .map(|_| first_frame(bin, &["--cache-dir", cache_arg, tree_arg]))
        .collect();
    println!(
        "first frame, {}: cold (no cache, scan starting) median {:.1} ms; warm (cache) median {:.1} ms",
        tree_dir.display(),
        median(cold) * 1e3,
        median(warm) * 1e3
    );
    // Attached: a `dtui watch` owns the tree live (from the same cache), and each browser,
    // with a cache directory of its own that stays empty, attaches to it: no cache opened,
    // no catch-up, the owner's image mapped and validated.
    let mut owner = std::process::Command::new(bin)
        .args(["watch", "--cache-dir", cache_arg, tree_arg])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dtui watch");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        owner.stdout.take().expect("stdout"),
    ));
    while let Some(Ok(l)) = lines.next() {
        if l.starts_with("tree:") {
            break;
        }
    }
    let own = tempfile::tempdir().expect("tempdir");
    let own_arg = own.path().to_str().expect("utf-8 path");
    let attached: Vec<f64> = (0..15)
        .map(|_| first_frame(bin, &["--cache-dir", own_arg, tree_arg]))
        .collect();
    let _ = owner.kill();
    let _ = owner.wait();
    assert_eq!(
        std::fs::read_dir(own.path()).map_or(0, Iterator::count),
        0,
        "the attached browsers made a cache of their own"
    );
    println!(
        "first frame attached to a dtui watch, {}: median {:.1} ms (min {:.1}, max {:.1})",
        tree_dir.display(),
        median(attached.clone()) * 1e3,
        attached.iter().copied().fold(f64::INFINITY, f64::min) * 1e3,
        attached.iter().copied().fold(0.0, f64::max) * 1e3
    );
}

/// One frame with a 100,000-entry directory open.
fn wide_directory_frames() {
    let dir_info = |size| EntryInfo {
        kind: Kind::Dir,
        flags: 0,
        ino: 1,
        dev: 1,
        nlink: 2,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        apparent: size,
        disk: size,
        errno: 0,
    };
    let mut tree = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/wide"),
        &dir_info(4096),
    )
    .expect("tree");
    let root = tree.root();
    for i in 0..100_000u64 {
        let e = EntryInfo {
            kind: Kind::File,
            ino: i + 2,
            apparent: (i * 7919) % 1_000_003,
            disk: ((i * 7919) % 1_000_003).div_ceil(4096) * 4096,
            ..dir_info(0)
        };
        tree.add_child(root, format!("file-{i:06}.dat").as_bytes(), &e)
            .expect("add");
    }
    let status = Status {
        freshness: Freshness::Fresh,
        progress: ProgressSnapshot::default(),
    };
    let mut app = App::new(&tree, String::new(), status);
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut draw = |app: &mut App, key: Option<char>| {
        let t0 = Instant::now();
        if let Some(k) = key {
            app.update(
                Event::Input(TermEvent::Key(KeyEvent::new(
                    KeyCode::Char(k),
                    KeyModifiers::NONE,
                ))),
                &tree,
            );
        }
        term.draw(|f| render(f, app, &tree)).expect("draw");
        t0.elapsed().as_secs_f64()
    };
    let first = draw(&mut app, None);
    let steady: Vec<f64> = (0..50).map(|_| draw(&mut app, None)).collect();
    let resorted: Vec<f64> = (0..10)
        .map(|i| draw(&mut app, Some(if i % 2 == 0 { 'n' } else { 's' })))
        .collect();
    println!(
        "frame with a 100,000-entry directory open (200x60): first (sorts) {:.2} ms; \
         steady median {:.3} ms; key + re-sort + frame (n/s) median {:.2} ms",
        first * 1e3,
        median(steady) * 1e3,
        median(resorted) * 1e3
    );
}

// ---------------------------------------------------------------------------------------------
// The live browser (issue 11): write-to-row latency, frame time under events in the open
// directory, the UI's CPU idle and under events elsewhere. These write into LIVE_TREE (a
// generated tree of its own, never the shared one), and remove what they wrote.
// ---------------------------------------------------------------------------------------------

/// The real binary in a pseudo-terminal, its screen parsed.
struct Screen {
    rx: mpsc::Receiver<Vec<u8>>,
    parser: vt100::Parser,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Screen {
    fn spawn(bin: &Path, args: &[&str]) -> Screen {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("pty");
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _master = pair.master;
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            rx,
            parser: vt100::Parser::new(40, 120, 0),
            writer,
            child,
        }
    }

    /// Waits until `cond` holds for the screen; the time it took.
    fn wait(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> Duration {
        let t0 = Instant::now();
        loop {
            if cond(&self.parser.screen().contents()) {
                return t0.elapsed();
            }
            let bytes = self
                .rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}:\n{}",
                        self.parser.screen().contents()
                    )
                });
            self.parser.process(&bytes);
        }
    }

    fn send(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).expect("keys");
        self.writer.flush().expect("flush");
    }

    fn quit(mut self) {
        self.send(b"q");
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of the threads of `pid` whose names `pick` accepts.
fn threads_cpu(pid: u32, pick: &dyn Fn(&str) -> bool) -> Duration {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !pick(&stat[open + 1..close]) {
            continue;
        }
        // Fields after the name: state is the 3rd field of the line; utime, stime the 14th, 15th.
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |i: usize| rest.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
    }
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// The UI's threads: the loop (the main thread), input, signals, status, message forwarder.
fn is_ui_thread(name: &str) -> bool {
    matches!(
        name,
        "dtui" | "dtui-input" | "dtui-signals" | "dtui-status" | "dtui-engine-msg"
    )
}

/// CPU time of the calling thread.
fn this_thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let field = |i: usize| {
        rest.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 10)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Appends a byte to files in `dir`, `rate` per second, for `secs` seconds; returns how many.
fn write_loop(dir: &Path, files: usize, rate: u64, secs: f64) -> u64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        let due = t0.elapsed().as_secs_f64() * rate as f64;
        while (n as f64) < due {
            let p = dir.join(format!("f{:05}", n as usize % files));
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&p) {
                let _ = f.write_all(b"x");
            }
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    n
}

/// `write_loop` in another process (a watcher does not see its own process's writes, and
/// users' writes come from other processes anyway); returns how many writes it made.
fn writer(dir: &Path, files: usize, rate: u64, secs: u64) -> JoinHandle<u64> {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let args = vec![
        "--writer".to_owned(),
        dir.to_str().expect("utf-8 path").to_owned(),
        files.to_string(),
        rate.to_string(),
        secs.to_string(),
    ];
    std::thread::spawn(move || {
        let out = std::process::Command::new(exe)
            .args(args)
            .output()
            .expect("the writer runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    })
}

fn make_files(dir: &Path, n: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir");
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:05}")), vec![b'x'; 100 + i % 5000]).expect("write");
    }
}

fn live(bin: &Path, tree: &Path) {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_arg = cache.path().to_str().expect("utf-8 path");
    let tree_arg = tree.to_str().expect("utf-8 path");
    let hot = tree.join("bench-hot");
    let elsewhere = tree.join("work").join("bench-elsewhere");
    make_files(&hot, 10_000);
    make_files(&elsewhere, 1_000);
    let _ = std::process::Command::new(bin)
        .args(["scan", "--cache-dir", cache_arg, tree_arg])
        .output();

    // 1. Write-to-row latency with the whole tree open (the root, sorted by name so that each
    //    new `!bench-NNN` is the first row).
    let mut s = Screen::spawn(bin, &["--cache-dir", cache_arg, tree_arg]);
    s.wait("live", |c| {
        c.lines()
            .next()
            .is_some_and(|h| h.trim_end().ends_with("live"))
    });
    s.send(b"n");
    s.wait("name order", |c| c.contains("Sort: name"));
    let mut lat = Vec::new();
    for i in 0..120 {
        if i > 0 {
            let _ = std::fs::remove_file(tree.join(format!("!bench-{:03}", i - 1)));
        }
        let name = format!("!bench-{i:03}");
        let t0 = Instant::now();
        std::fs::write(tree.join(&name), vec![b'x'; 4096]).expect("write");
        s.wait(&name, |c| c.contains(&name));
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_file(tree.join("!bench-119"));
    let backend = s
        .parser
        .screen()
        .contents()
        .lines()
        .next()
        .unwrap_or("")
        .rsplit('·')
        .nth(1)
        .and_then(|s| s.split_whitespace().last())
        .unwrap_or("")
        .to_owned();
    println!(
        "write-to-row latency, {} writes, 500,000-entry tree open ({backend}): median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );

    ui_cpu(s, &elsewhere);
    frames_under_writes(tree, cache.path(), &hot);
    let _ = std::fs::remove_dir_all(&hot);
    let _ = std::fs::remove_dir_all(&elsewhere);
}

/// The UI's CPU idle, then while 10,000 writes/s arrive in a directory not on screen.
fn ui_cpu(s: Screen, elsewhere: &Path) {
    let pid = s.child.process_id().expect("pid");
    std::thread::sleep(Duration::from_secs(2));
    let (ui0, all0, t0) = (
        threads_cpu(pid, &is_ui_thread),
        threads_cpu(pid, &|_| true),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(10));
    let wall = t0.elapsed().as_secs_f64();
    let idle_ui = threads_cpu(pid, &is_ui_thread)
        .saturating_sub(ui0)
        .as_secs_f64()
        / wall
        * 100.0;
    let idle_all = threads_cpu(pid, &|_| true)
        .saturating_sub(all0)
        .as_secs_f64()
        / wall
        * 100.0;
    println!("idle 10 s: UI threads {idle_ui:.2}% of a core, whole process {idle_all:.2}%");
    let w = writer(elsewhere, 1_000, 10_000, 10);
    let (ui0, all0, t0) = (
        threads_cpu(pid, &is_ui_thread),
        threads_cpu(pid, &|_| true),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(10));
    let wall = t0.elapsed().as_secs_f64();
    let busy_ui = threads_cpu(pid, &is_ui_thread)
        .saturating_sub(ui0)
        .as_secs_f64()
        / wall
        * 100.0;
    let busy_all = threads_cpu(pid, &|_| true)
        .saturating_sub(all0)
        .as_secs_f64()
        / wall
        * 100.0;
    let writes = w.join().unwrap_or(0);
    println!(
        "10,000 writes/s elsewhere ({:.0} writes/s done): UI threads {busy_ui:.2}% of a core, whole process (engine included) {busy_all:.2}%",
        writes as f64 / wall
    );
    s.quit();
}

/// Frame time with a 10,000-entry directory open while 1,000 writes/s arrive in it: the engine
/// in process, the browser's update and frame (TestBackend 120x40) as the loop runs them.
fn frames_under_writes(tree: &Path, cache: &Path, hot: &Path) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut opts = EngineOptions::new(
        CacheOptions {
            dir: Some(cache.to_path_buf()),
            disabled: false,
        },
        ScanOptions::default(),
    );
    opts.watch = Some(Choice::Auto);
    let engine = Engine::start(tree, opts, tx).expect("engine");
    loop {
        let msg = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the engine gets ready");
        if matches!(msg, EngineMsg::Ready) {
            break;
        }
    }
    let status = || Status {
        freshness: engine.freshness(),
        progress: engine.progress.snapshot(),
    };
    let mut app = {
        let t = disktracker::tree::read(&engine.tree);
        let mut app = App::new(&t, String::new(), status());
        app.cwd = t.lookup(hot).expect("the hot directory");
        app
    };
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    draw_frame(&mut term, &mut app, &engine.tree).expect("draw");
    let w = writer(hot, 10_000, 1_000, 10);
    let (cpu0, t0) = (this_thread_cpu(), Instant::now());
    let mut frames = Vec::new();
    let mut waits = Vec::new();
    let mut batches = 0u64;
    let mut last_status = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let mut events = Vec::new();
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(33)) {
            events.push(Event::Engine(m));
            events.extend(rx.try_iter().map(Event::Engine));
        }
        if last_status.elapsed() >= Duration::from_millis(250) {
            last_status = Instant::now();
            events.push(Event::Status(status()));
        }
        if events.is_empty() {
            continue;
        }
        // The time waiting for the read lock (the engine writing a batch) is the engine's,
        // measured apart from the browser's own work.
        let mut wait = Duration::ZERO;
        let mut lock_wait = || {
            let l0 = Instant::now();
            drop(disktracker::tree::read(&engine.tree));
            wait += l0.elapsed();
        };
        let f0 = Instant::now();
        for ev in events {
            if matches!(ev, Event::Engine(EngineMsg::Applied(_))) {
                batches += 1;
            }
            lock_wait();
            app.update(ev, &disktracker::tree::read(&engine.tree));
        }
        if app.dirty {
            lock_wait();
            draw_frame(&mut term, &mut app, &engine.tree).expect("draw");
            frames.push(f0.elapsed().saturating_sub(wait).as_secs_f64() * 1e3);
            waits.push(wait.as_secs_f64() * 1e3);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = this_thread_cpu().saturating_sub(cpu0).as_secs_f64() / wall * 100.0;
    let writes = w.join().unwrap_or(0);
    println!(
        "1,000 writes/s in the open 10,000-entry directory ({:.0} writes/s done, {batches} batches): \
         {} frames, update+frame median {:.2} ms, p99 {:.2} ms, max {:.2} ms (read-lock wait apart: \
         median {:.2} ms, max {:.1} ms); UI thread {cpu:.1}% of a core",
        writes as f64 / wall,
        frames.len(),
        percentile(&frames, 0.5),
        percentile(&frames, 0.99),
        percentile(&frames, 1.0),
        percentile(&waits, 0.5),
        percentile(&waits, 1.0)
    );
    drop(engine);
}
