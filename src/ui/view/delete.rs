//! The delete dialogs: what goes (the first names, the item count, the size) with the
//! buttons, the progress of a running job, an error's question, the summary.

use humansize::{BINARY, format_size};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{centered, style, truncate_end};
use crate::delete::Target;
use crate::delete::command::names;
use crate::ui::app::{App, Button, Dialog, Doing};

const WIDTH: u16 = 70;

fn buttons<'a>(app: &App, labels: &[(&'a str, bool)]) -> Line<'a> {
    let mut spans = vec![Span::raw("  ")];
    for &(label, focused) in labels {
        let s = if focused {
            style(app, Style::new().add_modifier(Modifier::REVERSED))
        } else {
            Style::new()
        };
        spans.push(Span::styled(format!("[ {label} ]"), s));
        spans.push(Span::raw("  "));
    }
    Line::from(spans)
}

fn what(targets: &[Target]) -> String {
    let items: u64 = targets.iter().map(|t| t.items).sum();
    let disk: u64 = targets.iter().map(|t| t.disk).sum();
    format!(
        "{} ({items} item{}, {})",
        names(targets),
        if items == 1 { "" } else { "s" },
        format_size(disk, BINARY)
    )
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per dialog, each a few lines"
)]
pub(super) fn draw(frame: &mut Frame<'_>, app: &App, dialog: &Dialog, area: Rect) {
    let inner = usize::from(WIDTH - 4);
    let (title, lines): (String, Vec<Line<'_>>) = match dialog {
        Dialog::Confirm {
            targets,
            trash,
            focus,
            again,
        } => {
            let verb = if *trash {
                "Move to the trash"
            } else {
                "Delete"
            };
            let mut l = Vec::new();
            if *again {
                l.push(Line::from(
                    " Changed on disk since it was shown; it is now:",
                ));
            }
            // "Delete x?" but "Move x to the trash?".
            let question = if *trash {
                format!("Move {} to the trash?", what(targets))
            } else {
                format!("Delete {}?", what(targets))
            };
            l.push(Line::from(format!(" {}", truncate_end(&question, inner))));
            if !*trash {
                l.push(Line::from(" This cannot be undone."));
            }
            l.push(Line::from(""));
            l.push(buttons(
                app,
                &[
                    ("No", *focus == Button::No),
                    ("Yes", *focus == Button::Yes),
                    ("Yes, don't ask again", *focus == Button::Always),
                ],
            ));
            l.push(Line::from(
                " y yes · n/Esc no · Enter the focused button · ←/→/Tab move",
            ));
            (format!(" {verb} "), l)
        }
        Dialog::NoTrash {
            targets,
            why,
            focus,
        } => (
            " No trash ".into(),
            vec![
                Line::from(format!(
                    " No usable trash for {}",
                    truncate_end(&what(targets), inner)
                )),
                Line::from(format!(" ({})", truncate_end(why, inner))),
                Line::from(" Delete permanently instead?"),
                Line::from(""),
                buttons(
                    app,
                    &[("No", *focus == Button::No), ("Yes", *focus != Button::No)],
                ),
            ],
        ),
        Dialog::Running {
            doing,
            items,
            bytes,
            total_items,
            total_bytes,
            error,
            cancelling,
        } => {
            let verb = match doing {
                Doing::Delete => "Deleting",
                Doing::Trash => "Moving to the trash",
                Doing::Restore => "Putting back",
            };
            let mut l = vec![Line::from(format!(
                " {verb}: {items} of {total_items} items, {} of {}",
                format_size(*bytes, BINARY),
                format_size(*total_bytes, BINARY)
            ))];
            match error {
                Some((e, focus)) => {
                    l.push(Line::from(""));
                    l.push(Line::from(format!(
                        " Cannot delete: {}",
                        truncate_end(e, inner)
                    )));
                    l.push(buttons(
                        app,
                        &[
                            ("a Abort", *focus == 0),
                            ("i Ignore", *focus == 1),
                            ("A Ignore all", *focus == 2),
                        ],
                    ));
                }
                None if *cancelling => l.push(Line::from(" Cancelling…")),
                None => l.push(Line::from(" Esc, c or q cancels")),
            }
            (format!(" {verb} "), l)
        }
        Dialog::Summary { title, lines } => {
            let mut l: Vec<Line<'_>> = lines
                .iter()
                .take(12)
                .map(|s| Line::from(format!(" {}", truncate_end(s, inner))))
                .collect();
            if lines.len() > 12 {
                l.push(Line::from(format!(" and {} more", lines.len() - 12)));
            }
            l.push(Line::from(" Enter or Esc closes"));
            (title.clone(), l)
        }
    };
    let rect = centered(area, WIDTH, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title))
            .style(style(app, Style::new())),
        rect,
    );
}
