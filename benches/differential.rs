//! The differential soak: the suite of `tests/differential.rs` over thousands of seeds, with a
//! summary of the failures grouped by what differed first, and for each group the smallest
//! reproduction the shrinker finds.
//!
//! `cargo bench --bench differential -- [--from N] [--count N] [--seeds A,B,..] [--jobs N]
//! [--nobody] [--no-set-back] [--race P] [--shrink K] [--age-ms MS] [--out DIR]`
//! (`--no-set-back`: no script sets a directory's time back, to see past that failure;
//! `--race P`: P% of seeds run their scripts during a catch-up, default as in CI)
//! (also `DTUI_DIFF_FROM`, `DTUI_DIFF_COUNT`, `DTUI_DIFF_JOBS`). A debug build runs the same
//! with `cargo test --bench differential -- ...`. Exits 1 if any seed failed.

#[path = "../tests/common/difftree.rs"]
mod difftree;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use difftree::check::{self, Failure, Settings};

struct Args {
    seeds: Vec<u64>,
    jobs: usize,
    nobody: bool,
    /// Failing seeds to shrink per group.
    shrink: usize,
    age_ms: Option<u64>,
    no_set_back: bool,
    race: Option<u64>,
    out: PathBuf,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn parse_args() -> Args {
    let mut from = env_or("DTUI_DIFF_FROM", 1);
    let mut count = env_or("DTUI_DIFF_COUNT", 1000);
    let mut list = None;
    let mut args = Args {
        seeds: Vec::new(),
        jobs: env_or("DTUI_DIFF_JOBS", 2) as usize,
        nobody: false,
        shrink: 0,
        age_ms: None,
        no_set_back: false,
        race: None,
        out: std::env::temp_dir().join("dtui-differential"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match a.as_str() {
            "--from" => from = value().parse().expect("--from N"),
            "--count" => count = value().parse().expect("--count N"),
            "--seeds" => {
                list = Some(
                    value()
                        .split(',')
                        .map(|s| s.trim().parse().expect("--seeds A,B,.."))
                        .collect(),
                );
            }
            "--jobs" => args.jobs = value().parse().expect("--jobs N"),
            "--nobody" => args.nobody = true,
            "--no-set-back" => args.no_set_back = true,
            "--race" => args.race = Some(value().parse().expect("--race PERCENT")),
            "--shrink" => args.shrink = value().parse().expect("--shrink K"),
            "--age-ms" => args.age_ms = Some(value().parse().expect("--age-ms MS")),
            "--out" => args.out = PathBuf::from(value()),
            // `cargo bench` passes `--bench`; anything else unknown is ignored the same way.
            _ => {}
        }
    }
    args.seeds = list.unwrap_or_else(|| (from..from + count).collect());
    args
}

fn main() {
    let args = parse_args();
    let mut settings = Settings::ci();
    if args.nobody {
        settings.nobody_exe = Some(PathBuf::from(env!("CARGO_BIN_EXE_dtui")));
        settings.chmod = 25;
        settings.entries = (60, 160);
    }
    settings.set_back = !args.no_set_back;
    if let Some(p) = args.race {
        settings.race_percent = p;
    }
    if let Some(ms) = args.age_ms {
        settings.age_ms = ms;
    }
    let _ = std::fs::create_dir_all(&args.out);
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = args.seeds.get(i) else {
                        return;
                    };
                    if let Err(f) = check::run_seed(seed, &settings) {
                        let file = args.out.join(format!("seed-{seed}.sh"));
                        let _ = std::fs::write(&file, f.report(usize::MAX));
                        println!(
                            "FAIL seed {seed}: {} [{}]",
                            f.problems.first().map_or("", String::as_str),
                            file.display()
                        );
                        failures.lock().expect("failures").push(f);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    let mut groups: BTreeMap<String, Vec<&Failure>> = BTreeMap::new();
    for f in &failures {
        groups.entry(f.tag()).or_default().push(f);
    }
    println!(
        "\n{} seeds in {:.1} s: {} failed",
        args.seeds.len(),
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    for (tag, fs) in &mut groups {
        fs.sort_by_key(|f| f.case.seed);
        let seeds: Vec<String> = fs.iter().map(|f| f.case.seed.to_string()).collect();
        println!("{tag} {} seeds: {}", fs.len(), seeds.join(" "));
    }
    if args.shrink > 0 {
        let exe = settings.nobody_exe.as_deref();
        for (tag, fs) in &groups {
            let mut smallest: Option<Failure> = None;
            for f in fs.iter().take(args.shrink) {
                let small = check::shrink(f, exe, 400);
                let file = args.out.join(format!("min-seed-{}.sh", f.case.seed));
                let _ = std::fs::write(&file, small.report(usize::MAX));
                if smallest
                    .as_ref()
                    .is_none_or(|s| check::op_count(&small.case) < check::op_count(&s.case))
                {
                    smallest = Some(small);
                }
            }
            if let Some(s) = smallest {
                let file = args
                    .out
                    .join(format!("min-{}.sh", tag.trim_matches(['[', ']'])));
                let _ = std::fs::write(&file, s.report(usize::MAX));
                println!(
                    "\n=== {tag}: smallest reproduction ({}) ===\n{}",
                    file.display(),
                    s.report(8)
                );
            }
        }
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
