//! Alerts: the live list, and one alert in detail with its evidence and taxonomy.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::{clock, selected_style, severity_color, title_with_filter, waiting};
use crate::app::App;
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, app: &App, s: &State) {
    if s.alerts.is_empty() && s.status.is_none() {
        return waiting(f, area, s, "Alerts");
    }
    if app.detail
        && let Some(a) = app.selected_alert(s)
    {
        return detail(f, area, a, s);
    }
    let alerts = app.alerts(s);
    let (start, end) = super::page(alerts.len(), app.selection(s), area);
    // Alerts older than a day need their date: widen the time column only then.
    let day = std::time::Duration::from_secs(86_400);
    let time_width = if alerts[start..end]
        .iter()
        .any(|a| s.now.saturating_sub(a.alert.ts) >= day)
    {
        11
    } else {
        8
    };
    let rows = alerts[start..end].iter().map(|a| {
        let x = &a.alert;
        let style = if a.acknowledged.is_some() {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        };
        Row::new(vec![
            Span::raw(clock(x.ts, s.now)),
            Span::styled(
                x.severity.as_str(),
                if a.acknowledged.is_some() {
                    style
                } else {
                    Style::new().fg(severity_color(x.severity))
                },
            ),
            Span::raw(if a.acknowledged.is_some() { "✓" } else { " " }),
            Span::raw(x.category.slug()),
            Span::raw(x.title.clone()),
        ])
        .style(style)
    });
    let mut title = title_with_filter("Alerts", app, alerts.len(), s.alerts.len());
    if app.unacknowledged_only {
        title.push_str(" · unacked only");
    }
    title.push_str(" · Enter detail, a ack, u unacked");
    let table = Table::new(
        rows,
        [
            Constraint::Length(time_width),
            Constraint::Length(8),
            Constraint::Length(1),
            Constraint::Length(18),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["time", "severity", "", "category", "title"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(selected_style())
    .block(Block::bordered().title(title));
    let mut ts = TableState::default().with_selected(Some(app.selection(s) - start));
    f.render_stateful_widget(table, area, &mut ts);
}

fn detail(f: &mut Frame, area: Rect, a: &heir_api::Stored, s: &State) {
    let x = &a.alert;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let field =
        |k: &str, v: String| Line::from(vec![Span::styled(format!("{k:<11}"), bold), Span::raw(v)]);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("{} ", x.severity),
                bold.fg(severity_color(x.severity)),
            ),
            Span::styled(x.title.clone(), bold),
        ]),
        field("when", format!("{} ({})", x.ts, super::ago(x.ts, s.now))),
        field(
            "rule",
            format!(
                "{} · {} · confidence {:.0}%{}",
                x.rule,
                x.category.slug(),
                x.confidence * 100.0,
                if x.count > 1 {
                    format!(" · ×{}", x.count)
                } else {
                    String::new()
                }
            ),
        ),
    ];
    if let Some(d) = &x.device {
        lines.push(field("device", d.clone()));
    }
    let mut flow = String::new();
    if let Some(ip) = x.src_ip {
        flow.push_str(&format!("{ip} → "));
    }
    if let Some(ip) = x.dst_ip {
        flow.push_str(&ip.to_string());
    }
    if let Some(p) = x.dst_port {
        flow.push_str(&format!(":{p}"));
    }
    if !flow.is_empty() {
        lines.push(field("flow", flow));
    }
    if x.pid.is_some() || x.comm.is_some() {
        lines.push(field(
            "process",
            format!(
                "{} {}",
                x.pid.map(|p| p.to_string()).unwrap_or_default(),
                x.comm.clone().unwrap_or_default()
            ),
        ));
    }
    let t = &x.taxonomy;
    let tax: Vec<String> = [
        t.owasp_iot.as_ref().map(|v| format!("OWASP IoT {v}")),
        t.enisa.as_ref().map(|v| format!("ENISA {v}")),
        t.attack.as_ref().map(|v| format!("ATT&CK {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    lines.push(field(
        "taxonomy",
        if tax.is_empty() {
            "none given".into()
        } else {
            tax.join(" · ")
        },
    ));
    lines.push(field(
        "status",
        match &a.acknowledged {
            Some(ack) => format!("acknowledged {}", super::ago(ack.at, s.now)),
            None => "new (a to acknowledge)".into(),
        },
    ));
    lines.push(Line::styled("evidence", bold));
    if x.evidence.is_empty() {
        lines.push(Line::raw("  none recorded"));
    }
    for e in &x.evidence {
        lines.push(Line::raw(format!("  • {e}")));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(format!("Alert {} · {} · Esc back", a.seq, x.id))),
        area,
    );
}
