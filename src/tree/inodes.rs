//! A 32-bit fingerprint of each entry's inode, kept in memory beside the arena while the tree
//! is watched, so that a new hard link finds its other names.
//!
//! A plain file's node keeps no inode number (see `Own::stored`). When a name appears with a
//! link count above one and the tree holds no linked entry of that inode, the inode's other
//! names in the tree are plain files, and a write made through the new name before the batch
//! is applied (`ln a b; echo x >> b`, `cp -al` then a write in the snapshot) leaves them with
//! nothing in common with it but the inode. Their sizes and mtime no longer match, so only an
//! inode key finds them: 4 bytes per slot, one contiguous array, read in one pass per batch
//! that has such a name (a compare per slot, no node touched but the matches, which are then
//! stat'ed: a false match costs one `fstatat`).
//!
//! Filled by whatever writes an entry from a stat (a scan, an update in place, a catch-up's
//! stat of every entry); 0 is "unknown" (a free slot, or an entry loaded from the cache and
//! not stat'ed since). Not persisted: a start from the cache fills it in its catch-up.

use super::{EntryInfo, NodeId, Tree, flags};

/// The fingerprints, indexed by node slot.
#[derive(Debug, Default)]
pub(super) struct Fingerprints {
    of: Vec<u32>,
}

/// An inode's fingerprint: never 0 (which stands for "unknown").
#[must_use]
pub fn fingerprint(dev: u64, ino: u64) -> u32 {
    let x = (ino ^ dev.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    match (x >> 32) as u32 {
        0 => 1,
        f => f,
    }
}

impl Fingerprints {
    /// Room for `slots` node slots, all unknown.
    pub(super) fn with_slots(slots: usize) -> Fingerprints {
        Fingerprints { of: vec![0; slots] }
    }

    pub(super) fn set(&mut self, id: NodeId, fp: u32) {
        let i = id.0 as usize;
        if i >= self.of.len() {
            // Written up to the highest slot only: the capacity beyond (doubling, so a push
            // is amortized O(1)) is never touched, so never resident (a large array is its
            // own mapping, grown by `mremap`), and the cost is 4 bytes per slot.
            self.of.resize(i + 1, 0);
        }
        self.of[i] = fp;
    }

    /// The fingerprint of slot `id`, if known.
    pub(super) fn get(&self, id: NodeId) -> Option<u32> {
        self.of.get(id.0 as usize).copied().filter(|&f| f != 0)
    }

    /// Slots below `slots` whose fingerprint is one of `wanted` (sorted) or unknown, in slot
    /// order.
    pub(super) fn candidates<'a>(
        &'a self,
        wanted: &'a [u32],
        slots: usize,
    ) -> impl Iterator<Item = NodeId> + 'a {
        let known = self.of.len().min(slots);
        let listed = self.of[..known]
            .iter()
            .enumerate()
            .filter_map(move |(i, &f)| match f {
                0 => Some(NodeId(i as u32)),
                f if wanted.binary_search(&f).is_ok() => Some(NodeId(i as u32)),
                _ => None,
            });
        // Slots past the array's end were never written while tracking: unknown.
        let unlisted = (known..slots).map(|i| NodeId(i as u32));
        listed.chain(unlisted)
    }

    /// The bytes in use (resident): 4 per slot up to the highest written.
    pub(super) fn bytes(&self) -> usize {
        self.of.len() * 4
    }
}

impl Tree {
    /// Starts keeping each entry's inode fingerprint (a watched tree: see `inodes`). Entries
    /// already in the tree are unknown until stat'ed again (a catch-up stats them all).
    pub fn track_inodes(&mut self) {
        if self.inodes.is_none() {
            let slots = self.arena.header().node_count as usize;
            self.inodes = Some(Fingerprints::with_slots(slots));
        }
    }

    /// Records the inode a stat says an entry is (when fingerprints are kept).
    pub(super) fn note_inode(&mut self, id: NodeId, e: &EntryInfo) {
        if let Some(f) = self.inodes.as_mut() {
            let known = e.flags & flags::READ_ERROR == 0 && e.ino != 0;
            f.set(id, if known { fingerprint(e.dev, e.ino) } else { 0 });
        }
    }

    /// The fingerprint of the inode entry `id` was when last stat'ed (see `inodes`), if the
    /// tree keeps them and has stat'ed it since.
    #[must_use]
    pub fn fingerprint(&self, id: NodeId) -> Option<u32> {
        self.inodes.as_ref()?.get(id)
    }

    /// Live non-directories that may be a name of one of these inodes (`dev`, `ino`): those
    /// whose fingerprint matches, and those without one. One pass
    /// over the fingerprints (4 bytes a slot); only these nodes are read.
    #[must_use]
    pub fn inode_candidates(&self, keys: &[(u64, u64)]) -> Vec<NodeId> {
        let slots = self.arena.header().node_count as usize;
        let plain = |id: NodeId| {
            let n = self.node(id);
            n.flags & (flags::FREE | flags::READ_ERROR) == 0 && !n.is_dir()
        };
        let Some(f) = self.inodes.as_ref() else {
            return (0..slots as u32)
                .map(NodeId)
                .filter(|&id| plain(id))
                .collect();
        };
        let mut wanted: Vec<u32> = keys.iter().map(|&(d, i)| fingerprint(d, i)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        f.candidates(&wanted, slots)
            .filter(|&id| plain(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_never_the_unknown_value_and_tells_devices_apart() {
        assert_ne!(fingerprint(0, 0), 0);
        assert_ne!(fingerprint(1, 7), fingerprint(2, 7));
        assert_ne!(fingerprint(1, 7), fingerprint(1, 8));
    }

    #[test]
    fn candidates_are_the_matching_and_the_unknown_slots() {
        let mut f = Fingerprints::with_slots(4);
        f.set(NodeId(0), fingerprint(1, 10));
        f.set(NodeId(1), fingerprint(1, 11));
        f.set(NodeId(5), fingerprint(1, 10)); // grows the array past slot 8
        let wanted = vec![fingerprint(1, 10)];
        let got: Vec<u32> = f.candidates(&wanted, 8).map(|id| id.0).collect();
        // 0 and 5 match; 2, 3, 4, 6 and 7 are unknown; 1 is another inode.
        assert_eq!(got, vec![0, 2, 3, 4, 5, 6, 7]);
        assert_eq!(f.get(NodeId(1)), Some(fingerprint(1, 11)));
        assert_eq!(f.get(NodeId(2)), None);
        assert_eq!(f.get(NodeId(100)), None);
        assert_eq!(f.get(NodeId(1_000_000)), None);
        // A tree larger than the array: the slots past its end are unknown.
        let small = Fingerprints::with_slots(2);
        let past: Vec<u32> = small.candidates(&wanted, 4).map(|id| id.0).collect();
        assert_eq!(past, vec![0, 1, 2, 3]);
    }
}
