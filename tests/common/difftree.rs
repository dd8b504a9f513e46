//! The differential suite's shared half (used by `tests/differential.rs` and the soak bench
//! `benches/differential.rs`): a seeded random tree, seeded random mutation scripts made of
//! what real tools do, and the check that a catch-up from the cache equals a fresh scan.
//!
//! Everything that touches the filesystem is an `Op`, applied in process and printable as the
//! equivalent shell command, so a failing seed prints a script that reproduces it. Paths in ops
//! are relative to the case's base directory, which holds `root/` (the scanned tree),
//! `outside/` (for hard links to outside and renames in and out) and `cache/`.
#![allow(
    dead_code,
    reason = "the tests and the bench each use a different subset"
)]

#[path = "difftree/check.rs"]
pub mod check;
#[path = "difftree/compare.rs"]
pub mod compare;
#[path = "difftree/generate.rs"]
pub mod generate;
#[path = "difftree/opened.rs"]
pub mod opened;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// SplitMix64: tiny, seedable, and good enough to pick shapes and targets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }

    /// An index into `weights`, chosen in proportion to them.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.next_u64() % total.max(1);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// One filesystem change, with paths relative to the case's base directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `mkdir P` (mode 755)
    Mkdir(PathBuf),
    /// `mkdir -p P`
    MkdirP(PathBuf),
    /// Create or overwrite with N bytes: `... > P`
    Write(PathBuf, u64),
    /// `... >> P`
    Append(PathBuf, u64),
    /// Overwrite LEN bytes at OFF in place (`dd conv=notrunc`)
    WriteAt(PathBuf, u64, u64),
    /// `truncate -s N P` (creates a sparse file if P does not exist)
    Truncate(PathBuf, u64),
    /// `fallocate -p -o OFF -l LEN P` (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`)
    PunchHole(PathBuf, u64, u64),
    /// `rm -f P` (not a directory)
    Remove(PathBuf),
    /// `rm -rf P`
    RemoveAll(PathBuf),
    /// `mv -T FROM TO` (rename(2): replaces a file or an empty directory)
    Rename(PathBuf, PathBuf),
    /// `ln -P EXISTING NEW`
    Link(PathBuf, PathBuf),
    /// `cp -al FROM NEW`: a snapshot of a directory as hard links (rsnapshot, `rsync
    /// --link-dest`): its directories made again, every other entry linked
    CopyLinks(PathBuf, PathBuf),
    /// `ln -s TARGET P` (the target verbatim, relative to P's directory or absolute)
    Symlink(Vec<u8>, PathBuf),
    /// `mkfifo P`
    Fifo(PathBuf),
    /// `chmod MODE P`
    Chmod(PathBuf, u32),
    /// `touch -d @SECS.NSEC P`: atime and mtime (SECS may be before 1970)
    Touch(PathBuf, i64, u32),
}

/// The byte used for written data: not zero, so no filesystem can elide it.
const FILL: u8 = b'x';

fn data(len: u64) -> Vec<u8> {
    vec![FILL; len as usize]
}

impl Op {
    /// Applies the op under `base`.
    pub fn apply(&self, base: &Path) -> std::io::Result<()> {
        let p = |rel: &PathBuf| base.join(rel);
        match self {
            Op::Mkdir(d) => {
                fs::create_dir(p(d))?;
                fs::set_permissions(p(d), fs::Permissions::from_mode(0o755))
            }
            Op::MkdirP(d) => fs::create_dir_all(p(d)),
            Op::Write(f, n) => fs::write(p(f), data(*n)),
            Op::Append(f, n) => fs::OpenOptions::new()
                .append(true)
                .open(p(f))?
                .write_all(&data(*n)),
            Op::WriteAt(f, off, n) => fs::OpenOptions::new()
                .write(true)
                .open(p(f))?
                .write_all_at(&data(*n), *off),
            Op::Truncate(f, n) => fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p(f))?
                .set_len(*n),
            Op::PunchHole(f, off, n) => {
                let file = fs::OpenOptions::new().write(true).open(p(f))?;
                nix::fcntl::fallocate(
                    &file,
                    nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                        | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                    *off as i64,
                    *n as i64,
                )
                .map_err(std::io::Error::from)
            }
            Op::Remove(f) => fs::remove_file(p(f)),
            Op::RemoveAll(d) => {
                let path = p(d);
                if fs::symlink_metadata(&path)?.is_dir() {
                    fs::remove_dir_all(path)
                } else {
                    fs::remove_file(path)
                }
            }
            Op::Rename(a, b) => fs::rename(p(a), p(b)),
            Op::Link(a, b) => fs::hard_link(p(a), p(b)),
            Op::CopyLinks(a, b) => copy_links(&p(a), &p(b)),
            Op::Symlink(t, l) => std::os::unix::fs::symlink(OsStr::from_bytes(t), p(l)),
            Op::Fifo(f) => {
                nix::unistd::mkfifo(&p(f), nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .map_err(std::io::Error::from)
            }
            Op::Chmod(f, mode) => fs::set_permissions(p(f), fs::Permissions::from_mode(*mode)),
            Op::Touch(f, secs, nsec) => {
                let t = nix::sys::time::TimeSpec::new(*secs, i64::from(*nsec));
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &p(f),
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(std::io::Error::from)
            }
        }
    }

    /// The equivalent shell command (bash, run in the base directory).
    #[must_use]
    pub fn shell(&self) -> String {
        let fill = |n: &u64| format!("head -c {n} /dev/zero | tr '\\0' {}", FILL as char);
        match self {
            Op::Mkdir(d) => format!("mkdir -m 755 {}", q(d)),
            Op::MkdirP(d) => format!("mkdir -p {}", q(d)),
            Op::Write(f, n) => format!("{} > {}", fill(n), q(f)),
            Op::Append(f, n) => format!("{} >> {}", fill(n), q(f)),
            Op::WriteAt(f, off, n) => format!(
                "{} | dd of={} bs=64K seek={off} oflag=seek_bytes conv=notrunc iflag=fullblock status=none",
                fill(n),
                q(f)
            ),
            Op::Truncate(f, n) => format!("truncate -s {n} {}", q(f)),
            Op::PunchHole(f, off, n) => format!("fallocate -p -o {off} -l {n} {}", q(f)),
            Op::Remove(f) => format!("rm -f {}", q(f)),
            Op::RemoveAll(d) => format!("rm -rf {}", q(d)),
            Op::Rename(a, b) => format!("mv -T {} {}", q(a), q(b)),
            Op::Link(a, b) => format!("ln -P {} {}", q(a), q(b)),
            Op::CopyLinks(a, b) => format!("cp -al {} {}", q(a), q(b)),
            Op::Symlink(t, l) => format!("ln -s {} {}", q_bytes(t), q(l)),
            Op::Fifo(f) => format!("mkfifo -m 644 {}", q(f)),
            Op::Chmod(f, mode) => format!("chmod {mode:03o} {}", q(f)),
            Op::Touch(f, secs, nsec) => {
                format!("touch -h -d @{} {}", decimal_time(*secs, *nsec), q(f))
            }
        }
    }
}

/// `cp -al FROM TO`: directories made with FROM's modes, every other entry (files,
/// symlinks, fifos) linked. Like `cp`, it stops at the first error (an unreadable directory).
fn copy_links(from: &Path, to: &Path) -> std::io::Result<()> {
    let mode = fs::symlink_metadata(from)?.permissions();
    fs::create_dir(to)?;
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_links(&src, &dst)?;
        } else {
            fs::hard_link(&src, &dst)?;
        }
    }
    fs::set_permissions(to, mode)
}

/// A timespec as the decimal number `touch -d @...` reads (`-1.25` is sec -2, nsec 750000000).
#[must_use]
pub fn decimal_time(secs: i64, nsec: u32) -> String {
    if nsec == 0 {
        return secs.to_string();
    }
    if secs >= 0 {
        return format!("{secs}.{nsec:09}");
    }
    format!("-{}.{:09}", -(secs + 1), 1_000_000_000 - nsec)
}

/// A path quoted for bash.
#[must_use]
pub fn q(p: &Path) -> String {
    q_bytes(p.as_os_str().as_bytes())
}

/// Bytes quoted for bash: bare when harmless, else `$'...'` with `\xHH` escapes (exactly two
/// hex digits, so the next character is never taken into the escape).
#[must_use]
pub fn q_bytes(b: &[u8]) -> String {
    let plain = |c: u8| c.is_ascii_alphanumeric() || b"._/-+,=:@".contains(&c);
    if !b.is_empty() && b.iter().all(|&c| plain(c)) && b[0] != b'-' {
        return String::from_utf8_lossy(b).into_owned();
    }
    let mut s = String::from("$'");
    for &c in b {
        match c {
            b'\'' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('\'');
    s
}

/// A path relative to the base from parts of raw bytes.
#[must_use]
pub fn rel(parent: &Path, name: &[u8]) -> PathBuf {
    parent.join(OsStr::from_bytes(name))
}

/// What a seed was run with, and what it did: enough to replay it or print it as a script.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    /// Wait this long after the setup and after each catch-up before going on, so the
    /// catch-up may trust what did not change (its "too recent to trust" window has passed).
    pub age_ms: u64,
    /// Run the binary as user 65534 (the tree's permissions matter).
    pub nobody: bool,
    pub threads: usize,
    /// Each round's ops run while a catch-up runs; then one more catch-up is compared.
    pub race: bool,
    pub setup: Vec<Op>,
    pub rounds: Vec<Vec<Op>>,
}

impl Case {
    /// The bash script that reproduces this case with the real binary.
    #[must_use]
    pub fn script(&self, failed_round: Option<usize>) -> String {
        let mut s = String::new();
        let dtui = if self.nobody {
            "setpriv --reuid=65534 --regid=65534 --clear-groups dtui"
        } else {
            "dtui"
        };
        let t = self.threads;
        let _ = writeln!(
            s,
            "# dtui differential seed {} (age {} ms{}): run with bash, dtui on PATH",
            self.seed,
            self.age_ms,
            if self.nobody { ", as nobody" } else { "" }
        );
        if let Some(r) = failed_round {
            let _ = writeln!(
                s,
                "# round {} differs: compare catchup{}.json with fresh{}.json (ignore mtime), and du",
                r + 1,
                r + 1,
                r + 1
            );
        }
        s.push_str("set -e; umask 022\nB=$(mktemp -d /tmp/dtui-diff.XXXXXX); chmod 755 \"$B\"; cd \"$B\"\nmkdir root outside; mkdir -m 700 cache\n");
        if self.nobody {
            s.push_str("chown 65534:65534 cache\n");
        }
        for op in &self.setup {
            s.push_str(&op.shell());
            s.push('\n');
        }
        let wait = |s: &mut String| {
            if self.age_ms > 0 {
                let _ = writeln!(s, "sleep {:.1}", self.age_ms as f64 / 1000.0);
            }
        };
        wait(&mut s);
        let _ = writeln!(
            s,
            "{dtui} scan --threads {t} --cache-dir cache root > /dev/null"
        );
        for (i, ops) in self.rounds.iter().enumerate() {
            let _ = writeln!(s, "# round {}", i + 1);
            if i > 0 {
                wait(&mut s);
            }
            if self.race {
                s.push_str("(\n");
            }
            for op in ops {
                s.push_str(&op.shell());
                s.push('\n');
            }
            if self.race {
                let _ = writeln!(
                    s,
                    ") & for i in $(seq 50); do {dtui} export --threads {t} --cache-dir cache -o - root > raced{}.json; done; wait",
                    i + 1
                );
            }
            let n = i + 1;
            let _ = writeln!(
                s,
                "{dtui} export --threads {t} --cache-dir cache -o - root > catchup{n}.json || true"
            );
            let _ = writeln!(
                s,
                "{dtui} export --threads {t} --no-cache -o - root > fresh{n}.json || true"
            );
            let du = if self.nobody {
                "setpriv --reuid=65534 --regid=65534 --clear-groups du"
            } else {
                "du"
            };
            let _ = writeln!(s, "{du} -sB1 root; {du} -sb root");
        }
        s
    }
}
