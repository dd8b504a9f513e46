//! The browser's state and `update`: every key, click and engine message changes `App`, and
//! nothing else does. Reading the tree (memory only, under its read lock) is allowed here;
//! touching the disk is not: what needs the disk or the engine leaves as a `Command` for the
//! loop. What comes in and goes out is `messages`; the keys are `keyboard`, moving between
//! directories and the mouse `navigate`, the engine's news `engine_msg`; the list itself
//! (rows, order, cursor, flashes) is `listing`; the delete dialogs are `delete`, and the
//! confirmation following the disk while it is open `delete_follow`.

mod changes;
mod delete;
mod delete_follow;
mod engine_msg;
mod imported;
mod keyboard;
mod listing;
mod messages;
mod navigate;
mod prefs;
mod search;
mod takeover;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{Event as TermEvent, KeyEventKind};

pub use changes::{BaselineError, Changes};
pub use delete::{Button, DeleteState, Dialog, Doing};
pub use listing::Flash;
use listing::{Mtimes, ViewKey};
pub use messages::{Command, Event, Inspection, Request, Status, Watch};
pub use prefs::Prefs;
pub use search::Search;
pub use takeover::Place;

use crate::engine::Freshness;
use crate::path::display_name;
use crate::tree::{Kind, NodeId, NodeRef, Tree, flags};

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
    /// `b` refused (`--disable-shell`, `-rr`); read-only refuses it too.
    pub no_shell: bool,
    /// A graphical display to open files on (`DISPLAY` or `WAYLAND_DISPLAY` set): `o` works.
    pub display: bool,
    /// The tree is an imported export (`dtui -f`), with when it was written if it says: the
    /// keys that need the disk are off.
    pub imported: Option<Option<String>>,
    /// `d`, `D`, `u` and their dialogs.
    pub delete: DeleteState,
    /// What the delete confirmation was counted from (`delete_follow`).
    delete_followed: delete_follow::Followed,
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
    /// The last thing worth telling (an engine error, a refused key), until the next key
    /// (an engine error until another message).
    pub message: Option<String>,
    /// The engine's last error, which a key does not clear.
    error: Option<String>,
    /// The directory on screen and every one above it, nearest first (`remember_cwd`).
    trail: Vec<NodeRef>,
    /// The path of the directory on screen, for the message if it goes.
    cwd_path: String,
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
            no_shell: false,
            display: false,
            imported: None,
            delete: DeleteState::default(),
            delete_followed: delete_follow::Followed::default(),
            color: true,
            local_time: true,
            status,
            watch: Watch::Off,
            stale_reason: None,
            origin,
            message: None,
            error: None,
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
        } else if self
            .trail
            .first()
            .is_some_and(|&r| tree.resolve(r).is_some_and(is_dir))
        {
            // Still here, perhaps renamed (a rename keeps the id): if it goes later, the
            // message names it as it was last, not as it was entered.
            self.cwd_path = display_name(tree.path_of(self.cwd).as_os_str().as_encoded_bytes());
        } else {
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
            Event::OpenFailed(why) => self.message = Some(format!("o: {why}")),
            Event::Input(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                self.key(k, tree);
            }
            Event::Input(TermEvent::Mouse(m)) => self.mouse(m, tree),
            Event::Terminate => self.request = Some(Request::Quit),
            Event::Reopened => self.request = Some(Request::Adopt),
            Event::Suspend => self.request = Some(Request::Suspend),
            Event::Redraw => self.request = Some(Request::Redraw),
            Event::Input(_) => {}
        }
        self.sync(tree);
        self.user_order = false;
        self.scroll_to_cursor(tree);
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

/// Hidden like ncdu's `e`: dot files, and excluded entries.
fn is_hidden(tree: &Tree, id: NodeId) -> bool {
    tree.name(id).starts_with(b".") || tree.flags(id) & flags::EXCLUDED != 0
}
