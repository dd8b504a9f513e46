//! The delete dialogs: what goes (the first names, the item count, the size) with the
//! buttons, the counting before it, the progress of a running job, an error's question, the
//! summary. Every text is wrapped to the box here (the box's height counts the wrapped
//! lines), so at any width the buttons stay inside it; at a height too small for all of it
//! the text is cut, never the buttons.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{centered, style};
use crate::delete::Plan;
use crate::delete::command::names;
use crate::format::{head_cols, width_of};
use crate::ui::app::{App, Button, Dialog, Doing};

const WIDTH: u16 = 70;
/// Lines of a summary shown at most (the rest are counted).
const SUMMARY_LINES: usize = 12;

/// `text` cut into lines of at most `width` columns: at spaces where it can, inside a word
/// (a long path) where it must.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!line.is_empty());
        if width_of(&line) + sep + width_of(word) <= width {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        let mut rest = word;
        while width_of(rest) > width {
            let mut head = head_cols(rest, width);
            if head.is_empty() {
                // One character wider than the box: it goes alone.
                head = rest.char_indices().nth(1).map_or(rest, |(i, _)| &rest[..i]);
            }
            out.push(head.to_owned());
            rest = &rest[head.len()..];
        }
        line.push_str(rest);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// A dialog's contents: text (wrapped when laid out) then the lines that must stay in view
/// (the buttons, the keys).
#[derive(Default)]
struct Body<'a> {
    text: Vec<String>,
    tail: Vec<Line<'a>>,
}

impl Body<'_> {
    fn say(&mut self, s: impl Into<String>) {
        self.text.push(s.into());
    }
}

/// The buttons, as many on a line as fit in `width` columns.
fn buttons<'a>(app: &App, labels: &[(&'a str, bool)], width: usize) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for &(label, focused) in labels {
        let text = format!("[ {label} ]");
        let w = width_of(&text);
        if used > 1 && used + 2 + w > width {
            lines.push(Line::from(std::mem::replace(
                &mut spans,
                vec![Span::raw(" ")],
            )));
            used = 1;
        }
        if used > 1 {
            spans.push(Span::raw("  "));
            used += 2;
        }
        let s = if focused {
            style(app, Style::new().add_modifier(Modifier::REVERSED))
        } else {
            Style::new()
        };
        spans.push(Span::styled(text, s));
        used += w;
    }
    lines.push(Line::from(spans));
    lines
}

fn what(plan: &Plan) -> String {
    let items = plan.items();
    format!(
        "{} ({items} item{}, {})",
        names(&plan.targets),
        if items == 1 { "" } else { "s" },
        crate::format::size(plan.disk())
    )
}

/// What the plan counted on the disk, or could not.
fn notes(body: &mut Body<'_>, plan: &Plan) {
    let name = |p: &std::path::Path| {
        crate::path::display_name(p.file_name().unwrap_or(p.as_os_str()).as_encoded_bytes())
    };
    for (p, n) in plan.counted.iter().take(3) {
        body.say(format!(
            "Not in the tree (excluded, unread or changed), counted on the disk: {} ({})",
            name(p),
            crate::delete::count(*n, "item", "items")
        ));
    }
    if plan.counted.len() > 3 {
        body.say(format!(
            "and {} more counted on the disk",
            plan.counted.len() - 3
        ));
    }
    for e in plan.refused.iter().take(3) {
        body.say(format!("Left, cannot be deleted: {e}"));
    }
    if plan.refused.len() > 3 {
        body.say(format!("and {} more left", plan.refused.len() - 3));
    }
    for (p, why) in plan.uncounted.iter().take(3) {
        body.say(format!(
            "Not counted, so its contents stay: {} ({why})",
            name(p)
        ));
    }
    if let Some(kept) = crate::delete::plan::kept_note(plan) {
        body.say(kept);
    }
}

fn confirm_keys(app: &App, focus: Button, width: usize, body: &mut Body<'_>) {
    body.tail.push(Line::from(""));
    body.tail.extend(buttons(
        app,
        &[
            ("No", focus == Button::No),
            ("Yes", focus == Button::Yes),
            ("Yes, don't ask again", focus == Button::Always),
        ],
        width,
    ));
    for l in wrap(
        "y yes · n/Esc no · Enter the focused button · ←/→/Tab move",
        width,
    ) {
        body.tail.push(Line::from(format!(" {l}")));
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per dialog, each a few lines"
)]
fn body_of<'a>(app: &App, dialog: &'a Dialog, width: usize) -> (String, Body<'a>) {
    let mut body = Body::default();
    let title = match dialog {
        Dialog::Counting {
            trash,
            items,
            cancelling,
            ..
        } => {
            body.say(format!("Counting what goes… {items} items"));
            body.say(if *cancelling {
                "Cancelling…"
            } else {
                "Esc cancels"
            });
            if *trash {
                " Move to the trash "
            } else {
                " Delete "
            }
            .to_owned()
        }
        Dialog::Confirm {
            plan,
            trash,
            focus,
            again,
        } => {
            if *again {
                body.say("Changed on disk since it was shown; it is now:");
            }
            // "Delete x?" but "Move x to the trash?".
            body.say(if *trash {
                format!("Move {} to the trash?", what(plan))
            } else {
                format!("Delete {}?", what(plan))
            });
            notes(&mut body, plan);
            if !*trash {
                body.say("This cannot be undone.");
            }
            confirm_keys(app, *focus, width, &mut body);
            if *trash {
                " Move to the trash "
            } else {
                " Delete "
            }
            .to_owned()
        }
        Dialog::NoTrash { plan, why, focus } => {
            body.say(format!("No usable trash for {}", what(plan)));
            body.say(format!("({why})"));
            body.say("Delete permanently instead?");
            body.tail.push(Line::from(""));
            body.tail.extend(buttons(
                app,
                &[("No", *focus == Button::No), ("Yes", *focus != Button::No)],
                width,
            ));
            " No trash ".to_owned()
        }
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
            body.say(format!(
                "{verb}: {items} of {total_items} items, {} of {}",
                crate::format::size(*bytes),
                crate::format::size(*total_bytes)
            ));
            match error {
                Some((e, focus)) => {
                    body.say("");
                    body.say(format!("Cannot delete: {e}"));
                    body.tail.extend(buttons(
                        app,
                        &[
                            ("a Abort", *focus == 0),
                            ("i Ignore", *focus == 1),
                            ("A Ignore all", *focus == 2),
                        ],
                        width,
                    ));
                }
                None if *cancelling => body.say("Cancelling…"),
                None => body.say("Esc, c or q cancels"),
            }
            format!(" {verb} ")
        }
        Dialog::Summary { title, lines } => {
            for s in lines.iter().take(SUMMARY_LINES) {
                body.say(s.clone());
            }
            if lines.len() > SUMMARY_LINES {
                body.say(format!("and {} more", lines.len() - SUMMARY_LINES));
            }
            body.tail.push(Line::from(" Enter or Esc closes"));
            title.clone()
        }
    };
    (title, body)
}

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, dialog: &Dialog, area: Rect) {
    let box_width = WIDTH.min(area.width);
    // Borders, and a column of space on each side.
    let width = usize::from(box_width).saturating_sub(4).max(1);
    let (title, body) = body_of(app, dialog, width);
    let room = usize::from(area.height).saturating_sub(2);
    let mut text: Vec<Line<'_>> = body
        .text
        .iter()
        .flat_map(|t| wrap(t, width))
        .map(|l| Line::from(format!(" {l}")))
        .collect();
    let keep = room.saturating_sub(body.tail.len());
    if text.len() > keep {
        text.truncate(keep.saturating_sub(1));
        if keep > 0 {
            text.push(Line::from(" …"));
        }
    }
    text.extend(body.tail);
    let rect = centered(area, box_width, text.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .block(Block::default().borders(Borders::ALL).title(title))
            .style(style(app, Style::new())),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn text_wraps_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("ab 日本語", 4), ["ab", "日本", "語"]);
    }
}
