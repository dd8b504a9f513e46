//! Moving between directories and along the list: Enter into a directory (or up from `..`),
//! up to the parent with the directory left selected, and the mouse (the wheel scrolls, a
//! click selects, a double click opens).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::{App, Popup, Sel, is_hidden};
use crate::tree::{Kind, Tree};

impl App {
    /// Enter: into the selected directory, or up from `..`.
    pub(super) fn open(&mut self, tree: &Tree) {
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
    pub(super) fn up(&mut self, tree: &Tree) {
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

    pub(super) fn mouse(&mut self, m: MouseEvent, tree: &Tree) {
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
}
