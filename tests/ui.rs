//! The browser without a terminal: whole-screen snapshots of `TestBackend` frames on a fixed
//! fixture tree, and journeys of scripted keys through the real event loop.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::RwLock;

use common::info;
use crossbeam_channel::unbounded;
use disktracker::engine::{EngineMsg, Freshness, TreeDelta};
use disktracker::scan::ProgressSnapshot;
use disktracker::tree::{Arena, EntryInfo, Kind, NodeId, Time, Tree, flags};
use disktracker::ui::app::{Dialog, Doing, Graph, Popup, Sel, SortKey};
use disktracker::ui::{
    App, Command, Event, Inspection, Request, Status, Watch, draw_frame, event_loop,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

/// The mtime of every entry of the fixture (`common::info`).
const MTIME: i64 = 1_700_000_000;

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
        progress: ProgressSnapshot::default(),
    }
}

fn app(tree: &Tree) -> App {
    let mut a = App::new(tree, "test".into(), fresh());
    a.color = false;
    a.local_time = false;
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
    term.draw(|f| disktracker::ui::render(f, app, tree))
        .expect("draw");
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
    let term = render(&mut a, &tree, 80, 36);
    insta::assert_snapshot!("help", term.backend());
}

#[test]
fn the_help_scrolls_on_a_terminal_too_short_for_it() {
    let tree = fixture();
    let mut a = app(&tree);
    a.update(ch('?'), &tree);
    let text = |a: &mut App| format!("{:?}", render(a, &tree, 80, 24).backend());
    let top = text(&mut a);
    assert!(
        top.contains("move the cursor") && top.contains("(↓ ↑ scroll)"),
        "{top}"
    );
    assert!(!top.contains("stale: being verified again"), "{top}");
    for _ in 0..40 {
        a.update(ch('j'), &tree);
    }
    let bottom = text(&mut a);
    assert!(bottom.contains("stale: being verified again"), "{bottom}");
    assert!(!bottom.contains("move the cursor"), "{bottom}");
    a.update(ch('k'), &tree);
    assert_eq!(a.popup, Popup::Help, "scrolling keeps the window open");
    a.update(ch('q'), &tree);
    assert_eq!(a.popup, Popup::None);
}

#[test]
fn the_info_window_shows_the_error_of_an_unreadable_directory() {
    let tree = fixture();
    let mut a = app(&tree);
    let locked = tree.lookup(Path::new("/fixture/locked")).expect("locked");
    a.selected = Sel::Node(locked);
    a.update(ch('i'), &tree);
    assert_eq!(a.popup, Popup::Info(tree.node_ref(locked)));
    let term = render(&mut a, &tree, 80, 16);
    insta::assert_snapshot!("info", term.backend());
}

#[test]
fn the_footer_shows_scan_progress_while_scanning() {
    let tree = fixture();
    let mut a = app(&tree);
    let sub = tree.lookup(Path::new("/fixture/medium/sub")).expect("sub");
    // The status's own counters lag the tree (a status sent before the scan's last slice was
    // counted): the line counts what the tree on screen holds, as the totals below it do.
    a.update(
        Event::Status(Status {
            freshness: Freshness::Scanning,
            progress: ProgressSnapshot {
                entries: 0,
                dirs: 0,
                apparent: 0,
                disk: 0,
                errors: 1,
                current: sub,
            },
        }),
        &tree,
    );
    let term = render(&mut a, &tree, 90, 12);
    let screen = format!("{:?}", term.backend());
    let items = tree.totals(tree.root()).items;
    assert!(
        screen.contains(&format!("Scanning: {items} entries"))
            && screen.contains(&format!("Items: {items}")),
        "{screen}"
    );
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
    run_loop_commands(a, tree, events).0
}

/// `run_loop`, with the commands the loop was handed.
fn run_loop_commands(
    a: &mut App,
    tree: &RwLock<Tree>,
    events: Vec<Event>,
) -> (Request, Vec<Command>) {
    let (tx, rx) = unbounded();
    for e in events {
        tx.send(e).expect("send");
    }
    // With the sender gone, an empty queue ends the loop (as Quit) instead of blocking.
    drop(tx);
    let mut term = Terminal::new(TestBackend::new(80, 20)).expect("terminal");
    let mut commands = Vec::new();
    let r = event_loop(&mut term, a, tree, &rx, &mut |c| commands.push(c)).expect("loop");
    (r, commands)
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
    assert!(a.marked.contains(&lock.read().expect("read").node_ref(big)));

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
    a.follow_top = false;
    run_loop(&mut a, &lock, vec![ch('q')]);
    let before = {
        let t = lock.read().expect("read");
        a.cursor(&t)
    };
    // A new, larger entry arrives above it (a live update).
    let ev = batch(&lock, |t| {
        let root = t.root();
        t.add_child(root, b"huge", &info(Kind::File, 50_000_000, 99))
            .expect("add");
    });
    run_loop(&mut a, &lock, vec![ev, ch('q')]);
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
    a.follow_top = false;
    run_loop(&mut a, &lock, vec![ch(' ')]);
    assert!(a.is_marked(&lock.read().expect("read"), small));
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
    // No `q`: it would clear the message (every message lasts until the next key); the
    // loop ends as on `q` once the keys run out.
    let r = run_loop(&mut a, &lock, vec![ch('b')]);
    assert_eq!(r, Request::Quit);
    assert!(a.message.as_deref().unwrap_or("").contains("read-only"));
}

/// Changes the tree as the engine does (under the write lock) and returns the delta it would
/// send: every written node (with its ancestors) and every freed one.
fn batch(lock: &RwLock<Tree>, change: impl FnOnce(&mut Tree)) -> Event {
    let mut t = lock.write().expect("write");
    t.track_changes();
    let _ = t.take_changes();
    change(&mut t);
    let ch = t.take_changes();
    let touched = ch.touched().map(|id| t.node_ref(NodeId(id))).collect();
    Event::Engine(EngineMsg::Applied(TreeDelta {
        generation: ch.generation,
        batch: 1,
        events: 1,
        touched,
        ..TreeDelta::default()
    }))
}

fn locked_app(lock: &RwLock<Tree>) -> App {
    app(&lock.read().expect("read"))
}

fn find(lock: &RwLock<Tree>, path: &str) -> NodeId {
    lock.read()
        .expect("read")
        .lookup(Path::new(path))
        .expect(path)
}

fn names(a: &mut App, lock: &RwLock<Tree>) -> Vec<String> {
    let t = lock.read().expect("read");
    a.rows(&t)
        .iter()
        .map(|&r| String::from_utf8_lossy(t.name(r)).into_owned())
        .collect()
}

#[test]
fn one_batch_adding_and_removing_the_same_size_resorts_the_open_directory() {
    // Regression: the list was re-sorted only when the directory's totals or first child
    // changed; a batch removing one 4 KiB file and adding another left the new one unlisted.
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    a.sort = SortKey::Name;
    run_loop(&mut a, &lock, vec![]);
    let small = find(&lock, "/fixture/small.txt");
    let ev = batch(&lock, |t| {
        t.remove(small);
        let root = t.root();
        t.add_child(root, b"aaa.txt", &info(Kind::File, 3000, 50))
            .expect("add");
    });
    run_loop(&mut a, &lock, vec![ev]);
    let listed = names(&mut a, &lock);
    assert!(listed.contains(&"aaa.txt".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"small.txt".to_owned()), "{listed:?}");
}

/// The fixture's medium/sub/deep written an hour after everything else.
fn touch_deep(t: &mut Tree) {
    let deep = t
        .lookup(Path::new("/fixture/medium/sub/deep"))
        .expect("deep");
    t.set_own(
        deep,
        2_000_000,
        2_000_896,
        Time {
            sec: MTIME + 3600,
            nsec: 0,
        },
    )
    .expect("set");
}

#[test]
fn a_newer_file_deep_down_moves_its_directory_up_in_mtime_order() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![ch('M')]);
    assert_eq!(a.sort, SortKey::Mtime);
    let ev = batch(&lock, touch_deep);
    run_loop(&mut a, &lock, vec![ev]);
    assert_eq!(names(&mut a, &lock)[0], "medium", "newest subtree first");
    let medium = find(&lock, "/fixture/medium");
    let t = lock.read().expect("read");
    assert_eq!(a.newest_mtime(&t, medium), MTIME + 3600);
    assert_eq!(
        t.mtime(medium).sec,
        MTIME,
        "the directory's own mtime did not move"
    );
}

#[test]
fn a_rename_in_the_open_directory_resorts_it_by_name() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![ch('n')]);
    let big = find(&lock, "/fixture/big");
    let ev = batch(&lock, |t| {
        let root = t.root();
        assert!(t.move_node(big, root, b"zzz").expect("move"));
    });
    run_loop(&mut a, &lock, vec![ev]);
    let listed = names(&mut a, &lock);
    assert_eq!(listed.last().map(String::as_str), Some("zzz"), "{listed:?}");
}

/// A directory of `n` files of distinct sizes.
fn wide_tree(n: u64) -> Tree {
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/wide"),
        &info(Kind::Dir, 4096, 1),
    )
    .expect("tree");
    let root = t.root();
    for i in 0..n {
        t.add_child(
            root,
            format!("f{i:03}").as_bytes(),
            &info(Kind::File, (n - i) * 10_000, i + 2),
        )
        .expect("add");
    }
    t
}

#[test]
fn the_cursor_keeps_its_entry_and_its_screen_row_when_rows_arrive_above_it() {
    let lock = RwLock::new(wide_tree(60));
    let mut a = locked_app(&lock);
    // Down 25 rows: the view has scrolled (page of 17 rows on an 80x20 screen).
    let downs: Vec<Event> = (0..25).map(|_| key(KeyCode::Down)).collect();
    run_loop(&mut a, &lock, downs);
    let selected = a.selected;
    let (cursor, offset) = {
        let t = lock.read().expect("read");
        (a.cursor(&t), a.offset)
    };
    assert!(offset > 0, "scrolled");
    let ev = batch(&lock, |t| {
        let root = t.root();
        for i in 0..5 {
            t.add_child(
                root,
                format!("huge{i}").as_bytes(),
                &info(Kind::File, 100_000_000 + i, 500 + i),
            )
            .expect("add");
        }
    });
    run_loop(&mut a, &lock, vec![ev]);
    let t = lock.read().expect("read");
    assert_eq!(a.selected, selected, "same entry");
    assert_eq!(a.cursor(&t), cursor + 5, "five rows further down the list");
    assert_eq!(
        a.cursor(&t) - a.offset,
        cursor - offset,
        "same row on screen"
    );
}

#[test]
fn a_removed_selected_entry_leaves_the_cursor_on_its_screen_row() {
    let lock = RwLock::new(wide_tree(30));
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, (0..4).map(|_| key(KeyCode::Down)).collect());
    let Sel::Node(gone) = a.selected else {
        panic!("a node is selected")
    };
    let ev = batch(&lock, |t| t.remove(gone));
    run_loop(&mut a, &lock, vec![ev]);
    let t = lock.read().expect("read");
    assert_eq!(a.cursor(&t), 4, "the row below moved up under the cursor");
    assert_ne!(a.selected, Sel::Node(gone));
}

#[test]
fn a_changed_row_is_highlighted_with_the_sign_and_size_of_its_change() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![]);
    let b = find(&lock, "/fixture/big/b");
    let small = find(&lock, "/fixture/small.txt");
    let ev = batch(&lock, |t| {
        // big/ grows by 50 MiB, small.txt shrinks to nothing, a new file arrives.
        t.set_own(b, 53_428_800, 53_428_800, Time::default())
            .expect("set");
        t.set_own(small, 0, 0, Time::default()).expect("set");
        let root = t.root();
        t.add_child(root, b"new.bin", &info(Kind::File, 1 << 20, 60))
            .expect("add");
    });
    run_loop(&mut a, &lock, vec![ev]);
    assert_eq!(a.flashes.len(), 3, "{:?}", a.flashes);
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 80, 14);
    insta::assert_snapshot!("change_highlight", term.backend());
}

#[test]
fn stale_subtrees_are_marked_on_their_rows() {
    let lock = RwLock::new(fixture());
    let medium = find(&lock, "/fixture/medium");
    lock.write()
        .expect("write")
        .set_flag(medium, flags::STALE, true);
    let mut a = locked_app(&lock);
    let t = lock.read().expect("read");
    a.update(
        Event::Engine(EngineMsg::Stale("a watch could not cover it".into())),
        &t,
    );
    a.update(
        Event::Status(Status {
            freshness: Freshness::Stale,
            ..fresh()
        }),
        &t,
    );
    let term = render(&mut a, &t, 80, 12);
    insta::assert_snapshot!("stale_marks", term.backend());
    // Inside the stale directory, every row is stale.
    drop(t);
    run_loop(&mut a, &lock, vec![key(KeyCode::Down), key(KeyCode::Enter)]);
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 80, 6);
    insta::assert_snapshot!("stale_inside", term.backend());
}

#[test]
fn the_header_says_one_true_state_word_with_the_backend() {
    let tree = fixture();
    let mut out = String::new();
    let cases: Vec<(&str, Freshness, Watch, Option<&str>)> = vec![
        (
            "live",
            Freshness::Live,
            Watch::On("fanotify (filesystem mark)".into()),
            None,
        ),
        (
            "scanning",
            Freshness::Scanning,
            Watch::On("notify (recursive)".into()),
            None,
        ),
        (
            "verifying",
            Freshness::Verifying,
            Watch::On("notify (recursive)".into()),
            Some("events were lost (queue overflow)"),
        ),
        (
            "stale",
            Freshness::Stale,
            Watch::On("notify (recursive)".into()),
            Some("events were lost (queue overflow); re-verifying shortly"),
        ),
        (
            "stale, no backend",
            Freshness::Fresh,
            Watch::Failed("inotify watch limit reached".into()),
            None,
        ),
        ("cached", Freshness::Fresh, Watch::Off, None),
    ];
    for (what, freshness, watch, why) in cases {
        let mut a = app(&tree);
        a.watch = watch;
        if let Some(why) = why {
            a.update(Event::Engine(EngineMsg::Stale(why.into())), &tree);
        }
        a.update(
            Event::Status(Status {
                freshness,
                ..fresh()
            }),
            &tree,
        );
        let term = render(&mut a, &tree, 100, 12);
        let buf = term.backend().buffer();
        let line = |y: u16| -> String {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
        };
        let _ = write!(out, "{what}:\n{}\n{}\n", line(0), line(buf.area.height - 1));
    }
    insta::assert_snapshot!("header_states", out);
}

#[test]
fn narrow_terminals_drop_graphs_before_cutting_names() {
    let mut tree = fixture();
    let root = tree.root();
    tree.add_child(
        root,
        b"a-rather-long-directory-name-here",
        &info(Kind::Dir, 4096, 70),
    )
    .expect("add");
    let mut a = app(&tree);
    let mut out = String::new();
    for w in [72u16, 56, 40, 24, 18] {
        let term = render(&mut a, &tree, w, 11);
        let _ = write!(out, "{w} columns:\n{}\n", term.backend());
    }
    insta::assert_snapshot!("narrow_layouts", out);
}

#[test]
fn after_the_first_scan_the_cursor_is_on_the_top_row() {
    // Regression: the cursor stayed on whichever entry led the first frame of the scan.
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let scanning = Status {
        freshness: Freshness::Scanning,
        ..fresh()
    };
    // The first frame: only small entries so far.
    let small = find(&lock, "/fixture/small.txt");
    {
        let mut t = lock.write().expect("write");
        let root = t.root();
        t.add_child(root, b"zz-late-giant", &info(Kind::File, 900_000_000, 80))
            .expect("add");
    }
    // Before the giant is listed, the cursor is elsewhere; after the scan it is on the top row.
    a.selected = Sel::Node(small);
    run_loop(&mut a, &lock, vec![Event::Status(scanning)]);
    run_loop(&mut a, &lock, vec![Event::Status(fresh())]);
    let giant = find(&lock, "/fixture/zz-late-giant");
    assert_eq!(a.selected, Sel::Node(giant));
    // Once the user moves, it stays where they put it.
    run_loop(&mut a, &lock, vec![key(KeyCode::Down)]);
    let chosen = a.selected;
    let ev = batch(&lock, |t| {
        let root = t.root();
        t.add_child(root, b"bigger-still", &info(Kind::File, 2_000_000_000, 81))
            .expect("add");
    });
    run_loop(&mut a, &lock, vec![ev]);
    assert_eq!(a.selected, chosen);
}

#[test]
fn the_footer_shows_the_totals_of_the_directory_on_screen_and_the_roots() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![key(KeyCode::Enter)]);
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 110, 6);
    insta::assert_snapshot!("footer_in_a_subdirectory", term.backend());
}

#[test]
fn a_marked_entry_inside_a_marked_directory_is_counted_once() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    // Mark big/, go in, mark its largest file a.
    run_loop(
        &mut a,
        &lock,
        vec![ch(' '), key(KeyCode::Up), key(KeyCode::Enter)],
    );
    run_loop(&mut a, &lock, vec![ch(' ')]);
    assert_eq!(a.marked.len(), 2);
    let t = lock.read().expect("read");
    let big = find_in(&t, "/fixture/big");
    assert_eq!(a.marked_size(&t), t.totals(big).disk);
}

fn find_in(t: &Tree, path: &str) -> NodeId {
    t.lookup(Path::new(path)).expect(path)
}

#[test]
fn an_unreadable_directory_says_why_when_opened() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let locked = find(&lock, "/fixture/locked");
    a.selected = Sel::Node(locked);
    a.follow_top = false;
    run_loop(&mut a, &lock, vec![key(KeyCode::Enter)]);
    assert_eq!(a.cwd, locked);
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 60, 5);
    let screen = format!("{}", term.backend());
    assert!(
        screen.contains("cannot read: Permission denied"),
        "{screen}"
    );
    assert!(!screen.contains("empty directory"), "{screen}");
}

#[test]
fn an_unknown_key_shows_a_hint_until_the_next_key() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![ch('Z')]);
    assert_eq!(a.message.as_deref(), Some("unknown key Z: ? for help"));
    run_loop(&mut a, &lock, vec![key(KeyCode::Down)]);
    assert_eq!(a.message, None);
}

#[test]
fn r_and_capital_r_ask_the_loop_to_reconcile_and_keep_the_cursor() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let (big, a_file) = (find(&lock, "/fixture/big"), find(&lock, "/fixture/big/a"));
    let (_, cmds) = run_loop_commands(&mut a, &lock, vec![key(KeyCode::Enter), ch('r'), ch('R')]);
    let big_ref = lock.read().expect("read").node_ref(big);
    assert_eq!(
        cmds,
        vec![
            Command::Reconcile {
                dir: Some(big_ref),
                full: true
            },
            Command::Reconcile {
                dir: None,
                full: true
            }
        ]
    );
    assert_eq!(a.selected, Sel::Node(a_file));
    // While a pass runs, r says so instead of asking for nothing.
    let verifying = Status {
        freshness: Freshness::Verifying,
        ..fresh()
    };
    let (_, cmds) = run_loop_commands(&mut a, &lock, vec![Event::Status(verifying), ch('r')]);
    assert!(cmds.is_empty());
    assert!(
        a.message.as_deref().unwrap_or("").contains("verifying"),
        "{:?}",
        a.message
    );
}

#[test]
fn the_info_window_shows_a_symlinks_target_and_a_directorys_link_count() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let link = find(&lock, "/fixture/link");
    a.selected = Sel::Node(link);
    a.follow_top = false;
    let (_, cmds) = run_loop_commands(&mut a, &lock, vec![ch('i')]);
    let r = lock.read().expect("read").node_ref(link);
    assert_eq!(
        cmds,
        vec![Command::Inspect {
            node: r,
            path: "/fixture/link".into()
        }]
    );
    let answer = Inspection {
        nlink: Some(1),
        target: Some("../elsewhere/target".into()),
        error: None,
    };
    run_loop(&mut a, &lock, vec![Event::Inspected(r, answer)]);
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 80, 16);
    insta::assert_snapshot!("info_symlink", term.backend());
}

#[test]
fn the_info_window_closes_when_its_entry_is_gone_even_if_the_id_is_reused() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let small = find(&lock, "/fixture/small.txt");
    a.selected = Sel::Node(small);
    a.follow_top = false;
    run_loop(&mut a, &lock, vec![ch('i')]);
    assert!(matches!(a.popup, Popup::Info(_)));
    let ev = batch(&lock, |t| {
        t.remove(small);
        let root = t.root();
        let reused = t
            .add_child(root, b"other", &info(Kind::File, 10, 90))
            .expect("add");
        assert_eq!(reused, small);
    });
    run_loop(&mut a, &lock, vec![ev]);
    assert_eq!(a.popup, Popup::None);
}

#[test]
fn an_idle_status_tick_draws_no_frame() {
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let mut term = Terminal::new(TestBackend::new(80, 20)).expect("terminal");
    draw_frame(&mut term, &mut a, &lock).expect("draw");
    assert!(!a.dirty);
    let t = lock.read().expect("read");
    a.update(Event::Status(fresh()), &t);
    assert!(!a.dirty, "the same status again changes nothing");
    a.update(ch('j'), &t);
    assert!(a.dirty);
}

#[test]
fn a_new_order_that_puts_the_cursor_last_still_fills_the_screen() {
    // Regression: the cursor kept its screen row (the top) after `n`, and the view scrolled
    // past the end of the list: two rows shown, the rest of the screen empty.
    let lock = RwLock::new(wide_tree(60));
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![ch('n'), ch('n')]);
    let t = lock.read().expect("read");
    assert_eq!(
        a.cursor(&t),
        59,
        "the largest (f000) is last in reversed name order"
    );
    assert_eq!(a.offset, 60 - a.page, "the last page is full");
}

#[test]
fn a_sort_key_near_the_top_of_a_long_list_keeps_the_first_rows_in_sight() {
    // Regression: the cursor kept its screen row through `n`, so when its entry moved one row
    // down the view scrolled by one and the first entry (`..` in a subdirectory) was hidden
    // with nothing on screen to say so. A chosen order scrolls only as far as it must.
    let mut t = wide_tree(60);
    let root = t.root();
    t.add_child(root, b"a-small", &info(Kind::File, 1, 999))
        .expect("add");
    let lock = RwLock::new(t);
    let mut a = locked_app(&lock);
    run_loop(&mut a, &lock, vec![ch('n')]);
    let t = lock.read().expect("read");
    assert_eq!(a.cursor(&t), 1, "f000 follows a-small in name order");
    assert_eq!(a.offset, 0, "the list is shown from its first row");
    drop(t);
    // A change on the disk still keeps the cursor's screen row (the live view does not jump).
    run_loop(&mut a, &lock, vec![key(KeyCode::Down); 20]);
    let (cursor, offset) = {
        let t = lock.read().expect("read");
        (a.cursor(&t), a.offset)
    };
    let ev = batch(&lock, |t| {
        let root = t.root();
        t.add_child(root, b"a-new", &info(Kind::File, 1, 1000))
            .expect("add");
    });
    run_loop(&mut a, &lock, vec![ev]);
    let t = lock.read().expect("read");
    assert_eq!(a.cursor(&t) - a.offset, cursor - offset, "same screen row");
}

#[test]
fn q_cancels_a_running_delete_and_aborts_at_an_error_as_in_ncdu() {
    let tree = fixture();
    let mut a = app(&tree);
    let running = |error| Dialog::Running {
        doing: Doing::Delete,
        items: 1,
        bytes: 10,
        total_items: 5,
        total_bytes: 50,
        error,
        cancelling: false,
    };
    a.delete.dialog = Some(running(None));
    a.update(ch('q'), &tree);
    assert!(
        matches!(a.commands.as_slice(), [Command::DeleteCancel]),
        "{:?}",
        a.commands
    );
    assert!(
        a.request.is_none(),
        "q cancels the delete, it does not quit"
    );
    a.commands.clear();
    a.delete.dialog = Some(running(Some(("EACCES".into(), 1))));
    a.update(ch('q'), &tree);
    assert!(
        matches!(
            a.commands.as_slice(),
            [Command::DeleteAnswer(disktracker::delete::Decision::Abort)]
        ),
        "{:?}",
        a.commands
    );
    assert!(a.request.is_none());
}

#[test]
fn d_counts_first_and_esc_while_counting_deletes_nothing() {
    use disktracker::delete::worker::{DeleteMsg, Job, Summary};
    let tree = fixture();
    let mut a = app(&tree);
    a.update(ch('d'), &tree);
    assert!(
        matches!(a.commands.as_slice(), [Command::Delete(Job::Plan(t))] if t.len() == 1),
        "{:?}",
        a.commands
    );
    assert!(matches!(a.delete.dialog, Some(Dialog::Counting { .. })));
    a.commands.clear();
    a.update(key(KeyCode::Esc), &tree);
    assert!(
        matches!(a.commands.as_slice(), [Command::DeleteCancel]),
        "{:?}",
        a.commands
    );
    // The worker ends cancelled: no plan is offered, and nothing went.
    a.update(
        Event::Delete(DeleteMsg::Done(Summary {
            cancelled: true,
            ..Summary::default()
        })),
        &tree,
    );
    assert!(a.delete.dialog.is_none());
    assert_eq!(a.message.as_deref(), Some("cancelled: nothing was deleted"));
}

#[test]
fn a_narrow_footer_keeps_the_marks_whole_before_the_roots_total() {
    // Regression: at 50 columns the footer ended in "Root: 5.50 MiB  M", the marks cut.
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    run_loop(
        &mut a,
        &lock,
        vec![ch(' '), key(KeyCode::Up), key(KeyCode::Enter)],
    );
    let t = lock.read().expect("read");
    let term = render(&mut a, &t, 50, 12);
    let buf = term.backend().buffer();
    let footer: String = (0..50).map(|x| buf[(x, 11)].symbol()).collect();
    assert_eq!(
        footer.trim_end(),
        " 5.73 MiB · 2 items  *1 5.73 MiB  size↓ disk"
    );
    let wide = render(&mut a, &t, 120, 12);
    let buf = wide.backend().buffer();
    let footer: String = (0..120).map(|x| buf[(x, 11)].symbol()).collect();
    assert!(
        footer.contains("Root: 7.68 MiB  Marked: 1 (5.73 MiB)"),
        "{footer}"
    );
}

#[test]
fn the_info_window_of_an_import_says_what_the_export_does_not_know() {
    // Regression: a directory of an export showed `Inode: 0` and `Links: …` (waiting for a
    // look at the disk that an import never makes).
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/exported"),
        &info(Kind::Dir, 4096, 0),
    )
    .expect("tree");
    let root = t.root();
    let d = t
        .add_child(root, b"dir", &info(Kind::Dir, 4096, 0))
        .expect("add");
    let mut a = app(&t);
    a.imported = Some(None);
    a.selected = Sel::Node(d);
    a.update(ch('i'), &t);
    let term = render(&mut a, &t, 80, 16);
    let screen: String = format!("{:?}", term.backend());
    assert!(!screen.contains("Inode:"), "{screen}");
    assert!(
        screen.contains("Links:     (not on this disk: from the export)"),
        "{screen}"
    );
}

#[test]
fn a_verification_says_entries_checked_without_bytes_or_a_stale_reason_that_is_over() {
    // Regression: the catch-up after a start from the cache read "Verifying (starting the
    // watch): 60412 entries · 0 B · 0 entries/s": the watch had started, a verification
    // counts no bytes, and there was no rate yet.
    let tree = fixture();
    let mut a = app(&tree);
    a.update(
        Event::Engine(EngineMsg::Stale("starting the watch".into())),
        &tree,
    );
    a.update(
        Event::Engine(EngineMsg::Watching(Ok("fanotify".into()))),
        &tree,
    );
    a.update(
        Event::Status(Status {
            freshness: Freshness::Verifying,
            progress: ProgressSnapshot {
                entries: 60_412,
                ..ProgressSnapshot::default()
            },
        }),
        &tree,
    );
    let term = render(&mut a, &tree, 90, 12);
    let buf = term.backend().buffer();
    let line: String = (0..90).map(|x| buf[(x, 10)].symbol()).collect();
    assert_eq!(line.trim_end(), " Verifying: 60,412 entries checked");
}

#[test]
fn a_wide_unicode_name_is_cut_by_its_columns_and_keeps_its_ellipsis_and_slash() {
    // Regression: names were cut by characters, so a CJK name (two columns each) ran past
    // the edge and the terminal clipped it: no `…`, no `/`.
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/w"),
        &info(Kind::Dir, 4096, 1),
    )
    .expect("tree");
    let root = t.root();
    t.add_child(
        root,
        "wide 名前 日本語 ディレクトリ".as_bytes(),
        &info(Kind::Dir, 4096, 2),
    )
    .expect("add");
    t.add_child(
        root,
        "emoji😀😀😀😀😀😀😀😀😀😀😀😀.dat".as_bytes(),
        &info(Kind::File, 10, 3),
    )
    .expect("add");
    let mut a = app(&t);
    for width in [30u16, 33, 40] {
        let term = render(&mut a, &t, width, 6);
        let buf = term.backend().buffer();
        let rows: Vec<String> = (1..3)
            .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect())
            .collect();
        let dir = rows.iter().find(|r| r.contains("wide")).expect("dir row");
        assert!(dir.trim_end().ends_with("…/"), "{width}: {dir:?}");
        let file = rows.iter().find(|r| r.contains("emoji")).expect("file row");
        assert!(file.trim_end().ends_with('…'), "{width}: {file:?}");
    }
}

#[test]
fn a_toggle_without_a_visible_column_says_what_it_did_until_the_next_key() {
    // `t` in a directory of directories and `e` where nothing is hidden changed nothing on
    // screen, and on a terminal under ~110 columns the footer drops its sort words: the keys
    // seemed dead.
    let tree = fixture();
    let mut a = app(&tree);
    a.update(ch('t'), &tree);
    assert_eq!(a.message.as_deref(), Some("directories first"));
    a.update(ch('t'), &tree);
    assert_eq!(a.message.as_deref(), Some("directories mixed with files"));
    a.update(ch('e'), &tree);
    assert!(
        a.message
            .as_deref()
            .is_some_and(|m| m.starts_with("hidden and excluded entries not listed")),
        "{:?}",
        a.message
    );
    a.update(ch('j'), &tree);
    assert_eq!(a.message, None, "gone at the next key");
    // A message from elsewhere is not a note: a key leaves it.
    a.update(ch('a'), &tree);
    a.update(
        Event::Engine(EngineMsg::Failed("the disk said no".into())),
        &tree,
    );
    a.update(ch('j'), &tree);
    assert_eq!(a.message.as_deref(), Some("error: the disk said no"));
}

#[test]
fn when_the_open_directory_is_deleted_the_browser_goes_to_the_nearest_one_left_and_says_so() {
    // Regression: it jumped to the root without a word, however deep the user was.
    let lock = RwLock::new(fixture());
    let mut a = locked_app(&lock);
    let medium = find(&lock, "/fixture/medium");
    let sub = find(&lock, "/fixture/medium/sub");
    a.selected = Sel::Node(medium);
    a.follow_top = false;
    run_loop(
        &mut a,
        &lock,
        vec![key(KeyCode::Enter), key(KeyCode::Enter)],
    );
    assert_eq!(a.cwd, sub);
    let ev = batch(&lock, |t| t.remove(sub));
    run_loop(&mut a, &lock, vec![ev]);
    assert_eq!(a.cwd, medium, "one level up, not the root");
    assert_eq!(
        a.message.as_deref(),
        Some("/fixture/medium/sub is gone (deleted or moved away): showing /fixture/medium")
    );
    // Its slot reused by another directory is not mistaken for it.
    let ev = batch(&lock, |t| {
        let root = t.root();
        t.remove(medium);
        let reused = t
            .add_child(root, b"newdir", &info(Kind::Dir, 4096, 77))
            .expect("add");
        assert_eq!(reused, medium, "the slot is reused");
    });
    run_loop(&mut a, &lock, vec![ev]);
    let t = lock.read().expect("read");
    assert_eq!(a.cwd, t.root());
    assert_eq!(
        a.message.as_deref(),
        Some("/fixture/medium is gone (deleted or moved away): showing /fixture")
    );
}

#[test]
fn the_help_on_a_tiny_terminal_shows_keys_not_blanks_and_end_reaches_its_last_line() {
    // Regression: at 20x6 the keys' right-aligned column filled the window with blanks
    // (scrolled to the sort keys it showed nothing), and End did not move the help.
    let tree = fixture();
    let mut a = app(&tree);
    a.update(ch('?'), &tree);
    for _ in 0..4 {
        a.update(ch('j'), &tree);
    }
    let small = format!("{:?}", render(&mut a, &tree, 20, 6).backend());
    assert!(small.contains("│ s  sort by size"), "{small}");
    a.update(key(KeyCode::End), &tree);
    let bottom = format!("{:?}", render(&mut a, &tree, 80, 24).backend());
    assert!(bottom.contains("stale: being verified again"), "{bottom}");
    a.update(key(KeyCode::Home), &tree);
    let top = format!("{:?}", render(&mut a, &tree, 80, 24).backend());
    assert!(top.contains("move the cursor"), "{top}");
    assert_eq!(a.popup, Popup::Help);
}

#[test]
fn a_window_left_open_as_the_tree_is_replaced_stays_open() {
    // The owner this browser was attached to went away and the root is opened again: a key
    // pressed meanwhile (`?`, `i`) is not lost when the app moves to the new tree.
    let old = fixture();
    let new = fixture();
    let mut a = app(&old);
    a.update(ch('?'), &old);
    assert_eq!(a.popup, Popup::Help);
    let place = a.place(&old);
    a.rebind(&place, &new, "test".into(), fresh());
    assert_eq!(a.popup, Popup::Help, "the help stays open");

    let mut a = app(&old);
    let big = old.lookup(Path::new("/fixture/big")).expect("big");
    a.selected = Sel::Node(big);
    a.update(ch('i'), &old);
    a.commands.clear();
    let place = a.place(&old);
    a.rebind(&place, &new, "test".into(), fresh());
    let big_new = new.lookup(Path::new("/fixture/big")).expect("big");
    assert_eq!(
        a.popup,
        Popup::Info(new.node_ref(big_new)),
        "the info window follows by path"
    );
    assert!(
        matches!(&a.commands[..], [Command::Inspect { path, .. }] if path == Path::new("/fixture/big")),
        "the entry is looked up again for the new tree: {:?}",
        a.commands.len()
    );
}

#[test]
fn newest_mtimes_drawn_from_an_attached_preview_do_not_outlive_it() {
    // An attached browser (`--show-mtime`, or `--sort=mtime`) draws its first frame from
    // `Tree::preview` (the root's listing, the lists below cut), then the validated image
    // replaces it at the same generation: what the first frame kept of the newest mtimes
    // below each directory must not be taken for the whole tree's.
    let mut whole = fixture();
    touch_deep(&mut whole);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tree.arena");
    whole.save(&path).expect("save");
    let preview = Tree::preview(&Arena::open(&path).expect("open")).expect("a preview");
    let whole = Tree::from_arena(Arena::open(&path).expect("open")).expect("valid");
    assert_eq!(preview.generation(), whole.generation());
    let mut a = app(&preview);
    a.show_mtime = true;
    render(&mut a, &preview, 100, 14);
    // `Engine::shown` returned: the whole tree from here on.
    render(&mut a, &whole, 100, 14);
    let medium = whole.lookup(Path::new("/fixture/medium")).expect("medium");
    assert_eq!(
        a.shown_mtime(&whole, medium),
        MTIME + 3600,
        "the newest mtime below medium/, as the whole tree has it"
    );
}
