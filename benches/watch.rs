//! The watch pipeline's benchmarks, per backend (fanotify tiers need root):
//! 1. events per second from a burst of file creations (another process) through the backend,
//!    the DirtyQueue and `mutation_log` (one transaction per released batch);
//! 2. the delay from a write (another process) to the release of the batch that holds it.
//!
//! `cargo bench --bench watch`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use disktracker::store::{Commit, LogBatch, Retention, Store};
use disktracker::watch::{self, Choice, DirtyQueue, QueueLimits};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn throughput(choice: Choice, files: usize) -> Option<(f64, u64, u64, bool)> {
    let dir = tempfile::tempdir().ok()?;
    let root = dir.path().join("root");
    std::fs::create_dir(&root).ok()?;
    let root = root.canonicalize().ok()?;
    for d in 0..10 {
        std::fs::create_dir(root.join(format!("d{d}"))).ok()?;
    }
    let (tx, rx) = watch::channel();
    let w = watch::start(&root, choice, tx).ok()?;
    let mut store = Store::open(&dir.path().join("log.db"), b"/bench").ok()?;
    let mut queue = DirtyQueue::new(QueueLimits::default());
    let script = format!(
        "for d in 0 1 2 3 4 5 6 7 8 9; do seq -f \"d$d/f%g\" {} | xargs touch; done",
        files / 10
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(&root)
        .spawn()
        .ok()?;
    let mut t0 = None;
    let (mut events, mut rows) = (0u64, 0u64);
    let mut seen = HashSet::new();
    let mut flush = |queue: &mut DirtyQueue, store: &mut Store, now: Instant, force: bool| {
        let batch = if force {
            Some(queue.take())
        } else {
            queue.take_ready(now)
        };
        if let Some(b) = batch {
            let r = watch::log_rows(&b);
            rows += r.len() as u64;
            store
                .commit(&Commit {
                    log: Some(LogBatch {
                        batch: b.id,
                        rows: r,
                        retention: Retention::default(),
                    }),
                    ..Commit::default()
                })
                .expect("log");
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => {
                t0.get_or_insert_with(Instant::now);
                events += 1;
                seen.insert(ev.path.clone());
                queue.push(ev, Instant::now());
                flush(&mut queue, &mut store, Instant::now(), false);
            }
            Err(_) => {
                if child.try_wait().ok()?.is_some() {
                    break;
                }
            }
        }
    }
    flush(&mut queue, &mut store, Instant::now(), true);
    let elapsed = t0?.elapsed().as_secs_f64() - 0.5; // the last, empty wait
    let lost = w.take_lost();
    Some((events as f64 / elapsed, events, rows, lost))
}

fn latency(choice: Choice, samples: usize) -> Option<(f64, f64)> {
    let dir = tempfile::tempdir().ok()?;
    let root = dir.path().canonicalize().ok()?;
    let (tx, rx) = watch::channel();
    let _w = watch::start(&root, choice, tx).ok()?;
    let mut queue = DirtyQueue::new(QueueLimits::default());
    let mut delays = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = root.join(format!("f{i}"));
        let t0 = Instant::now();
        let status = std::process::Command::new("touch")
            .arg(&name)
            .status()
            .ok()?;
        assert!(status.success());
        let want = name.as_os_str().as_encoded_bytes().to_vec();
        let deadline = t0 + Duration::from_secs(5);
        'wait: loop {
            let timeout = queue
                .deadline()
                .unwrap_or(deadline)
                .saturating_duration_since(Instant::now());
            if let Ok(ev) = rx.recv_timeout(timeout) {
                queue.push(ev, Instant::now());
            }
            if let Some(b) = queue.take_ready(Instant::now()) {
                if b.changes.iter().any(|c| c.path == want) {
                    delays.push(t0.elapsed().as_secs_f64());
                    break 'wait;
                }
            }
            if Instant::now() > deadline {
                break 'wait;
            }
        }
    }
    Some((percentile(&mut delays, 0.5), percentile(&mut delays, 0.99)))
}

fn main() {
    let mut choices = vec![Choice::Inotify, Choice::Notify];
    if nix::unistd::geteuid().is_root() {
        choices.insert(0, Choice::FanotifyMount);
        choices.insert(0, Choice::Fanotify);
    }
    println!(
        "| backend | events/s into mutation_log | events | log rows | lost (rescan) | write→batch median | p99 |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|");
    for choice in choices {
        let t = throughput(choice, 50_000);
        let l = latency(choice, 100);
        match (t, l) {
            (Some((eps, events, rows, lost)), Some((p50, p99))) => println!(
                "| {choice:?} | {eps:.0} | {events} | {rows} | {lost} | {:.1} ms | {:.1} ms |",
                p50 * 1e3,
                p99 * 1e3
            ),
            _ => println!("| {choice:?} | failed to start | | | | | |"),
        }
    }
}
