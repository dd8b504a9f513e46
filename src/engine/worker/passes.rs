//! The engine's passes, each on a worker thread while events queue: the first scan or the
//! catch-up, a subtree verified again (lost events, a subtree no watch covers, a mount that
//! changed; root rescans back off), and a reconcile a client asked for; each adopted by the
//! session and announced as a delta.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select};

use super::Worker;
use crate::engine::messages::EngineCmd;
use crate::engine::session::Session;
use crate::engine::{EngineMsg, Freshness};
use crate::reconcile::{self, ReconcileStats, Trust};
use crate::scan::{self, Progress, ScanError};
use crate::tree::{self, NodeId, NodeRef, flags};
use crate::watch::{Batch, DirtyQueue};

/// Persist a long pass's changes this often.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

impl Worker {
    /// The first scan or the catch-up, on a worker, while events queue up.
    pub(super) fn first_pass(&mut self) {
        let tree = Arc::clone(&self.session.tree);
        let root = Arc::clone(&self.root);
        let scan_opts = self.opts.scan.clone();
        let started = Session::now();
        if self.session.needs_scan() {
            self.set(Freshness::Scanning);
            let r = self.run_pass(false, move |p| scan::scan_root(&root, &tree, &scan_opts, p));
            {
                let mut t = tree::write(&self.session.tree);
                if r.is_ok() {
                    t.track_changes();
                } else {
                    // A partial tree: whatever comes next carries all of it, as when every
                    // write of the scan was recorded.
                    t.track_changes_of_all();
                }
            }
            match r {
                Ok(stats) => {
                    self.session.adopt_scan(stats, started);
                    self.settle();
                    self.send(EngineMsg::ScanDone(stats));
                    if let Some(copier) = self.session.take_snapshot_copier() {
                        self.run_pass(false, move |_| {
                            let _ = copier.join();
                        });
                    }
                }
                Err(ScanError::Cancelled) => {}
                Err(e) => {
                    // The tree keeps what was read; it is not complete, so not fresh.
                    self.set(Freshness::Stale);
                    self.send(EngineMsg::Failed(e.to_string()));
                }
            }
        } else if self.opts.catch_up && self.session.origin.from_cache() {
            // Before the catch-up changes anything: totals that add up, and what the tree
            // was when loaded.
            self.session.before_catch_up();
            self.set(Freshness::Verifying);
            let r = self.run_pass(true, move |p| {
                reconcile::full(&tree, &root, &scan_opts, p, Trust::Listings)
            });
            match r {
                Ok(stats) => {
                    self.session.adopt_pass("catch-up", &stats, started);
                    self.settle();
                    self.send(EngineMsg::CatchUpDone(stats));
                }
                Err(ScanError::Cancelled) => self.set(Freshness::Stale),
                Err(e) => {
                    self.set(Freshness::Stale);
                    self.send(EngineMsg::Failed(e.to_string()));
                }
            }
        } else if self.watcher.is_some() {
            self.set(Freshness::Stale);
        }
        self.send(EngineMsg::Ready);
        // The pass stat'ed every name: the link changes it noted need no second look.
        tree::write(&self.session.tree).take_linked();
        // What happened meanwhile. A name removed while the pass ran may have been read
        // before it went, or not at all, while another name of its inode was stat'ed with the
        // link count from before: no event names that one, so its group is checked.
        if self.shutdown.is_none() && !self.queue.is_empty() {
            let batch = self.queue.take();
            self.relink_odd = true;
            self.apply(&batch);
        }
    }

    /// Runs `f` on a worker thread while this one keeps queueing events (and persisting every
    /// second, if asked); a shutdown asked meanwhile cancels it.
    pub(super) fn run_pass<R: Send>(
        &mut self,
        persist: bool,
        f: impl FnOnce(&Progress) -> R + Send,
    ) -> R {
        let progress = Arc::clone(&self.progress);
        progress.restart();
        // Closed when the pass ends (or panics): this thread wakes at once, not at its next
        // 20 ms tick (half a tick on average after every first scan, ~2 % of its wall time).
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        std::thread::scope(|s| {
            // No thread to be had (a thread limit, no memory for its stack): the pass runs
            // here, events waiting in their channel until it ends.
            let progress = &progress;
            let h = crate::threads::spawn_or_run(s, "dtui-pass", move || {
                let _done = done_tx;
                f(progress)
            });
            let mut last = Instant::now();
            while !h.is_finished() {
                let events = self.events.clone();
                let cmds = self.cmds.clone();
                select! {
                    recv(done) -> _ => break,
                    recv(events) -> ev => match ev {
                        Ok(ev) => self.push(ev),
                        Err(_) => self.events = never(),
                    },
                    recv(cmds) -> cmd => match cmd {
                        Ok(EngineCmd::Shutdown(reply)) => {
                            self.shutdown = Some(reply);
                            progress.cancel();
                        }
                        // A pass is running; it covers what a reconcile would.
                        Ok(EngineCmd::Reconcile { .. } | EngineCmd::Shown) => {}
                        // Applied with the next batch once the pass is over.
                        Ok(EngineCmd::User(changes)) => self.queue_user(changes),
                        // Answered once the pass is over (its tree is then complete).
                        Ok(EngineCmd::Sync(token)) => self.syncs.push(token),
                        Err(_) => progress.cancel(),
                    },
                    default(Duration::from_millis(20)) => {}
                }
                if persist && last.elapsed() >= PERSIST_EVERY {
                    last = Instant::now();
                    self.session.persist();
                }
            }
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Marks a subtree stale (the root for lost events) and verifies it with a parallel
    /// catch-up. Repeated root rescans back off (1 s, doubling to a minute) instead of storming.
    pub(super) fn rescan(&mut self, dir: Option<NodeId>, why: &str) {
        // A deleted root has nothing to verify: what it held went with it, and its reason
        // stays the one shown (not a routine "verified again" said after it).
        self.check_root();
        if self.root_deleted() {
            return;
        }
        let node = dir.unwrap_or_else(|| tree::read(&self.session.tree).root());
        if dir.is_none() {
            let now = Instant::now();
            if now < self.next_root_rescan {
                // Too soon after the last one: wait, queueing events, then verify once.
                self.set(Freshness::Stale);
                self.send(EngineMsg::Stale(format!("{why}; re-verifying shortly")));
                let wait = self.next_root_rescan - now;
                let end = Instant::now() + wait;
                self.run_pass(false, move |p| {
                    while Instant::now() < end && !p.cancelled() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
                if self.shutdown.is_some() {
                    return;
                }
                self.queue = DirtyQueue::new(self.opts.limits); // the rescan covers it all
            }
        }
        {
            let mut t = tree::write(&self.session.tree);
            if t.is_live(node) {
                t.set_flag(node, flags::STALE, true);
            }
        }
        // Verifying a subtree below the root is routine (a new directory under notify, a
        // moved directory): said only in the state word. The root is said out loud.
        if node == tree::read(&self.session.tree).root() {
            self.send(EngineMsg::Stale(why.to_string()));
        }
        self.set(Freshness::Verifying);
        let t0 = Instant::now();
        let r = self.verify(node, Trust::Listings);
        if dir.is_none() {
            let quick = t0.elapsed() < Duration::from_secs(2);
            self.rescan_backoff = if quick && self.rescan_backoff > Duration::ZERO {
                (self.rescan_backoff * 2).min(Duration::from_secs(60))
            } else {
                Duration::from_secs(1)
            };
            self.next_root_rescan = Instant::now() + self.rescan_backoff;
        }
        if let Err(e) = r {
            self.send(EngineMsg::Failed(e.to_string()));
        }
    }

    /// A parallel catch-up of one subtree, persisted, announced as a delta.
    fn verify(&mut self, node: NodeId, trust: Trust) -> Result<ReconcileStats, ScanError> {
        let tree = Arc::clone(&self.session.tree);
        let root = Arc::clone(&self.root);
        let scan_opts = self.opts.scan.clone();
        let started = Session::now();
        let t0 = Instant::now();
        // A subtree's hard links whose names came or went in the pass (the tree's `linked`
        // log) have names outside it whose link counts the pass does not see; the root's pass
        // stats every name.
        let subtree = node != tree::read(&self.session.tree).root();
        let r = self.run_pass(true, move |p| {
            reconcile::run(&tree, &root, node, &scan_opts, p, trust, true)
        });
        // Names that came and went while the pass ran: as after the first pass, the next
        // batch checks the links whose names disagree with their counts (see `first_pass`).
        if !self.queue.is_empty() {
            self.relink_odd = true;
        }
        let r = match r {
            Ok(stats) if subtree => self
                .with_applier(|a| a.relink_keys(Vec::new()))
                .map(|()| stats),
            r => {
                tree::write(&self.session.tree).take_linked();
                r
            }
        };
        match &r {
            Ok(stats) => {
                let kind = if trust == Trust::Nothing {
                    "reconcile --full"
                } else {
                    "reconcile"
                };
                // The ids first (the pass's persisting took only what changed before its last
                // second), and no commit when nothing is left: a commit bumps the tree's
                // generation, and an empty one never reaches the database, which left the tree
                // a generation ahead (the shutdown then refused to save the arena).
                let pending = tree::read(&self.session.tree).has_changes();
                let ids = if pending {
                    self.session.commit_batch(None)
                } else {
                    Vec::new()
                };
                self.session.adopt_pass(kind, stats, started);
                let delta = self.delta(&Batch::default(), ids, Vec::new(), t0);
                self.send(EngineMsg::Applied(delta));
                self.settle();
            }
            Err(_) => self.set(Freshness::Stale),
        }
        r
    }

    pub(super) fn reconcile_cmd(&mut self, dir: Option<NodeRef>, full: bool) {
        let node = {
            let t = tree::read(&self.session.tree);
            match dir {
                Some(r) => t.resolve(r).map(|id| (id, t.dir_rec(id).is_some())),
                None => Some((t.root(), true)),
            }
        };
        let Some((node, is_dir)) = node else {
            self.send(EngineMsg::Failed(
                "that directory is no longer in the tree".into(),
            ));
            return;
        };
        // Before the state says "verifying": a file cannot be re-read as a subtree (an
        // attached client may ask for anything), and the tree stays as settled as it was.
        if !is_dir {
            self.send(EngineMsg::Failed("only a directory can be re-read".into()));
            return;
        }
        // Without a watcher nobody has looked yet. A deleted root has nothing to re-read:
        // a pass would only find it unreadable and call that "no changes" (a directory made
        // at its path since is another one, which this session does not hold).
        self.check_root();
        if self.root_deleted() {
            self.send(EngineMsg::Failed(format!(
                "cannot re-read {}: it was deleted (start dtui again to see what is there now)",
                crate::path::display_name(self.root.path.as_os_str().as_encoded_bytes())
            )));
            return;
        }
        self.session.settle_loaded();
        self.set(Freshness::Verifying);
        let trust = if full {
            Trust::Nothing
        } else {
            Trust::Listings
        };
        match self.verify(node, trust) {
            Ok(stats) => self.send(EngineMsg::Reconciled(stats)),
            Err(ScanError::Cancelled) => {}
            Err(e) => self.send(EngineMsg::Failed(e.to_string())),
        }
    }
}
