//! The names already read in each directory of an export that is still open, so that a name
//! given twice in one directory is caught where the second starts. A 64-bit hash per name
//! (what a name costs to remember, whatever its length), in a set per open directory: only
//! the directories on the path to the current entry hold one. A hash seen before is checked
//! against the tree's names (a true repeat, or two names with one hash).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for keys that are hashes already (xxh3 of the name): the key is the hash.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The name hashes of one open directory's entries.
pub type Seen = HashSet<u64, BuildHasherDefault<Prehashed>>;

/// Sets of closed directories, kept for the next ones (a small one is kept as it is; a big
/// one is dropped rather than held for the rest of the read).
#[derive(Default)]
pub struct Pool(Vec<Seen>);

impl Pool {
    pub fn take(&mut self) -> Seen {
        self.0.pop().unwrap_or_default()
    }

    pub fn give(&mut self, mut seen: Seen) {
        if seen.capacity() <= 4096 {
            seen.clear();
            self.0.push(seen);
        }
    }
}

/// Remembers `name` in `seen`: false if a name with its hash was there already.
pub fn first_time(seen: &mut Seen, name: &[u8]) -> bool {
    seen.insert(xxhash_rust::xxh3::xxh3_64(name))
}
