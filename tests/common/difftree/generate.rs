//! The seeded generators: a random tree (the setup) and random mutation scripts. Both apply
//! each op as they make it and pick their next targets from what is on disk then (listings in
//! byte order, so a seed always makes the same script).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Op, Rng, rel};

/// What the generators know of one entry on disk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: EKind,
    pub nlink: u64,
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// Every entry below `base/top` (not `top` itself), in path byte order. As root, so directories
/// chmod'ed to 000 are listed too.
#[must_use]
pub fn list(base: &Path, top: &str) -> Vec<Entry> {
    list_at(base, Path::new(top))
}

/// `list` of a path that may not be UTF-8.
#[must_use]
pub fn list_at(base: &Path, top: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(base.join(&dir)) else {
            continue;
        };
        let mut names: Vec<_> = rd.filter_map(Result::ok).map(|e| e.file_name()).collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let Ok(m) = fs::symlink_metadata(base.join(&path)) else {
                continue;
            };
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                EKind::Dir
            } else if ft.is_file() {
                EKind::File
            } else if ft.is_symlink() {
                EKind::Symlink
            } else {
                EKind::Other
            };
            out.push(Entry {
                path,
                kind,
                nlink: m.nlink(),
                ino: m.ino(),
                size: m.len(),
                mode: m.permissions().mode() & 0o7777,
            });
        }
    }
    out.sort_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    out
}

/// Applies ops as they are made and records them.
pub struct Gen<'a> {
    pub base: &'a Path,
    pub rng: Rng,
    pub ops: Vec<Op>,
    counter: u64,
    /// The mtime each directory got at the end of the setup (what `rsync -a` or `cp -a` would
    /// set it back to).
    pub setup_times: BTreeMap<PathBuf, (i64, u32)>,
    /// Directories whose listing this script changed (for the tools that set times back).
    touched: Vec<PathBuf>,
    /// Files written while they had more than one name: (the name written, its inode).
    pub written_linked: Vec<(PathBuf, u64)>,
    /// Names made as hard links (`ln`, `cp -al`): (the new name, its inode).
    pub made_linked: Vec<(PathBuf, u64)>,
}

/// Names that a shell, a terminal or a naive prefix comparison gets wrong.
const NAME_STYLES: &[&[u8]] = &[
    b"f",
    b"data",
    b"my file ",
    b"two  spaces ",
    b"new\nline",
    b"tab\there",
    b"caf\xe9",
    b"\xff\xfe",
    b".hidden",
    b"lib",
    b"lib_sibling",
    b"lib.so.",
    b"lib-",
    b"\xc3\xbcn\xc3\xafc\xc3\xb6de",
    b"quote'\"",
    b"star*?[x]",
];

impl<'a> Gen<'a> {
    #[must_use]
    pub fn new(base: &'a Path, rng: Rng) -> Gen<'a> {
        Gen {
            base,
            rng,
            ops: Vec::new(),
            counter: 0,
            setup_times: BTreeMap::new(),
            touched: Vec::new(),
            written_linked: Vec::new(),
            made_linked: Vec::new(),
        }
    }

    /// Applies and records an op; an op that fails is a bug of the generator.
    pub fn run(&mut self, op: Op) {
        if let Err(e) = op.apply(self.base) {
            panic!("generator op failed: {} ({e})", op.shell());
        }
        let parent = |p: &PathBuf| p.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Op::Write(p, _)
        | Op::Append(p, _)
        | Op::WriteAt(p, _, _)
        | Op::Truncate(p, _)
        | Op::PunchHole(p, _, _) = &op
            && let Ok(m) = fs::symlink_metadata(self.base.join(p))
            && m.nlink() > 1
        {
            self.written_linked.push((p.clone(), m.ino()));
        }
        match &op {
            Op::Link(_, p) => {
                if let Ok(m) = fs::symlink_metadata(self.base.join(p)) {
                    self.made_linked.push((p.clone(), m.ino()));
                }
            }
            Op::CopyLinks(_, p) => self.made_linked.extend(
                list_at(self.base, p)
                    .into_iter()
                    .filter(|e| e.kind != EKind::Dir && e.nlink > 1)
                    .map(|e| (e.path, e.ino)),
            ),
            _ => {}
        }
        match &op {
            Op::Mkdir(p)
            | Op::Write(p, _)
            | Op::Truncate(p, _)
            | Op::Remove(p)
            | Op::RemoveAll(p)
            | Op::Symlink(_, p)
            | Op::Fifo(p)
            | Op::Link(_, p) => self.touched.push(parent(p)),
            Op::CopyLinks(_, p) => {
                self.touched.push(parent(p));
                self.touched.push(p.clone());
                self.touched.extend(
                    list_at(self.base, p)
                        .into_iter()
                        .filter(|e| e.kind == EKind::Dir)
                        .map(|e| e.path),
                );
            }
            Op::Rename(a, b) => {
                self.touched.push(parent(a));
                self.touched.push(parent(b));
            }
            Op::MkdirP(p) => {
                let mut cur = p.clone();
                while let Some(par) = cur.parent() {
                    self.touched.push(par.to_path_buf());
                    cur = par.to_path_buf();
                }
            }
            _ => {}
        }
        self.ops.push(op);
    }

    fn exists(&self, p: &Path) -> bool {
        fs::symlink_metadata(self.base.join(p)).is_ok()
    }

    /// A new name in `dir` (bytes of one of the awkward styles plus a counter).
    pub fn fresh_name(&mut self, dir: &Path) -> PathBuf {
        loop {
            self.counter += 1;
            let mut name = self.rng.pick(NAME_STYLES).expect("styles").to_vec();
            // `lib` and `lib_sibling` stay bare now and then: the prefix pairs matter.
            if !(name.starts_with(b"lib") && self.rng.chance(40)) {
                name.extend_from_slice(self.counter.to_string().as_bytes());
            }
            if self.rng.chance(3) {
                name.resize(200, b'n');
            }
            let p = rel(dir, &name);
            if !self.exists(&p) {
                return p;
            }
        }
    }

    /// A size: mostly small, some medium, a few large.
    pub fn size(&mut self) -> u64 {
        match self.rng.weighted(&[10, 50, 25, 12, 3]) {
            0 => 0,
            1 => self.rng.range(1, 4096),
            2 => self.rng.range(4097, 100_000),
            3 => self.rng.range(100_001, 600_000),
            _ => self.rng.range(1_000_000, 3_000_000),
        }
    }

    /// A time well in the past: since 2000, before 1970, or on the epoch; with or without
    /// nanoseconds.
    pub fn old_time(&mut self) -> (i64, u32) {
        let secs = match self.rng.weighted(&[6, 3, 1]) {
            0 => self.rng.range(946_684_800, 1_600_000_000) as i64,
            1 => -(self.rng.range(1, 2_000_000_000) as i64),
            _ => 0,
        };
        let nsec = if self.rng.chance(50) {
            self.rng.range(1, 999_999_999) as u32
        } else {
            0
        };
        (secs, nsec)
    }

    /// A new file in `dir`, of any kind of content.
    pub fn new_file(&mut self, dir: &Path) -> PathBuf {
        let p = self.fresh_name(dir);
        if self.rng.chance(12) {
            // Sparse: a large hole, sometimes data at the end.
            let len = self.rng.range(1 << 20, 200 << 20);
            self.run(Op::Truncate(p.clone(), len));
            if self.rng.chance(50) {
                let off = self.rng.range(0, len / 4096) * 4096;
                let n = self.rng.range(1, 20_000);
                self.run(Op::WriteAt(p.clone(), off, n));
            }
        } else {
            let n = self.size();
            self.run(Op::Write(p.clone(), n));
        }
        p
    }

    /// A new symlink in `dir`: to a file or a directory (relative), dangling, or absolute.
    pub fn new_symlink(&mut self, dir: &Path, entries: &[Entry]) {
        let p = self.fresh_name(dir);
        let target: Vec<u8> = match self.rng.below(5) {
            0 | 1 => match self.rng.pick(entries) {
                // Relative to the link's directory: up to the base, then down.
                Some(e) => {
                    let ups = dir.components().count();
                    let mut t = b"../".repeat(ups);
                    t.extend_from_slice(e.path.as_os_str().as_bytes());
                    t
                }
                None => b".".to_vec(),
            },
            2 => b"/nonexistent/dangling".to_vec(),
            3 => b"/etc".to_vec(),
            _ => {
                let mut t = self.base.as_os_str().as_bytes().to_vec();
                t.extend_from_slice(b"/root");
                t
            }
        };
        self.run(Op::Symlink(target, p));
    }

    /// Sets the mtime of every directory this script touched that is still a directory,
    /// deepest first, with probability `p` percent: back to its setup time when it had one
    /// (`rsync -a`, `cp -a`), else to an old time (`tar x`, `touch -d`).
    pub fn set_times_back(&mut self, p: u64) {
        let mut dirs = std::mem::take(&mut self.touched);
        dirs.sort();
        dirs.dedup();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            if d.as_os_str().is_empty() || !d.starts_with("root") || !self.rng.chance(p) {
                continue;
            }
            let is_dir = fs::symlink_metadata(self.base.join(&d)).is_ok_and(|m| m.is_dir());
            if !is_dir {
                continue;
            }
            let (secs, nsec) = match self.setup_times.get(&d) {
                Some(&t) if self.rng.chance(70) => t,
                _ => self.old_time(),
            };
            self.run(Op::Touch(d, secs, nsec));
        }
    }
}

/// Sizes of the setup.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Entries to create (about).
    pub entries: usize,
    /// Set every directory's mtime to an old time at the end (as an unpacked archive has).
    pub backdate: bool,
}

/// Builds the random tree under `base/root` (and a few files in `base/outside`).
#[expect(
    clippy::too_many_lines,
    reason = "one arm per kind of entry, side by side"
)]
pub fn setup(g: &mut Gen, shape: Shape) {
    let outside = PathBuf::from("outside");
    let mut ext = Vec::new();
    for _ in 0..g.rng.range(1, 3) {
        ext.push(g.new_file(&outside));
    }
    let mut dirs = vec![PathBuf::from("root")];
    let mut made = 0;
    let mut wide_done = false;
    while made < shape.entries {
        let recent = dirs.len().saturating_sub(4);
        let dir = if g.rng.chance(40) {
            dirs[recent + g.rng.below(dirs.len() - recent)].clone()
        } else {
            g.rng.pick(&dirs).expect("root").clone()
        };
        match g.rng.weighted(&[14, 2, 2, 40, 6, 3, 7, 3, 3, 4]) {
            0 => {
                let d = g.fresh_name(&dir);
                g.run(Op::Mkdir(d.clone()));
                dirs.push(d);
                made += 1;
            }
            1 => {
                // A deep chain.
                let mut d = dir;
                for _ in 0..g.rng.range(4, 14) {
                    d = rel(&d, b"d");
                    if g.exists(&d) {
                        break;
                    }
                    g.run(Op::Mkdir(d.clone()));
                    dirs.push(d.clone());
                    made += 1;
                }
                g.new_file(&d);
                made += 1;
            }
            2 if !wide_done => {
                // A wide directory.
                wide_done = true;
                let d = g.fresh_name(&dir);
                g.run(Op::Mkdir(d.clone()));
                dirs.push(d.clone());
                for i in 0..g.rng.range(40, 120) {
                    let n = g.rng.range(0, 3000);
                    g.run(Op::Write(rel(&d, format!("w{i}").as_bytes()), n));
                }
                made += 60;
            }
            3 => {
                g.new_file(&dir);
                made += 1;
            }
            4 => {
                // A hard link to a file (or symlink) already in the tree.
                let all = list(g.base, "root");
                let files: Vec<_> = all
                    .iter()
                    .filter(|e| matches!(e.kind, EKind::File | EKind::Symlink))
                    .collect();
                if let Some(e) = g.rng.pick(&files) {
                    let p = g.fresh_name(&dir);
                    g.run(Op::Link(e.path.clone(), p));
                    made += 1;
                }
            }
            5 => {
                let e = g.rng.pick(&ext).expect("outside files").clone();
                let p = g.fresh_name(&dir);
                g.run(Op::Link(e, p));
                made += 1;
            }
            6 => {
                let all = list(g.base, "root");
                g.new_symlink(&dir, &all);
                made += 1;
            }
            7 => {
                let p = g.fresh_name(&dir);
                g.run(Op::Fifo(p));
                made += 1;
            }
            8 => {
                // Prefix siblings, each a file or a directory with a file.
                for name in [&b"lib"[..], b"lib_sibling", b"lib.so", b"lib2"] {
                    let p = rel(&dir, name);
                    if g.exists(&p) {
                        continue;
                    }
                    if g.rng.chance(50) {
                        g.run(Op::Mkdir(p.clone()));
                        dirs.push(p.clone());
                        g.new_file(&p);
                    } else {
                        let n = g.size();
                        g.run(Op::Write(p, n));
                    }
                    made += 1;
                }
            }
            _ => {
                let d = g.fresh_name(&dir);
                g.run(Op::Mkdir(d.clone()));
                made += 1; // stays empty unless picked later
                dirs.push(d);
            }
        }
    }
    g.touched.clear();
    if shape.backdate {
        // Deepest first, so setting a child's time does not disturb its parent's.
        let mut all: Vec<_> = list(g.base, "root")
            .into_iter()
            .filter(|e| e.kind == EKind::Dir)
            .map(|e| e.path)
            .collect();
        all.push(PathBuf::from("root"));
        all.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut last = (0, 0);
        for d in all {
            // Now and then two directories share one time exactly.
            let t = if g.rng.chance(15) { last } else { g.old_time() };
            last = t;
            g.run(Op::Touch(d.clone(), t.0, t.1));
            g.setup_times.insert(d, t);
        }
    }
}

/// How a script behaves.
#[derive(Debug, Clone, Copy)]
pub struct Personality {
    pub ops: usize,
    /// Percent of touched directories whose mtime is set back at the end (tar, rsync, cp -a).
    pub set_back: u64,
    /// Weight of `chmod` ops (they matter when the scan runs as nobody).
    pub chmod: u64,
    /// Weight of ops that set one directory's time back right away.
    pub touch: u64,
}

/// One random mutation script, applied as it is made.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per kind of change, side by side"
)]
pub fn script(g: &mut Gen, who: Personality) {
    g.touched.clear();
    g.written_linked.clear();
    g.made_linked.clear();
    let mut done = 0;
    while done < who.ops {
        let all = list(g.base, "root");
        let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("root"))
            .chain(
                all.iter()
                    .filter(|e| e.kind == EKind::Dir)
                    .map(|e| e.path.clone()),
            )
            .collect();
        let files: Vec<&Entry> = all.iter().filter(|e| e.kind == EKind::File).collect();
        let nondirs: Vec<&Entry> = all.iter().filter(|e| e.kind != EKind::Dir).collect();
        let subdirs = &dirs[1..];
        let linked: Vec<&Entry> = nondirs.iter().copied().filter(|e| e.nlink > 1).collect();
        let dir = g.rng.pick(&dirs).expect("root").clone();
        let weights = [
            8, // create a file
            6, // overwrite
            6, // append
            4, // write in place
            5, // truncate
            4, // punch a hole
            6, // delete a non-directory
            4, // mkdir -p and write at once
            3, // rm -rf
            7, // rename within the root
            3, // rename in from outside
            3, // rename out
            3, // rename over an existing file
            5, // replace a kind by another
            4, // add a hard link
            4, // remove a hard link
            4, // write through a hard link (inside or outside the root)
            who.chmod, 3, // swap two directories through a third name
            who.touch, 2, // new symlink or fifo
            4, // link a file and write through the new name at once
            3, // snapshot a directory as hard links, then rewrite or replace in it
        ];
        match g.rng.weighted(&weights) {
            0 => {
                g.new_file(&dir);
            }
            1 => {
                if let Some(f) = g.rng.pick(&files) {
                    let n = g.size();
                    g.run(Op::Write(f.path.clone(), n));
                }
            }
            2 => {
                if let Some(f) = g.rng.pick(&files) {
                    let n = g.size().max(1);
                    g.run(Op::Append(f.path.clone(), n));
                }
            }
            3 => {
                if let Some(f) = g.rng.pick(&files) {
                    let off = g.rng.range(0, f.size + 8192);
                    let n = g.rng.range(1, 70_000);
                    g.run(Op::WriteAt(f.path.clone(), off, n));
                }
            }
            4 => {
                if let Some(f) = g.rng.pick(&files) {
                    let n = match g.rng.below(3) {
                        0 => 0,
                        1 => f.size / 2,
                        _ if g.rng.chance(30) => (4 << 30) + g.rng.range(0, 2 << 30) - (1 << 20),
                        _ => f.size + g.rng.range(1, 5 << 20),
                    };
                    g.run(Op::Truncate(f.path.clone(), n));
                }
            }
            5 => {
                let big: Vec<_> = files.iter().filter(|f| f.size > 8192).collect();
                if let Some(f) = g.rng.pick(&big) {
                    let off = g.rng.range(0, f.size / 4096) * 4096;
                    let n = g.rng.range(1, 64) * 4096;
                    g.run(Op::PunchHole(f.path.clone(), off, n));
                }
            }
            6 => {
                if let Some(e) = g.rng.pick(&nondirs) {
                    g.run(Op::Remove(e.path.clone()));
                }
            }
            7 => {
                let mut d = dir;
                for _ in 0..g.rng.range(1, 4) {
                    d = g.fresh_name(&d);
                }
                g.run(Op::MkdirP(d.clone()));
                for _ in 0..g.rng.range(1, 3) {
                    g.new_file(&d);
                }
            }
            8 => {
                if let Some(d) = g.rng.pick(subdirs) {
                    g.run(Op::RemoveAll(d.clone()));
                }
            }
            9 => {
                // Anything to a new name anywhere in the root (not into itself).
                if let Some(e) = g.rng.pick(&all) {
                    let into_self = dir.starts_with(&e.path);
                    if !into_self {
                        let to = g.fresh_name(&dir);
                        g.run(Op::Rename(e.path.clone(), to));
                    }
                }
            }
            10 => {
                // Made outside, then moved in: a file, or a directory with content.
                let src = g.fresh_name(Path::new("outside"));
                if g.rng.chance(50) {
                    g.run(Op::Mkdir(src.clone()));
                    for _ in 0..g.rng.range(0, 4) {
                        g.new_file(&src);
                    }
                } else {
                    let n = g.size();
                    g.run(Op::Write(src.clone(), n));
                }
                let to = g.fresh_name(&dir);
                g.run(Op::Rename(src, to));
            }
            11 => {
                if let Some(e) = g.rng.pick(&all) {
                    let to = g.fresh_name(Path::new("outside"));
                    g.run(Op::Rename(e.path.clone(), to));
                }
            }
            12 => {
                // Like an editor's save or `mv -f`: a file over an existing file.
                // (Two links of one inode are skipped: rename(2) does nothing, `mv` refuses.)
                if let (Some(a), Some(b)) = (g.rng.pick(&nondirs), g.rng.pick(&files))
                    && a.ino != b.ino
                {
                    g.run(Op::Rename(a.path.clone(), b.path.clone()));
                }
            }
            13 => replace(g, &all),
            14 => {
                let pool: Vec<&Entry> = if g.rng.chance(60) && !linked.is_empty() {
                    linked.clone()
                } else {
                    nondirs.clone()
                };
                if let Some(e) = g.rng.pick(&pool) {
                    let p = g.fresh_name(&dir);
                    g.run(Op::Link(e.path.clone(), p));
                }
            }
            15 => {
                // Any member of a group: the charged one as often as the others.
                if let Some(e) = g.rng.pick(&linked) {
                    g.run(Op::Remove(e.path.clone()));
                }
            }
            16 => {
                let outside: Vec<_> = list(g.base, "outside")
                    .into_iter()
                    .filter(|e| e.kind == EKind::File && e.nlink > 1)
                    .collect();
                let target = if g.rng.chance(40) {
                    g.rng.pick(&outside).map(|e| e.path.clone())
                } else {
                    linked
                        .iter()
                        .filter(|e| e.kind == EKind::File)
                        .nth(g.rng.below(linked.len().max(1)))
                        .map(|e| e.path.clone())
                };
                if let Some(p) = target {
                    let n = g.rng.range(1, 300_000);
                    g.run(Op::Append(p, n));
                }
            }
            17 => {
                let locked: Vec<_> = all
                    .iter()
                    .filter(|e| e.kind == EKind::Dir && e.mode != 0o755)
                    .collect();
                if let Some(e) = g.rng.pick(&locked).filter(|_| g.rng.chance(50)) {
                    g.run(Op::Chmod(e.path.clone(), 0o755));
                } else if let Some(d) = g.rng.pick(subdirs) {
                    let mode = if g.rng.chance(70) { 0o000 } else { 0o111 };
                    g.run(Op::Chmod(d.clone(), mode));
                }
            }
            18 => {
                let a = g.rng.pick(subdirs).cloned();
                let b = g.rng.pick(subdirs).cloned();
                if let (Some(a), Some(b)) = (a, b)
                    && !a.starts_with(&b)
                    && !b.starts_with(&a)
                {
                    let parent = a.parent().expect("below root").to_path_buf();
                    let tmp = g.fresh_name(&parent);
                    g.run(Op::Rename(a.clone(), tmp.clone()));
                    g.run(Op::Rename(b.clone(), a));
                    g.run(Op::Rename(tmp, b));
                }
            }
            19 => {
                let d = if g.rng.chance(40) && !nondirs.is_empty() {
                    g.rng.pick(&nondirs).expect("some").path.clone()
                } else {
                    g.rng.pick(&dirs).expect("root").clone()
                };
                let (secs, nsec) = match g.setup_times.get(&d) {
                    Some(&t) if g.rng.chance(50) => t,
                    _ => g.old_time(),
                };
                g.run(Op::Touch(d, secs, nsec));
            }
            20 => {
                if g.rng.chance(70) {
                    g.new_symlink(&dir, &all);
                } else {
                    let p = g.fresh_name(&dir);
                    g.run(Op::Fifo(p));
                }
            }
            21 => {
                // `ln a sub/b; echo x >> sub/b`: the inode's other names are plain files
                // in the tree, its sizes changed before any batch sees the new name.
                let plain: Vec<&&Entry> = files.iter().filter(|e| e.nlink == 1).collect();
                if let Some(f) = g.rng.pick(&plain) {
                    let p = g.fresh_name(&dir);
                    g.run(Op::Link(f.path.clone(), p.clone()));
                    write_through(g, &p);
                }
            }
            _ => snapshot(g, &all),
        }
        done += 1;
    }
    g.set_times_back(who.set_back);
}

/// A write through `p`, a file's new name: appended, rewritten, or cut.
fn write_through(g: &mut Gen, p: &Path) {
    let n = g.rng.range(1, 300_000);
    let op = match g.rng.below(3) {
        0 => Op::Append(p.to_path_buf(), n),
        1 => Op::Write(p.to_path_buf(), n),
        _ => Op::Truncate(p.to_path_buf(), n / 3),
    };
    g.run(op);
}

/// `cp -al dir snap` (what rsnapshot and `rsync --link-dest` do every night), then one file
/// of the snapshot written through, replaced by a new file (rsync's temporary file renamed
/// over it), or removed.
fn snapshot(g: &mut Gen, all: &[Entry]) {
    // A directory small enough, each directory in it readable (`cp` stops at one that
    // is not), and never copied into itself: the copy goes beside it.
    let small: Vec<&Entry> = all
        .iter()
        .filter(|d| d.kind == EKind::Dir)
        .filter(|d| {
            let inside: Vec<&Entry> = all.iter().filter(|e| e.path.starts_with(&d.path)).collect();
            inside.len() <= 150
                && inside
                    .iter()
                    .all(|e| e.kind != EKind::Dir || e.mode & 0o500 == 0o500)
        })
        .collect();
    let Some(d) = g.rng.pick(&small).map(|d| d.path.clone()) else {
        return;
    };
    let parent = d.parent().expect("below root").to_path_buf();
    let snap = g.fresh_name(&parent);
    g.run(Op::CopyLinks(d, snap.clone()));
    let files: Vec<PathBuf> = list_at(g.base, &snap)
        .into_iter()
        .filter(|e| e.kind == EKind::File)
        .map(|e| e.path)
        .collect();
    let Some(f) = g.rng.pick(&files).cloned() else {
        return;
    };
    match g.rng.below(4) {
        0 | 1 => write_through(g, &f),
        2 => {
            let tmp = g.fresh_name(f.parent().expect("in the snapshot"));
            let n = g.size();
            g.run(Op::Write(tmp.clone(), n));
            g.run(Op::Rename(tmp, f));
        }
        _ => g.run(Op::Remove(f)),
    }
}

/// One entry replaced by another kind under the same name.
fn replace(g: &mut Gen, all: &[Entry]) {
    let Some(e) = g.rng.pick(all).cloned() else {
        return;
    };
    let p = e.path;
    if e.kind == EKind::Dir {
        g.run(Op::RemoveAll(p.clone()));
    } else {
        g.run(Op::Remove(p.clone()));
    }
    match g.rng.below(3) {
        0 if e.kind != EKind::Dir => {
            g.run(Op::Mkdir(p.clone()));
            g.new_file(&p);
        }
        1 if e.kind != EKind::Symlink => {
            let parent = p.parent().expect("below root").to_path_buf();
            let all = list(g.base, "root");
            let mut target = b"../".repeat(parent.components().count());
            if let Some(t) = g.rng.pick(&all) {
                target.extend_from_slice(t.path.as_os_str().as_bytes());
            }
            g.run(Op::Symlink(target, p));
        }
        _ => {
            let n = g.size();
            g.run(Op::Write(p, n));
        }
    }
}
