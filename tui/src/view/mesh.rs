//! Mesh: the peers this hospital shares indicators with, and how much it trusts them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Row, Table, TableState};

use super::{ago, available, selected_style, title_with_filter};
use crate::app::App;
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, app: &App, s: &State) {
    let Some(peers) = available(f, area, s, "Mesh peers", s.peers.as_ref()) else {
        return;
    };
    let shown = app.peers(s);
    let rows = shown.iter().map(|p| {
        Row::new(vec![
            if p.connected {
                Span::styled("up", Style::new().fg(Color::Green))
            } else {
                Span::styled("down", Style::new().fg(Color::DarkGray))
            },
            Span::raw(p.name.clone().unwrap_or_else(|| p.id.clone())),
            Span::raw(format!("{:.2}", p.trust)),
            Span::raw(p.indicators.to_string()),
            Span::raw(p.last_seen.map_or("never".into(), |t| ago(t, s.now))),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Min(14),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(14),
        ],
    )
    .header(
        Row::new(["", "peer", "trust", "indicators", "last seen"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(selected_style())
    .block(Block::bordered().title(title_with_filter(
        "Mesh peers",
        app,
        shown.len(),
        peers.len(),
    )));
    let mut ts = TableState::default().with_selected(Some(app.selection(s)));
    f.render_stateful_widget(table, area, &mut ts);
}
