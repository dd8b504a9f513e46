//! A released batch applied (`apply`), committed with its `mutation_log` rows as one
//! transaction, and announced once as a `TreeDelta`; the subtrees it left to verify are
//! verified next.

use std::time::Instant;

use super::Worker;
use crate::engine::{ChangeKind, ChangeLine, EngineMsg, TreeDelta, UserChangeKind, apply};
use crate::fs::Reopener;
use crate::scan::ScanError;
use crate::store::LogBatch;
use crate::tree::{self, NodeId, NodeRef};
use crate::watch::{self, Backend, Batch};

impl Worker {
    /// Runs `f` with an applier of changes to this session's tree.
    pub(super) fn with_applier<R>(&self, f: impl FnOnce(&apply::Applier) -> R) -> R {
        let reopen = Reopener::new(&self.root);
        f(&apply::Applier {
            lock: &self.session.tree,
            root: &self.root,
            reopen: &reopen,
            opts: &self.opts.scan,
            progress: &self.progress,
        })
    }

    /// Applies one released batch and tells everyone, once.
    pub(super) fn apply(&mut self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let t0 = Instant::now();
        let relink_odd = std::mem::take(&mut self.relink_odd);
        let outcome = self.with_applier(|a| {
            let out = a.apply(batch)?;
            if relink_odd {
                a.relink_odd()?;
            }
            Ok(out)
        });
        let mut outcome = match outcome {
            Ok(o) => o,
            Err(ScanError::Cancelled) => return,
            Err(e) => {
                self.send(EngineMsg::Failed(e.to_string()));
                apply::Outcome {
                    rescan_root: true,
                    ..apply::Outcome::default()
                }
            }
        };
        let log = LogBatch {
            batch: batch.id,
            rows: self.log_rows(batch),
            retention: self.opts.retention,
        };
        let ids = self.session.commit_batch(Some(log));
        tree::write(&self.session.tree).maybe_compact_names();
        let mut lines = std::mem::take(&mut outcome.lines);
        let rescans = self.outermost(std::mem::take(&mut outcome.rescans));
        {
            // Say which subtrees are re-verified next.
            let t = tree::read(&self.session.tree);
            let root = self.root.path.as_os_str().as_encoded_bytes();
            for &dir in &rescans {
                let p = t.path_of(dir);
                let p = p.as_os_str().as_encoded_bytes();
                let rel = p.strip_prefix(root).unwrap_or(p);
                lines.push(ChangeLine {
                    kind: ChangeKind::Verified,
                    path: rel.strip_prefix(b"/").unwrap_or(rel).to_vec(),
                    to: None,
                    disk: 0,
                });
            }
        }
        let delta = self.delta(batch, ids, lines, t0);
        self.send(EngineMsg::Applied(delta));
        if outcome.rescan_root {
            self.rescan(None, "events were lost (queue overflow)");
        }
        for dir in rescans {
            self.rescan(
                Some(dir),
                "a subtree is verified again (a watch could not cover it, a mount changed, or \
                 a directory moved under a name)",
            );
        }
    }

    /// The subtrees to verify, each once, and none inside another (a batch can name one
    /// directory many times); a slot freed and reused meanwhile (by anything, even a file)
    /// is not the directory that was meant: its name was settled afresh, so it is dropped.
    fn outermost(&self, refs: Vec<NodeRef>) -> Vec<NodeId> {
        let t = tree::read(&self.session.tree);
        let mut dirs: Vec<NodeId> = refs
            .into_iter()
            .filter_map(|r| t.resolve(r))
            .filter(|&d| t.kind(d) == tree::Kind::Dir)
            .collect();
        dirs.sort_unstable_by_key(|d| d.0);
        dirs.dedup();
        let set: std::collections::HashSet<NodeId> = dirs.iter().copied().collect();
        dirs.retain(|&d| {
            let mut cur = t.parent(d);
            while let Some(p) = cur {
                if set.contains(&p) {
                    return false;
                }
                cur = t.parent(p);
            }
            true
        });
        dirs
    }

    pub(super) fn delta(
        &self,
        batch: &Batch,
        ids: Vec<u32>,
        lines: Vec<ChangeLine>,
        t0: Instant,
    ) -> TreeDelta {
        let t = tree::read(&self.session.tree);
        TreeDelta {
            generation: t.generation(),
            batch: batch.id,
            events: batch.events,
            touched: ids.into_iter().map(|i| t.node_ref(NodeId(i))).collect(),
            lines,
            elapsed: t0.elapsed(),
        }
    }

    /// The `mutation_log` rows of a batch: what the watcher saw, and this process's own
    /// changes (source `user`, with the bytes freed).
    fn log_rows(&mut self, batch: &Batch) -> Vec<crate::store::LogRow> {
        let mut rows = watch::log_rows(batch);
        rows.retain(|r| r.backend != Backend::User.name());
        for c in self.user.drain(..) {
            let kind = match c.kind {
                UserChangeKind::Removed => crate::store::LogKind::Remove,
                UserChangeKind::Created => crate::store::LogKind::Create,
                UserChangeKind::Verify => crate::store::LogKind::Rescan,
            };
            let path = c.path.as_os_str().as_encoded_bytes().to_vec();
            rows.push(crate::store::LogRow::user(kind, path, c.bytes));
        }
        rows
    }
}
