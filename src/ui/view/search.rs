//! The search results in place of the list: a line saying what was searched and how many
//! matched, then one row per match (flag, size, path below the root), largest first. Paths
//! are built only for the rows on screen.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

use super::style;
use crate::format::{column_size, truncate_middle, width_of};
use crate::path::display_name;
use crate::search::MAX_SHOWN;
use crate::tree::{Kind, NodeId, Tree, flag_char};
use crate::ui::app::App;

/// The path of a match as listed: below the root, escaped, a directory's ending in `/`.
fn result_path(tree: &Tree, id: NodeId) -> String {
    let full = tree.path_of(id);
    let below = full.strip_prefix(tree.root_path()).unwrap_or(&full);
    let mut s = display_name(below.as_os_str().as_bytes());
    if tree.kind(id) == Kind::Dir {
        s.push('/');
    }
    s
}

pub(super) fn draw_results(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let width = usize::from(area.width);
    let Some(results) = app.search.results.as_ref() else {
        return;
    };
    let m = &results.matcher;
    let count = results.count();
    let mut head = format!(
        " {} for {} ({}{})",
        match count {
            0 => "no matches".to_owned(),
            1 => "1 match".to_owned(),
            n if n > MAX_SHOWN => format!("{n} matches, the largest {MAX_SHOWN} listed"),
            n => format!("{n} matches"),
        },
        display_name(m.pattern().as_bytes()),
        if m.is_glob() { "glob, " } else { "" },
        if m.is_case_sensitive() {
            "case-sensitive"
        } else {
            "any case"
        },
    );
    if app.busy() {
        head.push_str(" · so far");
    }
    let mut lines = vec![
        Line::from(format!("{head:<width$}"))
            .style(style(app, Style::new().add_modifier(Modifier::BOLD))),
    ];
    let shown = results.shown();
    let end = shown.len().min(app.search.offset + app.search.page);
    // A handle that no longer resolves (a batch applied, its delta not yet seen) is left
    // out: a freed slot never shows another entry.
    let rows = shown
        .iter()
        .enumerate()
        .take(end)
        .skip(app.search.offset)
        .filter_map(|(i, &r)| tree.resolve(r).map(|id| (i, id)));
    for (index, id) in rows {
        let t = tree.totals(id);
        let size = if app.apparent { t.apparent } else { t.disk };
        let kind = tree.kind(id);
        let mut text = String::with_capacity(width);
        let _ = write!(
            text,
            " {} {:>10}  ",
            flag_char(tree.flags(id), kind),
            column_size(size)
        );
        let avail = width.saturating_sub(width_of(&text));
        text.push_str(&truncate_middle(&result_path(tree, id), avail));
        let pad = width.saturating_sub(width_of(&text));
        text.push_str(&" ".repeat(pad));
        let mut s = Style::new();
        if kind == Kind::Dir {
            s = s.fg(Color::Blue).add_modifier(Modifier::BOLD);
        }
        if index == app.search.cursor {
            s = s.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::from(text).style(style(app, s)));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The prompt, over the footer's first line (where messages go) while it is open.
pub(super) fn draw_prompt(frame: &mut Frame<'_>, app: &App, footer: Rect) {
    let Some(prompt) = app.search.prompt_line() else {
        return;
    };
    let width = usize::from(footer.width);
    let line = Rect {
        height: 1.min(footer.height),
        ..footer
    };
    let text = format!(
        " {}█",
        truncate_middle(&display_name(prompt.as_bytes()), width.saturating_sub(2))
    );
    frame.render_widget(Clear, line);
    frame.render_widget(Paragraph::new(text), line);
}
