//! The list: one row per entry of the directory on screen (mark, flag, size, percent and bar
//! against the directory, items, newest mtime, change against the size history, name), the
//! `..` row first below the root, and the rows a batch changed highlighted with their change.
//! The optional columns give way, one by one, on a narrow terminal.

use std::fmt::Write as _;
use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::style;
use crate::engine::Freshness;
use crate::format::{column_size, signed_size, truncate_end, width_of};
use crate::history::Change;
use crate::path::display_name;
use crate::tree::{Kind, NodeId, Tree, flag_char, flags};
use crate::ui::app::{App, Flash};

/// Which optional columns fit, in the order they are dropped on a narrow terminal.
struct Columns {
    /// Below `TINY` columns: size and name only.
    tiny: bool,
    percent: bool,
    bar: bool,
    items: bool,
    mtime: bool,
    /// The change against the size history (`v`).
    change: bool,
    name_width: usize,
}

const BAR: usize = 10;
/// Width of the change column: `+1023.9 MiB`, `new`, blank when the history cannot tell.
const CHANGE: usize = 11;
/// Narrower than this: size and name only.
const TINY: usize = 20;
/// Names longer than this may be cut rather than lose a column for them.
const NAME_WANTED: usize = 32;

impl Columns {
    /// Width of everything but the name.
    fn fixed(&self) -> usize {
        if self.tiny {
            return 11;
        }
        // mark, flag, space, size; the optional columns; two spaces before the name.
        13 + if self.percent { 7 } else { 0 }
            + if self.bar { BAR + 3 } else { 0 }
            + if self.items { 9 } else { 0 }
            + if self.mtime { 17 } else { 0 }
            + if self.change { CHANGE + 1 } else { 0 }
            + 2
    }
}

/// Drops mtime, then items, then the bar, then the percent, until the longest name on screen
/// (up to `NAME_WANTED`) fits whole.
fn columns(app: &App, width: usize, longest: usize) -> Columns {
    let mut c = Columns {
        tiny: width < TINY,
        percent: app.graph.percent(),
        bar: app.graph.bar(),
        items: app.show_items,
        mtime: app.show_mtime,
        change: app.changes.shown,
        name_width: 0,
    };
    let wanted = longest.clamp(8, NAME_WANTED);
    for drop in 0..5 {
        if c.tiny || width >= c.fixed() + wanted {
            break;
        }
        match drop {
            0 => c.mtime = false,
            4 => c.change = false,
            1 => c.items = false,
            2 => c.bar = false,
            _ => c.percent = false,
        }
    }
    c.name_width = width.saturating_sub(c.fixed()).max(1);
    c
}

/// An entry's name as listed: escaped, a directory's ending in `/`.
fn list_name(tree: &Tree, id: NodeId) -> String {
    let mut name = display_name(tree.name(id));
    if tree.kind(id) == Kind::Dir {
        name.push('/');
    }
    name
}

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let up = app.has_up(tree);
    let cursor = app.listed_cursor(tree);
    let first = app.offset;
    let rows = app.listed();
    let count = rows.len() + usize::from(up);
    let end = count.min(first + usize::from(area.height));
    let visible: Vec<NodeId> = (first..end)
        .filter(|&i| !(up && i == 0))
        .map(|i| rows[i - usize::from(up)])
        .collect();
    let names: Vec<String> = visible.iter().map(|&id| list_name(tree, id)).collect();
    let longest = names.iter().map(|n| width_of(n)).max().unwrap_or(0);
    let cols = columns(app, usize::from(area.width), longest);
    let parent_size = app.size(tree, app.cwd).max(1);
    // Rows inside a subtree being re-verified are all marked.
    let cwd_stale = App::is_stale(tree, app.cwd);
    let now = Instant::now();
    let mut lines = Vec::with_capacity(usize::from(area.height));
    let mut names = visible.iter().zip(names);
    for index in first..end {
        let selected = index == cursor;
        let line = if up && index == 0 {
            let mut l = Line::from(format!(
                "{:<w$}",
                format!(
                    "{:>width$}  ..",
                    "",
                    width = if cols.tiny { 10 } else { 12 }
                ),
                w = usize::from(area.width)
            ));
            if selected {
                l = l.style(style(app, Style::new().add_modifier(Modifier::REVERSED)));
            }
            l
        } else {
            let (&id, name) = names.next().expect("one name per visible row");
            let ctx = RowCtx {
                cols: &cols,
                parent_size,
                selected,
                stale: cwd_stale || tree.flags(id) & flags::STALE != 0,
                flash: app.flashes.get(&id).filter(|f| f.until > now).copied(),
                width: area.width,
            };
            row_line(app, tree, id, &name, &ctx)
        };
        lines.push(line);
    }
    if count == 0 || (up && count == 1) {
        let errno = tree.errno(app.cwd);
        lines.push(Line::from(if errno == 0 {
            "  (empty directory)".to_owned()
        } else {
            format!(
                "  cannot read: {}",
                nix::errno::Errno::from_raw(errno as i32).desc()
            )
        }));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

struct RowCtx<'a> {
    cols: &'a Columns,
    parent_size: u64,
    selected: bool,
    stale: bool,
    flash: Option<Flash>,
    width: u16,
}

/// The change column of a row: signed, `new`, `0` when unchanged, blank when unknown (a
/// file, a deep directory the history did not track, or no baseline yet).
fn change_cell(app: &App, tree: &Tree, id: NodeId) -> String {
    match app.change(tree, id) {
        Some(Change::Bytes(0)) => "0".into(),
        Some(Change::Bytes(d)) => signed_size(d),
        Some(Change::New) => "new".into(),
        Some(Change::Gone) | None => String::new(),
    }
}

fn row_line(app: &App, tree: &Tree, id: NodeId, name: &str, c: &RowCtx<'_>) -> Line<'static> {
    let kind = tree.kind(id);
    let fl = tree.flags(id);
    let size = app.size(tree, id);
    let marked = app.is_marked(tree, id);
    let cols = c.cols;
    let mut text = String::with_capacity(usize::from(c.width));
    if cols.tiny {
        let _ = write!(text, "{:>10} ", column_size(size));
    } else {
        text.push(if marked { '*' } else { ' ' });
        let settled = app.status.freshness != Freshness::Scanning;
        let mut flag =
            if settled && kind == Kind::Dir && tree.children(id).next().is_none() && fl == 0 {
                "e"
            } else {
                flag_char(fl, kind)
            };
        if flag == " " && c.stale {
            flag = "~";
        }
        text.push_str(flag);
        let _ = write!(text, " {:>10}", column_size(size));
        let frac = size as f64 / c.parent_size as f64;
        if cols.percent {
            let _ = write!(text, " {:>5.1}%", (frac * 100.0).min(100.0));
        }
        if cols.bar {
            let filled = ((frac * BAR as f64).round() as usize).min(BAR);
            let _ = write!(
                text,
                " [{}{}]",
                "#".repeat(filled),
                " ".repeat(BAR - filled)
            );
        }
        if cols.items {
            let items = tree.totals(id).items;
            if kind == Kind::Dir {
                let _ = write!(text, " {items:>8}");
            } else {
                let _ = write!(text, " {:>8}", "");
            }
        }
        if cols.mtime {
            let newest = app.shown_mtime(tree, id);
            let _ = write!(text, " {:>16}", app.time(newest));
        }
        if cols.change {
            let _ = write!(text, " {:>CHANGE$}", change_cell(app, tree, id));
        }
        text.push_str("  ");
    }
    // The change of a flashing row follows its name (the name gives way, never the change).
    let change = c.flash.map(|f| {
        let d = if app.apparent { f.apparent } else { f.disk };
        if f.new {
            format!("  new {}", signed_size(i128::from(size)))
        } else {
            format!("  {}", signed_size(d))
        }
    });
    let change_w = change.as_ref().map_or(0, |s| s.chars().count());
    let name_w = if cols.name_width > change_w + 4 {
        cols.name_width - change_w
    } else {
        cols.name_width
    };
    text.push_str(&truncate_end(name, name_w));
    if let Some(ch) = change.filter(|_| name_w < cols.name_width) {
        text.push_str(&ch);
    }
    let pad = usize::from(c.width).saturating_sub(width_of(&text));
    text.push_str(&" ".repeat(pad));
    let mut s = Style::new();
    if kind == Kind::Dir {
        s = s.fg(Color::Blue).add_modifier(Modifier::BOLD);
    }
    if c.stale {
        s = s.add_modifier(Modifier::DIM);
    }
    if fl & (flags::READ_ERROR | flags::ERROR_BELOW) != 0 {
        s = s.fg(Color::Red);
    }
    if let Some(f) = c.flash {
        let grew = f.new || (if app.apparent { f.apparent } else { f.disk }) > 0;
        s = s
            .fg(if grew { Color::Green } else { Color::Magenta })
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    }
    if marked {
        s = s.fg(Color::Yellow);
    }
    if c.selected {
        s = s.add_modifier(Modifier::REVERSED);
    }
    Line::from(text).style(style(app, s))
}
