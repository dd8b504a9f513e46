//! The browser's state and `update`: every key, click and engine message changes `App`, and
//! nothing else does. Reading the tree (memory only, under its read lock) is allowed here;
//! touching the disk is not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

use crate::engine::{EngineMsg, Freshness};
use crate::scan::ProgressSnapshot;
use crate::tree::{Kind, NodeId, Tree, flags};

/// Everything that reaches the browser's loop.
#[derive(Debug, Clone)]
pub enum Event {
    Input(TermEvent),
    Engine(EngineMsg),
    /// SIGTERM, SIGHUP, SIGINT or SIGQUIT: quit as on `q` (the terminal restored, the cache
    /// saved).
    Terminate,
    /// SIGTSTP from outside (`kill -TSTP`): suspend as on Ctrl-Z.
    Suspend,
    /// SIGCONT or SIGWINCH: the screen may hold anything; draw all of it again.
    Redraw,
    /// Where the engine stands, sent periodically (and so a redraw).
    Status(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub freshness: Freshness,
    pub progress: ProgressSnapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Size,
    Name,
    Items,
    Mtime,
}

/// Percent and bar columns, in ncdu's `g` cycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graph {
    Both,
    None,
    Bar,
    Percent,
}

impl Graph {
    fn next(self) -> Graph {
        match self {
            Graph::Both => Graph::None,
            Graph::None => Graph::Bar,
            Graph::Bar => Graph::Percent,
            Graph::Percent => Graph::Both,
        }
    }

    #[must_use]
    pub fn bar(self) -> bool {
        matches!(self, Graph::Both | Graph::Bar)
    }

    #[must_use]
    pub fn percent(self) -> bool {
        matches!(self, Graph::Both | Graph::Percent)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popup {
    None,
    Help,
    Info(NodeId),
}

/// The selected row: the `..` entry or a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sel {
    Up,
    Node(NodeId),
}

/// What the loop must do outside `update` (it owns the terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Quit,
    /// Run a shell in this directory (the terminal restored meanwhile).
    Shell(std::path::PathBuf),
    /// Stop the process (Ctrl-Z), the terminal restored until it continues.
    Suspend,
    /// Clear the screen and draw every cell again.
    Redraw,
}

/// When the cached rows of the list are still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowsKey {
    cwd: NodeId,
    totals: (u64, u64, u64),
    first: Option<NodeId>,
    sort: SortKey,
    flags: (bool, bool, bool, bool),
}

pub struct App {
    pub cwd: NodeId,
    pub selected: Sel,
    /// First visible row.
    pub offset: usize,
    pub sort: SortKey,
    /// Reversed from the key's natural direction (size, items, mtime: largest first; name: A–Z).
    pub reverse: bool,
    pub dirs_first: bool,
    pub apparent: bool,
    pub graph: Graph,
    pub show_items: bool,
    pub show_mtime: bool,
    pub hide_hidden: bool,
    /// Marked entries, each with its slot's generation when marked: an id freed and reused
    /// for another entry (in one update) must not carry the mark over.
    pub marked: BTreeMap<NodeId, u8>,
    pub popup: Popup,
    pub read_only: bool,
    /// False with `NO_COLOR`: reverse video and bold only.
    pub color: bool,
    pub status: Status,
    /// Where the tree came from (the cache path taken).
    pub origin: String,
    /// The last thing worth telling (an engine error, a refused key).
    pub message: Option<String>,
    /// What stays in the footer when there is no message: why the cache is not used.
    pub notice: Option<String>,
    pub request: Option<Request>,
    /// Rows of the list that fit on screen (set by the view).
    pub page: usize,
    /// Screen row of the first list row (set by the view), for mouse clicks.
    pub list_top: u16,
    /// Entries per second of the running scan (from the status ticks).
    pub rate: f64,
    last_status: Option<(Instant, u64)>,
    rows: Vec<NodeId>,
    rows_key: Option<RowsKey>,
    last_click: Option<(Instant, usize)>,
}

impl App {
    #[must_use]
    pub fn new(tree: &Tree, origin: String, status: Status) -> App {
        App {
            cwd: tree.root(),
            selected: Sel::Up,
            offset: 0,
            sort: SortKey::Size,
            reverse: false,
            dirs_first: false,
            apparent: false,
            graph: Graph::Both,
            show_items: false,
            show_mtime: false,
            hide_hidden: false,
            marked: BTreeMap::new(),
            popup: Popup::None,
            read_only: false,
            color: true,
            status,
            origin,
            message: None,
            notice: None,
            request: None,
            page: 20,
            list_top: 1,
            rate: 0.0,
            last_status: None,
            rows: Vec::new(),
            rows_key: None,
            last_click: None,
        }
    }

    /// The size shown for an entry (disk usage, or apparent size with `a`).
    #[must_use]
    pub fn size(&self, tree: &Tree, id: NodeId) -> u64 {
        let t = tree.totals(id);
        if self.apparent { t.apparent } else { t.disk }
    }

    /// Does the list start with the `..` row?
    #[must_use]
    pub fn has_up(&self, tree: &Tree) -> bool {
        self.cwd != tree.root()
    }

    /// The children of the current directory, filtered and sorted (cached until the tree, the
    /// directory or the order changes).
    pub fn rows(&mut self, tree: &Tree) -> &[NodeId] {
        // What the order depends on: the directory's own totals change whenever an entry below
        // it is added, removed or resized, and its first child whenever one is replaced; a
        // change elsewhere in the tree (a scan of another branch) does not re-sort this list.
        let t = tree.totals(self.cwd);
        let first = tree.children(self.cwd).next();
        let key = RowsKey {
            cwd: self.cwd,
            totals: (t.apparent, t.disk, t.items),
            first,
            sort: self.sort,
            flags: (
                self.reverse,
                self.dirs_first,
                self.apparent,
                self.hide_hidden,
            ),
        };
        if self.rows_key != Some(key) {
            let mut rows: Vec<NodeId> = tree
                .children(self.cwd)
                .filter(|&c| !self.hide_hidden || !is_hidden(tree, c))
                .collect();
            self.sort_rows(tree, &mut rows);
            self.rows = rows;
            self.rows_key = Some(key);
        }
        &self.rows
    }

    fn sort_rows(&self, tree: &Tree, rows: &mut [NodeId]) {
        let by_name = |a: &NodeId, b: &NodeId| tree.name(*a).cmp(tree.name(*b));
        rows.sort_by(|a, b| {
            let primary = match self.sort {
                SortKey::Size => self.size(tree, *b).cmp(&self.size(tree, *a)),
                SortKey::Items => tree.totals(*b).items.cmp(&tree.totals(*a).items),
                SortKey::Mtime => tree.node(*b).mtime.cmp(&tree.node(*a).mtime),
                SortKey::Name => std::cmp::Ordering::Equal,
            };
            let primary = if self.reverse {
                primary.reverse()
            } else {
                primary
            };
            let name = if self.sort == SortKey::Name && self.reverse {
                by_name(b, a)
            } else {
                by_name(a, b)
            };
            let dirs = if self.dirs_first {
                let d = |x: &NodeId| tree.kind(*x) != Kind::Dir;
                d(a).cmp(&d(b))
            } else {
                std::cmp::Ordering::Equal
            };
            dirs.then(primary).then(name)
        });
    }

    /// Index of the selected row in the list (`..` counted), clamped to the list.
    pub fn cursor(&mut self, tree: &Tree) -> usize {
        let up = usize::from(self.has_up(tree));
        let sel = self.selected;
        let rows = self.rows(tree);
        match sel {
            Sel::Up => 0,
            Sel::Node(id) => rows.iter().position(|&r| r == id).map_or(0, |i| i + up),
        }
    }

    fn row_count(&mut self, tree: &Tree) -> usize {
        let up = usize::from(self.has_up(tree));
        self.rows(tree).len() + up
    }

    fn select_index(&mut self, tree: &Tree, index: usize) {
        let up = usize::from(self.has_up(tree));
        let count = self.row_count(tree);
        if count == 0 {
            self.selected = Sel::Up;
            return;
        }
        let index = index.min(count - 1);
        self.selected = if up == 1 && index == 0 {
            Sel::Up
        } else {
            Sel::Node(self.rows(tree)[index - up])
        };
        self.scroll_to_cursor(tree);
    }

    /// Keeps the cursor on screen, moving the view only when it must.
    pub fn scroll_to_cursor(&mut self, tree: &Tree) {
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        if cursor < self.offset {
            self.offset = cursor;
        } else if cursor >= self.offset + page {
            self.offset = cursor + 1 - page;
        }
        let count = self.row_count(tree);
        self.offset = self.offset.min(count.saturating_sub(1));
    }

    /// Makes the selection valid after the tree changed (a removed entry, a removed directory,
    /// the first entries of a scan arriving).
    pub fn sync(&mut self, tree: &Tree) {
        if !tree.is_live(self.cwd) || tree.kind(self.cwd) != Kind::Dir {
            self.cwd = tree.root();
            self.selected = Sel::Up;
            self.offset = 0;
        }
        if let Sel::Node(id) = self.selected
            && (!tree.is_live(id)
                || tree.parent(id) != Some(self.cwd)
                || !self.rows(tree).contains(&id))
        {
            // Gone, or hidden (`e`): the highlighted row and the one acted on must agree.
            let first = usize::from(self.has_up(tree));
            self.select_index(tree, first);
        }
        if let Popup::Info(id) = self.popup
            && !tree.is_live(id)
        {
            self.popup = Popup::None;
        }
        self.marked
            .retain(|&m, &mut g| tree.is_live(m) && tree.node(m).generation == g);
        if self.selected == Sel::Up && !self.has_up(tree) {
            // No `..` at the root: select the first entry once there is one.
            if let Some(&first) = self.rows(tree).first() {
                self.selected = Sel::Node(first);
            }
        }
    }

    /// Applies one event.
    pub fn update(&mut self, event: Event, tree: &Tree) {
        self.sync(tree);
        match event {
            Event::Status(s) => {
                let now = Instant::now();
                if let Some((at, entries)) = self.last_status {
                    let dt = now.duration_since(at).as_secs_f64();
                    if dt >= 0.25 {
                        let fresh = s.progress.entries.saturating_sub(entries) as f64 / dt;
                        self.rate = fresh;
                        self.last_status = Some((now, s.progress.entries));
                    }
                } else {
                    self.last_status = Some((now, s.progress.entries));
                }
                self.status = s;
            }
            Event::Engine(msg) => match msg {
                EngineMsg::ScanDone(s) if s.errors > 0 => {
                    self.message = Some(format!(
                        "scan finished: {} entries could not be read (marked !)",
                        s.errors
                    ));
                }
                EngineMsg::CatchUpDone(c) | EngineMsg::Reconciled(c) if c.changed() => {
                    self.message = Some(format!(
                        "caught up with the disk: {} added, {} removed, {} resized",
                        c.added, c.removed, c.resized
                    ));
                }
                EngineMsg::ScanDone(_) | EngineMsg::CatchUpDone(_) | EngineMsg::Reconciled(_) => {
                    self.message = None;
                }
                EngineMsg::Failed(e) => self.message = Some(format!("error: {e}")),
                EngineMsg::Stale(why) => self.message = Some(format!("stale: {why}")),
                // Live changes show in the rows themselves.
                EngineMsg::Ready | EngineMsg::Applied(_) => {}
            },
            Event::Input(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                self.key(k, tree);
            }
            Event::Input(TermEvent::Mouse(m)) => self.mouse(m, tree),
            Event::Terminate => self.request = Some(Request::Quit),
            Event::Suspend => self.request = Some(Request::Suspend),
            Event::Redraw => self.request = Some(Request::Redraw),
            Event::Input(_) => {}
        }
        self.scroll_to_cursor(tree);
    }

    fn key(&mut self, k: KeyEvent, tree: &Tree) {
        // Ctrl-C and Ctrl-Z work from every window (raw mode turns them into keys).
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            match k.code {
                KeyCode::Char('c') => {
                    self.request = Some(Request::Quit);
                    return;
                }
                KeyCode::Char('z') => {
                    self.request = Some(Request::Suspend);
                    return;
                }
                _ => {}
            }
        }
        if self.popup != Popup::None {
            // Any of these closes a window; everything else is ignored while one is open.
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Char('q' | 'i' | '?') | KeyCode::Enter
            ) {
                self.popup = Popup::None;
            }
            return;
        }
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        match k.code {
            KeyCode::Char('q') => self.request = Some(Request::Quit),
            KeyCode::Up | KeyCode::Char('k') => self.select_index(tree, cursor.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.select_index(tree, cursor + 1),
            KeyCode::Home => self.select_index(tree, 0),
            KeyCode::End => self.select_index(tree, usize::MAX),
            KeyCode::PageUp => self.select_index(tree, cursor.saturating_sub(page)),
            KeyCode::PageDown => self.select_index(tree, cursor + page),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => self.open(tree),
            KeyCode::Left | KeyCode::Backspace | KeyCode::Char('h' | '<') => self.up(tree),
            KeyCode::Char('n') => self.sort_by(SortKey::Name),
            KeyCode::Char('s') => self.sort_by(SortKey::Size),
            KeyCode::Char('C') => self.sort_by(SortKey::Items),
            KeyCode::Char('M') => self.sort_by(SortKey::Mtime),
            KeyCode::Char('t') => self.dirs_first = !self.dirs_first,
            KeyCode::Char('a') => self.apparent = !self.apparent,
            KeyCode::Char('g') => self.graph = self.graph.next(),
            KeyCode::Char('c') => self.show_items = !self.show_items,
            KeyCode::Char('m') => self.show_mtime = !self.show_mtime,
            KeyCode::Char('e') => self.hide_hidden = !self.hide_hidden,
            KeyCode::Char('i') => {
                if let Sel::Node(id) = self.selected {
                    self.popup = Popup::Info(id);
                }
            }
            KeyCode::Char('?') => self.popup = Popup::Help,
            KeyCode::Char(' ') => {
                if let Sel::Node(id) = self.selected
                    && self.marked.remove(&id).is_none()
                {
                    self.marked.insert(id, tree.node(id).generation);
                }
                self.select_index(tree, cursor + 1);
            }
            KeyCode::Char('b') => {
                if self.read_only {
                    self.message = Some("read-only mode: the shell is disabled".into());
                } else {
                    self.request = Some(Request::Shell(tree.path_of(self.cwd)));
                }
            }
            _ => {}
        }
    }

    fn sort_by(&mut self, key: SortKey) {
        if self.sort == key {
            self.reverse = !self.reverse;
        } else {
            self.sort = key;
            self.reverse = false;
        }
    }

    /// Enter: into the selected directory, or up from `..`.
    fn open(&mut self, tree: &Tree) {
        match self.selected {
            Sel::Up => self.up(tree),
            Sel::Node(id) if tree.kind(id) == Kind::Dir => {
                self.cwd = id;
                self.offset = 0;
                self.select_index(tree, 0);
                if self.has_up(tree) && !self.rows(tree).is_empty() {
                    self.select_index(tree, 1);
                }
            }
            Sel::Node(_) => {}
        }
    }

    /// To the parent, with the directory we came from selected.
    fn up(&mut self, tree: &Tree) {
        let Some(parent) = tree.parent(self.cwd) else {
            return;
        };
        let from = self.cwd;
        self.cwd = parent;
        self.offset = 0;
        self.selected = Sel::Node(from);
        if self.hide_hidden && is_hidden(tree, from) {
            self.select_index(tree, 0);
        }
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        // Put the directory we came from in the middle of the page, like ncdu.
        self.offset = cursor.saturating_sub(page / 2);
    }

    fn mouse(&mut self, m: MouseEvent, tree: &Tree) {
        if self.popup != Popup::None {
            if matches!(m.kind, MouseEventKind::Down(_)) {
                self.popup = Popup::None;
            }
            return;
        }
        let cursor = self.cursor(tree);
        match m.kind {
            MouseEventKind::ScrollUp => self.select_index(tree, cursor.saturating_sub(3)),
            MouseEventKind::ScrollDown => self.select_index(tree, cursor + 3),
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row < self.list_top {
                    return;
                }
                let index = self.offset + usize::from(m.row - self.list_top);
                if index >= self.offset + self.page || index >= self.row_count(tree) {
                    return;
                }
                let now = Instant::now();
                let double = self.last_click.is_some_and(|(t, i)| {
                    i == index && now.duration_since(t) < Duration::from_millis(400)
                });
                self.select_index(tree, index);
                if double {
                    self.last_click = None;
                    self.open(tree);
                } else {
                    self.last_click = Some((now, index));
                }
            }
            _ => {}
        }
    }

    /// Total size of the marked entries.
    #[must_use]
    pub fn marked_size(&self, tree: &Tree) -> u64 {
        self.marked.keys().map(|&m| self.size(tree, m)).sum()
    }
}

/// Hidden like ncdu's `e`: dot files, and excluded entries.
fn is_hidden(tree: &Tree, id: NodeId) -> bool {
    tree.name(id).starts_with(b".") || tree.flags(id) & flags::EXCLUDED != 0
}
