//! The browser's state and `update`: every key, click and engine message changes `App`, and
//! nothing else does. Reading the tree (memory only, under its read lock) is allowed here;
//! touching the disk is not: what needs the disk or the engine leaves as a `Command` for the
//! loop. The list itself (rows, order, cursor, flashes) is `listing`.

mod changes;
mod delete;
mod imported;
mod listing;
mod search;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};

pub use changes::Changes;
pub use delete::{Button, DeleteState, Dialog, Doing};
pub use listing::Flash;
use listing::{Mtimes, ViewKey};

use super::keys::{self, Action};
pub use search::Search;

use crate::engine::{EngineMsg, Freshness};
use crate::path::display_name;
use crate::scan::ProgressSnapshot;
use crate::tree::{Kind, NodeId, NodeRef, Tree, flags};

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
    /// What `Command::Inspect` found on the disk for the info window.
    Inspected(NodeRef, Inspection),
    /// The size history's baseline for a period (`Command::LoadBaseline`), or why not.
    Baseline(
        crate::history::Since,
        Result<std::sync::Arc<crate::history::Baseline>, String>,
    ),
    /// From the delete worker `Command::Delete` started.
    Delete(crate::delete::worker::DeleteMsg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub freshness: Freshness,
    pub progress: ProgressSnapshot,
}

/// What the info window shows beyond the tree: facts only a `lstat`/`readlink` knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// The entry's link count (for a directory: 2 + its subdirectories on most filesystems).
    pub nlink: Option<u64>,
    /// A symlink's target, escaped for the terminal.
    pub target: Option<String>,
    /// Why the entry could not be inspected.
    pub error: Option<String>,
}

/// How the engine's watcher stands (told once, at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Not asked to watch (`--watch-backend none`, or a test).
    Off,
    /// Watching with this backend.
    On(String),
    /// Asked to watch, and the backend could not start (why).
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Size,
    Name,
    Items,
    Mtime,
    /// By the change against the size history's baseline (`V`).
    Change,
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
    /// The entry's handle: a slot freed and reused meanwhile closes the window instead of
    /// showing another entry.
    Info(NodeRef),
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

/// Work `update` asks of the loop without leaving it (the loop owns the engine and threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `engine.reconcile(dir, full)`: re-read a subtree (`None`: everything).
    Reconcile {
        dir: Option<NodeRef>,
        full: bool,
    },
    /// `lstat` and `readlink` this entry off the UI thread, answered by `Event::Inspected`.
    Inspect {
        node: NodeRef,
        path: PathBuf,
    },
    /// Run a delete, a move to the trash or an undo on a worker (answered by `Event::Delete`).
    Delete(crate::delete::worker::Job),
    /// The answer to the worker's question about an error.
    DeleteAnswer(crate::delete::Decision),
    DeleteCancel,
    /// Read the size history's baseline for a period off the UI thread, answered by
    /// `Event::Baseline`.
    LoadBaseline(crate::history::Since),
}

/// How long a changed row stays highlighted.
pub const FLASH: Duration = Duration::from_millis(1500);

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
    /// The change column (`v`, `V`, `p`).
    pub changes: Changes,
    pub hide_hidden: bool,
    /// Marked entries by handle: an id freed and reused for another entry must not carry the
    /// mark over.
    pub marked: HashSet<NodeRef>,
    pub popup: Popup,
    /// First line of the help shown (a terminal too short for all of it scrolls it; the
    /// view clamps it).
    pub help_scroll: usize,
    /// The last inspection for the info window.
    pub inspection: Option<(NodeRef, Inspection)>,
    pub read_only: bool,
    /// The tree is an imported export (`dtui -f`), with when it was written if it says: the
    /// keys that need the disk are off.
    pub imported: Option<Option<String>>,
    /// `d`, `D`, `u` and their dialogs.
    pub delete: DeleteState,
    /// False with `NO_COLOR`: reverse video and bold only.
    pub color: bool,
    /// Times in the local time zone (as ncdu and `ls` show them); false: UTC (for tests whose
    /// screens must not depend on the machine's zone).
    pub local_time: bool,
    pub status: Status,
    pub watch: Watch,
    /// Why the engine last said the tree may be out of date.
    pub stale_reason: Option<String>,
    /// Where the tree came from (the cache path taken).
    pub origin: String,
    /// The last thing worth telling (an engine error, a refused key).
    pub message: Option<String>,
    /// The directory on screen and every one above it, nearest first (`remember_cwd`).
    trail: Vec<NodeRef>,
    /// The path of the directory on screen, for the message if it goes.
    cwd_path: String,
    /// The message that the next key clears, if it is still the one shown (`note`).
    note: Option<String>,
    /// What stays in the footer when there is no message: why the cache is not used.
    pub notice: Option<String>,
    pub request: Option<Request>,
    /// For the loop, in order.
    pub commands: Vec<Command>,
    /// The cursor stays on the top row as the list fills and re-sorts, until the user moves it
    /// (ncdu after a first scan).
    pub follow_top: bool,
    /// The user chose a new order or filter (a sort key, `t`, `a`, `e`): the view then
    /// moves only as far as it must to keep the cursor on screen, as ncdu's does, instead of
    /// keeping the cursor's screen row as a change on the disk does (which scrolled `..` and
    /// the first rows out of sight after `n` near the top of a long list).
    user_order: bool,
    /// Rows changed by the last batches, highlighted until their time is up.
    pub flashes: HashMap<NodeId, Flash>,
    /// Something changed since the last frame (the loop draws only then).
    pub dirty: bool,
    /// Rows of the list that fit on screen (set by `lay_out`).
    pub page: usize,
    /// Screen row of the first list row (set by `lay_out`), for mouse clicks.
    pub list_top: u16,
    /// Entries per second of the running scan (from the status ticks).
    pub rate: f64,
    last_status: Option<(Instant, u64)>,
    rows: Vec<NodeId>,
    rows_key: Option<ViewKey>,
    /// A batch touched the open directory: list it again.
    rows_dirty: bool,
    /// While a scan or verification runs (no deltas until it ends): the directory's totals
    /// and first child when last listed.
    pass_guess: Option<(u64, u64, u64, Option<NodeId>)>,
    /// Shown sizes of the listed rows (slot generation, apparent, disk), to tell a batch's
    /// change per row.
    sizes: HashMap<NodeId, (u8, u64, u64)>,
    mtimes: Mtimes,
    last_click: Option<(Instant, usize)>,
    /// `/`: the prompt, the matches, and whether they are on screen.
    pub search: Search,
    /// The directory `r` or `R` asked to re-read, until the engine answers.
    rereading: Option<NodeRef>,
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
            changes: Changes::default(),
            hide_hidden: false,
            marked: HashSet::new(),
            popup: Popup::None,
            help_scroll: 0,
            inspection: None,
            read_only: false,
            imported: None,
            delete: DeleteState::default(),
            color: true,
            local_time: true,
            status,
            watch: Watch::Off,
            stale_reason: None,
            origin,
            message: None,
            note: None,
            trail: Vec::new(),
            cwd_path: String::new(),
            notice: None,
            request: None,
            commands: Vec::new(),
            follow_top: true,
            user_order: false,
            flashes: HashMap::new(),
            dirty: true,
            page: 20,
            list_top: 1,
            rate: 0.0,
            last_status: None,
            rows: Vec::new(),
            rows_key: None,
            rows_dirty: false,
            pass_guess: None,
            sizes: HashMap::new(),
            mtimes: Mtimes::default(),
            last_click: None,
            search: Search::default(),
            rereading: None,
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

    /// Is a scan or a verification running (the tree changing without deltas)?
    #[must_use]
    pub fn busy(&self) -> bool {
        matches!(
            self.status.freshness,
            Freshness::Scanning | Freshness::Verifying
        )
    }

    /// A time as the browser shows it (`local_time`).
    #[must_use]
    pub fn time(&self, secs: i64) -> String {
        if self.local_time {
            crate::format::format_local(secs)
        } else {
            crate::format::format_mtime(secs)
        }
    }

    /// The one state word of the header and footer: `live`, `scanning`, `verifying`,
    /// `stale: why` or `cached` (not watching).
    #[must_use]
    pub fn state_word(&self) -> String {
        if let Some(word) = self.imported_word() {
            return word;
        }
        match self.status.freshness {
            Freshness::Scanning => "scanning".into(),
            Freshness::Verifying => "verifying".into(),
            Freshness::Live => "live".into(),
            Freshness::Stale => format!(
                "stale: {}",
                self.stale_reason
                    .as_deref()
                    .unwrap_or("loaded from the cache, not verified")
            ),
            Freshness::Fresh => match &self.watch {
                Watch::Failed(why) => format!("stale: not watching ({why})"),
                Watch::On(_) | Watch::Off => "cached".into(),
            },
        }
    }

    /// Is `id`, or a directory above it, marked stale (being re-verified)?
    #[must_use]
    pub fn is_stale(tree: &Tree, id: NodeId) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if tree.flags(c) & flags::STALE != 0 {
                return true;
            }
            cur = tree.parent(c);
        }
        false
    }

    /// Makes the selection valid after the tree changed (a removed entry, a removed directory,
    /// the first entries of a scan arriving).
    pub fn sync(&mut self, tree: &Tree) {
        let moved = self.trail.first().is_none_or(|r| r.id != self.cwd);
        let is_dir = |id: NodeId| tree.is_live(id) && tree.kind(id) == Kind::Dir;
        if moved {
            // The user went somewhere (or the first frame): note it.
            if !is_dir(self.cwd) {
                self.cwd = tree.root();
                self.selected = Sel::Up;
                self.offset = 0;
                self.follow_top = true;
            }
            self.remember_cwd(tree);
        } else if !self
            .trail
            .first()
            .is_some_and(|&r| tree.resolve(r).is_some_and(is_dir))
        {
            // The directory on screen went (deleted, or moved out of the root): up to the
            // nearest directory above it that is still there, saying so.
            let gone = std::mem::take(&mut self.cwd_path);
            self.cwd = self
                .trail
                .iter()
                .find_map(|&r| tree.resolve(r).filter(|&n| is_dir(n)))
                .unwrap_or_else(|| tree.root());
            self.selected = Sel::Up;
            self.offset = 0;
            self.follow_top = true;
            self.remember_cwd(tree);
            self.message = Some(format!(
                "{gone} is gone (deleted or moved away): showing {}",
                self.cwd_path
            ));
        }
        self.refresh_rows(tree);
        if let Sel::Node(id) = self.selected
            && (!tree.is_live(id) || tree.parent(id) != Some(self.cwd) || !self.rows.contains(&id))
        {
            // Gone, or hidden (`e`): the highlighted row and the one acted on must agree.
            let first = usize::from(self.has_up(tree));
            self.select_index(tree, first);
        }
        if let Popup::Info(r) = self.popup
            && tree.resolve(r).is_none()
        {
            self.popup = Popup::None;
        }
        self.marked.retain(|&m| tree.resolve(m).is_some());
        self.flashes
            .retain(|&id, f| tree.resolve(f.node) == Some(id) && f.until > Instant::now());
        if self.selected == Sel::Up && !self.has_up(tree) {
            // No `..` at the root: select the first entry once there is one.
            if let Some(&first) = self.rows(tree).first() {
                self.selected = Sel::Node(first);
            }
        }
    }

    /// Notes the directory on screen and those above it (by handle), to find where to go if
    /// it goes away.
    fn remember_cwd(&mut self, tree: &Tree) {
        self.trail.clear();
        let mut cur = Some(self.cwd);
        while let Some(id) = cur {
            self.trail.push(tree.node_ref(id));
            cur = tree.parent(id);
        }
        self.cwd_path = display_name(tree.path_of(self.cwd).as_os_str().as_encoded_bytes());
    }

    /// Applies one event.
    pub fn update(&mut self, event: Event, tree: &Tree) {
        // A highlight that runs out needs one more frame to go.
        let was_dirty = self.dirty || !self.flashes.is_empty();
        self.dirty = true;
        self.sync(tree);
        if matches!(event, Event::Status(_)) {
            self.search_tick(tree);
        }
        match event {
            Event::Status(s) => self.status(s, was_dirty),
            Event::Engine(msg) => self.engine(msg, tree),
            Event::Inspected(r, ins) => {
                if self.popup == Popup::Info(r) {
                    self.inspection = Some((r, ins));
                }
            }
            Event::Baseline(since, result) => self.baseline_loaded(since, result),
            Event::Delete(m) => self.delete_msg(m),
            Event::Input(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                self.key(k, tree);
            }
            Event::Input(TermEvent::Mouse(m)) => self.mouse(m, tree),
            Event::Terminate => self.request = Some(Request::Quit),
            Event::Suspend => self.request = Some(Request::Suspend),
            Event::Redraw => self.request = Some(Request::Redraw),
            Event::Input(_) => {}
        }
        self.sync(tree);
        self.user_order = false;
        self.scroll_to_cursor(tree);
    }

    fn status(&mut self, s: Status, was_dirty: bool) {
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
        // An idle tick changes nothing on screen (unless a highlight is running out): no
        // frame, so an idle browser costs about nothing.
        self.dirty = was_dirty || s != self.status || self.busy();
        if matches!(s.freshness, Freshness::Live | Freshness::Fresh) {
            self.stale_reason = None;
        }
        self.status = s;
    }

    fn engine(&mut self, msg: EngineMsg, tree: &Tree) {
        // A pass changes the tree without deltas: the search runs again when it ends.
        let pass_ended = matches!(
            msg,
            EngineMsg::Ready
                | EngineMsg::ScanDone(_)
                | EngineMsg::CatchUpDone(_)
                | EngineMsg::Reconciled(_)
        );
        match msg {
            EngineMsg::ScanDone(s) if s.errors > 0 => {
                self.message = Some(format!(
                    "scan finished: {} entries could not be read (marked !)",
                    s.errors
                ));
            }
            EngineMsg::CatchUpDone(c) if c.changed() => {
                self.message = Some(format!(
                    "caught up with the disk: {} added, {} removed, {} resized",
                    c.added, c.removed, c.resized
                ));
            }
            EngineMsg::Reconciled(c) => {
                let changes = format!(
                    "{} added, {} removed, {} resized",
                    c.added,
                    c.removed,
                    c.resized + c.replaced
                );
                // A directory that could not be read has "no changes" only because nothing
                // was read: say that instead.
                let unreadable = (self.rereading.take())
                    .and_then(|r| tree.resolve(r))
                    .filter(|&id| tree.errno(id) != 0);
                self.message = Some(match unreadable {
                    Some(id) => format!(
                        "re-read: cannot read {}: {}{}",
                        display_name(tree.path_of(id).as_os_str().as_encoded_bytes()),
                        nix::errno::Errno::from_raw(tree.errno(id) as i32).desc(),
                        if c.changed() {
                            format!(" ({changes})")
                        } else {
                            String::new()
                        }
                    ),
                    None if c.changed() => format!("re-read: {changes}"),
                    None => format!("re-read: no changes ({} directories)", c.dirs_read),
                });
            }
            EngineMsg::ScanDone(_) | EngineMsg::CatchUpDone(_) => self.message = None,
            EngineMsg::Failed(e) => {
                self.rereading = None;
                self.message = Some(format!("error: {e}"));
            }
            EngineMsg::Stale(why) => self.stale_reason = Some(why),
            EngineMsg::CacheSaved => {
                self.message = Some("the cache is saved again: its disk has room".into());
            }
            EngineMsg::Ready => self.rows_dirty = true,
            EngineMsg::Watching(Ok(what)) => {
                // The watch has started: the reason given while it started is over.
                self.stale_reason = None;
                self.watch = Watch::On(what);
            }
            EngineMsg::Watching(Err(why)) => {
                self.stale_reason = None;
                let note = format!("not watching: {why}");
                self.notice = Some(match self.notice.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
                self.watch = Watch::Failed(why);
            }
            EngineMsg::Applied(delta) => {
                self.applied(&delta, tree);
                self.search_applied(&delta, tree);
            }
        }
        if pass_ended {
            self.search_rerun(tree);
        }
    }

    /// A key while a window (help, info) is open: these close it, the help scrolls on a
    /// short terminal, everything else is ignored.
    fn popup_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc | KeyCode::Char('q' | 'i' | '?') | KeyCode::Enter => {
                self.popup = Popup::None;
                self.help_scroll = 0;
            }
            KeyCode::Down | KeyCode::PageDown | KeyCode::Char('j' | ' ') => {
                let step = if matches!(code, KeyCode::PageDown | KeyCode::Char(' ')) {
                    self.page.max(1)
                } else {
                    1
                };
                // Past the last line is clamped by the view, and here to the lines there are.
                self.help_scroll = (self.help_scroll + step).min(super::keys::help_len() - 1);
            }
            KeyCode::Home => self.help_scroll = 0,
            KeyCode::End => self.help_scroll = super::keys::help_len() - 1,
            KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                let step = if code == KeyCode::PageUp {
                    self.page.max(1)
                } else {
                    1
                };
                self.help_scroll = self.help_scroll.saturating_sub(step);
            }
            _ => {}
        }
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
        if self.delete.dialog.is_some() {
            self.dialog_key(k);
            return;
        }
        if self.popup != Popup::None {
            self.popup_key(k.code);
            return;
        }
        // A hint or a toggle's note lasts until the next key.
        if let Some(note) = self.note.take()
            && self.message.as_ref() == Some(&note)
        {
            self.message = None;
        }
        if self.search_key(k, tree) {
            return;
        }
        if let Some(why) = self.refused_on_import(k.code) {
            self.message = Some(why);
            return;
        }
        let Some(action) = keys::action(k.code) else {
            self.user_order = false;
            // Lone modifiers and key releases are not keys the user meant.
            if !matches!(k.code, KeyCode::Modifier(_) | KeyCode::Null) {
                self.note(&format!("unknown key {}: {HINT}", key_name(k.code)));
            }
            return;
        };
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        let mut moved = true;
        match action {
            Action::Up => self.select_index(tree, cursor.saturating_sub(1)),
            Action::Down => self.select_index(tree, cursor + 1),
            Action::First => self.select_index(tree, 0),
            Action::Last => self.select_index(tree, usize::MAX),
            Action::PageUp => self.select_index(tree, cursor.saturating_sub(page)),
            Action::PageDown => self.select_index(tree, cursor + page),
            Action::Mark => {
                if let Sel::Node(id) = self.selected {
                    let r = tree.node_ref(id);
                    if !self.marked.remove(&r) {
                        self.marked.insert(r);
                    }
                }
                self.select_index(tree, cursor + 1);
            }
            _ => moved = false,
        }
        if moved {
            self.follow_top = false;
            return;
        }
        self.user_order = matches!(
            action,
            Action::SortName
                | Action::SortSize
                | Action::SortItems
                | Action::SortMtime
                | Action::DirsFirst
                | Action::Apparent
                | Action::Hidden
                | Action::SortChange
                | Action::ChangePeriod
        );
        self.act(action, tree);
    }

    /// What a key that does not move the cursor does.
    fn act(&mut self, action: Action, tree: &Tree) {
        match action {
            Action::Quit => self.request = Some(Request::Quit),
            Action::Open => self.open(tree),
            Action::Parent => self.up(tree),
            Action::SortName => self.sort_by(SortKey::Name),
            Action::SortSize => self.sort_by(SortKey::Size),
            Action::SortItems => self.sort_by(SortKey::Items),
            Action::SortMtime => self.sort_by(SortKey::Mtime),
            Action::DirsFirst
            | Action::Apparent
            | Action::Graph
            | Action::ItemsColumn
            | Action::MtimeColumn
            | Action::Hidden => self.toggle(action),
            Action::ChangeColumn => self.toggle_changes(),
            Action::SortChange => self.sort_by_change(),
            Action::ChangePeriod => self.next_period(),
            Action::Info => self.open_info(tree),
            Action::Help => self.popup = Popup::Help,
            Action::Delete => self.delete_key(tree, false),
            Action::Trash => self.delete_key(tree, true),
            Action::Undo => self.undo_key(),
            Action::Reread => self.reconcile(tree, false),
            Action::RereadAll => self.reconcile(tree, true),
            Action::Shell => {
                if self.read_only {
                    self.message = Some("read-only mode: the shell is disabled".into());
                } else {
                    self.request = Some(Request::Shell(tree.path_of(self.cwd)));
                }
            }
            // Moves were handled above; `/` by the search, before this.
            Action::Up
            | Action::Down
            | Action::First
            | Action::Last
            | Action::PageUp
            | Action::PageDown
            | Action::Mark
            | Action::Search => {}
        }
    }

    /// The view toggles: `t`, `a`, `g`, `c`, `m`, `e`.
    fn toggle(&mut self, action: Action) {
        match action {
            Action::DirsFirst => {
                self.dirs_first = !self.dirs_first;
                self.note(if self.dirs_first {
                    "directories first"
                } else {
                    "directories mixed with files"
                });
            }
            Action::Apparent => {
                self.apparent = !self.apparent;
                self.note(if self.apparent {
                    "apparent sizes (a: disk usage)"
                } else {
                    "disk usage (a: apparent sizes)"
                });
            }
            Action::Graph => self.graph = self.graph.next(),
            Action::ItemsColumn => self.show_items = !self.show_items,
            Action::MtimeColumn => self.show_mtime = !self.show_mtime,
            Action::Hidden => {
                self.hide_hidden = !self.hide_hidden;
                self.note(if self.hide_hidden {
                    "hidden and excluded entries not listed (still counted; e lists them)"
                } else {
                    "hidden and excluded entries listed"
                });
            }
            _ => {}
        }
    }

    /// A message that lasts until the next key: what a toggle did (its column or order may
    /// not show it, and the footer drops its sort word on a narrow terminal), or a hint.
    fn note(&mut self, text: &str) {
        self.message = Some(text.to_owned());
        self.note = Some(text.to_owned());
    }

    /// `r` (this directory's subtree) and `R` (everything): re-read in the engine.
    fn reconcile(&mut self, tree: &Tree, everything: bool) {
        if self.busy() {
            self.message = Some(format!(
                "{} already: r and R wait until it ends",
                self.state_word()
            ));
            return;
        }
        self.rereading = Some(tree.node_ref(if everything { tree.root() } else { self.cwd }));
        let (dir, what) = if everything {
            (None, "everything".to_owned())
        } else {
            (
                Some(tree.node_ref(self.cwd)),
                display_name(tree.path_of(self.cwd).as_os_str().as_encoded_bytes()),
            )
        };
        self.commands.push(Command::Reconcile { dir, full: true });
        self.message = Some(format!("re-reading {what}…"));
    }

    fn sort_by(&mut self, key: SortKey) {
        // A chosen order keeps the cursor on its entry, not on the top row.
        self.follow_top = false;
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
                self.follow_top = true;
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
        self.follow_top = false;
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
        if self.delete.dialog.is_some() {
            return;
        }
        if self.popup != Popup::None {
            if matches!(m.kind, MouseEventKind::Down(_)) {
                self.popup = Popup::None;
            }
            return;
        }
        if self.search.showing {
            match m.kind {
                MouseEventKind::ScrollUp => self.search_scroll(false),
                MouseEventKind::ScrollDown => self.search_scroll(true),
                _ => {}
            }
            return;
        }
        let cursor = self.cursor(tree);
        match m.kind {
            MouseEventKind::ScrollUp => {
                self.follow_top = false;
                self.select_index(tree, cursor.saturating_sub(3));
            }
            MouseEventKind::ScrollDown => {
                self.follow_top = false;
                self.select_index(tree, cursor + 3);
            }
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
                self.follow_top = false;
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

    /// How many entries are marked, and their total size: an entry inside a marked directory
    /// is already in that directory's size, so it is not counted again.
    #[must_use]
    pub fn marked_size(&self, tree: &Tree) -> u64 {
        self.marked
            .iter()
            .filter_map(|&m| tree.resolve(m))
            .filter(|&id| {
                let mut cur = tree.parent(id);
                while let Some(p) = cur {
                    if self.marked.contains(&tree.node_ref(p)) {
                        return false;
                    }
                    cur = tree.parent(p);
                }
                true
            })
            .map(|id| self.size(tree, id))
            .sum()
    }

    /// Is this entry marked?
    #[must_use]
    pub fn is_marked(&self, tree: &Tree, id: NodeId) -> bool {
        !self.marked.is_empty() && self.marked.contains(&tree.node_ref(id))
    }
}

/// The end of the hint an unknown key shows.
const HINT: &str = "? for help";

fn key_name(k: KeyCode) -> String {
    match k {
        KeyCode::Char(c) if c.is_control() => format!("^{}", char::from(c as u8 ^ 0x40)),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    }
}

/// Hidden like ncdu's `e`: dot files, and excluded entries.
fn is_hidden(tree: &Tree, id: NodeId) -> bool {
    tree.name(id).starts_with(b".") || tree.flags(id) & flags::EXCLUDED != 0
}
