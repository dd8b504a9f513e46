//! Drawing: a frame from `App` and the tree, nothing else (`draw` takes the app by shared
//! reference). The parts are widgets of their own: the header (path and state), the list
//! (`list`), the search results in its place (`search`), the footer (totals, freshness, marks,
//! scan progress), the help and info windows and the delete dialogs. Where they go is
//! `Areas`, measured by the loop before the frame and handed to the app first
//! (`App::lay_out`), so that the app knows its page before it is drawn.

mod delete;
mod footer;
mod header;
mod help;
mod info;
mod list;
mod search;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;

use super::app::{App, Popup};
use crate::tree::Tree;

/// Where the parts of a frame go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The whole frame (the windows and dialogs are centred in it).
    pub screen: Rect,
    pub header: Rect,
    /// The list, or the search results in its place.
    pub list: Rect,
    pub footer: Rect,
}

impl Areas {
    /// The parts of `screen` for the app as it stands: the footer takes a second line while a
    /// scan's progress, a message or the search prompt is shown.
    #[must_use]
    pub fn new(screen: Rect, app: &App) -> Areas {
        let footer_lines = 1 + u16::from(
            app.busy()
                || app.message.is_some()
                || app.notice.is_some()
                || app.search.prompt.is_some(),
        );
        let [header, list, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(footer_lines),
        ])
        .areas(screen);
        Areas {
            screen,
            header,
            list,
            footer,
        }
    }
}

/// Draws one frame into `areas` (measured, and handed to `App::lay_out`, for this frame).
pub fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, areas: &Areas) {
    header::draw(frame, app, tree, areas.header);
    if app.search.showing {
        search::draw_results(frame, app, tree, areas.list);
    } else {
        list::draw(frame, app, tree, areas.list);
    }
    footer::draw(frame, app, tree, areas.footer);
    search::draw_prompt(frame, app, areas.footer);
    match &app.popup {
        Popup::None => {}
        Popup::Help => help::draw(frame, app, areas.screen),
        Popup::Info(r) => {
            if let Some(id) = tree.resolve(*r) {
                info::draw(frame, app, tree, id, areas.screen);
            }
        }
    }
    if let Some(d) = &app.delete.dialog {
        delete::draw(frame, app, d, areas.screen);
    }
}

pub(super) fn style(app: &App, s: Style) -> Style {
    if app.color {
        s
    } else {
        // NO_COLOR: keep reverse video, bold and underline, drop colours.
        Style {
            fg: None,
            bg: None,
            ..s
        }
    }
}

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
