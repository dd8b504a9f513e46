//! The few syscalls the walks need (scan, reconcile, delete), relative to a directory fd:
//! `openat`, `statx` and raw `getdents64` into a reusable buffer. Their unsafe code lives
//! here.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use crate::tree::{EntryInfo, Kind};

/// What a `statx` returned, reduced to what the tree keeps.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub mode: u32,
    pub nlink: u32,
    pub ino: u64,
    pub dev: u64,
    pub size: u64,
    pub blocks: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// `st_ctime`: set by the kernel on every change of the inode (for a directory: every add,
    /// remove and rename in it); user space cannot set it back.
    pub ctime: i64,
    pub ctime_nsec: u32,
    /// The mount id, when the kernel reports it (Linux 5.8+).
    pub mnt_id: Option<u64>,
}

impl Stat {
    #[must_use]
    pub fn kind(&self) -> Kind {
        Kind::from_mode(self.mode)
    }

    #[must_use]
    pub fn info(&self, flags: u8) -> EntryInfo {
        EntryInfo {
            kind: self.kind(),
            flags,
            ino: self.ino,
            dev: self.dev,
            nlink: self.nlink,
            mtime: self.mtime,
            mtime_nsec: self.mtime_nsec,
            apparent: self.size,
            disk: self.blocks.saturating_mul(512),
            errno: 0,
        }
    }
}

const STATX_MASK: u32 = libc::STATX_TYPE
    | libc::STATX_MODE
    | libc::STATX_NLINK
    | libc::STATX_INO
    | libc::STATX_SIZE
    | libc::STATX_BLOCKS
    | libc::STATX_MTIME
    | libc::STATX_CTIME
    | libc::STATX_MNT_ID;

fn statx_raw(dirfd: i32, name: &CStr, flags: i32) -> Result<Stat, Errno> {
    // Not zeroed first (256 bytes per entry of a scan): a successful statx writes the whole
    // struct, its unused fields as zeros.
    let mut buf = std::mem::MaybeUninit::<libc::statx>::uninit();
    // SAFETY: `name` is a valid NUL-terminated string and `buf` is a properly sized, writable
    // statx buffer that outlives the call.
    let rc = unsafe { libc::statx(dirfd, name.as_ptr(), flags, STATX_MASK, buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(Errno::last());
    }
    // SAFETY: statx returned 0, so the kernel copied a whole `struct statx` into the buffer
    // (`cp_statx` fills every field, the spare ones with zeros).
    let s = unsafe { buf.assume_init() };
    Ok(Stat {
        mode: u32::from(s.stx_mode),
        nlink: s.stx_nlink,
        ino: s.stx_ino,
        dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
        size: s.stx_size,
        blocks: s.stx_blocks,
        mtime: s.stx_mtime.tv_sec,
        mtime_nsec: s.stx_mtime.tv_nsec,
        ctime: s.stx_ctime.tv_sec,
        ctime_nsec: s.stx_ctime.tv_nsec,
        mnt_id: (s.stx_mask & libc::STATX_MNT_ID != 0).then_some(s.stx_mnt_id),
    })
}

/// `statx` of `name` inside `dir`, never following a symlink or triggering an automount.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
    statx_raw(
        dir.as_raw_fd(),
        name,
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT | libc::AT_STATX_DONT_SYNC,
    )
}

/// `statx` of an open fd.
pub fn stat_fd(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    statx_raw(
        fd.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC,
    )
}

const DIR_FLAGS: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// Opens the directory `name` inside `dir`; a symlink is refused (`ELOOP`), never followed.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is NUL-terminated; the returned fd is checked and then owned.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), DIR_FLAGS | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `statfs` magic numbers of the kernel's own filesystems (`linux/magic.h`): what
/// `--exclude-kernfs` leaves out, as ncdu does (configfs and efivarfs besides ncdu's list).
const KERNFS_MAGICS: [i64; 14] = [
    0x4249_4e4d, // binfmt_misc
    0xcafe_4a11, // bpf
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6265_6570, // configfs
    0x6462_6720, // debugfs
    0x1cd1,      // devpts
    0xde5e_81e4, // efivarfs
    0x9fa0,      // proc
    0x6165_676c, // pstore
    0x7363_6673, // securityfs
    0xf97c_ff8c, // selinuxfs
    0x6265_6572, // sysfs
    0x7472_6163, // tracefs
];

/// The magic number of the filesystem `fd` is on (`fstatfs`'s `f_type`, its low 32 bits as
/// the magics are given), or `None` if `fstatfs` fails.
#[must_use]
pub fn fs_magic(fd: BorrowedFd<'_>) -> Option<i64> {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `buf` is a writable statfs buffer that outlives the call; `fd` is open.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), buf.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstatfs returned 0, so it filled the buffer (and it was zeroed before).
    let f_type = unsafe { buf.assume_init() }.f_type;
    // f_type is signed on some targets: compare its low 32 bits, as the magics are.
    #[expect(clippy::cast_sign_loss, reason = "the magic is the bit pattern")]
    Some(i64::from(f_type as u32))
}

/// Is the open directory `dir` on a kernel filesystem (proc, sysfs, cgroup, debugfs...)?
/// `false` when `fstatfs` fails: it is then scanned like any directory.
#[must_use]
pub fn is_kernfs(dir: BorrowedFd<'_>) -> bool {
    fs_magic(dir).is_some_and(|m| KERNFS_MAGICS.contains(&m))
}

/// ext4's magic (ext2's and ext3's too, which the ext4 driver may serve; see `ListEnd`).
pub const EXT4_MAGIC: i64 = 0xef53;

/// How `read_dir` knows it has read a directory to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListEnd {
    /// A `getdents64` that returns nothing: any filesystem.
    EmptyRead,
    /// That, or a last record whose `d_off` is `i64::MAX`, ext4's end of a hash-ordered
    /// listing (`EXT4_HTREE_EOF_64BIT`, for a 64-bit caller; where the filesystem has
    /// `dir_index`, which `mkfs` gives, every directory of one block and every indexed one is
    /// read so): `ext4_dx_readdir` returns nothing from that position before it reads
    /// anything, so the call that would return nothing is left out: one syscall fewer per
    /// directory, 2–3 % of a scan's CPU. (ext4 also remaps a name's hash that would give that
    /// position.) Only for a directory known to be on ext4 (`fs_magic`, which covers ext2
    /// and ext3 served by the ext4 driver): another filesystem's offsets are its own (an NFS
    /// cookie can be anything). A directory ext4 reads linearly (no index, or inline data
    /// without `dir_index`) ends at a byte offset, and the empty read is made as before.
    Ext4,
}

/// The position after the last entry of an indexed ext4 directory (see `ListEnd::Ext4`).
const EXT4_HTREE_EOF_64BIT: i64 = i64::MAX;

/// The first bytes of a valid `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
const CACHEDIR_SIGNATURE: &[u8; 43] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Does the open directory `dir` hold a valid `CACHEDIR.TAG`: a regular file (not followed
/// through a symlink; a device or a FIFO so named is never opened) starting with the
/// signature?
#[must_use]
pub fn has_cachedir_tag(dir: BorrowedFd<'_>) -> bool {
    let name = c"CACHEDIR.TAG";
    match stat_at(dir, name) {
        Ok(st) if st.kind() == Kind::File && st.size >= CACHEDIR_SIGNATURE.len() as u64 => {}
        _ => return false,
    }
    // SAFETY: `name` is NUL-terminated; the returned fd is checked and then owned.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    std::io::Read::read_exact(&mut &file, &mut head).is_ok() && &head == CACHEDIR_SIGNATURE
}

/// Opens the directory at `names` (each one plain component) below `dir` in one
/// `openat2`: no symlink followed anywhere (`ELOOP`, as `open_dir_at` gives at a symlink),
/// never above `dir`. `E2BIG` when the path does not fit in `PATH_MAX`; `ENOSYS` (or
/// `EAGAIN`, a rename raced the lookup) where the caller should go name by name.
pub fn open_dir_beneath(
    dir: BorrowedFd<'_>,
    names: &[std::ffi::CString],
) -> Result<OwnedFd, Errno> {
    let len: usize = names.iter().map(|n| n.as_bytes().len() + 1).sum();
    if len >= libc::PATH_MAX as usize {
        return Err(Errno::E2BIG);
    }
    let mut path = Vec::with_capacity(len);
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(n.as_bytes());
    }
    let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers; all zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (DIR_FLAGS | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c` is NUL-terminated and `how` a valid open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens the parent of an open directory (`..`); the caller checks that it is the one it
/// expects (by device and inode), since the directory may have moved.
pub fn open_parent(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    open_dir_at(dir, c"..")
}

/// Opens a resolved (canonical, absolute) root path with no symlink in any component: the
/// path was resolved once, and a component swapped for a symlink since then is refused
/// (`ELOOP`) instead of followed. Uses `openat2(RESOLVE_NO_SYMLINKS)` where the kernel has it,
/// else `O_NOFOLLOW` on the last component.
pub fn open_root_nofollow(path: &Path) -> Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers; all zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (DIR_FLAGS | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c` is NUL-terminated and `how` a valid open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let e = Errno::last();
    if e != Errno::ENOSYS {
        return Err(e);
    }
    // SAFETY: as above, for open(2).
    let fd = unsafe { libc::open(c.as_ptr(), DIR_FLAGS | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Duplicates a directory fd (a session's root fd lent to a walk that closes its own).
pub fn dup_fd(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    fd.try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)))
}

/// A new open of the same directory (`openat(fd, ".")`): its own file offset, so listing it
/// never depends on where another reader of `fd` (or of a dup of it) stopped.
pub fn dup_dir(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    open_dir_at(fd, c".")
}

/// Rewinds a directory fd to its first entry (for a second listing).
pub fn rewind_dir(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: lseek on a valid fd has no memory effects.
    if unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `d_type` values we use.
pub const DT_DIR: u8 = libc::DT_DIR;
pub const DT_LNK: u8 = libc::DT_LNK;
pub const DT_REG: u8 = libc::DT_REG;
pub const DT_UNKNOWN: u8 = libc::DT_UNKNOWN;

/// A directory's entries: names NUL-terminated back to back, and per entry its start, length
/// and `d_type`. Reused between directories, so listing allocates nothing per entry.
#[derive(Debug, Default)]
pub struct Listing {
    pub names: Vec<u8>,
    pub entries: Vec<(u32, u8, u8)>,
    /// The inode number the `.` entry carried, if the filesystem listed one: which directory
    /// was listed, without a `stat` of the fd.
    pub dot_ino: Option<u64>,
}

impl Listing {
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of entry `i` without its NUL.
    #[must_use]
    pub fn name(&self, i: usize) -> &[u8] {
        let (start, len, _) = self.entries[i];
        &self.names[start as usize..start as usize + len as usize]
    }

    /// The name of entry `i` as a C string.
    #[must_use]
    pub fn c_name(&self, i: usize) -> &CStr {
        let (start, len, _) = self.entries[i];
        let bytes = &self.names[start as usize..=start as usize + len as usize];
        debug_assert!(bytes.iter().position(|&b| b == 0) == Some(len as usize));
        // SAFETY: `read_dir` stores each name without interior NULs (it cut the name at the
        // first NUL) and appends exactly one NUL, which `bytes` ends with.
        unsafe { CStr::from_bytes_with_nul_unchecked(bytes) }
    }

    /// Appends a name (cut at a NUL, if any) with its `d_type`; a name longer than NAME_MAX
    /// (which no Linux filesystem returns) is skipped.
    pub fn push(&mut self, name: &[u8], d_type: u8) {
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        self.push_plain(name, d_type);
    }

    /// `push` of a name known to hold no NUL (as a directory record gives it).
    fn push_plain(&mut self, name: &[u8], d_type: u8) {
        let Ok(len) = u8::try_from(name.len()) else {
            return;
        };
        let start = self.names.len() as u32;
        self.names.extend_from_slice(name);
        self.names.push(0);
        self.entries.push((start, len, d_type));
    }

    #[must_use]
    pub fn d_type(&self, i: usize) -> u8 {
        self.entries[i].2
    }

    /// Entry indexes ordered by name bytes, into `out` (reused).
    pub fn sorted_indexes(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(0..self.entries.len() as u32);
        // By an 8-byte big-endian prefix first (an integer compare settles most pairs), then
        // by the whole name: the same order as comparing the names' bytes.
        let mut keyed: Vec<(u64, u32)> = out
            .iter()
            .map(|&i| (name_prefix(self.name(i as usize)), i))
            .collect();
        keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
            pa.cmp(&pb)
                .then_with(|| self.name(a as usize).cmp(self.name(b as usize)))
        });
        out.clear();
        out.extend(keyed.into_iter().map(|(_, i)| i));
    }

    /// Keeps the first of entries with the same name (names stay where they are).
    pub fn dedup(&mut self) {
        // Duplicates are rare: a sort of the names' 64-bit hashes (8 bytes an entry, integer
        // compares) shows there are none; only equal hashes lead to the sort of the names
        // themselves. Sorting the names cost 2-3 % of a scan's user time on wide directories;
        // a set of them, 4 times the memory.
        let mut hashes: Vec<u64> = (0..self.entries.len())
            .map(|i| xxhash_rust::xxh3::xxh3_64(self.name(i)))
            .collect();
        hashes.sort_unstable();
        if hashes.windows(2).all(|w| w[0] != w[1]) {
            return;
        }
        drop(hashes);
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        // Ties by position, so the first of equal names comes first and is kept.
        order.sort_unstable_by(|&a, &b| {
            self.name(a as usize)
                .cmp(self.name(b as usize))
                .then(a.cmp(&b))
        });
        let mut drop = vec![false; self.entries.len()];
        let mut any = false;
        for w in order.windows(2) {
            if self.name(w[0] as usize) == self.name(w[1] as usize) {
                drop[w[1] as usize] = true;
                any = true;
            }
        }
        if any {
            let mut i = 0;
            self.entries.retain(|_| {
                i += 1;
                !drop[i - 1]
            });
        }
    }
}

/// The first 8 bytes of a name as a big-endian integer, zero-padded: comparing two prefixes
/// orders names as their bytes do, up to ties (which then compare the whole names).
#[must_use]
pub fn name_prefix(name: &[u8]) -> u64 {
    crate::tree::first_bytes_le(name).swap_bytes()
}

/// Reads every entry of `dir` (except `.` and `..`) into `out`, using `buf` for `getdents64`.
pub fn read_dir(dir: BorrowedFd<'_>, buf: &mut Vec<u8>, out: &mut Listing) -> Result<(), Errno> {
    read_dir_until(dir, buf, out, ListEnd::EmptyRead).map(|_| ())
}

/// `read_dir`, knowing the end of the directory as `end` says; returns how many
/// `getdents64` calls it took.
pub fn read_dir_until(
    dir: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    out: &mut Listing,
    end: ListEnd,
) -> Result<u32, Errno> {
    out.names.clear();
    out.entries.clear();
    out.dot_ino = None;
    // Capacity only, never zeroed: the kernel writes what it returns, and pages it does not
    // reach (most directories fill less than one) are never touched, never resident.
    buf.clear();
    buf.reserve(64 * 1024);
    let mut calls = 0u32;
    let mut filled = 0u32;
    loop {
        buf.clear();
        // SAFETY: `buf` has `buf.capacity()` writable bytes that outlive the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.capacity(),
            )
        };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        calls += 1;
        let at_end = if n == 0 {
            true
        } else {
            filled += 1;
            // SAFETY: getdents64 wrote `n` bytes (at most the capacity it was given) at the
            // start.
            unsafe { buf.set_len(n as usize) };
            let last_off = parse_dirents(buf, out)?;
            end == ListEnd::Ext4 && last_off == Some(EXT4_HTREE_EOF_64BIT)
        };
        if at_end {
            if filled > 1 {
                // One getdents call sees a consistent directory; across several, a rename
                // racing the listing can show one name twice.
                out.dedup();
            }
            return Ok(calls);
        }
    }
}

/// Adds the records `getdents64` returned in `filled` to `out`; returns the last one's
/// `d_off` (the directory's position after it).
fn parse_dirents(filled: &[u8], out: &mut Listing) -> Result<Option<i64>, Errno> {
    let mut pos = 0;
    let mut last_off = None;
    // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[]
    while pos + 19 < filled.len() {
        let reclen = u16::from_ne_bytes([filled[pos + 16], filled[pos + 17]]) as usize;
        if reclen == 0 || pos + reclen > filled.len() {
            return Err(Errno::EIO);
        }
        let off: [u8; 8] = filled[pos + 8..pos + 16].try_into().expect("8 bytes");
        last_off = Some(i64::from_ne_bytes(off));
        let d_type = filled[pos + 18];
        let raw = &filled[pos + 19..pos + reclen];
        // The kernel pads a record to 8 bytes after the name's NUL (`filldir64`), so the
        // NUL is in its last 8 bytes: only those are searched (a name holds no NUL).
        let tail = raw.len().saturating_sub(8);
        let len = raw[tail..]
            .iter()
            .position(|&b| b == 0)
            .map_or(raw.len(), |k| tail + k);
        let name = &raw[..len];
        if name == b"." {
            let ino: [u8; 8] = filled[pos..pos + 8].try_into().expect("8 bytes");
            out.dot_ino = Some(u64::from_ne_bytes(ino));
        }
        pos += reclen;
        if name == b"." || name == b".." || name.is_empty() {
            continue;
        }
        out.push_plain(name, d_type);
    }
    Ok(last_off)
}

/// Raises the soft limit of open files to the hard limit (deep trees hold one fd per level
/// that still has unread children) and returns the limit in force.
#[must_use = "the limit in force decides how many fds a walk may hold"]
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit struct for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_has_every_name_of_every_length_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut want: Vec<Vec<u8>> = (1..=255usize)
            .map(|n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        want.push(b"\xff\n x".to_vec());
        for name in &want {
            let path = dir.path().join(std::ffi::OsStr::from_bytes(name));
            std::fs::write(path, b"").expect("create");
        }
        let fd = open_root_nofollow(dir.path()).expect("open");
        let mut listing = Listing::default();
        read_dir(std::os::fd::AsFd::as_fd(&fd), &mut Vec::new(), &mut listing).expect("read_dir");
        let mut got: Vec<Vec<u8>> = (0..listing.len())
            .map(|i| listing.name(i).to_vec())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        for i in 0..listing.len() {
            assert_eq!(listing.c_name(i).to_bytes(), listing.name(i));
        }
    }

    /// The names of `dir` read with `end`, sorted, and the `getdents64` calls it took.
    fn listed(dir: &std::path::Path, end: ListEnd) -> (Vec<Vec<u8>>, u32) {
        let fd = open_root_nofollow(dir).expect("open");
        let mut listing = Listing::default();
        let calls = read_dir_until(
            std::os::fd::AsFd::as_fd(&fd),
            &mut Vec::new(),
            &mut listing,
            end,
        )
        .expect("read_dir");
        let mut names: Vec<Vec<u8>> = (0..listing.len())
            .map(|i| listing.name(i).to_vec())
            .collect();
        names.sort();
        (names, calls)
    }

    /// The `d_off` of the last record `getdents64` gives for `dir`, read plainly.
    fn last_d_off(dir: &std::path::Path) -> Option<i64> {
        let fd = open_root_nofollow(dir).expect("open");
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = None;
        loop {
            // SAFETY: `buf` has `buf.len()` writable bytes that outlive the call.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            assert!(n >= 0, "getdents64");
            if n == 0 {
                return last;
            }
            last = parse_dirents(&buf[..n as usize], &mut Listing::default()).expect("parse");
        }
    }

    #[test]
    fn an_ext4_listing_ends_without_the_empty_read_and_lists_the_same_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (empty, one, wide) = (
            dir.path().join("empty"),
            dir.path().join("one"),
            dir.path().join("wide"),
        );
        for d in [&empty, &one, &wide] {
            std::fs::create_dir(d).expect("mkdir");
        }
        std::fs::write(one.join("f"), b"").expect("create");
        // Wide enough for several 64 KiB reads (each name's record is 56 bytes).
        for i in 0..5000 {
            std::fs::write(
                wide.join(format!("a-name-of-some-thirty-bytes-{i:05}")),
                b"",
            )
            .expect("create");
        }
        let ext4 = fs_magic(std::os::fd::AsFd::as_fd(
            &open_root_nofollow(dir.path()).expect("open"),
        )) == Some(EXT4_MAGIC);
        for d in [&empty, &one, &wide] {
            let (plain, plain_calls) = listed(d, ListEnd::EmptyRead);
            let (early, early_calls) = listed(d, ListEnd::Ext4);
            assert_eq!(early, plain, "{}", d.display());
            // One call fewer where the listing ended at ext4's end of a hash-ordered one (the
            // temp directory's filesystem as `mkfs.ext4` makes it); else (no `dir_index`) the
            // same calls.
            let hashed = last_d_off(d) == Some(EXT4_HTREE_EOF_64BIT);
            if !ext4 {
                eprintln!("not on ext4: only the listings were compared");
            } else if hashed {
                assert_eq!(early_calls + 1, plain_calls, "{}", d.display());
            } else {
                eprintln!("{}: ext4 without a hash order", d.display());
                assert_eq!(early_calls, plain_calls, "{}", d.display());
            }
        }
        assert_eq!(listed(&wide, ListEnd::EmptyRead).0.len(), 5000);
        assert!(
            listed(&wide, ListEnd::EmptyRead).1 > 3,
            "the wide directory takes several reads"
        );
    }

    #[test]
    fn sorting_by_prefix_then_name_is_byte_order() {
        // (Names never hold a NUL, so zero padding cannot tie a shorter name with a longer.)
        let names: [&[u8]; 8] = [
            b"b",
            b"abcdefgh2",
            b"abcdefgh1",
            b"abcdefgh",
            b"a",
            b"\xff\x01",
            b"\xff",
            b"ab",
        ];
        let mut l = Listing::default();
        for n in names {
            l.push(n, DT_REG);
        }
        let mut order = Vec::new();
        l.sorted_indexes(&mut order);
        let got: Vec<&[u8]> = order.iter().map(|&i| l.name(i as usize)).collect();
        let mut want: Vec<&[u8]> = names.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn a_name_listed_twice_is_kept_once_in_first_place() {
        let mut l = Listing::default();
        for n in [&b"b"[..], b"a", b"b", b"c", b"a", b"b"] {
            l.push(n, DT_REG);
        }
        l.dedup();
        let names: Vec<&[u8]> = (0..l.len()).map(|i| l.name(i)).collect();
        assert_eq!(names, [&b"b"[..], b"a", b"c"]);
        assert_eq!(l.c_name(2).to_bytes(), b"c");
    }
}
