//! Observatory: what the mesh knows (indicators, by category and device model) beside what
//! this hospital saw (local alerts by category).

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Row, Table, TableState};

use super::{available, count, selected_style, title_with_filter};
use crate::app::App;
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, app: &App, s: &State) {
    let [rank, top, charts] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ])
    .areas(area);
    percentile(f, rank, s);
    let [local, models] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let mut local_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &s.alerts {
        *local_counts.entry(a.alert.category.slug()).or_default() += a.alert.count.max(1);
    }
    bars(f, local, "Local alerts by category", &local_counts);

    let Some(ind) = available(f, top, s, "Mesh indicators", s.indicators.as_ref()) else {
        // The same reason covers the peer comparison.
        let why = match s.indicators.as_ref() {
            Some(heir_api::Availability::NotBuilt { what }) => what.as_str(),
            _ => "no data from the agent yet",
        };
        super::not_built(f, models, "Indicators by device model", why);
        return;
    };
    let shown = app.indicators(s);
    let rows = shown.iter().map(|i| {
        Row::new(vec![
            i.kind.clone(),
            i.category.slug().to_owned(),
            format!("{:.0}%", i.confidence * 100.0),
            count(i.sightings),
            i.value.clone(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(18),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["kind", "category", "conf", "seen", "value"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(selected_style())
    .block(Block::bordered().title(title_with_filter(
        "Mesh indicators",
        app,
        shown.len(),
        ind.len(),
    )));
    let mut ts = TableState::default().with_selected(Some(app.selection(s)));
    f.render_stateful_widget(table, top, &mut ts);
    let mut by_model: BTreeMap<&str, u64> = BTreeMap::new();
    for i in ind {
        *by_model
            .entry(i.device_model.as_deref().unwrap_or("unspecified"))
            .or_default() += 1;
    }
    bars(f, models, "Indicators by device model", &by_model);
}

fn bars(f: &mut Frame, area: Rect, title: &str, counts: &BTreeMap<&str, u64>) {
    let block = Block::bordered().title(title.to_owned());
    if counts.is_empty() {
        f.render_widget(ratatui::widgets::Paragraph::new("none").block(block), area);
        return;
    }
    // Horizontal bars: one line per label fits any number of categories at 80×24.
    let bars: Vec<Bar> = counts
        .iter()
        .map(|(k, v)| {
            Bar::default()
                .label(k.to_string())
                .value(*v)
                .style(Style::new().fg(Color::LightBlue))
        })
        .collect();
    f.render_widget(
        BarChart::default()
            .block(block)
            .direction(ratatui::layout::Direction::Horizontal)
            .bar_width(1)
            .bar_gap(0)
            .data(BarGroup::default().bars(&bars)),
        area,
    );
}

/// Where this hospital's RAMA ranks among the peers that share theirs.
fn percentile(f: &mut Frame, area: Rect, s: &State) {
    let text = match (
        s.rama.as_ref().and_then(|r| r.peer_percentile),
        s.indicators.as_ref(),
    ) {
        (Some(p), _) => format!(
            " RAMA among mesh peers: riskier than {:.0}% of them",
            p * 100.0
        ),
        (None, Some(heir_api::Availability::NotBuilt { .. })) => {
            " RAMA among mesh peers: not available (no mesh in this build)".to_owned()
        }
        (None, Some(_)) => " RAMA among mesh peers: no peer shares its score yet".to_owned(),
        (None, None) => " RAMA among mesh peers: waiting for the agent".to_owned(),
    };
    f.render_widget(ratatui::widgets::Paragraph::new(text), area);
}
