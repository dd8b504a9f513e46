//! The footer: the totals of the directory on screen, the state word, the marks, the root's
//! total and the order, each giving way on a narrow terminal; above them, while there is one,
//! a scan's or a verification's progress, else a message or the notice.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::style;
use crate::engine::Freshness;
use crate::format::{truncate_end, truncate_middle, width_of};
use crate::path::display_name;
use crate::tree::Tree;
use crate::ui::app::{App, SortKey};

/// The footer's word for the order.
fn sort_label(app: &App) -> &'static str {
    match (app.sort, app.reverse) {
        (SortKey::Size, false) => "size↓",
        (SortKey::Size, true) => "size↑",
        (SortKey::Name, false) => "name↑",
        (SortKey::Name, true) => "name↓",
        (SortKey::Items, false) => "items↓",
        (SortKey::Items, true) => "items↑",
        (SortKey::Mtime, false) => "mtime↓",
        (SortKey::Mtime, true) => "mtime↑",
        (SortKey::Change, false) => "change↓",
        (SortKey::Change, true) => "change↑",
    }
}

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let root = tree.root();
    let t = tree.totals(app.cwd);
    let width = usize::from(area.width);
    let state = app.state_word();
    let mut lines = Vec::new();
    if app.busy() {
        let p = app.status.progress;
        let current = if tree.is_live(p.current) {
            display_name(tree.path_of(p.current).as_os_str().as_encoded_bytes())
        } else {
            String::new()
        };
        let why = match (&app.stale_reason, app.status.freshness) {
            (Some(why), Freshness::Verifying) => format!(" ({why})"),
            _ => String::new(),
        };
        // A scan counts what it found; a verification re-reads what is already counted, so it
        // says how many entries it checked and no bytes. The rate once there is one.
        let mut head = if app.status.freshness == Freshness::Scanning {
            format!(
                " Scanning: {} entries · {}",
                p.entries,
                crate::format::size(p.disk)
            )
        } else {
            format!(" Verifying{why}: {} entries checked", p.entries)
        };
        if app.rate >= 1.0 {
            let _ = write!(head, " · {:.0} entries/s", app.rate);
        }
        if !current.is_empty() {
            head.push_str(" · ");
            let avail = width.saturating_sub(width_of(&head));
            head.push_str(&truncate_middle(&current, avail));
        }
        lines.push(Line::from(head));
    } else if let Some(m) = app.message.as_ref().or(app.notice.as_ref()) {
        lines.push(Line::from(format!(
            " {}",
            truncate_end(m, width.saturating_sub(1))
        )));
    }
    let mut text = format!(
        " Total disk usage: {}  Apparent size: {}  Items: {}  [",
        crate::format::size(t.disk),
        crate::format::size(t.apparent),
        t.items
    );
    // A long reason (it is in the header too) gives way before the totals' labels do.
    let state_room = width.saturating_sub(text.chars().count() + 1);
    if state_room >= 8 {
        let _ = write!(text, "{}]", truncate_end(&state, state_room));
    } else {
        let _ = write!(text, "{state}]");
    }
    let shown = crate::format::size(if app.apparent { t.apparent } else { t.disk });
    if text.chars().count() > width {
        // Narrow: the same facts, shorter.
        text = format!(
            " {shown} {} · {} items · {state}",
            if app.apparent { "apparent" } else { "disk" },
            t.items
        );
    }
    if text.chars().count() > width {
        text = format!(" {shown} · {state}");
    }
    // The marks say what `d` would take: they go before the root's total, shorter if need
    // be, and are never cut mid-word.
    let marked = if app.marked.is_empty() {
        String::new()
    } else {
        let (n, size) = (app.marked.len(), crate::format::size(app.marked_size(tree)));
        let full = format!("  Marked: {n} ({size})");
        let short = format!("  *{n} {size}");
        let used = text.chars().count();
        if used + full.chars().count() <= width {
            full
        } else if used + short.chars().count() <= width {
            short
        } else {
            String::new()
        }
    };
    if app.cwd != root {
        let r = tree.totals(root);
        let root_part = format!(
            "  Root: {}",
            crate::format::size(if app.apparent { r.apparent } else { r.disk })
        );
        if text.chars().count() + root_part.chars().count() + marked.chars().count() <= width {
            text.push_str(&root_part);
        }
    }
    text.push_str(&marked);
    let sort = sort_label(app);
    let tail = format!(
        "  Sort: {sort}{}  {}",
        if app.dirs_first { ", dirs first" } else { "" },
        if app.apparent { "(apparent)" } else { "(disk)" }
    );
    if text.chars().count() + tail.chars().count() <= width {
        text.push_str(&tail);
    }
    lines.push(Line::from(text).style(style(app, Style::new().add_modifier(Modifier::REVERSED))));
    frame.render_widget(Paragraph::new(lines), area);
}
