//! Drawing: a frame from `App` and the tree, nothing else. Header (path and state), the list
//! (flag, size, percent and bar against the directory, items, mtime, name), footer (totals,
//! freshness, marks, scan progress), and the help and info windows.

use std::fmt::Write as _;

use humansize::{BINARY, format_size};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Popup, SortKey};
use crate::engine::Freshness;
use crate::path::display_name;
use crate::tree::{Kind, NodeId, Tree, flag_char, flags};

/// Draws one frame.
pub fn draw(frame: &mut Frame<'_>, app: &mut App, tree: &Tree) {
    let area = frame.area();
    let scanning = matches!(
        app.status.freshness,
        Freshness::Scanning | Freshness::Verifying
    );
    let footer_lines = 1 + u16::from(scanning || app.message.is_some() || app.notice.is_some());
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
    draw_list(frame, app, tree, list);
    draw_footer(frame, app, tree, footer);
    match app.popup.clone() {
        Popup::None => {}
        Popup::Help => draw_help(frame, app, area),
        Popup::Info(id) => draw_info(frame, app, tree, id, area),
    }
}

fn style(app: &App, s: Style) -> Style {
    if app.color {
        s
    } else {
        // NO_COLOR: keep reverse video and bold, drop colours.
        Style {
            fg: None,
            bg: None,
            ..s
        }
    }
}

fn draw_header(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let state = match app.status.freshness {
        Freshness::Scanning => "scanning",
        Freshness::Stale => "cached, not verified",
        Freshness::Verifying => "cached, verifying",
        Freshness::Fresh => "up to date",
        Freshness::Live => "live",
    };
    let right = format!(" {state} ");
    let path = display_name(tree.path_of(app.cwd).as_os_str().as_encoded_bytes());
    let avail = usize::from(area.width).saturating_sub(right.chars().count() + 8);
    let left = format!(" dtui · {}", truncate_middle(&path, avail));
    let pad = usize::from(area.width).saturating_sub(left.chars().count() + right.chars().count());
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
    percent: bool,
    bar: bool,
    items: bool,
    mtime: bool,
    name_width: usize,
}

const BAR: usize = 10;

fn columns(app: &App, width: usize) -> Columns {
    let mut c = Columns {
        percent: app.graph.percent(),
        bar: app.graph.bar(),
        items: app.show_items,
        mtime: app.show_mtime,
        name_width: 0,
    };
    let fixed = |c: &Columns| {
        2 + 10
            + 1
            + if c.percent { 7 } else { 0 }
            + if c.bar { BAR + 3 } else { 0 }
            + if c.items { 9 } else { 0 }
            + if c.mtime { 17 } else { 0 }
            + 1
    };
    // Names keep at least 16 columns: drop mtime, then items, then the bar, then the percent.
    for drop in 0..4 {
        if width >= fixed(&c) + 16 {
            break;
        }
        match drop {
            0 => c.mtime = false,
            1 => c.items = false,
            2 => c.bar = false,
            _ => c.percent = false,
        }
    }
    c.name_width = width.saturating_sub(fixed(&c)).max(1);
    c
}

fn draw_list(frame: &mut Frame<'_>, app: &mut App, tree: &Tree, area: Rect) {
    let cols = columns(app, usize::from(area.width));
    let parent_size = app.size(tree, app.cwd).max(1);
    let up = app.has_up(tree);
    let cursor = app.cursor(tree);
    let rows = app.rows(tree).to_vec();
    let count = rows.len() + usize::from(up);
    let mut lines = Vec::with_capacity(usize::from(area.height));
    for index in app.offset..count.min(app.offset + usize::from(area.height)) {
        let selected = index == cursor;
        let line = if up && index == 0 {
            let mut l = Line::from(format!(
                "{:<w$}",
                format!("{:>width$}  ..", "", width = 12),
                w = usize::from(area.width)
            ));
            if selected {
                l = l.style(style(app, Style::new().add_modifier(Modifier::REVERSED)));
            }
            l
        } else {
            let id = rows[index - usize::from(up)];
            row_line(app, tree, id, &cols, parent_size, selected, area.width)
        };
        lines.push(line);
    }
    if count == 0 || (up && count == 1) {
        lines.push(Line::from("  (empty directory)"));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn row_line(
    app: &App,
    tree: &Tree,
    id: NodeId,
    cols: &Columns,
    parent_size: u64,
    selected: bool,
    width: u16,
) -> Line<'static> {
    let kind = tree.kind(id);
    let fl = tree.flags(id);
    let size = app.size(tree, id);
    let marked = app.marked.contains_key(&id);
    let mut text = String::with_capacity(usize::from(width));
    text.push(if marked { '*' } else { ' ' });
    let settled = app.status.freshness != Freshness::Scanning;
    let flag = if settled && kind == Kind::Dir && tree.children(id).next().is_none() && fl == 0 {
        "e"
    } else {
        flag_char(fl, kind)
    };
    text.push_str(flag);
    let _ = write!(text, " {:>10}", format_size(size, BINARY));
    let frac = size as f64 / parent_size as f64;
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
        let _ = write!(text, " {:>16}", format_mtime(tree.node(id).mtime));
    }
    text.push_str("  ");
    let mut name = display_name(tree.name(id));
    if kind == Kind::Dir {
        name.push('/');
    }
    text.push_str(&truncate_middle(&name, cols.name_width));
    let pad = usize::from(width).saturating_sub(text.chars().count());
    text.push_str(&" ".repeat(pad));
    let mut s = Style::new();
    if kind == Kind::Dir {
        s = s.fg(Color::Blue).add_modifier(Modifier::BOLD);
    }
    if fl & (flags::READ_ERROR | flags::ERROR_BELOW) != 0 {
        s = s.fg(Color::Red);
    }
    if marked {
        s = s.fg(Color::Yellow);
    }
    if selected {
        s = s.add_modifier(Modifier::REVERSED);
    }
    Line::from(text).style(style(app, s))
}

fn draw_footer(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let root = tree.root();
    let t = tree.totals(root);
    let mut lines = Vec::new();
    if matches!(
        app.status.freshness,
        Freshness::Scanning | Freshness::Verifying
    ) {
        let p = app.status.progress;
        let current = if tree.is_live(p.current) {
            display_name(tree.path_of(p.current).as_os_str().as_encoded_bytes())
        } else {
            String::new()
        };
        let head = format!(
            " {}: {} entries · {} · {:.0} entries/s · ",
            if app.status.freshness == Freshness::Scanning {
                "Scanning"
            } else {
                "Verifying"
            },
            p.entries,
            format_size(p.disk, BINARY),
            app.rate,
        );
        let avail = usize::from(area.width).saturating_sub(head.chars().count());
        lines.push(Line::from(format!(
            "{head}{}",
            truncate_middle(&current, avail)
        )));
    } else if let Some(m) = app.message.as_ref().or(app.notice.as_ref()) {
        lines.push(Line::from(format!(" {m}")));
    }
    let state = match app.status.freshness {
        Freshness::Scanning => "scanning",
        Freshness::Stale => "stale",
        Freshness::Verifying => "verifying",
        Freshness::Fresh => "fresh",
        Freshness::Live => "live",
    };
    let width = usize::from(area.width);
    let mut text = format!(
        " Total disk usage: {}  Apparent size: {}  Items: {}  [{state}]",
        format_size(t.disk, BINARY),
        format_size(t.apparent, BINARY),
        t.items
    );
    if text.chars().count() > width {
        // Narrow: the same facts, shorter.
        text = format!(
            " {} disk · {} items · {state}",
            format_size(if app.apparent { t.apparent } else { t.disk }, BINARY),
            t.items
        );
    }
    if !app.marked.is_empty() {
        let _ = write!(
            text,
            "  Marked: {} ({})",
            app.marked.len(),
            format_size(app.marked_size(tree), BINARY)
        );
    }
    let sort = match (app.sort, app.reverse) {
        (SortKey::Size, false) => "size↓",
        (SortKey::Size, true) => "size↑",
        (SortKey::Name, false) => "name↑",
        (SortKey::Name, true) => "name↓",
        (SortKey::Items, false) => "items↓",
        (SortKey::Items, true) => "items↑",
        (SortKey::Mtime, false) => "mtime↓",
        (SortKey::Mtime, true) => "mtime↑",
    };
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

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help text: every key, one per line.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓ j k", "move the cursor"),
    ("Home End PgUp PgDn", "first, last, page up, page down"),
    ("→ Enter l", "open the selected directory"),
    ("← < h Backspace", "go to the parent directory"),
    ("s", "sort by size (again: reverse)"),
    ("n", "sort by name (again: reverse)"),
    ("C", "sort by items (again: reverse)"),
    ("M", "sort by modification time (again: reverse)"),
    ("t", "directories first"),
    ("a", "apparent size / disk usage"),
    ("g", "percent and graph: both, none, graph, percent"),
    ("c", "item counts column"),
    ("m", "modification time column"),
    ("e", "hide / show hidden and excluded entries"),
    ("i", "information about the selected entry"),
    ("Space", "mark / unmark the selected entry"),
    ("b", "a shell in the current directory"),
    ("?", "this help"),
    ("q", "quit"),
    ("mouse", "wheel scrolls, click selects, double click opens"),
    ("flags", "! unreadable  . error below  < excluded"),
    ("", "> other filesystem  @ symlink  e empty dir"),
    ("", "H hard link counted elsewhere  * marked"),
];

fn draw_help(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rect = centered(area, 74, HELP.len() as u16 + 2);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, v)| Line::from(format!(" {k:>18}  {v}")))
        .collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(" dtui help "))
            .style(style(app, Style::new())),
        rect,
    );
}

fn draw_info(frame: &mut Frame<'_>, app: &App, tree: &Tree, id: NodeId, area: Rect) {
    let n = tree.node(id);
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
            format_size(t.disk, BINARY),
            t.disk
        )),
        Line::from(format!(
            " Apparent:  {} ({} bytes)",
            format_size(t.apparent, BINARY),
            t.apparent
        )),
    ];
    if tree.kind(id) == Kind::Dir {
        lines.push(Line::from(format!(" Items:     {}", t.items)));
    }
    lines.push(Line::from(format!(" Modified:  {}", format_mtime(n.mtime))));
    lines.push(Line::from(format!(" Inode:     {}", n.ino)));
    lines.push(Line::from(format!(" Links:     {}", tree.nlink(id))));
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
            std::io::Error::from_raw_os_error(errno as i32)
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

/// Shortens `s` to `width` characters by cutting out its middle (`abc…xyz`).
#[must_use]
pub fn truncate_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    if width <= 1 {
        return "…".chars().take(width).collect();
    }
    let keep = width - 1;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// `YYYY-MM-DD HH:MM` in UTC from seconds since the epoch (0: unknown).
#[must_use]
pub fn format_mtime(secs: i64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_lose_their_middle() {
        assert_eq!(truncate_middle("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(truncate_middle("abcdefghij", 6), "abc…ij");
        assert_eq!(truncate_middle("abc", 1), "…");
    }

    #[test]
    fn mtimes_are_utc_dates() {
        assert_eq!(format_mtime(0), "-");
        assert_eq!(format_mtime(86_400 * 365), "1971-01-01 00:00");
        assert_eq!(format_mtime(1_795_461_378), "2026-11-23 19:16");
        assert_eq!(format_mtime(951_782_400), "2000-02-29 00:00");
    }
}
