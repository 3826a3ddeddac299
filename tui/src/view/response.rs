//! Response: blocks waiting for an operator's decision, and blocks in force.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Row, Table, TableState};

use super::{available, clock, selected_style, severity_color};
use crate::app::App;
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, app: &App, s: &State) {
    let Some(b) = available(f, area, s, "Response", s.blocks.as_ref()) else {
        return;
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let pending = b.pending.iter().map(|p| {
        Row::new(vec![
            Span::styled(
                "approve?",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Span::raw(p.addr.to_string()),
            Span::styled(
                p.severity.as_str(),
                Style::new().fg(severity_color(p.severity)),
            ),
            Span::raw(format!("{} · {}", p.category.slug(), p.reason)),
        ])
    });
    let active = b.active.iter().map(|a| {
        let until = a.expires.map_or("until unblocked".to_owned(), |t| {
            format!("until {}", clock(t, s.now))
        });
        Row::new(vec![
            Span::styled("blocked", Style::new().fg(Color::Red)),
            Span::raw(a.addr.to_string()),
            Span::raw(format!("{:?}", a.origin).to_lowercase()),
            Span::raw(format!("{} · {until}", a.reason)),
        ])
    });
    let table = Table::new(
        pending.chain(active),
        [
            Constraint::Length(8),
            Constraint::Length(15),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["", "address", "by/sev", "why"]).style(bold))
    .row_highlight_style(selected_style())
    .block(Block::bordered().title(format!(
        "Response · {} pending, {} active · y approve, n deny, x unblock",
        b.pending.len(),
        b.active.len()
    )));
    let mut ts = TableState::default().with_selected(Some(app.selection(s)));
    f.render_stateful_widget(table, area, &mut ts);
}
