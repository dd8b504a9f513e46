//! What changed: a bounded size history per directory, and the baselines it answers.
//!
//! The engine's session keeps a `Recorder`: at each batch (live, or a catch-up's) it turns the
//! directories whose totals the batch changed (the batch's upserted directories: the changed
//! ones and their ancestors) into samples, written in the batch's own transaction. Samples are
//! keyed by the path relative to the root, not by entry id: ids are stable while a cache
//! lineage lasts, but a rescan renumbers them and a freed slot is reused by anything, and a
//! deleted directory must still be named. Only "tracked" directories are sampled (the top
//! `TRACK_DEPTH` levels, and any directory of `TRACK_BYTES` or more, and any directory once
//! tracked), only when their totals changed, and coalesced per minute (one row per directory
//! and minute, replaced in place), then thinned (`store::THINNING`). A deleted or moved-away
//! directory gets a tombstone (`items = GONE`).
//!
//! A baseline is each directory's newest sample at or before a moment: the start of this
//! session ("since the previous session", `Since::Last`) or `now - period`. The change of a
//! directory is its current total minus its baseline; a tracked-depth directory absent from
//! the baseline is new.

mod recorder;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use recorder::Recorder;

use crate::store::writer::{StoreCmd, StoreHandle};
pub use crate::store::{Base, Dirs, GONE, Latest, Sample, THIN_EVERY};
use crate::store::{Store, StoreError};
use crate::tree::{Kind, NodeId, Tree};

/// Directories this deep or less (the root is 0) are always tracked.
pub const TRACK_DEPTH: usize = 3;
/// Directories this large or more are tracked at any depth.
pub const TRACK_BYTES: u64 = 64 * 1024 * 1024;

#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A directory's path relative to the root, as the history keys it.
#[must_use]
pub fn rel_path(tree: &Tree, id: NodeId) -> Vec<u8> {
    let mut chain = Vec::new();
    let mut cur = Some(id);
    while let Some(c) = cur {
        if c == tree.root() {
            break;
        }
        chain.push(c);
        cur = tree.parent(c);
    }
    let mut out = Vec::new();
    for &c in chain.iter().rev() {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(tree.name(c));
    }
    out
}

/// Depth of a relative path (the root, empty, is 0).
#[must_use]
pub fn depth_of(rel: &[u8]) -> usize {
    if rel.is_empty() {
        0
    } else {
        rel.split(|&b| b == b'/').count()
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + name.len() + 1);
    p.extend_from_slice(parent);
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Since when changes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Since {
    /// Since the previous session ended (this session's start).
    Last,
    /// Over this period up to now.
    Ago(Duration),
}

impl Since {
    /// The browser's `p` cycle.
    pub const CYCLE: [Since; 5] = [
        Since::Last,
        Since::Ago(Duration::from_secs(3600)),
        Since::Ago(Duration::from_secs(86_400)),
        Since::Ago(Duration::from_secs(7 * 86_400)),
        Since::Ago(Duration::from_secs(30 * 86_400)),
    ];

    /// The next period of `CYCLE`.
    #[must_use]
    pub fn next(self) -> Since {
        let i = Self::CYCLE.iter().position(|&s| s == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }
}

impl std::fmt::Display for Since {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Since::Last => write!(f, "since the previous session"),
            Since::Ago(d) => write!(f, "in the last {}", short_duration(*d)),
        }
    }
}

/// `90s`, `30m`, `1h`, `2d`, `1w`, the largest whole unit.
#[must_use]
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// `last`, or a number and a unit: `90s`, `30m`, `1h`, `2d`, `1w`.
pub fn parse_since(s: &str) -> Result<Since, String> {
    if s == "last" {
        return Ok(Since::Last);
    }
    let bad = || format!("`{s}`: expected `last` or a duration such as 30m, 1h, 2d, 1w");
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).filter(|&s| s > 0).ok_or_else(bad)?;
    Ok(Since::Ago(Duration::from_secs(secs)))
}

/// Where a session's history is, for whoever loads a baseline off its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySource {
    pub db: PathBuf,
    /// When this run started.
    pub session_start_ms: i64,
    /// This run is a session (see `EngineOptions::history_session`): "since the previous
    /// session" counts from its start. Else from the newest session's start, or, before the
    /// first, from the history's beginning.
    pub own_session: bool,
}

/// The directories as they were at a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    pub since: Option<Since>,
    /// The moment it describes (ms since the epoch).
    pub at_ms: i64,
    /// The period reached back before the history began: the baseline is its oldest state.
    pub clamped: bool,
    pub dirs: Dirs,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no size history before this session yet (the next run will have one)")]
    NoHistory,
}

/// Reads the baseline for `since` from the session's database (a read-only connection of its
/// own: call it off any thread that must not wait).
pub fn load_baseline(
    src: &HistorySource,
    since: Since,
    now: i64,
) -> Result<Baseline, HistoryError> {
    let store = Store::open_read_only(&src.db)?;
    let boundary = if src.own_session {
        src.session_start_ms
    } else {
        store
            .session_before(src.session_start_ms)?
            .unwrap_or(i64::MIN / 2)
    };
    baseline_from(&store, src.session_start_ms, boundary, since, now)
}

/// `boundary`: where "since the previous session" begins; `session_start_ms`: this run's
/// start (a baseline must be older).
fn baseline_from(
    store: &Store,
    session_start_ms: i64,
    boundary: i64,
    since: Since,
    now: i64,
) -> Result<Baseline, HistoryError> {
    let wanted = match since {
        Since::Last => boundary - 1,
        Since::Ago(d) => now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
    };
    let (_, first) = store.baseline_at(wanted)?;
    let Some(first) = first.filter(|&f| f < session_start_ms || since != Since::Last) else {
        return Err(HistoryError::NoHistory);
    };
    let (at, clamped) = if wanted < first {
        (first, true)
    } else {
        (wanted, false)
    };
    let (dirs, _) = store.baseline_at(at)?;
    Ok(Baseline {
        since: Some(since),
        at_ms: at,
        clamped,
        dirs,
    })
}

/// A directory's change against a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Grew (positive) or shrank by this many bytes.
    Bytes(i128),
    /// Not there at the baseline.
    New,
    /// There at the baseline, gone now.
    Gone,
}

/// The change of directory `id` against `base`, by disk usage or apparent size; None when the
/// history cannot tell (a deep, small directory that was not tracked then).
#[must_use]
pub fn change_of(tree: &Tree, id: NodeId, base: &Baseline, apparent: bool) -> Option<Change> {
    if tree.kind(id) != Kind::Dir {
        return None;
    }
    let rel = rel_path(tree, id);
    let t = tree.totals(id);
    let now = if apparent { t.apparent } else { t.disk };
    match base.dirs.get(&rel) {
        Some(b) => {
            let then = if apparent { b.apparent } else { b.disk };
            Some(Change::Bytes(i128::from(now) - i128::from(then)))
        }
        None if depth_of(&rel) <= TRACK_DEPTH => Some(Change::New),
        None => None,
    }
}

/// One line of `dtui changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub dir: Vec<u8>,
    pub bytes: i128,
    pub change: Change,
}

/// Every directory that changed against `base`: those of the baseline (grown, shrunk or gone)
/// and the tracked-depth ones that are new; largest absolute change first, unchanged left out.
#[must_use]
pub fn changed_dirs(tree: &Tree, base: &Baseline, apparent: bool) -> Vec<Changed> {
    let pick = |d: u64, a: u64| if apparent { a } else { d };
    let mut out = Vec::new();
    for (rel, b) in &base.dirs {
        let then = i128::from(pick(b.disk, b.apparent));
        match lookup_rel(tree, rel) {
            Some(id) if tree.kind(id) == Kind::Dir => {
                let t = tree.totals(id);
                let d = i128::from(pick(t.disk, t.apparent)) - then;
                if d != 0 {
                    out.push(Changed {
                        dir: rel.clone(),
                        bytes: d,
                        change: Change::Bytes(d),
                    });
                }
            }
            _ => out.push(Changed {
                dir: rel.clone(),
                bytes: -then,
                change: Change::Gone,
            }),
        }
    }
    let mut stack = vec![(tree.root(), Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        if depth_of(&path) >= TRACK_DEPTH {
            continue;
        }
        for c in tree.children(dir) {
            if tree.kind(c) != Kind::Dir {
                continue;
            }
            let cp = join(&path, tree.name(c));
            if !base.dirs.contains_key(&cp) {
                let t = tree.totals(c);
                out.push(Changed {
                    dir: cp.clone(),
                    bytes: i128::from(pick(t.disk, t.apparent)),
                    change: Change::New,
                });
            }
            stack.push((c, cp));
        }
    }
    out.sort_by(|a, b| {
        b.bytes
            .unsigned_abs()
            .cmp(&a.bytes.unsigned_abs())
            .then_with(|| a.dir.cmp(&b.dir))
    });
    out
}

/// The node at a path relative to the root.
#[must_use]
pub fn lookup_rel(tree: &Tree, rel: &[u8]) -> Option<NodeId> {
    let mut id = tree.root();
    if rel.is_empty() {
        return Some(id);
    }
    for name in rel.split(|&b| b == b'/') {
        id = tree.child_by_name(id, name)?;
    }
    Some(id)
}

/// A session's history: its recorder, where it is stored, and when it was last thinned.
/// The recorder needs the newest samples from the store, which the store's thread reads
/// after the tree is shown (`StoreCmd::BeginSession`): it is made on first use.
#[derive(Debug)]
pub struct SessionHistory {
    recorder: Option<Recorder>,
    /// The newest samples, on their way from the store's thread.
    latest: Option<crossbeam_channel::Receiver<Latest>>,
    /// The tree was loaded from the cache and its state not yet stamped (see `sync_loaded`).
    loaded: bool,
    pub source: HistorySource,
    last_thin: std::time::Instant,
}

impl SessionHistory {
    /// Begins recording in the store behind `store` (at `db`): the newest samples known and,
    /// for a `new_session` (see `HistorySource::own_session`), its marker and a thinning, all
    /// on the store's thread. `loaded`: the tree came from the
    /// cache (see `sync_loaded`).
    #[must_use]
    pub fn begin(
        store: &StoreHandle,
        db: &Path,
        loaded: bool,
        new_session: bool,
    ) -> SessionHistory {
        let start = now_ms();
        let (reply, latest) = crossbeam_channel::bounded(1);
        store.send(StoreCmd::BeginSession {
            start_ms: start,
            new_session,
            reply,
        });
        SessionHistory {
            recorder: None,
            latest: Some(latest),
            loaded,
            source: HistorySource {
                db: db.to_path_buf(),
                session_start_ms: start,
                own_session: new_session,
            },
            last_thin: std::time::Instant::now(),
        }
    }

    /// The recorder, with what the store knows once its thread has answered. `wait`: wait
    /// for that answer (a few seconds at most; only where no lock the browser needs is
    /// held). Without it, a recorder made before the answer starts without it and takes it
    /// in when it comes: a batch applied under the tree's write lock never waits on SQLite
    /// (a directory's first sample may then repeat what is stored, which is harmless).
    pub fn recorder(&mut self, wait: bool) -> &mut Recorder {
        let start = self.source.session_start_ms;
        let rec = self
            .recorder
            .get_or_insert_with(|| Recorder::new(start, Vec::new()));
        if let Some(rx) = &self.latest {
            let answer = if wait {
                rx.recv_timeout(Duration::from_secs(5))
                    .map_err(|e| e.is_disconnected())
            } else {
                rx.try_recv().map_err(|e| e.is_disconnected())
            };
            match answer {
                Ok(known) => {
                    rec.learn(known);
                    self.latest = None;
                }
                Err(true) => self.latest = None, // the store's thread is gone
                Err(false) => {}                 // not yet
            }
        }
        rec
    }

    /// A loaded tree is the state the previous session ended with: what the history lacks
    /// of it (a cache from before the history, a crash) is stamped before this session. Once,
    /// before the tree first changes; nothing for a scanned tree.
    pub fn sync_loaded(&mut self, tree: &Tree) -> Vec<Sample> {
        if !std::mem::take(&mut self.loaded) {
            return Vec::new();
        }
        // Just before this session: the previous one ended with this state, and its own
        // samples are all older (`updated_at` has whole seconds only, which could put it
        // before them).
        let at = self.source.session_start_ms - 1;
        self.recorder(true).sync_all(tree, at)
    }

    /// Is it time to thin again?
    pub fn thin_due(&mut self) -> bool {
        if self.last_thin.elapsed() >= THIN_EVERY {
            self.last_thin = std::time::Instant::now();
            return true;
        }
        false
    }
}
