//! The search benchmark: name search over a 1,000,000-entry tree built in memory (50,000
//! directories of 19 files; names as a source tree has them: repeated ones like `index.js`
//! and `mod.rs`, numbered ones, hex ones, a few plain words), the median of 11 runs per
//! pattern: the match pass alone (`search::search`) and what the browser runs on Enter
//! (`Results::run`: match, handles, largest first).
//!
//! `cargo bench --bench search`

use std::path::Path;
use std::time::Instant;

use disktracker::search::{Matcher, Results, search};
use disktracker::tree::{Arena, EntryInfo, Kind, NewEntry, Tree};

const DIRS: u64 = 50_000;
const FILES_PER_DIR: u64 = 19;
const RUNS: usize = 11;

fn info(kind: Kind, size: u64, ino: u64) -> EntryInfo {
    EntryInfo {
        kind,
        flags: 0,
        ino,
        dev: 1,
        nlink: 1,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        apparent: size,
        disk: size.div_ceil(4096) * 4096,
        errno: 0,
    }
}

/// A small xorshift, so the tree is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const COMMON: &[&str] = &[
    "index.js",
    "mod.rs",
    "README.md",
    "__init__.py",
    "package.json",
    "Makefile",
    "main.c",
    "app.log",
    "config.yaml",
    "LICENSE",
];

fn file_name(rng: &mut Rng, n: u64) -> String {
    match rng.next() % 4 {
        0 => COMMON[(rng.next() % COMMON.len() as u64) as usize].to_owned(),
        1 => format!("file_{n}.rs"),
        2 => format!("{:016x}.o", rng.next()),
        _ => format!("report-{}-final.txt", rng.next() % 100_000),
    }
}

/// 1 root + 50,000 directories (a fan of 50 under the root, 999 below each) + 950,000 files,
/// with ten files named `needle-N.bin` spread over the tree.
fn build() -> Tree {
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/bench"),
        &info(Kind::Dir, 4096, 1),
    )
    .expect("tree");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ino = 2;
    let root = t.root();
    let mut names = Vec::new();
    let mut entries = Vec::new();
    let mut top = Vec::new();
    for i in 0..50 {
        let name = format!("top{i:02}");
        top.push(
            t.add_child(root, name.as_bytes(), &info(Kind::Dir, 4096, ino))
                .expect("add"),
        );
        ino += 1;
    }
    for d in 50..DIRS {
        let parent = top[(d % 50) as usize];
        let dname = format!("dir-{d}");
        let dir = t
            .add_child(parent, dname.as_bytes(), &info(Kind::Dir, 4096, ino))
            .expect("add");
        ino += 1;
        names.clear();
        entries.clear();
        for f in 0..FILES_PER_DIR {
            let n = d * FILES_PER_DIR + f;
            let name = if n % 95_000 == 7 {
                format!("needle-{n}.bin")
            } else {
                file_name(&mut rng, n)
            };
            let start = names.len() as u32;
            names.extend_from_slice(name.as_bytes());
            entries.push(NewEntry {
                name_start: start,
                name_len: name.len() as u8,
                info: info(Kind::File, rng.next() % 1_000_000, ino),
            });
            ino += 1;
        }
        t.add_children(dir, &entries, &names, |_, _| {})
            .expect("add children");
    }
    // The top directories' own files, to make a round million.
    let mut left = 1_000_000 - t.len();
    let mut k = 0;
    while left > 0 {
        let name = format!("extra-{k}.dat");
        t.add_child(
            top[(k % 50) as usize],
            name.as_bytes(),
            &info(Kind::File, 10, ino),
        )
        .expect("add");
        ino += 1;
        k += 1;
        left -= 1;
    }
    t
}

/// This thread's CPU time (user + system, 10 ms ticks): with other work on the machine, the
/// wall time includes waiting for a core; the CPU time over all runs does not.
fn this_thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let field = |i: usize| {
        rest.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(14) + field(15)) as f64 * 10.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let t0 = Instant::now();
    let tree = build();
    println!(
        "tree: {} entries built in memory in {:.2} s; median of {RUNS} runs each",
        tree.len(),
        t0.elapsed().as_secs_f64()
    );
    println!(
        "{:<14} {:>7} {:>11} {:>14} {:>14} {:>17}",
        "pattern", "matches", "match pass", "(CPU, mean)", "match + rank", "(CPU, mean)"
    );
    for pattern in [
        "needle",
        "NEEDLE",
        "readme",
        "*.log",
        "file_1?3*",
        "[0-9a-f]*.o",
        "report",
        "e",
    ] {
        let m = Matcher::new(pattern).expect("pattern");
        let mut count = 0;
        let cpu0 = this_thread_cpu();
        let pass: Vec<f64> = (0..RUNS)
            .map(|_| {
                let s = Instant::now();
                count = std::hint::black_box(search(&tree, &m)).len();
                s.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let cpu1 = this_thread_cpu();
        let full: Vec<f64> = (0..RUNS)
            .map(|_| {
                let s = Instant::now();
                let r = std::hint::black_box(Results::run(&tree, m.clone(), false));
                assert_eq!(r.count(), count);
                s.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let cpu2 = this_thread_cpu();
        println!(
            "{pattern:<14} {count:>7} {:>8.1} ms {:>11.1} ms {:>11.1} ms {:>14.1} ms",
            median(pass),
            (cpu1 - cpu0) / RUNS as f64,
            median(full),
            (cpu2 - cpu1) / RUNS as f64,
        );
    }
}
