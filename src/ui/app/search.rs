//! Search in the browser: `/` opens a prompt in the footer, Enter matches the pattern against
//! every name in the tree (in memory, under the read lock: a 1,000,000-entry tree takes a few
//! tens of milliseconds) and shows the matches largest first with their paths. Enter on one
//! opens the directory holding it with it selected; Esc steps back: from the prompt to what was
//! under it, from a directory opened from the results to the results, from the results to the
//! list where the search started (its directory, row and scroll). The results follow every
//! delta (`search::Results::applied`).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Sel, is_hidden};
use crate::engine::TreeDelta;
use crate::search::{Matcher, Results};
use crate::tree::{NodeRef, Tree};

/// While a scan or a verification runs (no deltas until it ends), the results are run again
/// at most this often.
const PASS_RERUN: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Search {
    /// The pattern being typed (the prompt is open).
    pub prompt: Option<String>,
    /// The last search's matches.
    pub results: Option<Results>,
    /// The results are on screen (instead of the list).
    pub showing: bool,
    /// The list shows a directory opened from the results: Esc goes back to them.
    pub came_from_results: bool,
    /// The selected match, by handle; `cursor` is its index (kept when it goes).
    pub selected: Option<NodeRef>,
    pub cursor: usize,
    /// First visible result.
    pub offset: usize,
    /// Result rows that fit on screen (set by `App::lay_out`).
    pub page: usize,
    /// Why the last pattern could not be used.
    pub error: Option<String>,
    /// Where the list was when the search started (`Origin`): leaving the results goes back.
    origin: Option<Origin>,
    last_run: Option<Instant>,
}

/// The list as it was when Enter ran a search from it, by handle: a directory or an entry
/// gone meanwhile is not returned to.
#[derive(Debug, Clone, Copy)]
struct Origin {
    cwd: NodeRef,
    /// `None`: the `..` row.
    selected: Option<NodeRef>,
    offset: usize,
}

impl Search {
    /// Moves the cursor to `index` (clamped) and keeps it on screen.
    fn select(&mut self, index: usize) {
        let shown = self.results.as_ref().map_or(&[][..], Results::shown);
        if shown.is_empty() {
            self.cursor = 0;
            self.selected = None;
            self.offset = 0;
            return;
        }
        self.cursor = index.min(shown.len() - 1);
        self.selected = Some(shown[self.cursor]);
        self.scroll();
    }

    /// Keeps the cursor on screen (`App::lay_out` calls it once it knows the page).
    pub fn scroll(&mut self) {
        let page = self.page.max(1);
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + page {
            self.offset = self.cursor + 1 - page;
        }
        let count = self.results.as_ref().map_or(0, |r| r.shown().len());
        self.offset = self.offset.min(count.saturating_sub(page));
    }

    /// After the results were ranked again: the cursor stays on its entry, or on its index if
    /// the entry went.
    fn follow(&mut self) {
        let shown = self.results.as_ref().map_or(&[][..], Results::shown);
        let index = self
            .selected
            .and_then(|s| shown.iter().position(|&r| r == s))
            .unwrap_or(self.cursor);
        self.select(index);
    }

    /// The footer's prompt line.
    #[must_use]
    pub fn prompt_line(&self) -> Option<String> {
        self.prompt.as_ref().map(|p| format!("/{p}"))
    }
}

impl App {
    /// Keys of the search prompt and of the results. Returns whether the key was theirs.
    pub(super) fn search_key(&mut self, k: KeyEvent, tree: &Tree) -> bool {
        if let Some(prompt) = self.search.prompt.as_mut() {
            match k.code {
                KeyCode::Esc => self.search.prompt = None,
                KeyCode::Enter => self.run_search(tree),
                KeyCode::Backspace => {
                    prompt.pop();
                }
                KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    prompt.clear();
                }
                KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                    prompt.push(c);
                }
                _ => {}
            }
            return true;
        }
        if k.code == KeyCode::Char('/') {
            self.search.prompt = Some(String::new());
            self.search.error = None;
            return true;
        }
        if !self.search.showing {
            if k.code == KeyCode::Esc && self.search.came_from_results {
                self.search.came_from_results = false;
                self.search.showing = true;
                // `a` may have been pressed in the list meanwhile.
                if let Some(r) = self.search.results.as_mut() {
                    r.set_apparent(tree, self.apparent);
                }
                self.search.follow();
                return true;
            }
            return false;
        }
        let cursor = self.search.cursor;
        let page = self.search.page.max(1);
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.search.select(cursor.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.search.select(cursor + 1),
            KeyCode::Home => self.search.select(0),
            KeyCode::End => self.search.select(usize::MAX),
            KeyCode::PageUp => self.search.select(cursor.saturating_sub(page)),
            KeyCode::PageDown => self.search.select(cursor + page),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => self.open_result(tree),
            KeyCode::Esc | KeyCode::Left | KeyCode::Backspace | KeyCode::Char('h') => {
                self.search.showing = false;
                self.back_to_origin(tree);
            }
            KeyCode::Char('a') => {
                self.apparent = !self.apparent;
                if let Some(r) = self.search.results.as_mut() {
                    r.set_apparent(tree, self.apparent);
                }
                self.search.follow();
            }
            KeyCode::Char('q') => self.request = Some(super::Request::Quit),
            KeyCode::Char('?') => self.popup = super::Popup::Help,
            // Everything else (sorts, marks, re-reads) is the list's: not here.
            _ => {}
        }
        true
    }

    /// Enter in the prompt: compile the pattern and match the whole tree.
    fn run_search(&mut self, tree: &Tree) {
        let pattern = self.search.prompt.take().unwrap_or_default();
        if pattern.is_empty() {
            // Enter on nothing closes the prompt, as Esc does.
            return;
        }
        match Matcher::new(&pattern) {
            Ok(m) => {
                // From the list (not from results on screen): that is where Esc comes back to.
                if !self.search.showing {
                    self.search.origin = Some(Origin {
                        cwd: tree.node_ref(self.cwd),
                        selected: match self.selected {
                            Sel::Up => None,
                            Sel::Node(id) => Some(tree.node_ref(id)),
                        },
                        offset: self.offset,
                    });
                }
                self.search.results = Some(Results::run(tree, m, self.apparent));
                self.search.last_run = Some(Instant::now());
                self.search.showing = true;
                self.search.came_from_results = false;
                self.search.selected = None;
                self.search.offset = 0;
                self.search.select(0);
                self.search.error = None;
            }
            Err(e) => {
                self.search.error = Some(e.to_string());
                self.message = Some(format!("search: {e}"));
            }
        }
    }

    /// Leaving the results: the list where the search started, if that directory is still
    /// there (its row too, if still in it; `sync` otherwise picks a row).
    fn back_to_origin(&mut self, tree: &Tree) {
        let Some(o) = self.search.origin.take() else {
            return;
        };
        let Some(cwd) = tree
            .resolve(o.cwd)
            .filter(|&id| tree.kind(id) == crate::tree::Kind::Dir)
        else {
            return;
        };
        self.cwd = cwd;
        self.selected = match o.selected.and_then(|r| tree.resolve(r)) {
            Some(id) if tree.parent(id) == Some(cwd) => Sel::Node(id),
            _ => Sel::Up,
        };
        self.offset = o.offset;
        self.follow_top = false;
    }

    /// Enter on a match: its directory, with it selected (shown even if `e` hides it).
    fn open_result(&mut self, tree: &Tree) {
        let Some(id) = self.search.selected.and_then(|r| tree.resolve(r)) else {
            return;
        };
        let Some(parent) = tree.parent(id) else {
            return;
        };
        if self.hide_hidden && is_hidden(tree, id) {
            self.hide_hidden = false;
        }
        self.cwd = parent;
        self.selected = Sel::Node(id);
        self.follow_top = false;
        self.offset = 0;
        let cursor = self.cursor(tree);
        // In the middle of the page, as `up` puts the directory we came from.
        self.offset = cursor.saturating_sub(self.page.max(1) / 2);
        self.search.showing = false;
        self.search.came_from_results = true;
    }

    /// A batch was applied: the matches follow it.
    pub(super) fn search_applied(&mut self, delta: &TreeDelta, tree: &Tree) {
        if let Some(r) = self.search.results.as_mut() {
            r.applied(delta, tree);
            self.search.follow();
        }
    }

    /// A pass ended (scan, catch-up, re-read): the tree changed without deltas.
    pub(super) fn search_rerun(&mut self, tree: &Tree) {
        if let Some(r) = self.search.results.as_mut() {
            r.rerun(tree);
            self.search.last_run = Some(Instant::now());
            self.search.follow();
        }
    }

    /// A status tick while a pass runs: the matches so far, at most once a `PASS_RERUN`.
    pub(super) fn search_tick(&mut self, tree: &Tree) {
        let due = self
            .search
            .last_run
            .is_none_or(|t| t.elapsed() >= PASS_RERUN);
        if due
            && self.busy()
            && self
                .search
                .results
                .as_ref()
                .is_some_and(|r| r.stale_pass(tree))
        {
            self.search_rerun(tree);
        }
    }

    /// Scrolls the results by the mouse wheel.
    pub(super) fn search_scroll(&mut self, down: bool) {
        let c = self.search.cursor;
        self.search
            .select(if down { c + 3 } else { c.saturating_sub(3) });
    }
}
