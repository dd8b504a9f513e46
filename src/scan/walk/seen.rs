//! A directory's listing stamp taken from its parent's `statx` of it (`Seen`), when the
//! listing shows it is the directory that was stat'ed.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use crate::fs::sys::{self, Listing};
use crate::scan::{listing_clock, listing_stamp};
use crate::tree::Time;

/// What the parent's `statx` of a directory saw, before the directory was opened: its inode
/// and the listing stamp that stat gives. When the listing's `.` carries the same inode, the
/// listing is of the directory that was stat'ed, after that stat, so the stamp holds and the
/// directory needs no `statx` of its own (one syscall fewer per directory).
#[derive(Clone, Copy)]
pub(super) struct Seen {
    pub(super) ino: u64,
    /// Its device (how its listing ends: `RootDir::list_end`).
    pub(super) dev: u64,
    pub(super) stamp: (Time, bool),
}

/// The listing stamp of a directory opened after its parent's stat saw it (`seen`), once
/// `listing` is read: the parent's stamp when the listing is of the same inode (`.`, or a
/// `statx` where `.` does not say); else (the name now leads to another directory) a stat of
/// its own and the listing read again after it, into `listing`.
pub(super) fn seen_stamp(
    fd: BorrowedFd<'_>,
    seen: Seen,
    listing: &mut Listing,
    dirent_buf: &mut Vec<u8>,
) -> Result<Option<(Time, bool)>, Errno> {
    if listing.dot_ino == Some(seen.ino) {
        return Ok(Some(seen.stamp));
    }
    let before = listing_clock();
    let own = sys::stat_fd(fd);
    if own.as_ref().is_ok_and(|own| own.ino == seen.ino) {
        return Ok(Some(seen.stamp));
    }
    sys::rewind_dir(fd)?;
    sys::read_dir(fd, dirent_buf, listing)?;
    Ok(own.ok().map(|own| listing_stamp(&own, before)))
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn open(path: &std::path::Path) -> OwnedFd {
        sys::open_root_nofollow(path).expect("open")
    }

    fn stamp(secs: i64) -> (Time, bool) {
        (Time { sec: secs, nsec: 1 }, true)
    }

    #[test]
    fn a_listing_tells_which_directory_it_is_by_its_dot_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), b"x").expect("write");
        let fd = open(dir.path());
        let mut listing = Listing::default();
        sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing).expect("read_dir");
        let ino = std::fs::metadata(dir.path()).expect("stat").ino();
        assert_eq!(listing.dot_ino, Some(ino));
        assert_eq!(listing.len(), 1);
    }

    #[test]
    fn the_parents_stamp_holds_for_the_directory_it_saw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fd = open(dir.path());
        let ino = std::fs::metadata(dir.path()).expect("stat").ino();
        let mut listing = Listing::default();
        sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing).expect("read_dir");
        let seen = Seen {
            ino,
            dev: 0,
            stamp: stamp(7),
        };
        let got = seen_stamp(fd.as_fd(), seen, &mut listing, &mut Vec::new()).expect("stamp");
        assert_eq!(got, Some(stamp(7)));
        // Where `.` says nothing, a stat of the fd decides.
        listing.dot_ino = None;
        let got = seen_stamp(fd.as_fd(), seen, &mut listing, &mut Vec::new()).expect("stamp");
        assert_eq!(got, Some(stamp(7)));
    }

    #[test]
    fn a_name_that_now_leads_to_another_directory_gets_its_own_stamp_and_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::create_dir(&b).expect("mkdir");
        std::fs::write(b.join("only-in-b"), b"x").expect("write");
        let seen = Seen {
            ino: std::fs::metadata(&a).expect("stat").ino(),
            dev: 0,
            stamp: stamp(7),
        };
        // The parent saw `a`; the open found `b` (as if `b` had been renamed over `a`).
        let fd = open(&b);
        let mut listing = Listing::default();
        listing.push(b"stale", sys::DT_REG);
        let got = seen_stamp(fd.as_fd(), seen, &mut listing, &mut Vec::new()).expect("stamp");
        let meta = std::fs::metadata(&b).expect("stat");
        let (ctime, _) = got.expect("b's own stamp");
        assert_eq!(
            (ctime.sec, i64::from(ctime.nsec)),
            (meta.ctime(), meta.ctime_nsec())
        );
        let names: Vec<&[u8]> = (0..listing.len()).map(|i| listing.name(i)).collect();
        assert_eq!(names, [&b"only-in-b"[..]]);
    }
}
