//! The `?` overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};

const KEYS: [(&str, &str); 14] = [
    ("Tab / S-Tab", "next / previous view"),
    ("1 … 6", "Overview Devices Alerts Observ. Mesh Response"),
    ("↑ ↓ j k", "move; PgUp PgDn g G jump"),
    ("/", "filter the list (Enter keep, Esc clear)"),
    ("Esc", "close detail, clear filter"),
    ("Devices s", "sort by score, name, class, criticality"),
    ("Devices r", "reverse the order"),
    ("Alerts Enter", "detail: evidence and taxonomy"),
    ("Alerts a", "acknowledge the selected alert"),
    ("Alerts u", "only unacknowledged alerts"),
    ("Response y/n", "approve / deny a pending block"),
    ("Response x", "lift the selected block"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
];

pub fn draw(f: &mut Frame, body: Rect) {
    let w = body.width.min(66);
    let h = body.height.min(KEYS.len() as u16 + 2);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                ratatui::text::Span::styled(format!("{k:<14}"), bold),
                (*v).into(),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("Keys")),
        area,
    );
}
