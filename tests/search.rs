//! Search (issue 13 item 1) and shell integration (item 4): the results of `/` in the browser
//! through `App::update` and `TestBackend` frames, following a live engine and a freed slot;
//! `dtui completions` and `dtui man` from the real binary.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::unbounded;
use disktracker::cache::CacheOptions;
use disktracker::engine::{Engine, EngineMsg, EngineOptions, Freshness, TreeDelta};
use disktracker::scan::{ProgressSnapshot, ScanOptions};
use disktracker::search::{Matcher, Results, search};
use disktracker::tree::{self, Arena, EntryInfo, Kind, NodeId, Tree};
use disktracker::ui::app::Sel;
use disktracker::ui::{App, Event, Status, render};
use disktracker::watch::Choice;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

/// /fixture: big/ (a.log 5 MB, b.LOG 1 MB), medium/sub/ (deep.log 2 MB, .hidden.log 3 MB),
/// small.txt, and a directory named `logs`.
fn fixture() -> Tree {
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/fixture"),
        &info(Kind::Dir, 4096, 1),
    )
    .expect("tree");
    let root = t.root();
    let add = |t: &mut Tree, parent: NodeId, name: &[u8], e: EntryInfo| {
        t.add_child(parent, name, &e).expect("add")
    };
    let big = add(&mut t, root, b"big", info(Kind::Dir, 4096, 2));
    add(&mut t, big, b"a.log", info(Kind::File, 5_000_000, 3));
    add(&mut t, big, b"b.LOG", info(Kind::File, 1_000_000, 4));
    let medium = add(&mut t, root, b"medium", info(Kind::Dir, 4096, 5));
    let sub = add(&mut t, medium, b"sub", info(Kind::Dir, 4096, 6));
    add(&mut t, sub, b"deep.log", info(Kind::File, 2_000_000, 7));
    add(&mut t, sub, b".hidden.log", info(Kind::File, 3_000_000, 8));
    add(&mut t, root, b"small.txt", info(Kind::File, 3000, 9));
    add(&mut t, root, b"logs", info(Kind::Dir, 4096, 10));
    add(&mut t, root, b"caf\xe9.log", info(Kind::File, 100, 11));
    t
}

fn status() -> Status {
    Status {
        freshness: Freshness::Fresh,
        progress: ProgressSnapshot::default(),
    }
}

fn key(c: KeyCode) -> Event {
    Event::Input(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

/// `/`, the pattern, Enter.
fn search_for(a: &mut App, t: &Tree, pattern: &str) {
    a.update(key(KeyCode::Char('/')), t);
    for c in pattern.chars() {
        a.update(key(KeyCode::Char(c)), t);
    }
    a.update(key(KeyCode::Enter), t);
}

/// The shown results as paths below the root.
fn shown(a: &App, t: &Tree) -> Vec<String> {
    let root = t.root_path();
    a.search
        .results
        .as_ref()
        .expect("results")
        .shown()
        .iter()
        .filter_map(|&r| t.resolve(r))
        .map(|id| {
            let p = t.path_of(id);
            String::from_utf8_lossy(
                p.strip_prefix(&root)
                    .expect("below the root")
                    .as_os_str()
                    .as_encoded_bytes(),
            )
            .into_owned()
        })
        .collect()
}

fn screen(a: &mut App, t: &Tree) -> String {
    let mut term = Terminal::new(TestBackend::new(70, 12)).expect("terminal");
    term.draw(|f| render(f, a, t)).expect("draw");
    let buf = term.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn a_search_lists_matches_across_the_tree_largest_first_with_their_paths() {
    let t = fixture();
    let mut a = App::new(&t, "test".into(), status());
    a.color = false;
    search_for(&mut a, &t, "log");
    assert!(a.search.showing);
    // Any case (no uppercase in the pattern), files and directories, hidden ones too.
    assert_eq!(
        shown(&a, &t),
        [
            "big/a.log",
            "medium/sub/.hidden.log",
            "medium/sub/deep.log",
            "big/b.LOG",
            // Equal sizes: by name.
            "caf\u{fffd}.log",
            "logs"
        ]
    );
    let s = screen(&mut a, &t);
    assert!(s.contains("6 matches for log (any case)"), "{s}");
    assert!(s.contains("medium/sub/deep.log"), "{s}");
    assert!(s.contains("logs/"), "a directory ends in /:\n{s}");
    assert!(s.contains(r"caf\xe9.log"), "non-UTF-8 shown escaped:\n{s}");
    assert!(s.contains("/fixture"), "the header names the root:\n{s}");

    // An uppercase letter: case-sensitive; a glob matches whole names.
    search_for(&mut a, &t, "*.LOG");
    assert_eq!(shown(&a, &t), ["big/b.LOG"]);
    search_for(&mut a, &t, "d*.log");
    assert_eq!(shown(&a, &t), ["medium/sub/deep.log"]);
    search_for(&mut a, &t, "nothing-like-it");
    assert!(screen(&mut a, &t).contains("no matches for nothing-like-it"));
}

#[test]
fn enter_opens_the_holding_directory_with_the_match_selected_and_esc_steps_back() {
    let t = fixture();
    let mut a = App::new(&t, "test".into(), status());
    a.hide_hidden = true;
    a.sync(&t);
    let start = a.selected;
    search_for(&mut a, &t, "hidden");
    assert_eq!(shown(&a, &t), ["medium/sub/.hidden.log"]);
    a.update(key(KeyCode::Enter), &t);
    let sub = t.lookup(Path::new("/fixture/medium/sub")).expect("sub");
    let hidden = t
        .lookup(Path::new("/fixture/medium/sub/.hidden.log"))
        .expect("hidden");
    assert!(!a.search.showing);
    assert_eq!(a.cwd, sub);
    assert_eq!(a.selected, Sel::Node(hidden));
    assert!(
        !a.hide_hidden,
        "a hidden match is shown, not left unselectable"
    );
    let s = screen(&mut a, &t);
    assert!(s.contains("/fixture/medium/sub"), "{s}");
    // Esc: back to the results, then to the list where the search started (issue 23: it
    // stayed in sub/), on the row selected then.
    a.update(key(KeyCode::Esc), &t);
    assert!(a.search.showing);
    a.update(key(KeyCode::Esc), &t);
    assert!(!a.search.showing);
    assert_eq!(a.cwd, t.root());
    assert_eq!(a.selected, start);
    // Esc in the prompt closes it and leaves the list as it was; keys typed there are the
    // prompt's (q does not quit).
    a.update(key(KeyCode::Char('/')), &t);
    a.update(key(KeyCode::Char('q')), &t);
    assert!(a.request.is_none());
    let s = screen(&mut a, &t);
    assert!(s.contains("/q█"), "the prompt starts empty:\n{s}");
    a.update(key(KeyCode::Esc), &t);
    assert!(a.search.prompt.is_none() && !a.search.showing);
}

#[test]
fn a_bad_glob_is_said_and_opens_nothing() {
    let t = fixture();
    let mut a = App::new(&t, "test".into(), status());
    search_for(&mut a, &t, "[ab");
    assert!(!a.search.showing);
    assert!(a.message.as_deref().unwrap_or("").contains("unclosed"));
}

/// Changes the tree as the engine does and returns the delta it would send.
fn batch(t: &mut Tree, change: impl FnOnce(&mut Tree)) -> TreeDelta {
    t.track_changes();
    let _ = t.take_changes();
    change(t);
    let ch = t.take_changes();
    let touched = ch.touched().map(|id| t.node_ref(NodeId(id))).collect();
    TreeDelta {
        generation: ch.generation,
        batch: 1,
        events: 1,
        touched,
        ..TreeDelta::default()
    }
}

#[test]
fn a_freed_slot_reused_by_another_entry_never_shows_as_a_match() {
    let mut t = fixture();
    let mut r = Results::run(&t, Matcher::new("deep").expect("pattern"), false);
    assert_eq!(r.count(), 1);
    let deep = t
        .lookup(Path::new("/fixture/medium/sub/deep.log"))
        .expect("deep");
    let old = r.shown()[0];
    let delta = batch(&mut t, |t| {
        t.remove(deep);
        // The freed slot goes to the next entry added.
        let root = t.root();
        let other = t
            .add_child(root, b"other.bin", &info(Kind::File, 9_000_000, 99))
            .expect("add");
        assert_eq!(other, deep, "the slot is reused");
    });
    r.applied(&delta, &t);
    assert_eq!(r.count(), 0, "{:?}", r.shown());
    assert!(t.resolve(old).is_none(), "the old handle names nothing");

    // A rename into a match comes in; growth below a matching directory re-ranks it.
    let mut r = Results::run(&t, Matcher::new("*.bin").expect("pattern"), false);
    assert_eq!(r.count(), 1);
    let small = t.lookup(Path::new("/fixture/small.txt")).expect("small");
    let root = t.root();
    let delta = batch(&mut t, |t| {
        t.move_node(small, root, b"renamed.bin").expect("move");
    });
    r.applied(&delta, &t);
    assert_eq!(r.count(), 2);
    // A delta that does not follow the last one (one missed) runs the search again.
    let a_log = t.lookup(Path::new("/fixture/big/a.log")).expect("a.log");
    let _missed = batch(&mut t, |t| t.remove(a_log));
    let delta = batch(&mut t, |t| {
        let big = t.lookup(Path::new("/fixture/big")).expect("big");
        t.add_child(big, b"late.bin", &info(Kind::File, 1, 100))
            .expect("add");
    });
    r.applied(&delta, &t);
    assert_eq!(r.count(), 3);
}

#[test]
fn matching_reads_names_as_bytes_from_the_arena() {
    let t = fixture();
    let found = search(&t, &Matcher::new("caf?.log").expect("glob"));
    assert_eq!(found.len(), 1);
    assert_eq!(t.name(found[0]), b"caf\xe9.log");
    // The root's own name (its path) is not an entry to find.
    assert!(search(&t, &Matcher::new("fixture").expect("pattern")).is_empty());
}

#[test]
fn the_results_follow_a_file_created_and_removed_under_a_live_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
    write(&root.join("a/needle-one.txt"), 10_000);
    write(&root.join("a/b/hay.txt"), 10_000);
    let (tx, rx) = unbounded();
    let mut opts = EngineOptions::new(
        CacheOptions {
            dir: None,
            disabled: true,
        },
        ScanOptions::default(),
    );
    opts.watch = Some(Choice::Notify);
    opts.watch_required = true;
    let engine = Engine::start(&root, opts, tx).expect("engine");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pending = Vec::new();
    loop {
        let msg = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the engine gets ready");
        let ready = matches!(msg, EngineMsg::Ready);
        pending.push(msg);
        if ready {
            break;
        }
    }
    let lock: &RwLock<Tree> = &engine.tree;
    let mut a = App::new(&tree::read(lock), "test".into(), status());
    for m in pending {
        a.update(Event::Engine(m), &tree::read(lock));
    }
    search_for(&mut a, &tree::read(lock), "needle");
    assert_eq!(shown(&a, &tree::read(lock)), ["a/needle-one.txt"]);

    // Until the screen's results say `want`, feed the engine's messages to the app.
    let wait_for = |a: &mut App, want: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The list and the screen drawn from it (another batch may come in between).
            let t = tree::read(lock);
            if shown(a, &t) == want {
                let s = screen(a, &t);
                if want.iter().all(|w| s.contains(w)) {
                    return;
                }
            }
            drop(t);
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "the results did not become {want:?}: {:?}",
                    shown(a, &tree::read(lock))
                )
            });
            a.update(Event::Engine(msg), &tree::read(lock));
        }
    };
    write(&root.join("a/b/NEEDLE-two.bin"), 200_000);
    wait_for(&mut a, &["a/b/NEEDLE-two.bin", "a/needle-one.txt"]);
    std::fs::remove_file(root.join("a/needle-one.txt")).expect("rm");
    wait_for(&mut a, &["a/b/NEEDLE-two.bin"]);
    std::fs::rename(root.join("a/b"), root.join("a/needles")).expect("mv");
    wait_for(&mut a, &["a/needles", "a/needles/NEEDLE-two.bin"]);
    drop(engine.shutdown());
}

#[test]
fn completion_scripts_parse_and_name_the_subcommands() {
    let bash = run(dtui().args(["completions", "bash"]));
    assert!(bash.status.success(), "{bash:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("dtui.bash");
    std::fs::write(&script, &bash.stdout).expect("write");
    let check = run(Command::new("bash").arg("-n").arg(&script));
    assert!(check.status.success(), "bash -n: {check:?}");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(dtui().args(["completions", shell]));
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for sub in [
            "scan",
            "export",
            "watch",
            "reconcile",
            "cache",
            "completions",
            "man",
        ] {
            assert!(text.contains(sub), "{shell} completes {sub}");
        }
        // Where the shell is installed, it must parse its script too.
        let path = dir.path().join(format!("dtui.{shell}"));
        std::fs::write(&path, &out.stdout).expect("write");
        let syntax = match shell {
            "zsh" => Some(Command::new("zsh").arg("-n").arg(&path).output()),
            "fish" => Some(Command::new("fish").arg("--no-execute").arg(&path).output()),
            _ => None,
        };
        if let Some(Ok(o)) = syntax {
            assert!(o.status.success(), "{shell} rejects its script: {o:?}");
        }
    }
    let bad = run(dtui().args(["completions", "tcsh"]));
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_man_page_is_roff_with_every_command_and_the_keys() {
    let out = run(dtui().arg("man"));
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(page.contains(".TH dtui 1"), "{page}");
    for section in [
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        ".SH KEYS",
        ".SH \"DTUI SCAN\"",
        ".SH \"DTUI EXPORT\"",
        ".SH \"DTUI WATCH\"",
        ".SH \"DTUI RECONCILE\"",
        ".SH \"DTUI CACHE LIST\"",
        ".SH \"DTUI COMPLETIONS\"",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    assert!(page.contains("search names"), "the / key is documented");
    // `man` renders it where it is installed.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dtui.1");
    std::fs::write(&file, &page).expect("write");
    if let Ok(o) = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && text.contains("DTUI SCAN"), "{o:?}");
    }
}
