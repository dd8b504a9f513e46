//! The change column (`v`), the sort by change (`V`) and the period (`p`): each row's total
//! against a baseline of the size history. The baseline is read off this thread (a
//! `Command::LoadBaseline` answered by `Event::Baseline`): the browser never waits on SQLite.

use std::sync::Arc;

use super::{App, Command, SortKey};
use crate::history::{self, Baseline, Change, HistoryError, Since};
use crate::tree::{NodeId, Tree};

/// Why there is no baseline for the change column.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BaselineError {
    #[error("no cache, so no size history")]
    NoCache,
    #[error(transparent)]
    History(Arc<HistoryError>),
}

/// The change column and its baseline.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub shown: bool,
    /// The period asked for (None: the default, since the previous session).
    pub since: Option<Since>,
    pub baseline: Option<Arc<Baseline>>,
    /// A load was asked for this period and has not answered yet.
    pub loading: Option<Since>,
    /// Why there is no baseline (no history yet, no cache).
    pub why_not: Option<BaselineError>,
}

impl Changes {
    #[must_use]
    pub fn since(&self) -> Since {
        self.since.unwrap_or(Since::Last)
    }
}

impl App {
    /// `v`: shows or hides the change column.
    pub(super) fn toggle_changes(&mut self) {
        self.changes.shown = !self.changes.shown;
        if self.changes.shown {
            self.want_baseline();
            self.say_period();
        }
    }

    /// `V`: sorts by change (again: reverse).
    pub(super) fn sort_by_change(&mut self) {
        self.want_baseline();
        self.sort_by(SortKey::Change);
        self.say_period();
    }

    /// `p`: the next period (previous session, 1h, 1d, 7d, 30d).
    pub(super) fn next_period(&mut self) {
        self.changes.since = Some(self.changes.since().next());
        self.changes.shown = true;
        self.want_baseline();
        self.say_period();
    }

    fn say_period(&mut self) {
        self.message = Some(match &self.changes.why_not {
            Some(why) => format!("changes: {why}"),
            None => format!("changes {} (p: another period)", self.changes.since()),
        });
    }

    /// Asks for the baseline of the chosen period unless it is here or on its way.
    fn want_baseline(&mut self) {
        let since = self.changes.since();
        let have = self
            .changes
            .baseline
            .as_ref()
            .is_some_and(|b| b.since == Some(since));
        if !have && self.changes.loading != Some(since) {
            self.changes.loading = Some(since);
            self.commands.push(Command::LoadBaseline(since));
        }
    }

    /// The loader's answer.
    pub(super) fn baseline_loaded(
        &mut self,
        since: Since,
        result: Result<Arc<Baseline>, BaselineError>,
    ) {
        if self.changes.loading == Some(since) {
            self.changes.loading = None;
        }
        if since != self.changes.since() {
            return; // a period since left behind
        }
        match result {
            Ok(b) => {
                self.changes.why_not = None;
                self.changes.baseline = Some(b);
            }
            Err(why) => {
                self.changes.baseline = None;
                self.message = Some(format!("changes: {why}"));
                self.changes.why_not = Some(why);
            }
        }
        self.rows_dirty = true;
    }

    /// The change of an entry against the baseline in use (directories only), if known.
    #[must_use]
    pub fn change(&self, tree: &Tree, id: NodeId) -> Option<Change> {
        let b = self.changes.baseline.as_deref()?;
        history::change_of(tree, id, b, self.apparent)
    }

    /// What the order by change compares: new entries by their size, unknown ones last.
    pub(super) fn change_key(&self, tree: &Tree, id: NodeId) -> i128 {
        match self.change(tree, id) {
            Some(Change::Bytes(d)) => d,
            Some(Change::New) => i128::from(self.size(tree, id)),
            Some(Change::Gone) | None => i128::MIN,
        }
    }
}
