//! Overview: hospital RAMA, alert rate, the riskiest devices, sensor health.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Sparkline, Table};

use super::{band_color, count, waiting};
use crate::state::State;

pub fn draw(f: &mut Frame, area: Rect, s: &State) {
    let [top, bottom] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(area);
    let [gauge, rate] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    let [risky, health] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    hospital(f, gauge, s);
    alert_rate(f, rate, s);
    top_devices(f, risky, s);
    sensors(f, health, s);
}

fn hospital(f: &mut Frame, area: Rect, s: &State) {
    let Some(r) = &s.rama else {
        return waiting(f, area, s, "Hospital RAMA");
    };
    let h = &r.hospital;
    let block = Block::bordered().title("Hospital RAMA");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [g, l1, l2] = Layout::vertical([Constraint::Length(1); 3]).areas(inner);
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::new().fg(band_color(h.band)))
            .ratio((h.value / 100.0).clamp(0.0, 1.0))
            .label(format!("{:.1} {}", h.value, h.band)),
        g,
    );
    let [low, med, high, crit] = h.bands;
    f.render_widget(
        Paragraph::new(format!(
            "{} dev: {crit} crit {high} high {med} med {low} low",
            h.devices
        )),
        l1,
    );
    let trend = match (r.history.first(), r.history.last()) {
        (Some(a), Some(b)) if r.history.len() > 1 => {
            let d = b.value - a.value;
            format!("trend {}{:.1}", if d >= 0.0 { "+" } else { "" }, d)
        }
        _ => "trend: no history yet".to_owned(),
    };
    f.render_widget(Paragraph::new(trend), l2);
}

fn alert_rate(f: &mut Frame, area: Rect, s: &State) {
    let buckets = usize::from(area.width.saturating_sub(2)).max(1);
    let rate = s.alert_rate(buckets, Duration::from_secs(60));
    let block = Block::bordered().title(format!(
        "Alerts/min, last {buckets} min · {} unacked",
        s.unacknowledged()
    ));
    if s.status.is_none() && s.alerts.is_empty() {
        return waiting(f, area, s, "Alerts/min");
    }
    f.render_widget(
        Sparkline::default()
            .block(block)
            .data(&rate)
            .style(Style::new().fg(Color::LightRed)),
        area,
    );
}

fn top_devices(f: &mut Frame, area: Rect, s: &State) {
    let title = "Top risky devices";
    if s.rama.is_none() && s.devices.is_empty() {
        return waiting(f, area, s, title);
    }
    let rows = s.devices.iter().take(usize::from(area.height)).map(|d| {
        Row::new(vec![
            Span::styled(
                format!("{:>5.1}", d.score.value),
                Style::new().fg(band_color(d.score.band)),
            ),
            Span::raw(d.name.clone()),
        ])
    });
    let table = Table::new(rows, [Constraint::Length(5), Constraint::Min(10)])
        .header(Row::new(["RAMA", "device"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title));
    f.render_widget(table, area);
}

fn sensors(f: &mut Frame, area: Rect, s: &State) {
    let title = "Sensor health";
    let Some(st) = &s.status else {
        return waiting(f, area, s, title);
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    // A sink that loses items gets its own line: which component, why, how many.
    let sink_lines = u16::from(!st.sinks.is_empty()) + u16::from(s.missed > 0);
    let [summary, table] =
        Layout::vertical([Constraint::Length(2 + sink_lines), Constraint::Min(0)]).areas(inner);
    let t = st.total();
    let red = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let lost = if t.lost > 0 { red } else { Style::new() };
    let failed = if st.probes.failed.is_empty() {
        Style::new()
    } else {
        Style::new().fg(Color::Yellow)
    };
    // The agent's own drops and the items this UI skipped because it fell behind are
    // different losses: the second are still in the agent's store and its sinks.
    let dropped = st.pipeline.dropped;
    let behind = (s.missed > 0).then(|| {
        Line::from(Span::styled(
            format!(
                "view behind: {} live items skipped here, kept by the agent",
                count(s.missed)
            ),
            Style::new().fg(Color::Yellow),
        ))
    });
    let sinks = (!st.sinks.is_empty()).then(|| {
        let text = st
            .sinks
            .iter()
            .map(|d| format!("{} {} {}", d.component, count(d.dropped), d.reason))
            .collect::<Vec<_>>()
            .join(", ");
        Line::from(Span::styled(format!("sinks dropped: {text}"), red))
    });
    f.render_widget(
        Paragraph::new(
            vec![
                Line::from(vec![
                    Span::raw(format!("{:.0} ev/s  ", st.events_per_sec)),
                    Span::styled(format!("lost {}", count(t.lost)), lost),
                    Span::raw(format!("  filtered {}", count(t.filtered))),
                ]),
                Line::from(vec![
                    Span::styled(
                        format!(
                            "probes {}/{}",
                            st.probes.attached.len(),
                            st.probes.attached.len() + st.probes.failed.len()
                        ),
                        failed,
                    ),
                    Span::styled(
                        format!("  dropped {}", count(dropped)),
                        if dropped > 0 { red } else { Style::new() },
                    ),
                    Span::raw(format!("  undecoded {}", st.pipeline.decode_errors)),
                ]),
            ]
            .into_iter()
            .chain(sinks)
            .chain(behind)
            .collect::<Vec<_>>(),
        ),
        summary,
    );
    let rows = st.sensors.iter().map(|c| {
        Row::new(vec![
            Span::raw(c.kind.clone()),
            Span::raw(count(c.emitted)),
            Span::styled(count(c.lost), if c.lost > 0 { red } else { Style::new() }),
            Span::raw(count(c.filtered)),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Min(8),
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(8),
            ],
        )
        .header(
            Row::new(["kind", "emitted", "lost", "filtered"])
                .style(Style::new().add_modifier(Modifier::BOLD)),
        ),
        table,
    );
}
