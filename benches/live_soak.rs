//! The live soak: the suite of `tests/live.rs` over many seeds per backend, with a summary of
//! the failures grouped by what differed first. Each failing seed's report (what differed, the
//! bash script reproducing it with `dtui watch`, and what the engine said) is written to
//! `--out` (default `$TMPDIR/dtui-live`).
//!
//! `cargo bench --bench live_soak -- [--from N] [--count N] [--seeds A,B,..] [--jobs N]
//! [--backend fanotify|fanotify-mount|notify|all] [--ops LO,HI] [--entries LO,HI]
//! [--rounds N] [--out DIR]` (also `DTUI_LIVE_FROM`, `DTUI_LIVE_COUNT`, `DTUI_LIVE_JOBS`). A
//! debug build runs the same with `cargo test --bench live_soak -- ...`. Exits 1 if any seed
//! failed.

#[path = "../tests/common/difftree.rs"]
mod difftree;
#[path = "../tests/live/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use disktracker::watch::Choice;
use harness::{Failure, Settings, backend_arg};

struct Args {
    seeds: Vec<u64>,
    jobs: usize,
    backends: Vec<Choice>,
    settings: Settings,
    out: PathBuf,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pair(v: &str, what: &str) -> (u64, u64) {
    let mut it = v.split(',').map(|s| s.trim().parse().expect(what));
    let lo = it.next().expect(what);
    (lo, it.next().unwrap_or(lo))
}

fn parse_args() -> Args {
    let mut from = env_or("DTUI_LIVE_FROM", 1);
    let mut count = env_or("DTUI_LIVE_COUNT", 200);
    let mut list = None;
    let mut args = Args {
        seeds: Vec::new(),
        jobs: env_or("DTUI_LIVE_JOBS", 3) as usize,
        backends: vec![Choice::Fanotify, Choice::FanotifyMount, Choice::Notify],
        settings: Settings::ci(),
        out: harness::out_dir(),
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
            "--backend" => {
                args.backends = match value().as_str() {
                    "all" => vec![Choice::Fanotify, Choice::FanotifyMount, Choice::Notify],
                    b => vec![
                        b.parse()
                            .expect("--backend fanotify|fanotify-mount|notify|all"),
                    ],
                };
            }
            "--ops" => args.settings.ops = pair(&value(), "--ops LO,HI"),
            "--entries" => args.settings.entries = pair(&value(), "--entries LO,HI"),
            "--rounds" => args.settings.rounds = value().parse().expect("--rounds N"),
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
    let _ = std::fs::create_dir_all(&args.out);
    let mut all: Vec<(Choice, Failure)> = Vec::new();
    let t0 = Instant::now();
    for &backend in &args.backends {
        let t = Instant::now();
        let failures =
            harness::run_seeds(&args.seeds, backend, &args.settings, args.jobs, &args.out);
        println!(
            "{}: {} seeds in {:.1} s, {} failed",
            backend_arg(backend),
            args.seeds.len(),
            t.elapsed().as_secs_f64(),
            failures.len()
        );
        all.extend(failures.into_iter().map(|f| (backend, f)));
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (backend, f) in &all {
        groups.entry(f.tag()).or_default().push(format!(
            "{}:{}",
            backend_arg(*backend),
            f.case.seed
        ));
    }
    println!(
        "\n{} backends x {} seeds in {:.1} s: {} failed (reports in {})",
        args.backends.len(),
        args.seeds.len(),
        t0.elapsed().as_secs_f64(),
        all.len(),
        args.out.display()
    );
    for (tag, seeds) in &groups {
        println!("{tag} {} seeds: {}", seeds.len(), seeds.join(" "));
    }
    if !all.is_empty() {
        std::process::exit(1);
    }
}
