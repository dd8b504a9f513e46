//! One name of a directory stat'ed relative to the directory's fd, as the tree takes it:
//! excluded (not stat'ed), on another filesystem, unreadable, or with its own attributes. The
//! walk stats every listed name so; reconcile and the engine's batches the names they check.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use super::ScanOptions;
use crate::fs::sys::{self, Listing};
use crate::tree::{EntryInfo, Kind, Time, flags};

/// What `stat_entry` needs to know about the directory it reads from.
pub struct EntryCtx<'a> {
    pub dir: BorrowedFd<'a>,
    pub dir_path: &'a [u8],
    pub opts: &'a ScanOptions,
    pub root_mnt: Option<u64>,
    pub root_dev: u64,
}

/// Stats entry `i` of a listing: `None` if it vanished meanwhile; an excluded entry is not
/// stat'ed; a failed stat gives a flagged entry with the kind from `d_type`.
pub fn stat_entry(
    ctx: &EntryCtx<'_>,
    listing: &Listing,
    i: usize,
    path_buf: &mut Vec<u8>,
) -> Option<EntryInfo> {
    stat_name(
        ctx,
        listing.name(i),
        listing.c_name(i),
        listing.d_type(i),
        path_buf,
    )
}

/// `stat_entry` for one name (`d_type` as a listing gave it, or `DT_UNKNOWN`).
pub fn stat_name(
    ctx: &EntryCtx<'_>,
    name: &[u8],
    c_name: &std::ffi::CStr,
    d_type: u8,
    path_buf: &mut Vec<u8>,
) -> Option<EntryInfo> {
    stat_name_ctime(ctx, name, c_name, d_type, path_buf).map(|(info, _)| info)
}

/// `stat_name`, with the ctime the stat saw (zero when there was no stat).
pub(super) fn stat_name_ctime(
    ctx: &EntryCtx<'_>,
    name: &[u8],
    c_name: &std::ffi::CStr,
    d_type: u8,
    path_buf: &mut Vec<u8>,
) -> Option<(EntryInfo, Time)> {
    let none = Time { sec: 0, nsec: 0 };
    let excludes = &ctx.opts.excludes;
    if !excludes.is_empty() {
        if excludes.needs_path() {
            path_buf.clear();
            path_buf.extend_from_slice(ctx.dir_path);
            if path_buf.last() != Some(&b'/') {
                path_buf.push(b'/');
            }
            path_buf.extend_from_slice(name);
        }
        if excludes.matches(name, path_buf) {
            // Not from a listing (a watch event names it): whether it is still there, and
            // what kind it is, only a stat says; a gone entry must not stay in the tree.
            let kind = if d_type == sys::DT_UNKNOWN {
                match sys::stat_at(ctx.dir, c_name) {
                    Ok(st) => st.kind(),
                    Err(Errno::ENOENT) => return None,
                    Err(_) => Kind::Unknown,
                }
            } else {
                kind_of_dtype(d_type)
            };
            return Some((EntryInfo::bare(kind, flags::EXCLUDED, 0), none));
        }
    }
    match sys::stat_at(ctx.dir, c_name) {
        Ok(st) => {
            let ctime = Time {
                sec: st.ctime,
                nsec: st.ctime_nsec,
            };
            let other_fs = ctx.opts.one_filesystem
                && match (st.mnt_id, ctx.root_mnt) {
                    (Some(a), Some(b)) => a != b,
                    _ => st.dev != ctx.root_dev,
                };
            if other_fs {
                // Listed with its kind and identity, but its size belongs to another filesystem.
                let mut info = st.info(flags::OTHER_FS);
                info.apparent = 0;
                info.disk = 0;
                return Some((info, ctime));
            }
            if st.kind() == Kind::Dir && excluded_dir(ctx, c_name, st.dev) {
                return Some((EntryInfo::bare(Kind::Dir, flags::EXCLUDED, 0), none));
            }
            Some((st.info(0), ctime))
        }
        Err(Errno::ENOENT) => None,
        Err(e) => Some((
            EntryInfo::bare(kind_of_dtype(d_type), flags::READ_ERROR, e as u32),
            none,
        )),
    }
}

/// `--exclude-kernfs` and `--exclude-caches`, for the directory `c_name` on device `dev`:
/// is it on a kernel filesystem, or does it hold a valid `CACHEDIR.TAG`? Only a directory on
/// another device than the root's can be on another filesystem, so only such a one has its
/// `statfs` asked (ncdu asks where the device changes). Unopenable: not excluded (the walk
/// that opens it next flags it).
fn excluded_dir(ctx: &EntryCtx<'_>, c_name: &std::ffi::CStr, dev: u64) -> bool {
    let kernfs = ctx.opts.exclude_kernfs && dev != ctx.root_dev;
    if !kernfs && !ctx.opts.exclude_caches {
        return false;
    }
    let Ok(fd) = sys::open_dir_at(ctx.dir, c_name) else {
        return false;
    };
    (kernfs && sys::is_kernfs(fd.as_fd()))
        || (ctx.opts.exclude_caches && sys::has_cachedir_tag(fd.as_fd()))
}

fn kind_of_dtype(t: u8) -> Kind {
    match t {
        sys::DT_DIR => Kind::Dir,
        sys::DT_REG => Kind::File,
        sys::DT_LNK => Kind::Symlink,
        sys::DT_UNKNOWN => Kind::Unknown,
        _ => Kind::Other,
    }
}
