//! The browser's benchmarks:
//! 1. time from process start to the first complete frame, on a real tree, with no cache
//!    (cold: the first scan starts in the background) and with a cache (warm), the real binary
//!    in a pseudo-terminal;
//! 2. the render time of one frame with a 100,000-entry directory open (`TestBackend`).
//!
//! `cargo bench --bench ui -- [TREE]` (default: the 500,000-entry benchmark tree)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use disktracker::engine::Freshness;
use disktracker::scan::ProgressSnapshot;
use disktracker::tree::{Arena, EntryInfo, Kind, NodeId, Tree};
use disktracker::ui::{App, Event, Status, view};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Spawns dtui in a PTY and returns the time until the screen shows a full frame (footer).
fn first_frame(bin: &Path, args: &[&str]) -> f64 {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(bin);
    cmd.args(args);
    cmd.env("TERM", "xterm-256color");
    let t0 = Instant::now();
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = vt100::Parser::new(40, 120, 0);
    let elapsed = loop {
        let bytes = rx.recv_timeout(Duration::from_secs(30)).expect("output");
        parser.process(&bytes);
        if parser.screen().contents().contains("Total disk usage") {
            break t0.elapsed().as_secs_f64();
        }
    };
    let _ = writer.write_all(b"q");
    let _ = child.wait();
    drop(pair.master);
    elapsed
}

fn main() {
    let tree_dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("/tmp/dtui-bench-tree"), PathBuf::from);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_dtui"));
    let cache = tempfile::tempdir().expect("tempdir");
    let tree_arg = tree_dir.to_str().expect("utf-8 path");
    let cache_arg = cache.path().to_str().expect("utf-8 path");

    let cold: Vec<f64> = (0..7)
        .map(|_| first_frame(&bin, &["--no-cache", tree_arg]))
        .collect();
    // Build the cache once, then measure starts from it.
    let _ = std::process::Command::new(&bin)
        .args(["scan", "--cache-dir", cache_arg, tree_arg])
        .output();
    let warm: Vec<f64> = (0..7)
        .map(|_| first_frame(&bin, &["--cache-dir", cache_arg, tree_arg]))
        .collect();
    println!(
        "first frame, {}: cold (no cache, scan starting) median {:.1} ms; warm (cache) median {:.1} ms",
        tree_dir.display(),
        median(cold) * 1e3,
        median(warm) * 1e3
    );

    // A 100,000-entry directory.
    let dir_info = |size| EntryInfo {
        kind: Kind::Dir,
        flags: 0,
        ino: 1,
        dev: 1,
        nlink: 2,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        apparent: size,
        disk: size,
        errno: 0,
    };
    let mut tree = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/wide"),
        &dir_info(4096),
    )
    .expect("tree");
    let root = tree.root();
    for i in 0..100_000u64 {
        let e = EntryInfo {
            kind: Kind::File,
            ino: i + 2,
            apparent: (i * 7919) % 1_000_003,
            disk: ((i * 7919) % 1_000_003).div_ceil(4096) * 4096,
            ..dir_info(0)
        };
        tree.add_child(root, format!("file-{i:06}.dat").as_bytes(), &e)
            .expect("add");
    }
    let status = Status {
        freshness: Freshness::Fresh,
        progress: ProgressSnapshot {
            entries: 0,
            dirs: 0,
            apparent: 0,
            disk: 0,
            errors: 0,
            current: NodeId::NONE,
        },
    };
    let mut app = App::new(&tree, String::new(), status);
    let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut draw = |app: &mut App, key: Option<char>| {
        let t0 = Instant::now();
        if let Some(k) = key {
            app.update(
                Event::Input(TermEvent::Key(KeyEvent::new(
                    KeyCode::Char(k),
                    KeyModifiers::NONE,
                ))),
                &tree,
            );
        }
        term.draw(|f| view::draw(f, app, &tree)).expect("draw");
        t0.elapsed().as_secs_f64()
    };
    let first = draw(&mut app, None);
    let steady: Vec<f64> = (0..50).map(|_| draw(&mut app, None)).collect();
    let resorted: Vec<f64> = (0..10)
        .map(|i| draw(&mut app, Some(if i % 2 == 0 { 'n' } else { 's' })))
        .collect();
    println!(
        "frame with a 100,000-entry directory open (200x60): first (sorts) {:.2} ms; \
         steady median {:.3} ms; key + re-sort + frame (n/s) median {:.2} ms",
        first * 1e3,
        median(steady) * 1e3,
        median(resorted) * 1e3
    );
}
