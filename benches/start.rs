//! Where a start from the cache goes, phase by phase, on a saved arena (medians of 15):
//! mapping the file, the body checksum alone, the validation alone (one thread each), both as
//! a start runs them (`Tree::check_arena`: one pass on every core, the mapping fresh), and a
//! first frame of the browser drawn into memory (`TestBackend`).
//!
//! `cargo bench --bench start -- ARENA_FILE` (an `.arena` in a cache directory, written by
//! e.g. `dtui scan --cache-dir D TREE`)

use std::path::PathBuf;
use std::time::Instant;

use disktracker::scan::ProgressSnapshot;
use disktracker::tree::{Arena, Tree};
use disktracker::ui::{App, Status, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e3
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

fn main() {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench start -- ARENA_FILE");
        std::process::exit(2);
    };
    let runs = 15;
    let (mut map, mut sum, mut valid, mut both, mut frame) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut entries = 0;
    for _ in 0..runs {
        let (t, a) = time(|| Arena::open(&path).expect("a saved arena"));
        map.push(t);
        let (t, ok) = time(|| a.body_is_intact());
        assert!(ok, "the checksum matches");
        sum.push(t);
        let (t, r) = time(|| Tree::validate_arena(&a));
        r.expect("a valid arena");
        valid.push(t);
        drop(a);
        let a = Arena::open(&path).expect("a saved arena");
        let (t, r) = time(|| Tree::check_arena(&a));
        both.push(t);
        let tree = Tree::from_validated(a, r.expect("intact and valid"));
        entries = tree.arena().header().live_nodes;
        let (t, ()) = time(|| {
            let status = Status {
                freshness: disktracker::engine::Freshness::Fresh,
                progress: ProgressSnapshot::default(),
            };
            let mut app = App::new(&tree, "cache".into(), status);
            let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
            term.draw(|f| render(f, &mut app, &tree)).expect("frame");
        });
        frame.push(t);
    }
    println!(
        "start from {} ({entries} entries), medians of {runs}: map {:.2} ms, checksum {:.2} ms, \
         validation {:.2} ms, checksum and validation as a start runs them {:.2} ms, first frame {:.2} ms",
        path.display(),
        median_ms(map),
        median_ms(sum),
        median_ms(valid),
        median_ms(both),
        median_ms(frame)
    );
}
