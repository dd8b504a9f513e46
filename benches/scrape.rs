//! `dtui serve`'s scrape against the peers' way to export disk usage, on the same trees:
//! 1. `scrape`: `GET /metrics` from a running `dtui serve --listen` (the real binary, its
//!    default export: every directory to depth 2 and the 50 largest), end to end over TCP
//!    (connect, request, the whole body read): median, p90, p99 and max of `--scrapes` scrapes,
//!    idle (back to back) and while another thread creates and removes files in the tree
//!    (about 5,000 a second; one scrape every 10 ms, so that scrapes meet the engine's batches,
//!    applied under the tree's write lock);
//! 2. `choose`: the off-scrape cost, choosing which directories are exported (one pass over the
//!    tree, under its read lock), in process on the same tree loaded from the cache;
//! 3. the peers: what disk_usage_exporter (a gdu analysis per scrape) and a `du` fed textfile
//!    collector pay per scrape or interval: `gdu -np TREE` and `du -B1 --max-depth=2 TREE`,
//!    `--peer-runs` times each, warm page cache, median.
//!
//! `cargo bench --bench scrape -- [--trees PATH:ENTRIES,...] [--scrapes N] [--peer-runs N]`
//! (default trees `/tmp/dtui-bench-tree:500000,/tmp/dtui-bench-2m:2000000`, made with
//! `benches/gen_tree.py` when missing, and kept; as root the engine watches with fanotify).
//! Prints a markdown table and writes it to `benches/results/scrape-<time>.md`.

#[path = "support/mod.rs"]
mod support;
use support::gen_tree;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use disktracker::cache::CacheOptions;
use disktracker::engine::{Engine, EngineOptions};
use disktracker::scan::ScanOptions;
use disktracker::serve::series::{Selection, choose};
use disktracker::tree;

struct Args {
    trees: Vec<(PathBuf, u64)>,
    scrapes: usize,
    peer_runs: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        trees: vec![
            (PathBuf::from("/tmp/dtui-bench-tree"), 500_000),
            (PathBuf::from("/tmp/dtui-bench-2m"), 2_000_000),
        ],
        scrapes: 300,
        peer_runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--trees" => {
                a.trees = value()
                    .split(',')
                    .map(|t| {
                        let (p, n) = t.rsplit_once(':').expect("--trees PATH:ENTRIES,...");
                        (PathBuf::from(p), n.parse().expect("ENTRIES is a number"))
                    })
                    .collect();
            }
            "--scrapes" => a.scrapes = value().parse().expect("--scrapes N"),
            "--peer-runs" => a.peer_runs = value().parse().expect("--peer-runs N"),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    a
}

/// A running `dtui serve --listen 127.0.0.1:0 TREE`, ready.
struct Served {
    child: Child,
    addr: SocketAddr,
    ready_in: Duration,
    ready_line: String,
}

fn serve(tree: &Path, cache: &Path) -> Served {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtui"))
        .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(cache)
        .arg(tree)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("dtui serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut addr = None;
    let ready_line = loop {
        let line = lines
            .next()
            .expect("dtui serve says it is ready")
            .expect("a line");
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = Some(a.trim_end_matches("/metrics").parse().expect("an address"));
        }
        if line.starts_with("ready ") {
            break line;
        }
    };
    // Drain the rest of its log on a thread of its own (a full pipe would block it).
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        addr: addr.expect("the port was said before ready"),
        ready_in: t0.elapsed(),
        ready_line,
    }
}

impl Served {
    /// SIGTERM, and how long the clean stop (apply, save) took.
    fn stop(mut self) -> Duration {
        let t0 = Instant::now();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "dtui serve stopped with {status:?}");
        t0.elapsed()
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (clock ticks).
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name (which may hold spaces, in parentheses).
    let rest = &stat[stat.rfind(')').expect("(comm)") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// The 1-minute load average, as the run's context.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').next().unwrap_or("?").to_owned())
        .unwrap_or_default()
}

/// One scrape, end to end: its time and the body.
fn scrape(addr: SocketAddr) -> (Duration, String) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let took = t0.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    (took, answer)
}

struct Dist {
    median: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

fn dist(mut v: Vec<Duration>) -> Dist {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Dist {
        median: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n` scrapes, after a warm-up, `every` apart (back to back if zero).
fn scrapes(addr: SocketAddr, n: usize, every: Duration) -> (Dist, usize, usize) {
    for _ in 0..20 {
        scrape(addr);
    }
    let mut times = Vec::with_capacity(n);
    let mut last = String::new();
    for _ in 0..n {
        let (t, body) = scrape(addr);
        times.push(t);
        last = body;
        std::thread::sleep(every.saturating_sub(t));
    }
    let series = last
        .lines()
        .filter(|l| l.starts_with("dtui_directory_disk_bytes{"))
        .count();
    (dist(times), series, last.len())
}

/// Creates and removes files in a few directories of the tree until `stop`, as fast as the
/// engine's batches allow; the count of operations.
fn churn(tree: &Path, stop: &AtomicBool, ops: &AtomicU64) {
    let dir = tree.join("scrape-bench-churn");
    let _ = std::fs::create_dir(&dir);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let f = dir.join(format!("f{}", i % 500));
        if i / 500 % 2 == 0 {
            let _ = std::fs::write(&f, vec![b'x'; 8192]);
        } else {
            let _ = std::fs::remove_file(&f);
        }
        i += 1;
        ops.store(i, Ordering::Relaxed);
        if i % 50 == 0 {
            // About 5,000 operations a second: a busy tree, not a flood that overflows queues.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The time to choose the exported directories (the default selection), in process, on the
/// tree loaded from the cache the served run left: median of 5.
fn choose_cost(tree: &Path, cache: &Path) -> Duration {
    let opts = EngineOptions {
        catch_up: false,
        ..EngineOptions::new(
            CacheOptions {
                dir: Some(cache.to_path_buf()),
                disabled: false,
            },
            ScanOptions::default(),
        )
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(tree, opts, tx).expect("the engine starts");
    let first = engine.wait_ready(&rx, |_| {});
    assert!(first.failed.is_none(), "{:?}", first.failed);
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let set = choose(
            &tree::read(&engine.tree),
            Selection::default(),
            "root=\"x\"",
        );
        times.push(t0.elapsed());
        assert!(!set.series.is_empty());
    }
    let _ = engine.shutdown();
    dist(times).median
}

/// A peer command `runs` times (after one warm-up run): the median wall time.
fn peer(cmd: &[&str], tree: &Path, runs: usize) -> Option<Duration> {
    let run = || {
        let t0 = Instant::now();
        let ok = Command::new(cmd[0])
            .args(&cmd[1..])
            .arg(tree)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        // du exits 1 for an unreadable entry yet prints the totals: a time all the same.
        let _ = ok;
        Some(t0.elapsed())
    };
    run()?;
    let times: Option<Vec<Duration>> = (0..runs).map(|_| run()).collect();
    Some(dist(times?).median)
}

fn main() {
    let a = parse_args();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# dtui serve: scrape time against a scan per scrape ({} cores, {} scrapes each)\n",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        a.scrapes
    );
    let _ = writeln!(
        out,
        "| tree | entries | series | body [KiB] | server CPU per scrape [ms] | scrape median [ms] | p90 | p99 | max | \
         scrape under churn median [ms] | p99 | max | choose [ms] | gdu -np [ms] | \
         du --max-depth=2 [ms] | gdu / dtui median |"
    );
    let _ = writeln!(
        out,
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut notes = String::new();
    for (tree, entries) in &a.trees {
        gen_tree(tree, *entries);
        let mut cache = tree.clone().into_os_string();
        cache.push(".scrape-cache");
        let cache = PathBuf::from(cache);
        let served = serve(tree, &cache);
        let (ready_in, ready_line) = (served.ready_in, served.ready_line.clone());
        println!(
            "{}: ready in {:.1} s: {}",
            tree.display(),
            served.ready_in.as_secs_f64(),
            served.ready_line
        );
        let load_before = load();
        let cpu0 = cpu_of(served.child.id());
        let (idle, series, body) = scrapes(served.addr, a.scrapes, Duration::ZERO);
        // The server's CPU per scrape (the warm-up's 20 included): what a scrape costs it,
        // whatever else runs on the machine meanwhile.
        let cpu_per_scrape =
            cpu_of(served.child.id()).saturating_sub(cpu0) / (a.scrapes as u32 + 20);
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let churner = {
            let (tree, stop, ops) = (tree.clone(), Arc::clone(&stop), Arc::clone(&ops));
            std::thread::spawn(move || churn(&tree, &stop, &ops))
        };
        let t0 = Instant::now();
        // Spaced out, so that the scrapes meet the engine's batches (one per 75 ms of quiet, at
        // most one a second, applied under the tree's write lock).
        let (busy, _, _) = scrapes(served.addr, a.scrapes, Duration::from_millis(10));
        let busy_for = t0.elapsed();
        stop.store(true, Ordering::Relaxed);
        churner.join().expect("the churn thread");
        let stopped_in = served.stop();
        let choose_ms = choose_cost(tree, &cache);
        let gdu = peer(&["gdu", "-np"], tree, a.peer_runs);
        let du = peer(&["du", "-B1", "--max-depth=2"], tree, a.peer_runs).expect("du runs");
        let fmt =
            |d: Option<Duration>| d.map_or("not installed".into(), |d| format!("{:.0}", ms(d)));
        let _ = writeln!(
            out,
            "| {} | {entries} | {series} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | \
             {:.2} | {:.1} | {} | {:.0} | {} |",
            tree.display(),
            body as f64 / 1024.0,
            ms(cpu_per_scrape),
            ms(idle.median),
            ms(idle.p90),
            ms(idle.p99),
            ms(idle.max),
            ms(busy.median),
            ms(busy.p99),
            ms(busy.max),
            ms(choose_ms),
            fmt(gdu),
            ms(du),
            gdu.map_or("-".into(), |g| format!(
                "{:.0}x",
                g.as_secs_f64() / idle.median.as_secs_f64()
            )),
        );
        let _ = writeln!(
            notes,
            "- {}: load average {load_before} before the scrapes; ready in {:.1} s ({}); churn: {} \
             file operations in {:.1} s during the busy scrapes; clean stop (SIGTERM, apply, \
             save) {:.2} s",
            tree.display(),
            ready_in.as_secs_f64(),
            ready_line,
            ops.load(Ordering::Relaxed),
            busy_for.as_secs_f64(),
            stopped_in.as_secs_f64(),
        );
    }
    out.push('\n');
    out.push_str(&notes);
    println!("\n{out}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let file = dir.join(format!("scrape-{stamp}.md"));
    if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&file, &out).is_ok() {
        println!("written to {}", file.display());
    }
}
