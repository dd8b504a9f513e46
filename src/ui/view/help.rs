//! The help window: every key and what it does (`keys::help`), then how the tree is kept live
//! (the watch backend, which the header leaves out) and where it came from (the cache, a scan,
//! or the dtui it is attached to), scrolled on a terminal too short for all of it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{centered, style};
use crate::ui::app::{App, Watch};
use crate::ui::keys;

/// The help's last line: what keeps the tree live.
fn watching(app: &App) -> (&'static str, String) {
    let how = match &app.watch {
        Watch::On(what) => what.clone(),
        Watch::Failed(why) => format!("not watching ({why})"),
        Watch::Off => "not watching".to_owned(),
    };
    ("watcher", how)
}

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let help_len = keys::help_len() + 2;
    let rect = centered(area, 74, help_len as u16 + 2);
    // A terminal shorter than the help shows a window of it, scrolled with ↓ ↑ (the title
    // says so and where).
    let rows = usize::from(rect.height.saturating_sub(2));
    let first = app.help_scroll.min(help_len.saturating_sub(rows));
    // Keys right-aligned in a column where there is room; on a narrow terminal that column
    // alone would fill the window with blanks, so each key starts its line.
    let inner = usize::from(rect.width.saturating_sub(2));
    let (label, how) = watching(app);
    let lines: Vec<Line<'static>> = keys::help()
        .map(|(k, v)| (k, v.to_owned()))
        .chain([(label, how), ("tree", app.origin.clone())])
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
