//! The header: the path on screen (the root's while the search results are shown) on the
//! left; on the right `? for help` (always: the screen says how to learn it, as ncdu, gdu and
//! dua do) and the state word in plain words (`live`); the path gives way first. The watch
//! backend is jargon: the help and the info window name it, not the header.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::format::{truncate_end, truncate_middle, width_of};
use crate::path::display_name;
use crate::tree::Tree;
use crate::ui::app::App;

/// The header's hint, and its short form on a narrow terminal.
const HINT: &str = "? for help";
const SHORT_HINT: &str = "?:help";

pub(super) fn draw(frame: &mut Frame<'_>, app: &App, tree: &Tree, area: Rect) {
    let width = usize::from(area.width);
    let state = app.state_word();
    // The state word stays whole up to half the width; the path gives way first.
    let state = truncate_end(&state, (width / 2).max(8));
    let (prefix, right) = if width < 50 {
        (" ", format!(" {SHORT_HINT} {state} "))
    } else {
        (" dtui · ", format!(" {HINT} · {state} "))
    };
    // The results' paths are below the root.
    let shown = if app.search.showing {
        tree.root()
    } else {
        app.cwd
    };
    let path = display_name(tree.path_of(shown).as_os_str().as_encoded_bytes());
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
