//! Devices: the sortable inventory, and the selected device's RAMA taken apart.

use heir_rama::score::Exposure;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::{band_color, selected_style, title_with_filter, waiting};
use crate::app::App;
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, app: &App, s: &State) {
    if s.devices.is_empty() && s.rama.is_none() {
        return waiting(f, area, s, "Devices");
    }
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let devices = app.devices(s);
    let (start, end) = super::page(devices.len(), app.selection(s), list);
    let rows = devices[start..end].iter().map(|d| {
        Row::new(vec![
            Span::styled(
                format!("{:>5.1}", d.score.value),
                Style::new().fg(band_color(d.score.band)),
            ),
            Span::raw(d.name.clone()),
            Span::raw(d.class.as_str()),
            Span::raw(d.criticality.as_str()),
            Span::raw(d.ip.map(|i| i.to_string()).unwrap_or_default()),
        ])
    });
    let title = format!(
        "{} · sort {} {} (s, r)",
        title_with_filter("Devices", app, devices.len(), s.devices.len()),
        app.sort.label(),
        if app.descending { "↓" } else { "↑" }
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Min(14),
            Constraint::Length(15),
            Constraint::Length(15),
            Constraint::Length(15),
        ],
    )
    .header(
        Row::new(["RAMA", "name", "class", "criticality", "ip"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(selected_style())
    .block(Block::bordered().title(title));
    let mut ts = TableState::default().with_selected(Some(app.selection(s) - start));
    f.render_stateful_widget(table, list, &mut ts);
    explanation(f, detail, app, s);
}

fn explanation(f: &mut Frame, area: Rect, app: &App, s: &State) {
    let Some(d) = app.selected_device(s) else {
        f.render_widget(
            Paragraph::new("No device matches.").block(Block::bordered().title("RAMA")),
            area,
        );
        return;
    };
    let title = format!("RAMA of {}", d.name);
    let Some(r) = s.report.as_ref().filter(|r| r.device == d.id) else {
        f.render_widget(
            Paragraph::new(format!(
                "{:.1} {} — loading the explanation…",
                d.score.value, d.score.band
            ))
            .block(Block::bordered().title(title)),
            area,
        );
        return;
    };
    let e = &r.explanation;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{:.1} {}", e.score.value, e.score.band),
            bold.fg(band_color(e.score.band)),
        ),
        Span::raw(format!(
            "  {} · {}",
            r.class.as_str(),
            r.criticality.as_str()
        )),
    ])];
    let parts: Vec<String> = e
        .contributions
        .iter()
        .map(|c| {
            let sign = if c.factor == "resilience" { "-" } else { "+" };
            format!("{} {:.2} ({sign}{:.1})", c.factor, c.value, c.points)
        })
        .collect();
    lines.push(Line::raw(parts.join("  ")));
    for (x, w) in &e.exposures {
        lines.push(Line::raw(format!("exposure {w:.2}: {}", exposure(x))));
    }
    for (v, w) in &e.vulnerabilities {
        lines.push(Line::raw(format!(
            "vuln {:.2}: {} cvss {:.1}{}",
            w,
            v.id,
            v.cvss,
            if v.exploited { " exploited" } else { "" }
        )));
    }
    if !e.actions.is_empty() {
        lines.push(Line::styled("would lower it most:", bold));
        for a in e.actions.iter().take(3) {
            lines.push(Line::raw(format!("-{:.1} {}", a.lowers_by, a.action)));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title)),
        area,
    );
}

fn exposure(x: &Exposure) -> String {
    match x {
        Exposure::Cleartext {
            port,
            transport,
            protocol,
        } => format!("cleartext {protocol} on {port}/{transport}"),
        Exposure::Risky {
            port,
            transport,
            protocol,
        } => format!("risky {protocol} on {port}/{transport}"),
        Exposure::Service {
            port,
            transport,
            protocol,
        } => format!("{protocol} listening on {port}/{transport}"),
        Exposure::DefaultCredentials { port, protocol } => {
            format!("default password accepted by {protocol} on {port}")
        }
        Exposure::ObsoleteTls { port, version } => format!("{version} on port {port}"),
    }
}
