//! Trees as comparable dumps (the in-process `Tree`, or an ncdu JSON export), what a tree must
//! satisfy on its own (no name twice, totals that add up, one charge per hard-link group), and
//! the node-by-node comparison of a catch-up with a fresh scan.

use std::collections::{BTreeMap, HashMap};

use disktracker::tree::{Kind, NodeId, Tree, flag_char, flags};

/// One node as both sides can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    kind: &'static str,
    asize: u64,
    dsize: u64,
    ino: u64,
    nlink: u64,
    /// The flag bits that must agree (`STALE` and `H` left out), as letters.
    flags: String,
    /// Entries below (directories of the in-process tree).
    items: Option<u64>,
    /// Fields a tree keeps for itself, checked against its own nodes, not the other tree.
    hdup: bool,
    stored: Option<(u64, u64, u64)>,
}

/// A tree as a map from path (relative to the base, bytes) to node.
#[derive(Debug, Default)]
pub struct Dump {
    nodes: BTreeMap<Vec<u8>, Rec>,
    /// Problems of the tree on its own (duplicates, totals that do not add up, H charges).
    pub own: Vec<String>,
    /// Root (apparent, disk, items), every hard-link group charged once.
    pub canonical_root: (u64, u64, u64),
    /// The dump says which hard link carries the charge (the in-process tree; not an export).
    has_charges: bool,
}

fn shown(p: &[u8]) -> String {
    super::q_bytes(p)
}

fn flag_letters(f: u8, kind: Kind) -> String {
    let f = f & !(flags::STALE | flags::HARDLINK_DUP | flags::FREE);
    let mut s = String::from(flag_char(f, kind).trim());
    if f & flags::ERROR_BELOW != 0 && !s.contains('.') {
        s.push('.');
    }
    if f & flags::READ_ERROR != 0 && !s.contains('!') {
        s.push('!');
    }
    s
}

pub fn dump_tree(t: &Tree) -> Dump {
    let mut d = Dump {
        has_charges: true,
        ..Dump::default()
    };
    let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(t.root(), b"root".to_vec())];
    while let Some((id, path)) = stack.pop() {
        let n = *t.node(id);
        let kind = t.kind(id);
        let is_dir = kind == Kind::Dir;
        let totals = t.totals(id);
        let rec = Rec {
            kind: match kind {
                Kind::Dir => "dir",
                Kind::File => "file",
                Kind::Symlink => "symlink",
                Kind::Other => "other",
                Kind::Unknown => "unknown",
            },
            asize: t.own(id).apparent,
            dsize: t.own(id).disk,
            // Kept for directories and hard links only (a plain file's is not).
            ino: t.ino(id).unwrap_or(0),
            nlink: if is_dir { 0 } else { u64::from(t.nlink(id)) },
            flags: flag_letters(n.flags, kind),
            items: is_dir.then_some(totals.items),
            hdup: n.flags & flags::HARDLINK_DUP != 0,
            stored: is_dir.then_some((totals.apparent, totals.disk, totals.items)),
        };
        if d.nodes.insert(path.clone(), rec).is_some() {
            d.own
                .push(format!("[duplicate] {} is in the tree twice", shown(&path)));
        }
        for c in t.children(id) {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(t.name(c));
            stack.push((c, p));
        }
    }
    d.check_own();
    d
}

/// The ncdu JSON export (`[1, 2, meta, [root, ...]]`) as a dump.
pub fn dump_json(v: &serde_json::Value) -> Dump {
    fn walk(item: &serde_json::Value, parent: &[u8], root: bool, d: &mut Dump) {
        let (info, children) = match item {
            serde_json::Value::Array(a) => (&a[0], Some(&a[1..])),
            other => (other, None),
        };
        let path = if root {
            b"root".to_vec()
        } else {
            let mut p = parent.to_vec();
            p.push(b'/');
            p.extend_from_slice(&json_name(&info["name"]));
            p
        };
        let num = |k: &str| info[k].as_u64().unwrap_or(0);
        let yes = |k: &str| info[k].as_bool().unwrap_or(false);
        let mut flags = String::new();
        if yes("read_error") {
            flags.push('!');
        }
        if let Some(e) = info["excluded"].as_str() {
            flags.push_str(e);
        }
        let rec = Rec {
            kind: if children.is_some() {
                "dir"
            } else if yes("notreg") {
                "notreg"
            } else {
                "file"
            },
            asize: num("asize"),
            dsize: num("dsize"),
            ino: num("ino"),
            nlink: if children.is_some() {
                0
            } else {
                num("nlink").max(1)
            },
            flags,
            items: None,
            hdup: false,
            stored: None,
        };
        if d.nodes.insert(path.clone(), rec).is_some() {
            d.own
                .push(format!("[duplicate] {} is exported twice", shown(&path)));
        }
        for c in children.into_iter().flatten() {
            walk(c, &path, false, d);
        }
    }
    let mut d = Dump::default();
    walk(&v[3], b"", true, &mut d);
    d.check_own();
    d
}

/// Plane 16 private use: where `escape_invalid_utf8` puts the bytes that are not UTF-8.
const RAW_BYTE_BASE: u32 = 0x10_0000;

/// The export passes names' invalid UTF-8 through as raw bytes (as ncdu does), which no JSON
/// parser takes: each such byte becomes a private-use char that `json_name` turns back.
pub fn escape_invalid_utf8(mut bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                s.push_str(valid);
                return s;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                s.push_str(std::str::from_utf8(valid).expect("checked valid"));
                let bad = e.error_len().unwrap_or(rest.len());
                for &b in &rest[..bad] {
                    s.push(char::from_u32(RAW_BYTE_BASE + u32::from(b)).expect("a valid char"));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

/// A name from the parsed export, raw bytes restored.
fn json_name(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    for c in v.as_str().unwrap_or_default().chars() {
        let u = u32::from(c);
        if (RAW_BYTE_BASE..RAW_BYTE_BASE + 256).contains(&u) {
            out.push((u - RAW_BYTE_BASE) as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

fn parent_of(path: &[u8]) -> Option<&[u8]> {
    path.iter().rposition(|&c| c == b'/').map(|i| &path[..i])
}

impl Dump {
    /// Checks the tree against itself: one charged member per hard-link group, none on a
    /// single link, and stored directory totals equal to the sum of what is charged below.
    /// Also computes the root totals with each group charged once (the same whichever member
    /// carries the charge).
    fn check_own(&mut self) {
        let mut groups: HashMap<u64, Vec<&Vec<u8>>> = HashMap::new();
        for (p, r) in &self.nodes {
            if r.kind != "dir" && !r.flags.contains('!') && r.nlink > 1 {
                groups.entry(r.ino).or_default().push(p);
            } else if r.hdup {
                self.own.push(format!(
                    "[charge] {} is marked H but is not a hard link",
                    shown(p)
                ));
            }
        }
        for (ino, members) in groups.iter().filter(|_| self.has_charges) {
            let charged = members.iter().filter(|p| !self.nodes[**p].hdup).count();
            if charged != 1 {
                let names: Vec<_> = members.iter().map(|p| shown(p)).collect();
                self.own.push(format!(
                    "[charge] inode {ino} is charged {charged} times among {}",
                    names.join(", ")
                ));
            }
        }
        // Recompute with this tree's own charges (only the in-process tree stores totals).
        let mut sums: HashMap<&[u8], (u64, u64, u64)> = HashMap::new();
        for (p, r) in &self.nodes {
            let mut cur = parent_of(p);
            while let Some(anc) = cur {
                let s = sums.entry(anc).or_default();
                if !r.hdup {
                    s.0 += r.asize;
                    s.1 += r.dsize;
                }
                s.2 += 1;
                cur = parent_of(anc);
            }
        }
        for (p, r) in &self.nodes {
            let Some(stored) = r.stored else { continue };
            let below = sums.get(p.as_slice()).copied().unwrap_or_default();
            let want = (r.asize + below.0, r.dsize + below.1, below.2);
            if stored != want {
                self.own.push(format!(
                    "[totals] {} stores (apparent, disk, items) {stored:?}, its nodes add up to {want:?}",
                    shown(p)
                ));
            }
        }
        // Each group charged once, whichever member.
        let mut seen = std::collections::HashSet::new();
        let mut root = (0, 0, 0);
        for r in self.nodes.values() {
            let linked = r.kind != "dir" && !r.flags.contains('!') && r.nlink > 1;
            root.2 += 1;
            if linked && !seen.insert(r.ino) {
                continue;
            }
            root.0 += r.asize;
            root.1 += r.dsize;
        }
        root.2 -= 1;
        self.canonical_root = root;
    }
}

/// The catch-up against the fresh scan, node by node.
pub fn compare(caught: &Dump, fresh: &Dump, problems: &mut Vec<String>) {
    problems.extend(caught.own.iter().map(|p| format!("{p} (catch-up)")));
    problems.extend(
        fresh
            .own
            .iter()
            .map(|p| format!("[fresh-own]{p} (fresh scan)")),
    );
    for (p, f) in &fresh.nodes {
        let Some(c) = caught.nodes.get(p) else {
            problems.push(format!(
                "[missing] {} ({}) is not in the catch-up",
                shown(p),
                f.kind
            ));
            continue;
        };
        let mut diffs = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                diffs.push(format!("{name} {a} (catch-up) vs {b} (fresh)"));
            }
        };
        field("kind", c.kind.into(), f.kind.into());
        field("asize", c.asize.to_string(), f.asize.to_string());
        field("dsize", c.dsize.to_string(), f.dsize.to_string());
        field("ino", c.ino.to_string(), f.ino.to_string());
        field("nlink", c.nlink.to_string(), f.nlink.to_string());
        field("flags", format!("{:?}", c.flags), format!("{:?}", f.flags));
        field("items", format!("{:?}", c.items), format!("{:?}", f.items));
        if !diffs.is_empty() {
            let tag = if diffs
                .iter()
                .any(|d| d.starts_with("kind") || d.starts_with("ino"))
            {
                "[replaced]"
            } else if diffs
                .iter()
                .any(|d| d.starts_with("asize") || d.starts_with("dsize"))
            {
                "[size]"
            } else if diffs.iter().any(|d| d.starts_with("nlink")) {
                "[nlink]"
            } else if diffs.iter().any(|d| d.starts_with("flags")) {
                "[flags]"
            } else {
                "[items]"
            };
            problems.push(format!("{tag} {}: {}", shown(p), diffs.join("; ")));
        }
    }
    for (p, c) in &caught.nodes {
        if !fresh.nodes.contains_key(p) {
            problems.push(format!(
                "[extra] {} ({}) is only in the catch-up",
                shown(p),
                c.kind
            ));
        }
    }
    if caught.canonical_root != fresh.canonical_root {
        problems.push(format!(
            "[root] catch-up root (apparent, disk, items) {:?} vs fresh {:?}",
            caught.canonical_root, fresh.canonical_root
        ));
    }
    // The most telling first: a missing entry explains the totals above it.
    problems.sort_by_key(|p| {
        [
            "[duplicate]",
            "[missing]",
            "[extra]",
            "[replaced]",
            "[size]",
            "[nlink]",
            "[charge]",
        ]
        .iter()
        .position(|t| p.starts_with(t))
        .unwrap_or(99)
    });
}
