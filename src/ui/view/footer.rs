//! The footer: the totals of the directory on screen, the state word, the marks, the root's
//! total, each giving way on a narrow terminal, and the order with the size shown (`size↓
//! disk`), which stays at every width; above them, while there is one,
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

/// A scan's or a verification's progress line.
fn progress(app: &App, tree: &Tree, width: usize) -> String {
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
    // A scan counts what it found: what the tree on screen holds, so the line and the totals
    // below it (drawn from the same tree) always agree, whatever the age of the status that
    // carried the scan's own counters. A verification re-reads what is already counted, so
    // it says how many entries it checked and no bytes. The rate once there is one.
    let mut head = if app.status.freshness == Freshness::Scanning {
        let found = tree.totals(tree.root());
        format!(
            " Scanning: {} · {}",
            crate::format::count(found.items, "entry", "entries"),
            crate::format::size(found.disk)
        )
    } else {
        format!(
            " Verifying{why}: {} checked",
            crate::format::count(p.entries, "entry", "entries")
        )
    };
    if app.rate >= 1.0 {
        // Whole entries: a rate is a count too.
        let _ = write!(
            head,
            " · {} entries/s",
            crate::format::number(app.rate.round() as u64)
        );
    }
    if !current.is_empty() {
        head.push_str(" · ");
        let avail = width.saturating_sub(width_of(&head));
        head.push_str(&truncate_middle(&current, avail));
    }
    head
}

/// The totals line: the directory's totals, the state word, the root's total, the marks and
/// the order, each in the longest form there is room for.
fn totals(app: &App, tree: &Tree, width: usize) -> String {
    let root = tree.root();
    let t = tree.totals(app.cwd);
    let state = app.state_word();
    // The order and the size shown stay at every width: they explain the list's order and
    // its numbers. Long where there is room, else short (`size↓ disk`).
    let sort = sort_label(app);
    let mode = if app.apparent { "apparent" } else { "disk" };
    let dirs = if app.dirs_first { ", dirs first" } else { "" };
    let long_order = format!("  Sort: {sort}{dirs}  ({mode})");
    let short_order = format!("  {sort}{dirs} {mode}");
    let items = crate::format::count(t.items, "item", "items");
    let cols = |s: &str| s.chars().count();
    // The totals as ncdu words them, with the state word; without it (the header has it too)
    // where the order would not fit beside it.
    let bare = format!(
        " Total disk usage: {}  Apparent size: {}  Items: {}",
        crate::format::size(t.disk),
        crate::format::size(t.apparent),
        crate::format::number(t.items)
    );
    // A long reason gives way before the totals' labels do.
    let state_room = width.saturating_sub(cols(&bare) + 4 + cols(&short_order));
    let stated = if state_room >= 8 {
        format!("{bare}  [{}]", truncate_end(&state, state_room))
    } else {
        format!("{bare}  [{state}]")
    };
    let shown = crate::format::size(if app.apparent { t.apparent } else { t.disk });
    // The marks say what `d` would take: never cut mid-word, shorter if need be. What gives
    // way, in order: the state word (the header has it), the root's total, the marks' long
    // form, the facts' long forms, the marks.
    let root_part = if app.cwd == root {
        String::new()
    } else {
        let r = tree.totals(root);
        format!(
            "  Root: {}",
            crate::format::size(if app.apparent { r.apparent } else { r.disk })
        )
    };
    let (long_marks, short_marks) = if app.marked.is_empty() {
        (String::new(), String::new())
    } else {
        let (n, size) = (app.marked.len(), crate::format::size(app.marked_size(tree)));
        (
            format!("  Marked: {} ({size})", crate::format::number(n as u64)),
            format!("  *{n} {size}"),
        )
    };
    let narrow = [
        format!(" {shown} · {items} · {state}"),
        format!(" {shown} · {items}"),
        format!(" {shown}"),
    ];
    let none = String::new();
    // A stale reason is read whole before the totals' labels are (it says why the numbers
    // may be wrong); a plain state word is not worth them.
    let whole = format!("{bare}  [{state}]");
    let lead = format!(" {shown} · {items}  [");
    let reason_room = width.saturating_sub(cols(&lead) + 1 + cols(&short_order));
    let reason = format!("{lead}{}]", truncate_end(&state, reason_room.max(8)));
    let mut candidates = vec![(&whole, &root_part, &long_marks)];
    if app.stale_reason.is_some() || state.starts_with("stale") {
        candidates.push((&reason, &root_part, &long_marks));
        candidates.push((&reason, &none, &short_marks));
    }
    candidates.extend([
        (&stated, &root_part, &long_marks),
        (&bare, &root_part, &long_marks),
        (&bare, &root_part, &short_marks),
        (&bare, &none, &long_marks),
        (&bare, &none, &short_marks),
    ]);
    for f in &narrow {
        candidates.push((f, &none, &long_marks));
        candidates.push((f, &none, &short_marks));
    }
    // Without the marks, if nothing else leaves them room.
    candidates.extend([
        (&stated, &root_part, &none),
        (&bare, &root_part, &none),
        (&stated, &none, &none),
        (&bare, &none, &none),
    ]);
    candidates.extend(narrow.iter().map(|f| (f, &none, &none)));
    let mut text = candidates
        .into_iter()
        .find(|(f, r, m)| cols(f) + cols(r) + cols(m) + cols(&short_order) <= width)
        .map_or_else(String::new, |(f, r, m)| format!("{f}{r}{m}"));
    let used = text.chars().count();
    if used + long_order.chars().count() <= width {
        text.push_str(&long_order);
    } else if text.is_empty() {
        // Only the order fits, and perhaps not whole.
        text = format!(
            " {}",
            truncate_end(short_order.trim_start(), width.saturating_sub(1))
        );
    } else {
        text.push_str(&short_order);
    }
    text
}

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let width = usize::from(area.width);
    let mut lines = Vec::new();
    if app.busy() {
        lines.push(Line::from(progress(app, tree, width)));
    } else if let Some(m) = app.message.as_ref().or(app.notice.as_ref()) {
        lines.push(Line::from(format!(
            " {}",
            truncate_end(m, width.saturating_sub(1))
        )));
    }
    let text = totals(app, tree, width);
    lines.push(Line::from(text).style(style(app, Style::new().add_modifier(Modifier::REVERSED))));
    frame.render_widget(Paragraph::new(lines), area);
}
