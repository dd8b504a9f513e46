//! Running one case and judging it: a cached scan, then per round a mutation script, the
//! catch-up from the cache, a fresh scan, and a node-by-node comparison of the two plus their
//! totals against `du`. In process (fast), or through the real binary as user 65534.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use disktracker::cache::{CacheOptions, Saved};
use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::tree;

use super::compare::{compare, dump_json, dump_tree, escape_invalid_utf8};
use super::generate::{self, Gen, Personality, Shape};
use super::opened::{open_engine, start_engine};
use super::{Case, Op, Rng};

/// How seeds become cases.
#[derive(Debug, Clone)]
pub struct Settings {
    pub threads: usize,
    /// Entries in the random tree (inclusive range).
    pub entries: (u64, u64),
    /// Ops per mutation script (inclusive range).
    pub ops: (u64, u64),
    pub rounds: usize,
    /// Seeds divisible by this wait `age_ms` before each scan-relevant step (0: never).
    pub aged_every: u64,
    pub age_ms: u64,
    /// Weight of chmod ops among the others (about 3-8 each).
    pub chmod: u64,
    /// Scripts set directory times back (tar, rsync, cp -a, touch -d); off to look past that.
    pub set_back: bool,
    /// Run the real binary (this path) as user 65534 instead of the library in process.
    pub nobody_exe: Option<PathBuf>,
    /// Percent of seeds whose scripts run while a catch-up runs (then one more catch-up).
    pub race_percent: u64,
}

impl Settings {
    /// The CI shape: a few hundred entries, scripts of 20-60 ops, two rounds.
    #[must_use]
    pub fn ci() -> Settings {
        Settings {
            threads: 2,
            entries: (120, 400),
            ops: (20, 60),
            rounds: 2,
            aged_every: 4,
            age_ms: 3100,
            chmod: 1,
            set_back: true,
            nobody_exe: None,
            race_percent: 25,
        }
    }
}

/// The first problem's tag (`[size]`, `[missing]`, ...), what a shrinker keeps.
#[must_use]
pub fn first_tag(problems: &[String]) -> String {
    problems
        .first()
        .and_then(|p| p.split(']').next())
        .map_or_else(String::new, |t| format!("{t}]"))
}

/// A seed whose catch-up differed from a fresh scan (or from `du`).
#[derive(Debug, Clone)]
pub struct Failure {
    /// What ran, up to and including the round that failed.
    pub case: Case,
    pub round: Option<usize>,
    pub problems: Vec<String>,
}

impl Failure {
    /// The first problem's tag (`[size]`, `[missing]`, ...): the shrinker keeps it.
    #[must_use]
    pub fn tag(&self) -> String {
        first_tag(&self.problems)
    }

    /// Seed, what differed (the first lines), and the script that reproduces it.
    #[must_use]
    pub fn report(&self, max_problems: usize) -> String {
        let mut s = format!(
            "seed {} failed in round {}: {} problem(s)\n",
            self.case.seed,
            self.round
                .map_or_else(|| "setup".into(), |r| (r + 1).to_string()),
            self.problems.len()
        );
        for p in self.problems.iter().take(max_problems) {
            let _ = writeln!(s, "  {p}");
        }
        s.push_str("--- reproduction ---\n");
        s.push_str(&self.case.script(self.round));
        s
    }
}

/// Where a case's ops come from.
enum Source<'a> {
    Generate {
        rng: Rng,
        settings: &'a Settings,
    },
    /// Replays recorded ops; ops that fail are skipped (the shrinker removes ops others need).
    Replay(&'a Case),
}

/// Generates the case of `seed` and runs it.
pub fn run_seed(seed: u64, settings: &Settings) -> Result<(), Failure> {
    let mut rng = Rng::new(seed);
    let aged = settings.aged_every > 0 && seed % settings.aged_every == 0;
    let race = rng.chance(settings.race_percent);
    let case = Case {
        race,
        seed,
        age_ms: if aged { settings.age_ms } else { 0 },
        nobody: settings.nobody_exe.is_some(),
        threads: settings.threads,
        setup: Vec::new(),
        rounds: Vec::new(),
    };
    let rng2 = Rng::new(rng.next_u64());
    run(
        case,
        Source::Generate {
            rng: rng2,
            settings,
        },
        settings.nobody_exe.as_deref(),
    )
}

/// Runs recorded ops again (skipping any that fail now).
pub fn replay(case: &Case, exe: Option<&Path>) -> Result<(), Failure> {
    let empty = Case {
        setup: Vec::new(),
        rounds: Vec::new(),
        ..case.clone()
    };
    run(empty, Source::Replay(case), exe)
}

/// Applies recorded ops that still apply; returns those that did.
fn apply_all(base: &Path, ops: &[Op]) -> Vec<Op> {
    ops.iter()
        .filter(|op| op.apply(base).is_ok())
        .cloned()
        .collect()
}

fn run(mut case: Case, mut source: Source, exe: Option<&Path>) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = tempfile::Builder::new()
        .prefix("dtui-diff")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let base = dir.path();
    // The cache directory private, as dtui requires of one it did not make.
    for (sub, mode) in [("root", 0o755), ("outside", 0o755), ("cache", 0o700)] {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(base.join(sub))
            .expect("mkdir");
    }
    if case.nobody {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::chown(base.join("cache"), Some(65534), Some(65534)).expect("chown");
    }
    let backend = match exe {
        Some(exe) => Backend::Binary(exe),
        None => Backend::InProcess,
    };
    let mut setup_times = BTreeMap::default();
    let mut per_round = Vec::new();
    let rounds = match &mut source {
        Source::Generate { rng, settings } => {
            let g = generate_setup(base, rng, settings, &mut per_round);
            case.setup = g.0;
            setup_times = g.1;
            settings.rounds
        }
        Source::Replay(recorded) => {
            case.setup = apply_all(base, &recorded.setup);
            recorded.rounds.len()
        }
    };
    let age = |case: &Case| {
        // Not a synchronisation: the timestamps must grow older than the catch-up's "changed
        // too recently to trust" window, or every directory is simply read again.
        // The condition is the clock itself: park until it has moved past the mark.
        let until = disktracker::scan::listing_clock() + i128::from(case.age_ms) * 1_000_000;
        loop {
            let left = until - disktracker::scan::listing_clock();
            if left <= 0 {
                break;
            }
            std::thread::park_timeout(Duration::from_nanos(left as u64));
        }
    };
    age(&case);
    let fail = |case: Case, round, problems| Failure {
        case,
        round,
        problems,
    };
    if let Err(p) = backend.initial(base, case.threads) {
        return Err(fail(case, None, vec![p]));
    }
    for r in 0..rounds {
        if r > 0 {
            age(&case);
        }
        let produce = || match &source {
            Source::Generate { .. } => {
                let (who, seed) = *per_round.get(r).expect("one personality per round");
                let mut g = Gen::new(base, Rng::new(seed));
                g.setup_times = setup_times.clone();
                generate::script(&mut g, who);
                g.ops
            }
            Source::Replay(recorded) => apply_all(base, &recorded.rounds[r]),
        };
        let mut problems = Vec::new();
        let ops = if case.race {
            // The script runs while a catch-up lists and stats: that catch-up may miss changes,
            // but its tree must stay a tree (no name twice, totals that add up), and the next
            // catch-up, on a quiet tree, must be exact.
            // Catch-ups one after the other for as long as the script runs.
            std::thread::scope(|s| {
                let script = s.spawn(produce);
                for _ in 0..50 {
                    problems = backend.catch_up_only(base, case.threads);
                    if !problems.is_empty() || script.is_finished() {
                        break;
                    }
                }
                script.join().expect("the script thread")
            })
        } else {
            produce()
        };
        case.rounds.push(ops);
        problems.extend(backend.compare(base, case.threads));
        if !problems.is_empty() {
            return Err(fail(case, Some(r), problems));
        }
    }
    Ok(())
}

/// The setup of a generated case (applied), its directories' times, and each round's script
/// personality and seed.
fn generate_setup(
    base: &Path,
    rng: &mut Rng,
    settings: &Settings,
    per_round: &mut Vec<(Personality, u64)>,
) -> (Vec<Op>, BTreeMap<PathBuf, (i64, u32)>) {
    let mut g = Gen::new(base, Rng::new(rng.next_u64()));
    let entries = rng.range(settings.entries.0, settings.entries.1) as usize;
    let backdate = rng.chance(85);
    generate::setup(&mut g, Shape { entries, backdate });
    for _ in 0..settings.rounds {
        let who = Personality {
            ops: rng.range(settings.ops.0, settings.ops.1) as usize,
            set_back: *rng.pick(&[0, 50, 100, 100]).expect("choices"),
            chmod: settings.chmod,
            touch: 3,
        };
        let who = if settings.set_back {
            who
        } else {
            Personality {
                set_back: 0,
                touch: 0,
                ..who
            }
        };
        per_round.push((who, rng.next_u64()));
    }
    (g.ops, g.setup_times)
}

enum Backend<'a> {
    InProcess,
    Binary(&'a Path),
}

fn scan_opts(threads: usize) -> ScanOptions {
    ScanOptions {
        threads,
        ..ScanOptions::default()
    }
}

fn cache_opts(base: &Path) -> CacheOptions {
    CacheOptions {
        dir: Some(base.join("cache")),
        disabled: false,
    }
}

impl Backend<'_> {
    /// The first, cached scan.
    fn initial(&self, base: &Path, threads: usize) -> Result<(), String> {
        match self {
            Backend::InProcess => {
                let s = open_engine(
                    &base.join("root"),
                    &cache_opts(base),
                    &scan_opts(threads),
                    true,
                )
                .map_err(|e| format!("[error] the first scan failed: {e}"))?;
                match s.engine.shutdown() {
                    Saved::Clean { .. } => Ok(()),
                    other => Err(format!(
                        "[error] the first scan's cache was not saved: {other:?}"
                    )),
                }
            }
            Backend::Binary(exe) => {
                let out = nobody(exe)
                    .args(["scan", "--threads", &threads.to_string(), "--cache-dir"])
                    .arg(base.join("cache"))
                    .arg(base.join("root"))
                    .output()
                    .expect("run dtui");
                let err = String::from_utf8_lossy(&out.stderr);
                if err.contains("panicked") || err.contains("without a cache") {
                    return Err(format!("[error] dtui scan: {err}"));
                }
                Ok(())
            }
        }
    }

    /// A catch-up, and what is wrong with its tree on its own (names twice, totals that do not
    /// add up, hard links charged other than once).
    fn catch_up_only(&self, base: &Path, threads: usize) -> Vec<String> {
        let own = match self {
            Backend::InProcess => {
                match start_engine(
                    &base.join("root"),
                    &cache_opts(base),
                    &scan_opts(threads),
                    true,
                ) {
                    Ok(s) => {
                        let mut own = Vec::new();
                        if let Some(e) = &s.first.failed {
                            own.push(format!("[error] the catch-up failed: {e}"));
                        }
                        own.extend(dump_tree(&tree::read(&s.engine.tree)).own);
                        let _ = s.engine.shutdown();
                        own
                    }
                    Err(e) => vec![format!("[error] opening the cache failed: {e}")],
                }
            }
            Backend::Binary(exe) => {
                let out = nobody(exe)
                    .args(["export", "--threads", &threads.to_string(), "--cache-dir"])
                    .arg(base.join("cache"))
                    .args(["-o", "-"])
                    .arg(base.join("root"))
                    .output()
                    .expect("run dtui");
                match serde_json::from_str::<serde_json::Value>(&escape_invalid_utf8(&out.stdout)) {
                    Ok(v) => dump_json(&v).own,
                    Err(e) => vec![format!(
                        "[error] dtui export printed no JSON ({e}): {}",
                        String::from_utf8_lossy(&out.stderr)
                    )],
                }
            }
        };
        own.into_iter()
            .map(|p| format!("[race]{p} (the catch-up that ran during the script)"))
            .collect()
    }

    /// The catch-up against a fresh scan and `du`: every difference found.
    fn compare(&self, base: &Path, threads: usize) -> Vec<String> {
        let root = base.join("root");
        let mut problems = Vec::new();
        let (caught, fresh) = match self {
            Backend::InProcess => {
                let caught = match start_engine(&root, &cache_opts(base), &scan_opts(threads), true)
                {
                    Ok(s) => {
                        if !s.engine.origin.from_cache() {
                            problems.push(format!(
                                "[error] the cache was not used: {}",
                                s.engine.origin
                            ));
                        }
                        if let Some(e) = &s.first.failed {
                            problems.push(format!("[error] the catch-up failed: {e}"));
                        }
                        let d = dump_tree(&tree::read(&s.engine.tree));
                        if !matches!(s.engine.shutdown(), Saved::Clean { .. }) {
                            problems.push("[error] the catch-up's cache was not saved".into());
                        }
                        d
                    }
                    Err(e) => {
                        problems.push(format!("[error] opening the cache failed: {e}"));
                        return problems;
                    }
                };
                let fresh = match scan::scan_path(&root, &scan_opts(threads), &Progress::new()) {
                    Ok((t, _)) => dump_tree(&t),
                    Err(e) => {
                        problems.push(format!("[error] the fresh scan failed: {e}"));
                        return problems;
                    }
                };
                (caught, fresh)
            }
            Backend::Binary(exe) => {
                let export = |cache: bool| {
                    let mut c = nobody(exe);
                    c.args(["export", "--threads", &threads.to_string()]);
                    if cache {
                        c.arg("--cache-dir").arg(base.join("cache"));
                    } else {
                        c.arg("--no-cache");
                    }
                    let out = c.args(["-o", "-"]).arg(&root).output().expect("run dtui");
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    if err.contains("panicked") || err.contains("without a cache") {
                        return Err(format!("[error] dtui export: {err}"));
                    }
                    serde_json::from_str::<serde_json::Value>(&escape_invalid_utf8(&out.stdout))
                        .map_err(|e| format!("[error] dtui export printed no JSON ({e}): {err}"))
                        .map(|v| dump_json(&v))
                };
                match (export(true), export(false)) {
                    (Ok(c), Ok(f)) => (c, f),
                    (c, f) => {
                        problems.extend(c.err());
                        problems.extend(f.err());
                        return problems;
                    }
                }
            }
        };
        compare(&caught, &fresh, &mut problems);
        let as_nobody = matches!(self, Backend::Binary(_));
        let du_disk = du(&root, false, as_nobody);
        let du_apparent = du(&root, true, as_nobody);
        let (a, d) = (caught.canonical_root.0, caught.canonical_root.1);
        if d != du_disk {
            problems.push(format!("[du] catch-up root disk {d} != du -sB1 {du_disk}"));
        }
        if a != du_apparent {
            problems.push(format!(
                "[du] catch-up root apparent {a} != du -sb {du_apparent}"
            ));
        }
        let (fa, fd) = (fresh.canonical_root.0, fresh.canonical_root.1);
        if fd != du_disk || fa != du_apparent {
            problems.push(format!(
                "[fresh-du] even the fresh scan ({fa}, {fd}) differs from du ({du_apparent}, {du_disk})"
            ));
        }
        problems
    }
}

/// The real binary as user 65534.
fn nobody(exe: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe);
    c
}

/// `du -sB1` or `du -sb`, as root or as user 65534 (unreadable directories make `du` exit 1,
/// its total still printed).
fn du(path: &Path, apparent: bool, as_nobody: bool) -> u64 {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "du",
        ]);
        c
    } else {
        Command::new("du")
    };
    let out = c
        .arg(if apparent { "-sb" } else { "-sB1" })
        .arg(path)
        .output()
        .expect("run du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("du printed no number: {out:?}"))
}

/// Makes a failing case smaller while it still fails with the same first tag: drops chunks of
/// ops (halves, quarters, ... single ops), the age, and rounds after the failing one. At most
/// `budget` runs.
pub fn shrink(failure: &Failure, exe: Option<&Path>, budget: usize) -> Failure {
    let tag = failure.tag();
    let mut best = failure.clone();
    let mut runs = 0;
    let still_fails = |case: &Case, runs: &mut usize| -> Option<Failure> {
        *runs += 1;
        match replay(case, exe) {
            Err(f) if f.tag() == tag => Some(f),
            _ => None,
        }
    };
    if best.case.age_ms > 0 {
        let mut c = best.case.clone();
        c.age_ms = 0;
        if let Some(f) = still_fails(&c, &mut runs) {
            best = f;
        }
    }
    // Flattened: (round or usize::MAX for the setup, index).
    let mut chunk = {
        let n = best.case.setup.len() + best.case.rounds.iter().map(Vec::len).sum::<usize>();
        n.div_ceil(2).max(1)
    };
    loop {
        let mut progress = false;
        for part in 0..=best.case.rounds.len() {
            let mut start = 0;
            loop {
                if runs >= budget {
                    return best;
                }
                let len = if part == 0 {
                    best.case.setup.len()
                } else {
                    best.case.rounds[part - 1].len()
                };
                if start >= len {
                    break;
                }
                let mut c = best.case.clone();
                let ops = if part == 0 {
                    &mut c.setup
                } else {
                    &mut c.rounds[part - 1]
                };
                let end = (start + chunk).min(len);
                ops.drain(start..end);
                match still_fails(&c, &mut runs) {
                    Some(f) => {
                        best = f;
                        progress = true;
                    }
                    None => start = end,
                }
            }
        }
        if chunk == 1 && !progress {
            return best;
        }
        chunk = (chunk / 2).max(1);
    }
}

/// Names and sizes of the ops, for a one-line summary.
#[must_use]
pub fn op_count(case: &Case) -> usize {
    case.setup.len() + case.rounds.iter().map(Vec::len).sum::<usize>()
}

#[must_use]
pub fn relative(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}
