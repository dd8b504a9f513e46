//! The browser without a terminal: whole-screen snapshots of `TestBackend` frames on a fixed
//! fixture tree, and journeys of scripted keys through the real event loop.

use std::path::Path;
use std::sync::RwLock;

use crossbeam_channel::unbounded;
use disktracker::engine::{EngineMsg, Freshness};
use disktracker::scan::ProgressSnapshot;
use disktracker::tree::{Arena, EntryInfo, Kind, NodeId, Tree, flags};
use disktracker::ui::app::{Graph, Popup, Sel, SortKey};
use disktracker::ui::{App, Event, Request, Status, event_loop, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

const MTIME: i64 = 1_700_000_000;

fn info(kind: Kind, size: u64, ino: u64) -> EntryInfo {
    EntryInfo {
        kind,
        flags: 0,
        ino,
        dev: 1,
        nlink: 1,
        mtime: MTIME,
        mtime_nsec: 0,
        apparent: size,
        disk: size.div_ceil(4096) * 4096,
        errno: 0,
    }
}

/// A fixed tree (no disk involved):
/// /fixture: big/ (a 5 MB, b 1 MB), medium/sub/deep (2 MB), small.txt, .hidden, link@,
/// locked/ (unreadable), empty/
fn fixture() -> Tree {
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/fixture"),
        &info(Kind::Dir, 4096, 1),
    )
    .expect("tree");
    let root = t.root();
    let add = |t: &mut Tree, parent: NodeId, name: &str, e: EntryInfo| {
        t.add_child(parent, name.as_bytes(), &e).expect("add")
    };
    let big = add(&mut t, root, "big", info(Kind::Dir, 4096, 2));
    add(&mut t, big, "a", info(Kind::File, 5_000_000, 3));
    add(&mut t, big, "b", info(Kind::File, 1_000_000, 4));
    let medium = add(&mut t, root, "medium", info(Kind::Dir, 4096, 5));
    let sub = add(&mut t, medium, "sub", info(Kind::Dir, 4096, 6));
    add(&mut t, sub, "deep", info(Kind::File, 2_000_000, 7));
    add(&mut t, root, "small.txt", info(Kind::File, 3000, 8));
    add(&mut t, root, ".hidden", info(Kind::File, 8000, 9));
    add(&mut t, root, "link", info(Kind::Symlink, 11, 10));
    let locked = EntryInfo {
        flags: flags::READ_ERROR,
        errno: 13,
        ..info(Kind::Dir, 4096, 11)
    };
    add(&mut t, root, "locked", locked);
    add(&mut t, root, "empty", info(Kind::Dir, 4096, 12));
    t
}

fn fresh() -> Status {
    Status {
        freshness: Freshness::Fresh,
        progress: ProgressSnapshot {
            entries: 0,
            dirs: 0,
            apparent: 0,
            disk: 0,
            errors: 0,
            current: NodeId::NONE,
        },
    }
}

fn app(tree: &Tree) -> App {
    let mut a = App::new(tree, "test".into(), fresh());
    a.color = false;
    a
}

fn key(c: KeyCode) -> Event {
    Event::Input(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

fn ch(c: char) -> Event {
    key(KeyCode::Char(c))
}

fn render(app: &mut App, tree: &Tree, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| view::draw(f, app, tree)).expect("draw");
    term
}

#[test]
fn the_main_list_puts_the_largest_first_with_flags_and_bars() {
    let tree = fixture();
    let mut a = app(&tree);
    let term = render(&mut a, &tree, 80, 14);
    insta::assert_snapshot!("main_list", term.backend());
}

#[test]
fn the_help_window_lists_the_keys() {
    let tree = fixture();
    let mut a = app(&tree);
    a.update(ch('?'), &tree);
    assert_eq!(a.popup, Popup::Help);
    let term = render(&mut a, &tree, 80, 26);
    insta::assert_snapshot!("help", term.backend());
}

#[test]
fn the_info_window_shows_the_error_of_an_unreadable_directory() {
    let tree = fixture();
    let mut a = app(&tree);
    let locked = tree.lookup(Path::new("/fixture/locked")).expect("locked");
    a.selected = Sel::Node(locked);
    a.update(ch('i'), &tree);
    assert_eq!(a.popup, Popup::Info(locked));
    let term = render(&mut a, &tree, 80, 16);
    insta::assert_snapshot!("info", term.backend());
}

#[test]
fn the_footer_shows_scan_progress_while_scanning() {
    let tree = fixture();
    let mut a = app(&tree);
    let sub = tree.lookup(Path::new("/fixture/medium/sub")).expect("sub");
    a.update(
        Event::Status(Status {
            freshness: Freshness::Scanning,
            progress: ProgressSnapshot {
                entries: 12_345,
                dirs: 100,
                apparent: 1 << 30,
                disk: 3 << 30,
                errors: 1,
                current: sub,
            },
        }),
        &tree,
    );
    let term = render(&mut a, &tree, 90, 12);
    insta::assert_snapshot!("scanning", term.backend());
}

#[test]
fn a_narrow_terminal_drops_columns_before_truncating_names() {
    let tree = fixture();
    let mut a = app(&tree);
    a.show_items = true;
    a.show_mtime = true;
    let wide = render(&mut a, &tree, 100, 10);
    insta::assert_snapshot!("wide_all_columns", wide.backend());
    let narrow = render(&mut a, &tree, 40, 10);
    insta::assert_snapshot!("narrow_40x10", narrow.backend());
}

/// Runs the real loop on queued events (ending with `q`) and returns what it asked for.
fn run_loop(a: &mut App, tree: &RwLock<Tree>, events: Vec<Event>) -> Request {
    let (tx, rx) = unbounded();
    for e in events {
        tx.send(e).expect("send");
    }
    // With the sender gone, an empty queue ends the loop (as Quit) instead of blocking.
    drop(tx);
    let mut term = Terminal::new(TestBackend::new(80, 20)).expect("terminal");
    event_loop(&mut term, a, tree, &rx).expect("loop")
}

#[test]
fn a_journey_descend_sort_toggle_go_up_mark_and_inspect() {
    let lock = RwLock::new(fixture());
    let t = lock.read().expect("read");
    let root = t.root();
    let big = t.lookup(Path::new("/fixture/big")).expect("big");
    let a_file = t.lookup(Path::new("/fixture/big/a")).expect("a");
    let b_file = t.lookup(Path::new("/fixture/big/b")).expect("b");
    drop(t);
    let mut a = {
        let t = lock.read().expect("read");
        app(&t)
    };

    // The largest entry is selected first; Enter descends into it, onto its largest child.
    let r = run_loop(&mut a, &lock, vec![key(KeyCode::Enter), ch('q')]);
    assert_eq!(r, Request::Quit);
    assert_eq!(a.cwd, big);
    assert_eq!(a.selected, Sel::Node(a_file));

    // Sort by name, then reversed, then back to size; the cursor stays on the same entry.
    run_loop(&mut a, &lock, vec![ch('n'), ch('q')]);
    assert_eq!((a.sort, a.reverse), (SortKey::Name, false));
    assert_eq!(a.selected, Sel::Node(a_file));
    run_loop(&mut a, &lock, vec![ch('n'), ch('q')]);
    assert_eq!((a.sort, a.reverse), (SortKey::Name, true));
    {
        let t = lock.read().expect("read");
        assert_eq!(a.rows(&t), [b_file, a_file], "reversed name order");
    }
    run_loop(&mut a, &lock, vec![ch('s'), ch('a'), ch('q')]);
    assert_eq!(a.sort, SortKey::Size);
    assert!(a.apparent);

    // Up returns to the root with the directory we left selected.
    run_loop(&mut a, &lock, vec![key(KeyCode::Left), ch('q')]);
    assert_eq!(a.cwd, root);
    assert_eq!(a.selected, Sel::Node(big));

    // Space marks and moves down: two marks.
    run_loop(&mut a, &lock, vec![ch(' '), ch(' '), ch('q')]);
    assert_eq!(a.marked.len(), 2);
    assert!(a.marked.contains_key(&big));

    // Info on the selection, closed by i.
    let r = run_loop(&mut a, &lock, vec![ch('i'), ch('q')]);
    assert!(matches!(a.popup, Popup::None), "q closes the window first");
    assert_eq!(r, Request::Quit, "(the queue ran out)");
    run_loop(
        &mut a,
        &lock,
        vec![ch('i'), key(KeyCode::Esc), ch('g'), ch('q')],
    );
    assert_eq!(a.popup, Popup::None);
    assert_eq!(a.graph, Graph::None);

    // Items, mtime, hidden toggles and dirs-first are state, shown in the frame.
    run_loop(
        &mut a,
        &lock,
        vec![ch('c'), ch('m'), ch('e'), ch('t'), ch('q')],
    );
    assert!(a.show_items && a.show_mtime && a.hide_hidden && a.dirs_first);
    {
        let t = lock.read().expect("read");
        assert!(
            a.rows(&t).iter().all(|&r| !t.name(r).starts_with(b".")),
            "hidden files are hidden"
        );
    }
}

#[test]
fn the_cursor_follows_its_entry_when_the_list_grows_and_resorts() {
    let lock = RwLock::new(fixture());
    let mut a = {
        let t = lock.read().expect("read");
        app(&t)
    };
    let small = {
        let t = lock.read().expect("read");
        t.lookup(Path::new("/fixture/small.txt")).expect("small")
    };
    a.selected = Sel::Node(small);
    run_loop(&mut a, &lock, vec![ch('q')]);
    let before = {
        let t = lock.read().expect("read");
        a.cursor(&t)
    };
    // A new, larger entry arrives above it (a live update).
    {
        let mut t = lock.write().expect("write");
        let root = t.root();
        t.add_child(root, b"huge", &info(Kind::File, 50_000_000, 99))
            .expect("add");
    }
    run_loop(
        &mut a,
        &lock,
        vec![Event::Engine(EngineMsg::Failed("x".into())), ch('q')],
    );
    let t = lock.read().expect("read");
    assert_eq!(a.selected, Sel::Node(small), "same entry selected");
    assert_eq!(a.cursor(&t), before + 1, "one row further down");
}

#[test]
fn a_mark_does_not_move_to_another_entry_that_reuses_the_id() {
    let lock = RwLock::new(fixture());
    let (mut a, small) = {
        let t = lock.read().expect("read");
        (
            app(&t),
            t.lookup(Path::new("/fixture/small.txt")).expect("small"),
        )
    };
    a.selected = Sel::Node(small);
    run_loop(&mut a, &lock, vec![ch(' ')]);
    assert!(a.marked.contains_key(&small));
    {
        // In one update: the marked file goes, and a new one takes its slot.
        let mut t = lock.write().expect("write");
        t.remove(small);
        let root = t.root();
        let reused = t
            .add_child(root, b"newcomer", &info(Kind::File, 10, 77))
            .expect("add");
        assert_eq!(reused, small, "the slot is reused");
    }
    run_loop(
        &mut a,
        &lock,
        vec![Event::Engine(EngineMsg::Failed("x".into()))],
    );
    assert!(a.marked.is_empty(), "the mark went with its entry");
}

#[test]
fn the_mouse_scrolls_selects_and_double_click_opens() {
    let lock = RwLock::new(fixture());
    let (mut a, big) = {
        let t = lock.read().expect("read");
        (app(&t), t.lookup(Path::new("/fixture/big")).expect("big"))
    };
    let click = |row| {
        Event::Input(TermEvent::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 20,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    let scroll = Event::Input(TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 5,
        modifiers: KeyModifiers::NONE,
    }));
    run_loop(&mut a, &lock, vec![scroll, ch('q')]);
    {
        let t = lock.read().expect("read");
        assert_eq!(a.cursor(&t), 3);
    }
    // Row 1 of the screen is the first list row: a double click opens it.
    run_loop(&mut a, &lock, vec![click(1), click(1), ch('q')]);
    assert_eq!(a.cwd, big);
}

#[test]
fn the_shell_key_asks_the_caller_and_read_only_refuses_it() {
    let lock = RwLock::new(fixture());
    let mut a = {
        let t = lock.read().expect("read");
        app(&t)
    };
    let r = run_loop(&mut a, &lock, vec![ch('b')]);
    assert_eq!(r, Request::Shell("/fixture".into()));
    a.read_only = true;
    let r = run_loop(&mut a, &lock, vec![ch('b'), ch('q')]);
    assert_eq!(r, Request::Quit);
    assert!(a.message.as_deref().unwrap_or("").contains("read-only"));
}
