//! The info window (`i`): an entry's path, type, sizes, items, mtime, inode, links, symlink
//! target, flags and error; the link count and the target from the disk once the inspection
//! answers (`Inspection`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{centered, style};
use crate::path::display_name;
use crate::tree::{Kind, NodeId, Tree, flags};
use crate::ui::app::{App, Inspection};

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

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, id: NodeId, area: Rect) {
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
