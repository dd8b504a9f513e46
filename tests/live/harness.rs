//! The live differential harness (used by `tests/live.rs` and the soak `benches/live_soak.rs`):
//! an in-process `Engine` watches a seeded random tree while seeded mutation scripts run in
//! another process (fanotify drops its own process's events), at full speed or with random
//! pauses; once the engine is quiet its live tree must equal a fresh scan node by node and
//! `du`, and so must what it saved (the arena as mapped, and the database alone).
//!
//! A script is generated on a replica of the tree (the "dry" base, built from the same setup
//! ops), so its ops are known before they run and the live base only sees them from bash. A
//! failing seed prints a bash script that reproduces it with the real `dtui watch`.

#![allow(
    dead_code,
    reason = "the tests and the soak bench each use a different subset"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use disktracker::cache::{CacheOptions, CachePaths, Saved};
use disktracker::engine::{Engine, EngineMsg, EngineOptions, Freshness};
use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::tree::{self, flags};
use disktracker::watch::{Choice, QueueLimits};

use super::difftree::compare::{Dump, compare, dump_tree};
use super::difftree::generate::{self, Gen, Personality, Shape};
use super::difftree::opened::open_engine;
use super::difftree::{self, Op, Rng};

/// How seeds become cases.
#[derive(Debug, Clone)]
pub struct Settings {
    pub threads: usize,
    /// Entries in the random tree (inclusive range).
    pub entries: (u64, u64),
    /// Ops per mutation script (inclusive range).
    pub ops: (u64, u64),
    pub rounds: usize,
    /// Percent of seeds whose scripts pause now and then (10-200 ms, around the quiet window).
    pub pause_percent: u64,
    /// Percent of seeds whose first script starts before the first scan is over.
    pub early_percent: u64,
    /// Percent of later rounds that restart the engine from its cache, the script racing the
    /// catch-up.
    pub restart_percent: u64,
    pub limits: QueueLimits,
    /// No message for this long (and the engine `Live`) is quiet.
    pub quiet: Duration,
}

impl Settings {
    /// The CI shape: a few hundred entries, scripts of 20-80 ops, two rounds.
    #[must_use]
    pub fn ci() -> Settings {
        Settings {
            threads: 2,
            entries: (120, 400),
            ops: (20, 80),
            rounds: 2,
            pause_percent: 40,
            early_percent: 25,
            restart_percent: 25,
            limits: QueueLimits::default(),
            quiet: Duration::from_millis(1500),
        }
    }
}

/// One step of a script as it runs.
#[derive(Debug, Clone)]
pub enum Step {
    Op(Op),
    Pause(u64),
}

#[derive(Debug, Clone, Default)]
pub struct Round {
    pub steps: Vec<Step>,
    /// The script starts right after the engine does (racing its first scan or catch-up).
    pub early: bool,
    /// The engine is stopped and started again from its cache before this round.
    pub restart: bool,
}

/// What a seed ran, enough to print it as a script.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub backend: Choice,
    pub setup: Vec<Op>,
    pub rounds: Vec<Round>,
}

/// What the engine said while a seed ran.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub applied: u64,
    pub events: u64,
    pub stale: Vec<String>,
    pub failed: Vec<String>,
    /// Freshness values other than `Live` observed after the first pass.
    pub not_live: Vec<Freshness>,
    /// What the engine said, one line each (a failure's report ends with it).
    pub log: Vec<String>,
}

impl Seen {
    fn note(&mut self, msg: &EngineMsg) {
        let mut say = |line: String| {
            if std::env::var_os("DTUI_LIVE_VERBOSE").is_some() {
                eprintln!("{line}");
            }
            self.log.push(line);
        };
        match msg {
            EngineMsg::Applied(d) => {
                say(format!(
                    "batch {} (generation {}, {} events, {} touched, {:?})",
                    d.batch,
                    d.generation,
                    d.events,
                    d.touched.len(),
                    d.elapsed
                ));
                for l in &d.lines {
                    say(format!(
                        "  {:?} {}{} {:+}",
                        l.kind,
                        difftree::q_bytes(&l.path),
                        l.to.as_ref()
                            .map_or_else(String::new, |t| format!(" -> {}", difftree::q_bytes(t))),
                        l.disk
                    ));
                }
            }
            other => say(format!("{other:?}")),
        }
        match msg {
            EngineMsg::Applied(d) => {
                self.applied += 1;
                self.events += d.events;
            }
            EngineMsg::Stale(why) => self.stale.push(why.clone()),
            EngineMsg::Failed(e) => self.failed.push(e.clone()),
            _ => {}
        }
    }

    fn saw(&mut self, f: Freshness) {
        if f != Freshness::Live && self.not_live.last() != Some(&f) {
            self.not_live.push(f);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub case: Case,
    /// The engine's messages up to the failure.
    pub log: Vec<String>,
    /// The round that failed (`None`: the setup or the saved cache at the end).
    pub round: Option<usize>,
    pub problems: Vec<String>,
}

impl Failure {
    /// The first problem's tag (`[size]`, `[missing]`, ...).
    #[must_use]
    pub fn tag(&self) -> String {
        difftree::check::first_tag(&self.problems)
    }

    #[must_use]
    pub fn report(&self, max_problems: usize) -> String {
        let mut s = format!(
            "live seed {} ({}) failed {}: {} problem(s)\n",
            self.case.seed,
            backend_arg(self.case.backend),
            self.round
                .map_or_else(|| "at the end".into(), |r| format!("in round {}", r + 1)),
            self.problems.len()
        );
        for p in self.problems.iter().take(max_problems) {
            let _ = writeln!(s, "  {p}");
        }
        let _ = writeln!(
            s,
            "--- again: DTUI_LIVE_SEEDS={} cargo test --test live {} ---",
            self.case.seed,
            test_name(self.case.backend)
        );
        s.push_str("--- reproduction with the binary ---\n");
        s.push_str(&self.case.script());
        s
    }

    /// The report, then what the engine said (for the failure's file).
    #[must_use]
    pub fn full_report(&self) -> String {
        let mut s = self.report(usize::MAX);
        s.push_str("--- what the engine said ---\n# ");
        s.push_str(&self.log.join("\n# "));
        s.push('\n');
        s
    }
}

/// The `--watch-backend` value of a choice.
#[must_use]
pub fn backend_arg(c: Choice) -> &'static str {
    match c {
        Choice::Auto => "auto",
        Choice::Inotify => "inotify",
        Choice::Notify => "notify",
        Choice::Fanotify => "fanotify",
        Choice::FanotifyMount => "fanotify-mount",
    }
}

fn test_name(c: Choice) -> &'static str {
    match c {
        Choice::Notify => "notify_keeps_the_live_tree_equal_to_a_fresh_scan",
        Choice::FanotifyMount => "fanotify_mount_mark_keeps_the_live_tree_equal_to_a_fresh_scan",
        _ => "fanotify_filesystem_mark_keeps_the_live_tree_equal_to_a_fresh_scan",
    }
}

/// A script's steps as bash lines.
fn steps_shell(steps: &[Step]) -> String {
    let mut s = String::new();
    for step in steps {
        match step {
            Step::Op(op) => s.push_str(&op.shell()),
            Step::Pause(ms) => {
                let _ = write!(s, "sleep {}.{:03}", ms / 1000, ms % 1000);
            }
        }
        s.push('\n');
    }
    s
}

impl Case {
    /// A bash script reproducing the case with the real `dtui watch`.
    #[must_use]
    pub fn script(&self) -> String {
        let b = backend_arg(self.backend);
        let mut s = format!(
            "# dtui live seed {} ({b}): run with bash, dtui on PATH; each round compares \
             liveN.json (the saved cache, not caught up) with freshN.json, and du\n",
            self.seed
        );
        s.push_str("set -e; umask 022\nB=$(mktemp -d /tmp/dtui-live.XXXXXX); chmod 755 \"$B\"; cd \"$B\"\nmkdir root outside; mkdir -m 700 cache\n");
        for op in &self.setup {
            s.push_str(&op.shell());
            s.push('\n');
        }
        let start = |s: &mut String, n: usize, wait: bool| {
            let _ = writeln!(
                s,
                "dtui watch --watch-backend {b} --cache-dir cache root > watch{n}.log & W=$!"
            );
            if wait {
                let _ = writeln!(
                    s,
                    "until grep -q '^tree:' watch{n}.log; do sleep 0.05; done"
                );
            }
        };
        let stop = |s: &mut String, n: usize| {
            let _ = writeln!(s, "sleep 2; kill -INT $W; wait $W");
            let _ = writeln!(
                s,
                "dtui export --no-catch-up --cache-dir cache -o - root > live{n}.json"
            );
            let _ = writeln!(s, "dtui export --no-cache -o - root > fresh{n}.json");
            s.push_str("du -sB1 root; du -sb root\n");
        };
        for (i, r) in self.rounds.iter().enumerate() {
            let n = i + 1;
            let _ = writeln!(s, "# round {n}");
            if i == 0 || r.restart {
                if i > 0 {
                    stop(&mut s, i);
                }
                start(&mut s, n, !r.early);
            }
            s.push_str(&steps_shell(&r.steps));
        }
        stop(&mut s, self.rounds.len());
        s
    }
}

pub fn scan_opts(threads: usize) -> ScanOptions {
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

/// A temp base with `root/`, `outside/` and `cache/`.
fn base_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::DirBuilderExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir");
    // The cache directory private, as dtui requires of one it did not make.
    for (sub, mode) in [("root", 0o755), ("outside", 0o755), ("cache", 0o700)] {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(dir.path().join(sub))
            .expect("mkdir");
    }
    dir
}

/// Starts the script's steps in bash, in `base`, as another process.
pub fn spawn_steps(base: &Path, steps: &[Step]) -> Child {
    let script = format!("set -e; umask 022\n{}", steps_shell(steps));
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(base)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts")
}

/// A running engine and its messages.
struct Live {
    engine: Engine,
    rx: Receiver<EngineMsg>,
    ready: bool,
}

fn start_engine(base: &Path, backend: Choice, settings: &Settings) -> Result<Live, String> {
    let mut opts = EngineOptions::new(cache_opts(base), scan_opts(settings.threads));
    opts.watch = Some(backend);
    opts.watch_required = true;
    opts.limits = settings.limits;
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(&base.join("root"), opts, tx)
        .map_err(|e| format!("[error] the engine did not start: {e}"))?;
    if backend == Choice::Fanotify {
        let what = engine.watching.clone();
        if !matches!(&what, Some(Ok(w)) if w.contains("filesystem mark")) {
            return Err(format!(
                "[error] fanotify: not the filesystem mark: {what:?}"
            ));
        }
    }
    Ok(Live {
        engine,
        rx,
        ready: false,
    })
}

/// Hard limit on waiting for one round to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(180);

impl Live {
    /// Runs `script` (if any) while taking the engine's messages, then waits until the engine
    /// is ready, `Live` and has said nothing for `quiet` since the script ended.
    fn settle(
        &mut self,
        mut script: Option<Child>,
        quiet: Duration,
        seen: &mut Seen,
    ) -> Result<(), String> {
        let t0 = Instant::now();
        let mut last = Instant::now();
        loop {
            match self.rx.recv_timeout(Duration::from_millis(10)) {
                Ok(msg) => {
                    if matches!(msg, EngineMsg::Ready) {
                        self.ready = true;
                    }
                    seen.note(&msg);
                    last = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("[error] the engine's thread ended".into());
                }
            }
            let f = self.engine.freshness();
            if self.ready {
                seen.saw(f);
            }
            if let Some(child) = &mut script
                && let Some(status) = child.try_wait().expect("try_wait")
            {
                let child = script.take().expect("just matched");
                let err = child
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                if !status.success() {
                    return Err(format!("[script] the script failed: {status}: {err}"));
                }
                last = Instant::now();
            }
            if script.is_none() && self.ready && f == Freshness::Live && last.elapsed() >= quiet {
                return Ok(());
            }
            if t0.elapsed() > SETTLE_LIMIT {
                return Err(format!(
                    "[quiet] not quiet after {SETTLE_LIMIT:?} (ready {}, freshness {f:?}, script running {})",
                    self.ready,
                    script.is_some()
                ));
            }
        }
    }
}

/// The live tree against a fresh scan and `du`, plus what the live tree must satisfy on its
/// own (no `STALE` left once it is live again). Returns the fresh dump for later checks.
fn judge(base: &Path, live: &Live, threads: usize, problems: &mut Vec<String>) -> Option<Dump> {
    let root = base.join("root");
    let dump = {
        let t = tree::read(&live.engine.tree);
        let stale: Vec<_> = t
            .live_ids()
            .filter(|&id| t.flags(id) & flags::STALE != 0)
            .take(3)
            .map(|id| t.path_of(id).display().to_string())
            .collect();
        if !stale.is_empty() {
            problems.push(format!(
                "[stale] the tree is live but marked stale at {stale:?}"
            ));
        }
        dump_tree(&t)
    };
    let fresh = match scan::scan_path(&root, &scan_opts(threads), &Progress::new()) {
        Ok((t, _)) => dump_tree(&t),
        Err(e) => {
            problems.push(format!("[error] the fresh scan failed: {e}"));
            return None;
        }
    };
    compare_as(&dump, &fresh, "live", problems);
    let (a, d) = (dump.canonical_root.0, dump.canonical_root.1);
    let du_disk = du(&root, false);
    let du_apparent = du(&root, true);
    if (a, d) != (du_apparent, du_disk) {
        problems.push(format!(
            "[du] live root (apparent, disk) ({a}, {d}) != du -sb, -sB1 ({du_apparent}, {du_disk})"
        ));
    }
    Some(fresh)
}

/// `compare`, its "catch-up" side named `what`.
fn compare_as(side: &Dump, fresh: &Dump, what: &str, problems: &mut Vec<String>) {
    let mut p = Vec::new();
    compare(side, fresh, &mut p);
    problems.extend(p.into_iter().map(|s| s.replace("catch-up", what)));
}

/// `du -sB1` or `du -sb` in bytes.
pub fn du(path: &Path, apparent: bool) -> u64 {
    let out = Command::new("du")
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

/// The saved cache, reopened without a catch-up: first as saved (the arena mapped), then from
/// the database alone (the arena removed), each against the fresh scan.
fn judge_saved(base: &Path, fresh: &Dump, problems: &mut Vec<String>) {
    let root = base.join("root");
    for from_db in [false, true] {
        let what = if from_db { "database" } else { "saved" };
        if from_db {
            let canon = root.canonicalize().expect("the root");
            let paths = CachePaths::new(&base.join("cache"), &canon);
            let _ = std::fs::remove_file(&paths.arena);
        }
        match open_engine(&root, &cache_opts(base), &ScanOptions::default(), false) {
            Ok(s) => {
                if !s.engine.origin.from_cache() {
                    problems.push(format!(
                        "[saved] the {what} cache was not used: {}",
                        s.engine.origin
                    ));
                }
                let d = dump_tree(&tree::read(&s.engine.tree));
                compare_as(&d, fresh, what, problems);
                let _ = s.engine.shutdown();
            }
            Err(e) => problems.push(format!("[saved] opening the {what} cache failed: {e}")),
        }
    }
}

/// A seed's two bases: the live one (watched) and its dry replica (where scripts are made).
pub struct Bases {
    pub live: tempfile::TempDir,
    dry: tempfile::TempDir,
    pub setup: Vec<Op>,
    times: std::collections::BTreeMap<PathBuf, (i64, u32)>,
}

impl Bases {
    /// Generates the random tree in the live base and copies its ops to the replica.
    pub fn new(rng: &mut Rng, settings: &Settings) -> Bases {
        let live = base_dir("dtui-live");
        let dry = base_dir("dtui-dry");
        let mut g = Gen::new(live.path(), Rng::new(rng.next_u64()));
        let entries = rng.range(settings.entries.0, settings.entries.1) as usize;
        let backdate = rng.chance(85);
        generate::setup(&mut g, Shape { entries, backdate });
        for op in &g.ops {
            op.apply(dry.path())
                .expect("the dry replica takes the setup");
        }
        let (setup, times) = (g.ops, g.setup_times);
        Bases {
            live,
            dry,
            setup,
            times,
        }
    }

    #[must_use]
    pub fn base(&self) -> &Path {
        self.live.path()
    }

    /// The steps of one round: a script generated (and applied) on the dry replica, with
    /// pauses mixed in when asked.
    pub fn steps(&self, rng: &mut Rng, settings: &Settings, pauses: bool) -> Vec<Step> {
        let who = Personality {
            ops: rng.range(settings.ops.0, settings.ops.1) as usize,
            set_back: *rng.pick(&[0, 50, 100, 100]).expect("choices"),
            chmod: 1,
            touch: 3,
        };
        let mut g = Gen::new(self.dry.path(), Rng::new(rng.next_u64()));
        g.setup_times = self.times.clone();
        generate::script(&mut g, who);
        let mut nudges = unseen_write_nudges(self.dry.path(), &g.written_linked);
        nudges.extend(moved_out_link_nudges(self.dry.path(), &g.made_linked));
        let mut steps = Vec::new();
        for op in g.ops {
            steps.push(Step::Op(op));
            if pauses && rng.chance(15) {
                steps.push(Step::Pause(rng.range(10, 200)));
            }
        }
        steps.extend(nudges.into_iter().map(Step::Op));
        steps
    }
}

/// A write through a name no backend reports for the inode's other names changes an inode
/// inside the root, and nothing names it there: a name outside the root (the kernel names the
/// outside path; a known limit, see `tests/watch.rs`), or a new name gone again by the end of
/// the round (`ln a b; echo x >> b; rm b` within one quiet window: no batch sees `b`, whose
/// events are all the engine hears; also a documented limit). The script then changes the
/// inside names' mode to what it is (an attribute event, nothing else), as a user would touch
/// them, so the rest of the seed is still checked. Returns those `chmod`s (each is in the
/// reproduction). A written name that still holds its inode at the end needs none: the
/// batch that sees it must find the other names.
fn unseen_write_nudges(dry: &Path, written: &[(PathBuf, u64)]) -> Vec<Op> {
    use std::os::unix::fs::MetadataExt;
    let inos: std::collections::HashSet<u64> = written
        .iter()
        .filter(|(p, ino)| {
            p.starts_with("outside")
                || std::fs::symlink_metadata(dry.join(p)).map(|m| m.ino()).ok() != Some(*ino)
        })
        .map(|&(_, ino)| ino)
        .collect();
    if inos.is_empty() {
        return Vec::new();
    }
    generate::list(dry, "root")
        .into_iter()
        .filter(|e| e.kind == generate::EKind::File && inos.contains(&e.ino))
        .map(|e| Op::Chmod(e.path, e.mode))
        .collect()
}

/// A name made as a hard link and moved out of the root before any batch saw it (`cp -al a
/// b; mv b/f /elsewhere` within one quiet window) leaves the inode's names inside the root
/// with a link count no event corrects: the kernel reports the link count's change by the
/// file's handle only, and the removal names a path the tree never held (a documented
/// limit: the totals stay exact, since the other name is outside, and the count is right
/// again at the next catch-up or when anything touches those names). As for unseen writes,
/// the script then touches the inside names' mode. Only inodes one of whose made names no
/// longer holds them and that have a name outside the root at the end need it.
fn moved_out_link_nudges(dry: &Path, made: &[(PathBuf, u64)]) -> Vec<Op> {
    use std::os::unix::fs::MetadataExt;
    let gone: std::collections::HashSet<u64> = made
        .iter()
        .filter(|(p, ino)| {
            std::fs::symlink_metadata(dry.join(p)).map(|m| m.ino()).ok() != Some(*ino)
        })
        .map(|&(_, ino)| ino)
        .collect();
    if gone.is_empty() {
        return Vec::new();
    }
    let inside = generate::list(dry, "root");
    let mut names: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for e in &inside {
        if e.kind != generate::EKind::Dir {
            *names.entry(e.ino).or_default() += 1;
        }
    }
    inside
        .into_iter()
        .filter(|e| {
            e.kind != generate::EKind::Dir
                && gone.contains(&e.ino)
                && names.get(&e.ino).copied().unwrap_or(0) < e.nlink
        })
        .filter_map(|e| {
            if e.kind == generate::EKind::File {
                return Some(Op::Chmod(e.path, e.mode));
            }
            // `cp -al` links symlinks too; a chmod would follow one: its own times are set
            // to what they are instead (`touch -h`).
            let m = std::fs::symlink_metadata(dry.join(&e.path)).ok()?;
            Some(Op::Touch(
                e.path,
                m.mtime(),
                u32::try_from(m.mtime_nsec()).unwrap_or(0),
            ))
        })
        .collect()
}

impl Bases {}

/// Generates the case of `seed` for `backend` and runs it; `Ok` says what the engine said.
/// A failure of `case` in `round` (`None`: at the end), with what the engine said.
#[expect(
    clippy::unnecessary_box_returns,
    reason = "the runs return Result<_, Box<Failure>>: a Failure is large"
)]
fn failure(case: &Case, said: &Seen, round: Option<usize>, problems: Vec<String>) -> Box<Failure> {
    Box::new(Failure {
        case: case.clone(),
        log: said.log.clone(),
        round,
        problems,
    })
}

/// Runs one round's steps against the engine, waits for it to settle and judges the live
/// tree: the fresh scan's dump, or what differed.
fn play_round(
    base: &Path,
    l: &mut Live,
    steps: &[Step],
    settings: &Settings,
    said: &mut Seen,
) -> Result<Option<Dump>, Vec<String>> {
    let child = spawn_steps(base, steps);
    l.settle(Some(child), settings.quiet, said)
        .map_err(|p| vec![p])?;
    let mut problems: Vec<String> = said
        .failed
        .iter()
        .map(|e| format!("[failed] the engine said: {e}"))
        .collect();
    let fresh = judge(base, l, settings.threads, &mut problems);
    if problems.is_empty() {
        Ok(fresh)
    } else {
        Err(problems)
    }
}

/// Shuts the engine down and judges the cache it saved against the last fresh dump.
fn close_and_judge(base: &Path, live: Option<Live>, fresh: Option<&Dump>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(l) = live {
        let saved = l.engine.shutdown();
        if !matches!(saved, Saved::Clean { .. }) {
            problems.push(format!("[saved] the shutdown did not save: {saved:?}"));
        }
    }
    if let Some(fresh) = fresh {
        judge_saved(base, fresh, &mut problems);
    }
    problems
}

pub fn run_seed(seed: u64, backend: Choice, settings: &Settings) -> Result<Seen, Box<Failure>> {
    let mut rng = Rng::new(seed);
    let bases = Bases::new(&mut rng, settings);
    let base = bases.base();
    let mut case = Case {
        seed,
        backend,
        setup: bases.setup.clone(),
        rounds: Vec::new(),
    };
    let pauses = rng.chance(settings.pause_percent);
    let mut said = Seen::default();
    let mut live: Option<Live> = None;
    let mut fresh = None;
    for r in 0..settings.rounds {
        let early = r == 0 && rng.chance(settings.early_percent);
        let restart = r > 0 && rng.chance(settings.restart_percent);
        let steps = bases.steps(&mut rng, settings, pauses);
        case.rounds.push(Round {
            steps: steps.clone(),
            early,
            restart,
        });
        if restart && let Some(l) = live.take() {
            let saved = l.engine.shutdown();
            if !matches!(saved, Saved::Clean { .. }) {
                return Err(failure(
                    &case,
                    &said,
                    Some(r),
                    vec![format!(
                        "[saved] the restart's shutdown did not save: {saved:?}"
                    )],
                ));
            }
        }
        let mut l = match live.take() {
            Some(l) => l,
            None => start_engine(base, backend, settings)
                .map_err(|p| failure(&case, &said, Some(r), vec![p]))?,
        };
        if !(early || restart || l.ready) {
            l.settle(None, Duration::ZERO, &mut said)
                .map_err(|p| failure(&case, &said, Some(r), vec![p]))?;
        }
        fresh = play_round(base, &mut l, &steps, settings, &mut said)
            .map_err(|p| failure(&case, &said, Some(r), p))?;
        live = Some(l);
    }
    let problems = close_and_judge(base, live, fresh.as_ref());
    if !problems.is_empty() {
        return Err(failure(&case, &said, None, problems));
    }
    Ok(said)
}

/// Where failing seeds' reproductions are written.
#[must_use]
pub fn out_dir() -> PathBuf {
    std::env::temp_dir().join("dtui-live")
}

/// Runs seeds on `jobs` threads (much of a case is waiting for quiet), printing one line per
/// seed and writing each failure's full report into `dir`; returns the failures, by seed.
pub fn run_seeds(
    seeds: &[u64],
    backend: Choice,
    settings: &Settings,
    jobs: usize,
    dir: &Path,
) -> Vec<Failure> {
    let next = std::sync::Mutex::new(seeds.iter());
    let failures = std::sync::Mutex::new(Vec::new());
    let _ = std::fs::create_dir_all(dir);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let Some(&seed) = next.lock().expect("seeds").next() else {
                        return;
                    };
                    let t0 = Instant::now();
                    match run_seed(seed, backend, settings) {
                        Ok(said) => println!(
                            "live seed {seed} ({}): ok in {:.1} s, {} batches of {} events, {} stale, freshness seen {:?}",
                            backend_arg(backend),
                            t0.elapsed().as_secs_f64(),
                            said.applied,
                            said.events,
                            said.stale.len(),
                            said.not_live
                        ),
                        Err(f) => {
                            let file = dir.join(format!("seed-{}-{seed}.sh", backend_arg(backend)));
                            let _ = std::fs::write(&file, f.full_report());
                            println!(
                                "live seed {seed} ({}): FAIL {} [{}]",
                                backend_arg(backend),
                                f.problems.first().map_or("", String::as_str),
                                file.display()
                            );
                            failures.lock().expect("failures").push(*f);
                        }
                    }
                }
            });
        }
    });
    let mut f = failures.into_inner().expect("failures");
    f.sort_by_key(|f| f.case.seed);
    f
}

/// A flood larger than the watch channel and the kernel queue while the engine is stalled
/// (the test holds the tree's write lock, so the engine blocks in its next apply and stops
/// reading events): the events lost must be seen as stale, re-verified, and end equal.
pub fn stalled_flood(backend: Choice, files: usize) -> Result<Seen, String> {
    let dir = base_dir("dtui-flood");
    let base = dir.path();
    let flood = base.join("root/flood");
    std::fs::create_dir(&flood).expect("mkdir");
    for i in 0..20 {
        std::fs::write(base.join(format!("root/keep{i}")), vec![b'k'; i * 1000]).expect("write");
    }
    let settings = Settings::ci();
    let mut live = start_engine(base, backend, &settings)?;
    let mut seen = Seen::default();
    live.settle(None, Duration::ZERO, &mut seen)?;
    let script = format!(
        "seq -f 'f%g' {files} | xargs touch && rm -f ../keep3 && head -c 100000 /dev/zero > big"
    );
    let child = {
        let _stall = disktracker::tree::write(&live.engine.tree);
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("cd flood && {script}"))
            .current_dir(base.join("root"))
            .spawn()
            .expect("bash starts");
        let status = child.wait().expect("wait");
        if !status.success() {
            return Err(format!("[script] the flood failed: {status}"));
        }
        child
    };
    drop(child);
    live.settle(None, settings.quiet, &mut seen)?;
    let mut problems = Vec::new();
    judge(base, &live, settings.threads, &mut problems);
    let _ = live.engine.shutdown();
    if problems.is_empty() {
        Ok(seen)
    } else {
        Err(problems.join("\n"))
    }
}

/// Runs a fixed case: `setup` applied, the engine started and settled, then each round's ops
/// as a script, the live tree judged after each, and the saved cache at the end.
pub fn run_fixed(backend: Choice, setup: &[Op], rounds: &[Vec<Op>]) -> Result<Seen, Box<Failure>> {
    run_fixed_with(backend, setup, rounds, false)
}

/// `run_fixed`, the engine stopped and started again from its cache before every round but
/// the first when `restarts`.
pub fn run_fixed_with(
    backend: Choice,
    setup: &[Op],
    rounds: &[Vec<Op>],
    restarts: bool,
) -> Result<Seen, Box<Failure>> {
    let settings = Settings::ci();
    let dir = base_dir("dtui-live-fixed");
    let base = dir.path();
    for op in setup {
        op.apply(base).expect("the setup applies");
    }
    let mut case = Case {
        seed: 0,
        backend,
        setup: setup.to_vec(),
        rounds: Vec::new(),
    };
    let mut said = Seen::default();
    let mut l =
        start_engine(base, backend, &settings).map_err(|p| failure(&case, &said, None, vec![p]))?;
    l.settle(None, Duration::ZERO, &mut said)
        .map_err(|p| failure(&case, &said, None, vec![p]))?;
    let mut fresh = None;
    for (r, ops) in rounds.iter().enumerate() {
        let steps: Vec<Step> = ops.iter().cloned().map(Step::Op).collect();
        let restart = restarts && r > 0;
        case.rounds.push(Round {
            steps: steps.clone(),
            early: false,
            restart,
        });
        if restart {
            let saved = l.engine.shutdown();
            if !matches!(saved, Saved::Clean { .. }) {
                let why = format!("[saved] the restart's shutdown did not save: {saved:?}");
                return Err(failure(&case, &said, Some(r), vec![why]));
            }
            l = start_engine(base, backend, &settings)
                .map_err(|p| failure(&case, &said, Some(r), vec![p]))?;
            l.settle(None, Duration::ZERO, &mut said)
                .map_err(|p| failure(&case, &said, Some(r), vec![p]))?;
        }
        fresh = play_round(base, &mut l, &steps, &settings, &mut said)
            .map_err(|p| failure(&case, &said, Some(r), p))?;
    }
    let problems = close_and_judge(base, Some(l), fresh.as_ref());
    if !problems.is_empty() {
        return Err(failure(&case, &said, None, problems));
    }
    Ok(said)
}
