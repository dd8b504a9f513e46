//! Drawing: a frame from `App` and the tree, nothing else. Header (path and state), the list
//! (flag, size, percent and bar against the directory, items, mtime, name), footer (totals,
//! freshness, marks, scan progress), and the help and info windows.

mod delete;
mod search;

use std::fmt::Write as _;
use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Flash, Inspection, Popup, SortKey, Watch};
use super::keys;
use crate::engine::Freshness;
use crate::format::{column_size, head_cols, signed_size, truncate_end, truncate_middle, width_of};
use crate::history::Change;
use crate::path::display_name;
use crate::tree::{Kind, NodeId, Tree, flag_char, flags};

/// Draws one frame.
pub fn draw(frame: &mut Frame<'_>, app: &mut App, tree: &Tree) {
    let area = frame.area();
    let footer_lines = 1 + u16::from(
        app.busy() || app.message.is_some() || app.notice.is_some() || app.search.prompt.is_some(),
    );
    let [header, list, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(footer_lines),
    ])
    .areas(area);
    app.page = usize::from(list.height.max(1));
    app.list_top = list.y;
    app.sync(tree);
    app.scroll_to_cursor(tree);
    draw_header(frame, app, tree, header);
    if app.search.showing {
        search::draw_results(frame, app, tree, list);
    } else {
        draw_list(frame, app, tree, list);
    }
    draw_footer(frame, app, tree, footer);
    search::draw_prompt(frame, app, footer);
    match app.popup.clone() {
        Popup::None => {}
        Popup::Help => draw_help(frame, app, area),
        Popup::Info(r) => {
            if let Some(id) = tree.resolve(r) {
                draw_info(frame, app, tree, id, area);
            }
        }
    }
    if let Some(d) = &app.delete.dialog {
        delete::draw(frame, app, d, area);
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

/// The watch backend's name as the header shows it (`fanotify`, `notify`).
fn backend(app: &App) -> Option<&str> {
    match &app.watch {
        Watch::On(what) => what.split_whitespace().next(),
        Watch::Off | Watch::Failed(_) => None,
    }
}

fn draw_header(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let width = usize::from(area.width);
    let state = app.state_word();
    // The state word stays whole up to half the width; the path gives way first.
    let state = truncate_end(&state, (width / 2).max(8));
    let mut right = match backend(app) {
        Some(b) => format!(" {b} · {state} "),
        None => format!(" {state} "),
    };
    // The results' paths are below the root.
    let shown = if app.search.showing {
        tree.root()
    } else {
        app.cwd
    };
    let path = display_name(tree.path_of(shown).as_os_str().as_encoded_bytes());
    let mut prefix = " dtui · ";
    if width < 50 {
        prefix = " ";
        right = format!(" {state} ");
    }
    let avail = width.saturating_sub(width_of(&right) + width_of(prefix));
    let left = format!("{prefix}{}", truncate_middle(&path, avail));
    let pad = width.saturating_sub(width_of(&left) + width_of(&right));
    let bar = if app.color {
        Style::new().fg(Color::Black).bg(Color::Cyan)
    } else {
        Style::new().add_modifier(Modifier::REVERSED)
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw(left),
            Span::raw(" ".repeat(pad)),
            Span::raw(right),
        ]))
        .style(bar),
        area,
    );
}

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

fn draw_list(frame: &mut Frame<'_>, app: &mut App, tree: &Tree, area: Rect) {
    let up = app.has_up(tree);
    let cursor = app.cursor(tree);
    let first = app.offset;
    let rows = app.rows(tree);
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

fn row_line(app: &mut App, tree: &Tree, id: NodeId, name: &str, c: &RowCtx<'_>) -> Line<'static> {
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
            let newest = app.newest_mtime(tree, id);
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

fn draw_footer(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
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

fn draw_help(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let help_len = keys::help_len();
    let rect = centered(area, 74, help_len as u16 + 2);
    // A terminal shorter than the help shows a window of it, scrolled with ↓ ↑ (the title
    // says so and where).
    let rows = usize::from(rect.height.saturating_sub(2));
    let first = app.help_scroll.min(help_len.saturating_sub(rows));
    // Keys right-aligned in a column where there is room; on a narrow terminal that column
    // alone would fill the window with blanks, so each key starts its line.
    let inner = usize::from(rect.width.saturating_sub(2));
    let lines: Vec<Line<'_>> = keys::help()
        .skip(first)
        .map(|(k, v)| {
            Line::from(if inner >= 60 {
                format!(" {k:>18}  {v}")
            } else {
                format!(" {}  {v}", k.trim_start())
            })
        })
        .collect();
    let title = if rows < help_len {
        format!(
            " dtui help {}-{} of {} (↓ ↑ scroll) ",
            first + 1,
            (first + rows).min(help_len),
            help_len
        )
    } else {
        " dtui help ".to_owned()
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(title))
            .style(style(app, Style::new())),
        rect,
    );
}

/// The info window's link count: what the disk said, else what the tree knows.
fn links_line(tree: &Tree, id: NodeId, inspected: Option<&Inspection>) -> String {
    match inspected {
        Some(Inspection { nlink: Some(n), .. }) => n.to_string(),
        // The disk could not tell (gone, or an import's path that names nothing here).
        Some(Inspection {
            nlink: None,
            error: Some(e),
            ..
        }) if tree.kind(id) == Kind::Dir => format!("({e})"),
        // Until the disk answers: what the tree knows (1 for a directory).
        _ if tree.kind(id) == Kind::Dir => "…".to_owned(),
        _ => tree.nlink(id).to_string(),
    }
}

fn draw_info(frame: &mut Frame<'_>, app: &App, tree: &Tree, id: NodeId, area: Rect) {
    let t = tree.totals(id);
    let kind = match tree.kind(id) {
        Kind::File => "file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        Kind::Other => "special file",
        Kind::Unknown => "unknown",
    };
    let fl = tree.flags(id);
    let mut flag_words = Vec::new();
    if tree.kind(id) == Kind::Symlink {
        flag_words.push("@ symlink (not followed)");
    }
    for (bit, word) in [
        (flags::READ_ERROR, "unreadable"),
        (flags::ERROR_BELOW, "errors below"),
        (flags::EXCLUDED, "excluded"),
        (flags::OTHER_FS, "other filesystem"),
        (flags::HARDLINK_DUP, "hard link counted elsewhere"),
        (flags::STALE, "stale"),
    ] {
        if fl & bit != 0 {
            flag_words.push(word);
        }
    }
    let errno = tree.errno(id);
    let mut lines = vec![
        Line::from(format!(
            " Path:      {}",
            display_name(tree.path_of(id).as_os_str().as_encoded_bytes())
        )),
        Line::from(format!(" Type:      {kind}")),
        Line::from(format!(
            " Disk:      {} ({} bytes)",
            crate::format::size(t.disk),
            t.disk
        )),
        Line::from(format!(
            " Apparent:  {} ({} bytes)",
            crate::format::size(t.apparent),
            t.apparent
        )),
    ];
    if tree.kind(id) == Kind::Dir {
        lines.push(Line::from(format!(" Items:     {}", t.items)));
    }
    let own = tree.own(id);
    lines.push(Line::from(format!(
        " Modified:  {}",
        app.time(own.mtime.sec)
    )));
    // A plain file's inode is not kept in the tree (see `Own::stored`).
    // An export that does not say has none (0, which no file has).
    if let Some(ino) = own.ino.filter(|&i| i != 0) {
        lines.push(Line::from(format!(" Inode:     {ino}")));
    }
    let inspected = app
        .inspection
        .as_ref()
        .filter(|(r, _)| tree.resolve(*r) == Some(id))
        .map(|(_, i)| i);
    let link_count = links_line(tree, id, inspected);
    lines.push(Line::from(format!(" Links:     {link_count}")));
    if tree.kind(id) == Kind::Symlink {
        let target = match inspected {
            Some(Inspection {
                target: Some(t), ..
            }) => t.clone(),
            Some(Inspection { error: Some(e), .. }) => format!("({e})"),
            _ => "…".to_owned(),
        };
        lines.push(Line::from(format!(" Target:    {target}")));
    }
    lines.push(Line::from(format!(
        " Flags:     {}",
        if flag_words.is_empty() {
            "none".to_owned()
        } else {
            flag_words.join(", ")
        }
    )));
    if errno != 0 {
        lines.push(Line::from(format!(
            " Error:     {}",
            nix::errno::Errno::from_raw(errno as i32).desc()
        )));
    }
    let rect = centered(area, 70, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" info "))
            .style(style(app, Style::new())),
        rect,
    );
}
