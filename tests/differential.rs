//! The differential suite (issue 9): random trees, random mutation scripts made of what real
//! tools do, and after each script the catch-up from the cache must equal a fresh scan node by
//! node (kind, sizes, inode, link count, flags, items, one charge per hard-link group, totals)
//! and `du`. A fixed set of seeds runs here; `cargo bench --bench differential` runs thousands.
//!
//! A failing seed prints what differed and a bash script that reproduces it with the binary.
//! `DTUI_DIFF_SEEDS=7,12` runs only those seeds of a test.

mod common;

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

use common::difftree::check::{self, Failure, Settings};
use common::difftree::{Case, Op};

/// Seeds of this test: `DTUI_DIFF_SEEDS` if set, else `default`.
fn seeds(default: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    match std::env::var("DTUI_DIFF_SEEDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => default.collect(),
    }
}

/// Runs the seeds on a few threads (much of a case is I/O and waiting for timestamps to age)
/// and fails with every failing seed's report.
fn run_seeds(seeds: &[u64], settings: &Settings, jobs: usize) {
    let next = Mutex::new(seeds.iter());
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let Some(&seed) = next.lock().expect("seed list").next() else {
                        return;
                    };
                    if let Err(f) = check::run_seed(seed, settings) {
                        failures.lock().expect("failures").push(f);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    if failures.is_empty() {
        return;
    }
    failures.sort_by_key(|f| f.case.seed);
    let dir = std::env::temp_dir().join("dtui-differential");
    let _ = std::fs::create_dir_all(&dir);
    let mut summary = String::new();
    for (i, f) in failures.iter().enumerate() {
        let file = dir.join(format!("seed-{}.sh", f.case.seed));
        let _ = std::fs::write(&file, f.case.script(f.round));
        let _ = writeln!(
            summary,
            "seed {}: {} ({} ops; script {})",
            f.case.seed,
            f.problems.first().map_or("", String::as_str),
            check::op_count(&f.case),
            file.display()
        );
        // The full reproduction of the first failures; the others are in their files.
        if i < 2 {
            println!("{}", f.report(12));
        }
    }
    panic!(
        "{} of {} seeds: the catch-up differs from a fresh scan\n{summary}",
        failures.len(),
        seeds.len()
    );
}

#[test]
fn catch_up_equals_a_fresh_scan_after_random_scripts() {
    run_seeds(&seeds(1..=40), &Settings::ci(), 3);
}

#[test]
fn catch_up_equals_a_fresh_scan_as_nobody_when_permissions_change() {
    if !common::is_root() {
        eprintln!("skipped: needs root to act as user 65534 with setpriv");
        return;
    }
    let settings = Settings {
        entries: (60, 160),
        ops: (20, 40),
        chmod: 25,
        nobody_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_dtui"))),
        ..Settings::ci()
    };
    run_seeds(&seeds(1001..=1006), &settings, 2);
}

/// One directory `root/d` holding `a`, its mtime set to `before`; after the cached scan a file
/// is added, `a` renamed, and the mtime set to `after` (as tar, rsync or cp -a leave it).
fn set_back_case(before: (i64, u32), after: (i64, u32)) -> Case {
    let p = |s: &str| PathBuf::from(s);
    Case {
        seed: 0,
        age_ms: 0,
        nobody: false,
        race: false,
        threads: 2,
        setup: vec![
            Op::MkdirP(p("root/d")),
            Op::Write(p("root/d/a"), 100_000),
            Op::Touch(p("root/d"), before.0, before.1),
        ],
        rounds: vec![vec![
            Op::Write(p("root/d/new"), 50_000),
            Op::Rename(p("root/d/a"), p("root/d/b")),
            Op::Touch(p("root/d"), after.0, after.1),
        ]],
    }
}

fn assert_caught_up(case: &Case) {
    if let Err(f) = check::replay(case, None) {
        panic!("{}", f.report(12));
    }
}

#[test]
fn a_directory_whose_mtime_is_restored_after_a_change_is_caught_up() {
    // The minimal case (rsync -a, cp -a, tar x): the same mtime, new content.
    assert_caught_up(&set_back_case((946_684_800, 0), (946_684_800, 0)));
}

#[test]
fn a_directory_set_to_another_time_before_1970_is_caught_up() {
    // Both times clamp to 0 in whole seconds since the epoch.
    assert_caught_up(&set_back_case((-100_000, 0), (-200_000, 0)));
}

#[test]
fn a_directory_set_to_another_nanosecond_of_the_same_second_is_caught_up() {
    assert_caught_up(&set_back_case(
        (946_684_800, 100_000_000),
        (946_684_800, 900_000_000),
    ));
}

#[test]
fn changes_within_the_second_of_the_scan_are_caught_up() {
    // No times set back: the directory changes in the same clock tick as the scan read it,
    // so its times may not tell (the "verified too recently to trust" window).
    let p = |s: &str| PathBuf::from(s);
    let case = Case {
        seed: 0,
        age_ms: 0,
        nobody: false,
        race: false,
        threads: 2,
        setup: vec![Op::MkdirP(p("root/d")), Op::Write(p("root/d/a"), 100_000)],
        rounds: vec![
            vec![
                Op::Write(p("root/d/new"), 50_000),
                Op::Rename(p("root/d/a"), p("root/d/b")),
            ],
            vec![Op::Remove(p("root/d/new")), Op::Write(p("root/d/c"), 7_000)],
        ],
    };
    assert_caught_up(&case);
}

#[test]
fn the_reproduction_script_quotes_every_awkward_name() {
    // A failing seed is only useful if its script runs: check the quoting by running it.
    let case = Case {
        seed: 0,
        age_ms: 0,
        nobody: false,
        race: false,
        threads: 1,
        setup: vec![
            Op::Mkdir(common::difftree::rel(
                &PathBuf::from("root"),
                b"a b\n\t\xff'\"$x\\",
            )),
            Op::Touch(PathBuf::from("root"), -86_401, 876_543_211),
        ],
        rounds: vec![],
    };
    let script = case
        .script(None)
        .replace("dtui scan", &format!("{} scan", env!("CARGO_BIN_EXE_dtui")));
    let out = common::run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{script}\necho \"$B\"")),
    );
    assert!(out.status.success(), "{script}\n{out:?}");
    let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let names: Vec<Vec<u8>> = std::fs::read_dir(base.join("root"))
        .expect("the script made the root")
        .map(|e| e.expect("entry").file_name().as_bytes().to_vec())
        .collect();
    let mtime = std::fs::metadata(base.join("root"))
        .expect("root")
        .mtime_nsec();
    let secs = std::fs::metadata(base.join("root")).expect("root").mtime();
    common::remove_all(&base);
    assert_eq!(names, vec![b"a b\n\t\xff'\"$x\\".to_vec()], "{script}");
    assert_eq!((secs, mtime), (-86_401, 876_543_211), "{script}");
}
