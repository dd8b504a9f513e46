//! Deleting a 100,000-entry subtree: `delete::worker` (what the browser's `d` runs once the
//! user confirmed its plan) against `rm -rf`, median of runs on fresh copies of the same tree,
//! with the progress messages the browser would draw a frame for counted; and the plan itself
//! (copied from a scanned tree, as the browser does before asking): its time and its size.
//! Run: `cargo bench --bench delete` (DTUI_BENCH_RUNS, DTUI_BENCH_ENTRIES; the tree goes in
//! $TMPDIR).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use disktracker::delete::worker::{DeleteMsg, Job, spawn};
use disktracker::delete::{Decision, DeleteError, Listener, Plan, Progress, Target, plan};
use disktracker::fs::RootDir;
use disktracker::scan::{self, ScanOptions};
use disktracker::tree::Tree;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `dirs` directories of `per` empty-ish files each (one byte: one block).
fn build(at: &Path, entries: usize) {
    let per = 1000;
    let dirs = entries.div_ceil(per + 1);
    for d in 0..dirs {
        let dir = at.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..per {
            std::fs::write(dir.join(format!("f{f}")), b"x").expect("write");
        }
    }
    let _ = std::process::Command::new("sync").status();
}

struct Abort;

impl Listener for Abort {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Abort
    }
}

/// The plan of `sub` from a scan of `root` (what the browser holds): the time it took.
fn planned(root: &RootDir, sub: &Path) -> (Plan, Duration, usize) {
    let progress = scan::Progress::new();
    let tree = RwLock::new(
        root.new_tree(disktracker::tree::Arena::create_temp().expect("arena"))
            .expect("tree"),
    );
    scan::scan_root(root, &tree, &ScanOptions::default(), &progress).expect("scan");
    let shown = {
        let t: std::sync::RwLockReadGuard<'_, Tree> = tree.read().expect("read");
        Target::of(&t, t.lookup(sub).expect("in the tree"))
    };
    let t0 = Instant::now();
    let p = plan::plan(
        root,
        Some(&tree),
        vec![shown],
        &Progress::default(),
        &mut Abort,
    );
    let took = t0.elapsed();
    let bytes = p.manifest_bytes();
    (p, took, bytes)
}

fn ours(root: &Arc<RootDir>, p: Plan) -> (Duration, u64, u64) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let t0 = Instant::now();
    let w = spawn(
        Arc::clone(root),
        None,
        Job::Delete(p),
        None,
        Box::new(move |m| {
            let _ = tx.send(m);
        }),
    )
    .expect("worker");
    let mut frames = 0;
    loop {
        match rx.recv().expect("message") {
            DeleteMsg::Progress { .. } => frames += 1,
            DeleteMsg::Done(s) => return (t0.elapsed(), s.items, frames),
            DeleteMsg::Failed(_) => w.answer(Decision::Abort),
            other => panic!("{other:?}"),
        }
    }
}

fn rm(sub: &Path) -> Duration {
    let t0 = Instant::now();
    let st = std::process::Command::new("rm")
        .arg("-rf")
        .arg(sub)
        .status()
        .expect("rm");
    assert!(st.success());
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = env("DTUI_BENCH_RUNS", 5);
    let entries = env("DTUI_BENCH_ENTRIES", 100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut items = 0;
    let mut fps = Vec::new();
    let (mut plans, mut plan_bytes) = (Vec::new(), 0);
    for i in 0..runs {
        let sub = root.join("sub");
        // Alternate which goes first, so neither always meets a warmer cache.
        for first in [i % 2 == 0, i % 2 != 0] {
            build(&sub, entries);
            if first {
                let opened = Arc::new(RootDir::open(&root).expect("root"));
                let (confirmed, took, bytes) = planned(&opened, &sub);
                plans.push(took);
                plan_bytes = bytes;
                let (t, n, frames) = ours(&opened, confirmed);
                items = n;
                fps.push(frames as f64 / t.as_secs_f64());
                a.push(t);
            } else {
                b.push(rm(&sub));
            }
        }
    }
    let (a, b) = (median(a), median(b));
    println!("| what | entries | median of {runs} | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| dtui delete worker | {items} | {:.0} ms | {:.2}x |",
        a.as_secs_f64() * 1e3,
        a.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "| rm -rf | {items} | {:.0} ms | 1.00x |",
        b.as_secs_f64() * 1e3
    );
    println!(
        "plan from the tree (before the dialog): median {:.1} ms, {} bytes ({:.1} per entry)",
        median(plans).as_secs_f64() * 1e3,
        plan_bytes,
        plan_bytes as f64 / items.max(1) as f64
    );
    fps.sort_by(f64::total_cmp);
    println!(
        "progress messages (a frame each in the browser): median {:.0}/s",
        fps[fps.len() / 2]
    );
}
