//! One directory's sorted listing merged with its cached children (sorted by name too, no
//! allocation per entry): each slice of names stat'ed without the lock, then applied under one
//! short write lock; a directory wider than `WIDE` is merged in ranges by several threads.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Ctx, ReconcileStats};
use crate::fs::sys;
use crate::scan::{self, ScanError};
use crate::tree::{self, EntryInfo, Kind, NodeId, Tree, flags};

/// Entries stat'ed per write-locked step of a directory.
const SLICE: usize = 512;
/// A directory with more entries than this is stat'ed by several threads.
const WIDE: usize = 8 * SLICE;

/// What one range of a directory's merged listing produced.
#[derive(Default)]
struct RangeOut {
    stats: ReconcileStats,
    /// Cached children that are gone or replaced, removed together at the end.
    gone: Vec<NodeId>,
    /// Subdirectories to visit: (node, index in the listing).
    subdirs: Vec<(NodeId, u32)>,
    /// New directories to scan: (node, index in the listing).
    new_dirs: Vec<(NodeId, u32)>,
    error: Option<ScanError>,
}
impl Ctx<'_> {
    /// Merges a directory's sorted listing with its cached children, in ranges of the name
    /// order (several threads for a wide directory): what went, the subdirectories to visit
    /// and the new ones to scan.
    #[expect(
        clippy::too_many_arguments,
        reason = "one directory: its fd, path, listing, order and cached children"
    )]
    #[expect(clippy::type_complexity, reason = "the three lists `dir` goes on with")]
    pub(super) fn merge_all(
        &self,
        dir: NodeId,
        fd: &Arc<OwnedFd>,
        path: &Arc<[u8]>,
        listing: &sys::Listing,
        order: &[u32],
        kids: &[NodeId],
        unchanged: bool,
        stats: &mut ReconcileStats,
    ) -> Result<(Vec<NodeId>, Vec<(NodeId, u32)>, Vec<(NodeId, u32)>), ScanError> {
        let threads = if listing.len() > WIDE {
            self.opts.threads.clamp(1, scan::MAX_THREADS)
        } else {
            1
        };
        let bounds = self.ranges(listing, order, kids, threads);
        let outs: Vec<RangeOut> = if bounds.len() == 1 {
            let (o, k) = &bounds[0];
            vec![self.merge(dir, fd.as_fd(), path, listing, o, k, unchanged)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = bounds
                    .iter()
                    .map(|(o, k)| {
                        let fd = fd.as_fd();
                        crate::threads::spawn_or_run(s, "dtui-verify", move || {
                            self.merge(dir, fd, path, listing, o, k, unchanged)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut gone = Vec::new();
        let mut subdirs = Vec::new();
        let mut new_dirs = Vec::new();
        for mut o in outs {
            if let Some(e) = o.error.take() {
                return Err(e);
            }
            // A replaced entry is not itself removed (it is there, as something else).
            stats.removed = stats.removed.saturating_sub(o.stats.replaced);
            stats.add(&o.stats);
            gone.append(&mut o.gone);
            subdirs.append(&mut o.subdirs);
            new_dirs.append(&mut o.new_dirs);
        }
        Ok((gone, subdirs, new_dirs))
    }
    /// Splits the name order into `n` ranges, each with the cached children whose names fall
    /// in it.
    fn ranges<'o>(
        &self,
        listing: &sys::Listing,
        order: &'o [u32],
        kids: &'o [NodeId],
        n: usize,
    ) -> Vec<(&'o [u32], &'o [NodeId])> {
        if n <= 1 || order.is_empty() {
            return vec![(order, kids)];
        }
        let t = tree::read(self.lock);
        let per = order.len().div_ceil(n);
        let mut out = Vec::with_capacity(n);
        let (mut o_start, mut k_start) = (0, 0);
        while o_start < order.len() {
            let o_end = (o_start + per).min(order.len());
            let k_end = if o_end == order.len() {
                kids.len()
            } else {
                let bound = listing.name(order[o_end] as usize);
                k_start + kids[k_start..].partition_point(|&k| t.name(k) < bound)
            };
            out.push((&order[o_start..o_end], &kids[k_start..k_end]));
            o_start = o_end;
            k_start = k_end;
        }
        out
    }

    /// Merges one range of the sorted listing with the cached children of the same names:
    /// stats a slice without the lock, then applies it under one write lock.
    #[expect(
        clippy::too_many_arguments,
        reason = "one range of one directory: its fd, listing, order and cached children"
    )]
    fn merge(
        &self,
        dir: NodeId,
        fd: BorrowedFd<'_>,
        path: &Arc<[u8]>,
        listing: &sys::Listing,
        order: &[u32],
        kids: &[NodeId],
        unchanged: bool,
    ) -> RangeOut {
        let mut out = RangeOut::default();
        let ectx = scan::EntryCtx {
            dir: fd,
            dir_path: if self.opts.excludes.needs_path() {
                path
            } else {
                &[]
            },
            opts: self.opts,
            root_mnt: self.root.stat().mnt_id,
            root_dev: self.root.stat().dev,
        };
        let mut path_buf = Vec::new();
        let mut fresh: Vec<Option<EntryInfo>> = Vec::with_capacity(SLICE.min(order.len()));
        let mut k = 0; // cursor into `kids`
        for slice in order.chunks(SLICE) {
            if self.progress.cancelled() {
                return out;
            }
            fresh.clear();
            fresh.extend(
                slice
                    .iter()
                    .map(|&i| scan::stat_entry(&ectx, listing, i as usize, &mut path_buf)),
            );
            self.progress
                .entries
                .fetch_add(slice.len() as u64, Ordering::Relaxed);
            let mut t = tree::write(self.lock);
            if !t.is_live(dir) {
                return out;
            }
            for (j, &i) in slice.iter().enumerate() {
                let name = listing.name(i as usize);
                // Cached names before this one are not on disk any more.
                while k < kids.len() && t.name(kids[k]) < name {
                    if !unchanged {
                        out.gone.push(kids[k]);
                    }
                    k += 1;
                }
                let old = (k < kids.len() && t.name(kids[k]) == name).then(|| {
                    k += 1;
                    kids[k - 1]
                });
                if let Err(e) = Self::apply_entry(&mut t, dir, name, i, old, fresh[j], &mut out) {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        if !unchanged {
            out.gone.extend_from_slice(&kids[k..]);
        }
        out
    }

    /// Applies what the disk says of one name to the tree.
    fn apply_entry(
        t: &mut Tree,
        dir: NodeId,
        name: &[u8],
        index: u32,
        old: Option<NodeId>,
        fresh: Option<EntryInfo>,
        out: &mut RangeOut,
    ) -> Result<(), ScanError> {
        let Some(info) = fresh else {
            // Vanished between the listing and its stat.
            if let Some(id) = old {
                out.gone.push(id);
            }
            return Ok(());
        };
        if let Some(id) = old {
            let was = t.own(id);
            let mut same = info;
            if info.kind == Kind::Dir && t.kind(id) == Kind::Dir {
                // Its own visit compares and records its times.
                same.mtime = was.mtime.sec;
                same.mtime_nsec = was.mtime.nsec;
            }
            if t.update_in_place(id, &same)? {
                if was.apparent != info.apparent || was.disk != info.disk {
                    out.stats.resized += 1;
                }
                if info.kind == Kind::Dir && info.flags & flags::NOT_CHARGED == 0 {
                    out.subdirs.push((id, index));
                }
                return Ok(());
            }
            // Counted as replaced, and what it held as removed (see `dir`).
            out.stats.replaced += 1;
            out.gone.push(id);
        } else {
            out.stats.added += 1;
        }
        let id = t.add_child(dir, name, &info)?;
        if info.kind == Kind::Dir && info.flags & (flags::NOT_CHARGED | flags::READ_ERROR) == 0 {
            // Until its scan has run to the end, its (empty) listing is not trusted.
            t.set_flag(id, flags::STALE, true);
            out.new_dirs.push((id, index));
        }
        Ok(())
    }
}
