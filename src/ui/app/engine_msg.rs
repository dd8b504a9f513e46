//! What the engine tells the app: the status ticks (freshness, progress, the scan's rate) and
//! each `EngineMsg` (a pass ended, a batch applied, the watcher started or failed, an error),
//! said in the footer where the user should hear of it.

use std::time::Instant;

use super::{App, Status, Watch};
use crate::engine::{EngineMsg, Freshness};
use crate::path::display_name;
use crate::tree::Tree;

impl App {
    pub(super) fn status(&mut self, s: Status, was_dirty: bool) {
        let now = Instant::now();
        if let Some((at, entries)) = self.last_status {
            let dt = now.duration_since(at).as_secs_f64();
            if dt >= 0.25 {
                let fresh = s.progress.entries.saturating_sub(entries) as f64 / dt;
                self.rate = fresh;
                self.last_status = Some((now, s.progress.entries));
            }
        } else {
            self.last_status = Some((now, s.progress.entries));
        }
        // An idle tick changes nothing on screen (unless a highlight is running out): no
        // frame, so an idle browser costs about nothing.
        self.dirty = was_dirty || s != self.status || self.busy();
        if matches!(s.freshness, Freshness::Live | Freshness::Fresh) {
            self.stale_reason = None;
        }
        self.status = s;
    }

    pub(super) fn engine(&mut self, msg: EngineMsg, tree: &Tree) {
        // A pass changes the tree without deltas: the search runs again when it ends.
        let pass_ended = matches!(
            msg,
            EngineMsg::Ready
                | EngineMsg::ScanDone(_)
                | EngineMsg::CatchUpDone(_)
                | EngineMsg::Reconciled(_)
        );
        match msg {
            EngineMsg::ScanDone(s) if s.errors > 0 => {
                self.message = Some(format!(
                    "scan finished: {} could not be read (marked !)",
                    crate::format::count(s.errors, "entry", "entries")
                ));
            }
            EngineMsg::CatchUpDone(c) if c.changed() => {
                self.message = Some(format!(
                    "caught up with the disk: {} added, {} removed, {} resized",
                    crate::format::number(c.added),
                    crate::format::number(c.removed),
                    crate::format::number(c.resized)
                ));
            }
            EngineMsg::Reconciled(c) => {
                let changes = format!(
                    "{} added, {} removed, {} resized",
                    crate::format::number(c.added),
                    crate::format::number(c.removed),
                    crate::format::number(c.resized + c.replaced)
                );
                // A directory that could not be read has "no changes" only because nothing
                // was read: say that instead.
                let unreadable = (self.rereading.take())
                    .and_then(|r| tree.resolve(r))
                    .filter(|&id| tree.errno(id) != 0);
                self.message = Some(match unreadable {
                    Some(id) => format!(
                        "re-read: cannot read {}: {}{}",
                        display_name(tree.path_of(id).as_os_str().as_encoded_bytes()),
                        nix::errno::Errno::from_raw(tree.errno(id) as i32).desc(),
                        if c.changed() {
                            format!(" ({changes})")
                        } else {
                            String::new()
                        }
                    ),
                    None if c.changed() => format!("re-read: {changes}"),
                    None => format!(
                        "re-read: no changes ({} read)",
                        crate::format::count(c.dirs_read, "directory", "directories")
                    ),
                });
            }
            EngineMsg::ScanDone(_) | EngineMsg::CatchUpDone(_) => self.message = None,
            EngineMsg::Failed(e) => {
                self.rereading = None;
                self.message = Some(format!("error: {e}"));
                self.error.clone_from(&self.message);
            }
            EngineMsg::Stale(why) => self.stale_reason = Some(why),
            EngineMsg::CacheSaved => {
                self.message = Some("the cache is saved again: its disk has room".into());
            }
            EngineMsg::Ready => self.rows_dirty = true,
            // An attached query's; nothing to show.
            EngineMsg::Synced(_) => {}
            EngineMsg::Watching(Ok(what)) => {
                // The watch has started: the reason given while it started is over.
                self.stale_reason = None;
                self.watch = Watch::On(what);
            }
            EngineMsg::Watching(Err(why)) => {
                self.stale_reason = None;
                let note = format!("not watching: {why}");
                self.notice = Some(match self.notice.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
                self.watch = Watch::Failed(why);
            }
            EngineMsg::Applied(delta) => {
                self.applied(&delta, tree);
                self.search_applied(&delta, tree);
            }
            EngineMsg::Detached(owner) => {
                self.message = Some(format!(
                    "the owner of this root, {owner}, went away: this dtui opens it itself"
                ));
                self.request = Some(super::Request::TakeOver);
            }
        }
        if pass_ended {
            self.search_rerun(tree);
        }
        self.delete_follows(tree);
    }
}
