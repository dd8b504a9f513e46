//! The OpenMetrics text a scrape gets: the exported directories' totals, read under each
//! tree's read lock, and each engine's health. Written by hand (the format is a few lines of
//! rules) so that a scrape allocates one string and walks only the chosen series.
//!
//! Names are raw bytes: a label value is the name as `path::display_name` shows it (a byte
//! that is not UTF-8 as `\xff`, a newline as `\n`, a backslash as `\\`), then escaped as the
//! format wants (`\\`, `\"`, `\n`). So two different names never give the same label, and the
//! label of a name is the same here as on the terminal, once the format's escaping is undone.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::engine::{EngineMsg, Freshness};
use crate::path::display_name;
use crate::tree::{self, Totals};

use super::RootState;

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends `bytes` (a name or a path) as a label value, without the quotes.
pub fn push_label_value(out: &mut String, bytes: &[u8]) {
    for c in display_name(bytes).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// What one root's engine said, counted for the health metrics.
#[derive(Debug)]
pub struct RootStats {
    events: AtomicU64,
    batches: AtomicU64,
    lost: AtomicU64,
    stale: AtomicU64,
    /// Nanoseconds from `since` to the last batch applied, `u64::MAX` before the first.
    last_batch: AtomicU64,
    since: Instant,
}

impl Default for RootStats {
    fn default() -> RootStats {
        RootStats {
            events: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            last_batch: AtomicU64::new(u64::MAX),
            since: Instant::now(),
        }
    }
}

impl RootStats {
    /// Counts what `msg` says.
    pub fn note(&self, msg: &EngineMsg) {
        match msg {
            // Batch 0 is a reconcile's delta, not a watch batch.
            EngineMsg::Applied(d) if d.batch > 0 => {
                self.events.fetch_add(d.events, Ordering::Relaxed);
                self.batches.fetch_add(1, Ordering::Relaxed);
                let at = self
                    .since
                    .elapsed()
                    .as_nanos()
                    .min(u128::from(u64::MAX - 1)) as u64;
                self.last_batch.store(at, Ordering::Relaxed);
            }
            EngineMsg::Stale(why) => {
                self.stale.fetch_add(1, Ordering::Relaxed);
                if lost_events(why) {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// Seconds since the last batch was applied, if one was.
    fn last_batch_age(&self) -> Option<f64> {
        let at = self.last_batch.load(Ordering::Relaxed);
        (at != u64::MAX).then(|| {
            self.since
                .elapsed()
                .saturating_sub(std::time::Duration::from_nanos(at))
                .as_secs_f64()
        })
    }
}

/// Does a stale reason say events were lost (a kernel queue overflow, or the engine's queue
/// collapsing into a rescan of the root)? Once per loss: the engine says it twice for a kernel
/// overflow (when it is seen, `...; verifying again`, and when the root's rescan starts), and
/// only the second for its own queue, so the first is not counted.
fn lost_events(why: &str) -> bool {
    const LOST: &str = "events were lost (queue overflow)";
    why.strip_prefix(LOST)
        .is_some_and(|rest| rest.is_empty() || rest == "; re-verifying shortly")
}

pub(super) fn state_name(f: Freshness) -> &'static str {
    match f {
        Freshness::Scanning => "scanning",
        Freshness::Stale => "stale",
        Freshness::Verifying => "verifying",
        Freshness::Fresh => "fresh",
        Freshness::Live => "live",
    }
}

const STATES: [Freshness; 5] = [
    Freshness::Scanning,
    Freshness::Stale,
    Freshness::Verifying,
    Freshness::Fresh,
    Freshness::Live,
];

/// A family of directory series: its name, help, and which total it reports.
type DirFamily = (&'static str, &'static str, fn(&Totals) -> u64);
/// A family of per-root counters: its name (without `_total`), help, and which count.
type Counter = (&'static str, &'static str, fn(&RootStats) -> u64);

/// A metric family's header lines.
fn family(out: &mut String, name: &str, kind: &str, unit: Option<&str>, help: &str) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(unit) = unit {
        let _ = writeln!(out, "# UNIT {name} {unit}");
    }
    let _ = writeln!(out, "# HELP {name} {help}");
}

/// The whole scrape: every root's directories, then every root's health, then `# EOF`.
pub fn render(roots: &[std::sync::Arc<RootState>], out: &mut String) {
    // Every family's samples are contiguous (the format requires it), so each root's totals
    // are copied out under its read lock first: one lock per root per scrape.
    let mut values: Vec<Vec<(usize, Totals)>> = Vec::with_capacity(roots.len());
    let mut sets = Vec::with_capacity(roots.len());
    let mut entries = Vec::with_capacity(roots.len());
    for r in roots {
        let set = r.series();
        let t = tree::read(&r.tree);
        let v: Vec<(usize, Totals)> = set
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| t.resolve(s.node).map(|id| (i, t.totals(id))))
            .collect();
        entries.push(t.len());
        drop(t);
        values.push(v);
        sets.push(set);
    }
    let dirs: [DirFamily; 3] = [
        (
            "dtui_directory_disk_bytes",
            "Disk usage of a directory and everything below it, as du -sB1 counts it.",
            |t| t.disk,
        ),
        (
            "dtui_directory_apparent_bytes",
            "Apparent size of a directory and everything below it, as du -sb counts it.",
            |t| t.apparent,
        ),
        (
            "dtui_directory_entries",
            "Entries below a directory (files, directories, links, others), itself not included.",
            |t| t.items,
        ),
    ];
    for (name, help, get) in dirs {
        let unit = name.ends_with("_bytes").then_some("bytes");
        family(out, name, "gauge", unit, help);
        for (set, v) in sets.iter().zip(&values) {
            for (i, totals) in v {
                let _ = writeln!(out, "{name}{{{}}} {}", set.series[*i].labels, get(totals));
            }
        }
    }
    health(roots, &sets, &entries, out);
    out.push_str("# EOF\n");
}

fn health(
    roots: &[std::sync::Arc<RootState>],
    sets: &[std::sync::Arc<super::series::SeriesSet>],
    entries: &[u64],
    out: &mut String,
) {
    family(
        out,
        "dtui_state",
        "gauge",
        None,
        "Where the tree stands against the disk: 1 for the state it is in (scanning, stale, verifying, fresh, live).",
    );
    for r in roots {
        let now = (r.freshness)();
        for s in STATES {
            let _ = writeln!(
                out,
                "dtui_state{{{},state=\"{}\"}} {}",
                r.label,
                state_name(s),
                u8::from(s == now)
            );
        }
    }
    let counters: [Counter; 4] = [
        (
            "dtui_events",
            "File system events folded into the batches applied.",
            |s| s.events.load(Ordering::Relaxed),
        ),
        (
            "dtui_batches",
            "Batches of events applied to the tree.",
            |s| s.batches.load(Ordering::Relaxed),
        ),
        (
            "dtui_lost_events",
            "Times events were lost (a queue overflowed), each followed by a re-verification of the root.",
            |s| s.lost.load(Ordering::Relaxed),
        ),
        (
            "dtui_stale",
            "Times the tree was said to be possibly out of date, for any reason (events lost, the watcher stopped, the cache's disk full).",
            |s| s.stale.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in counters {
        family(out, name, "counter", None, help);
        for r in roots {
            let _ = writeln!(out, "{name}_total{{{}}} {}", r.label, get(&r.stats));
        }
    }
    family(
        out,
        "dtui_last_batch_age_seconds",
        "gauge",
        Some("seconds"),
        "Seconds since the last batch of events was applied (no sample before the first).",
    );
    for r in roots {
        if let Some(age) = r.stats.last_batch_age() {
            let _ = writeln!(out, "dtui_last_batch_age_seconds{{{}}} {age:.3}", r.label);
        }
    }
    family(
        out,
        "dtui_tree_entries",
        "gauge",
        None,
        "Entries in the tree, the root included.",
    );
    for (r, n) in roots.iter().zip(entries) {
        let _ = writeln!(out, "dtui_tree_entries{{{}}} {n}", r.label);
    }
    family(
        out,
        "dtui_cache_bytes",
        "gauge",
        Some("bytes"),
        "Bytes the root's cache takes on disk: database, WAL, shared memory and arena (no sample without a cache).",
    );
    for r in roots {
        if let Some((db, arena)) = &r.cache_files {
            let bytes = crate::store::budget::cache_bytes(db, arena);
            let _ = writeln!(out, "dtui_cache_bytes{{{}}} {bytes}", r.label);
        }
    }
    family(
        out,
        "dtui_series_age_seconds",
        "gauge",
        Some("seconds"),
        "Seconds since the set of exported directories (the depth and the top largest) was chosen; their values are read at each scrape.",
    );
    for (r, set) in roots.iter().zip(sets) {
        let _ = writeln!(
            out,
            "dtui_series_age_seconds{{{}}} {:.3}",
            r.label,
            set.built.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(bytes: &[u8]) -> String {
        let mut s = String::new();
        push_label_value(&mut s, bytes);
        s
    }

    #[test]
    fn a_label_value_escapes_what_the_format_needs_and_what_the_terminal_does() {
        assert_eq!(label(b"/srv/plain"), "/srv/plain");
        assert_eq!(label(b"/a\"b"), "/a\\\"b");
        // A newline is shown as `\n` (two characters), which the format escapes again.
        assert_eq!(label(b"/new\nline"), "/new\\\\nline");
        assert_eq!(label(b"/back\\slash"), "/back\\\\\\\\slash");
        assert_eq!(label(b"/caf\xe9"), "/caf\\\\xe9");
        // Never a raw newline or an unescaped quote: the line stays one sample.
        for l in [label(b"\n\"\\\x1b"), label(b"\xff\xfe")] {
            assert!(!l.contains('\n'));
            assert!(!l.replace("\\\\", "").replace("\\\"", "").contains('"'));
        }
    }

    #[test]
    fn two_names_never_share_a_label() {
        // A name that spells an escape is not the name the escape stands for.
        assert_ne!(label(b"a\nb"), label(b"a\\nb"));
        assert_ne!(label(b"\xe9"), label(b"\\xe9"));
    }

    #[test]
    fn each_loss_of_events_is_counted_once() {
        assert!(lost_events("events were lost (queue overflow)"));
        assert!(lost_events(
            "events were lost (queue overflow); re-verifying shortly"
        ));
        assert!(!lost_events(
            "events were lost (queue overflow); verifying again"
        ));
        assert!(!lost_events("the watcher stopped"));
    }
}
