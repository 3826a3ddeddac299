//! Drawing: one module per view, plus the frame around them (tabs, status bar, help).

mod alerts;
mod devices;
mod help;
mod mesh;
mod observatory;
mod overview;
mod response;

use std::time::Duration;

use heir_api::Availability;
use heir_model::{Severity, Timestamp};
use heir_rama::Band;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Tabs, Wrap};

use crate::app::{App, View};
use crate::state::{Connection, State};

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App, s: &State) {
    let [tabs, body, bar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let titles = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()));
    f.render_widget(
        Tabs::new(titles)
            .select(app.view as usize)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)),
        tabs,
    );
    match app.view {
        View::Overview => overview::draw(f, body, s),
        View::Devices => devices::draw(f, body, app, s),
        View::Alerts => alerts::draw(f, body, app, s),
        View::Observatory => observatory::draw(f, body, app, s),
        View::Mesh => mesh::draw(f, body, app, s),
        View::Response => response::draw(f, body, app, s),
    }
    status_bar(f, bar, app, s);
    if app.help {
        help::draw(f, body);
    }
}

fn status_bar(f: &mut Frame, area: Rect, app: &App, s: &State) {
    let mut spans = match &s.connection {
        Connection::Connecting => vec![Span::styled(
            "connecting to the agent…",
            Style::new().fg(Color::Yellow),
        )],
        Connection::Connected => {
            let mut v = vec![Span::styled("● connected", Style::new().fg(Color::Green))];
            if let Some(st) = &s.status {
                v.push(Span::raw(format!(
                    "  heir {}  up {}",
                    st.version,
                    duration(Duration::from_secs(st.uptime_secs))
                )));
            }
            v
        }
        Connection::Disconnected {
            error, retry_in, ..
        } => vec![Span::styled(
            format!(
                "disconnected, retrying in {}s: {error}",
                retry_in.as_secs().max(1)
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )],
    };
    if app.editing {
        spans = vec![
            Span::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(app.filter.clone()),
            Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("  (Enter keep, Esc clear)"),
        ];
    } else if let Some(m) = &s.message {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(m.clone(), Style::new().fg(Color::Cyan)));
    }
    if !app.editing {
        spans.push(Span::styled(
            "  ? help  q quit",
            Style::new().fg(Color::DarkGray),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Shown in place of a view's data before the first snapshot arrived.
fn waiting(f: &mut Frame, area: Rect, s: &State, title: &str) {
    let text = match &s.connection {
        Connection::Disconnected { error, .. } => {
            format!("No data: the agent is not reachable.\n\n{error}")
        }
        _ => "Waiting for the agent…".to_owned(),
    };
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title.to_owned())),
        area,
    );
}

/// Shown for a part of heir that is not in this build.
fn not_built(f: &mut Frame, area: Rect, title: &str, what: &str) {
    f.render_widget(
        Paragraph::new(vec![
            Line::styled(
                "Not available",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Line::raw(""),
            Line::raw(format!("{what}.")),
        ])
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(title.to_owned())),
        area,
    );
}

/// The data of an availability, or draws why there is none and returns None.
fn available<'a, T>(
    f: &mut Frame,
    area: Rect,
    s: &State,
    title: &str,
    a: Option<&'a Availability<T>>,
) -> Option<&'a T> {
    match a {
        None => {
            waiting(f, area, s, title);
            None
        }
        Some(Availability::NotBuilt { what }) => {
            not_built(f, area, title, what);
            None
        }
        Some(Availability::Available(t)) => Some(t),
    }
}

fn band_color(b: Band) -> Color {
    match b {
        Band::Low => Color::Green,
        Band::Medium => Color::Yellow,
        Band::High => Color::LightRed,
        Band::Critical => Color::Red,
    }
}

fn severity_color(s: Severity) -> Color {
    match s {
        Severity::Info => Color::Gray,
        Severity::Low => Color::Cyan,
        Severity::Medium => Color::Yellow,
        Severity::High => Color::LightRed,
        Severity::Critical => Color::Red,
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Compact counts for narrow columns: 1234 → "1234", 1200456 → "1.2M".
fn count(n: u64) -> String {
    match n {
        0..100_000 => n.to_string(),
        100_000..100_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// "07:00:12" for today, else "11-28 07:00".
fn clock(ts: Timestamp, now: Timestamp) -> String {
    let s = ts.to_rfc3339();
    if now.saturating_sub(ts) < Duration::from_secs(86_400) {
        s.get(11..19).unwrap_or(&s).to_owned()
    } else {
        format!(
            "{} {}",
            s.get(5..10).unwrap_or(""),
            s.get(11..16).unwrap_or("")
        )
    }
}

fn ago(ts: Timestamp, now: Timestamp) -> String {
    format!("{} ago", duration(now.saturating_sub(ts)))
}

/// The page of a long list that holds the selection: rows `start..end` of `len`, for a table
/// of `height` rows inside its border and header. Only that page is built each frame, so a
/// thousand alerts cost what twenty do.
fn page(len: usize, selected: usize, area: Rect) -> (usize, usize) {
    let height = usize::from(area.height.saturating_sub(3)).max(1);
    let start = (selected / height) * height;
    (start.min(len), (start + height).min(len))
}

fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// A block title with the active filter, so a filtered list is never mistaken for all of it.
fn title_with_filter(title: &str, app: &App, shown: usize, total: usize) -> String {
    if app.filter.is_empty() {
        format!("{title} ({total})")
    } else {
        format!("{title} ({shown} of {total}, filter \"{}\")", app.filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_the_selection() {
        let area = Rect::new(0, 0, 80, 13); // 10 rows inside
        assert_eq!(page(1000, 0, area), (0, 10));
        assert_eq!(page(1000, 9, area), (0, 10));
        assert_eq!(page(1000, 10, area), (10, 20));
        assert_eq!(page(25, 24, area), (20, 25));
        assert_eq!(page(0, 0, area), (0, 0));
    }

    #[test]
    fn compact_numbers_and_durations() {
        assert_eq!(count(99_999), "99999");
        assert_eq!(count(1_200_456), "1.2M");
        assert_eq!(duration(Duration::from_secs(3725)), "1h02m");
        assert_eq!(duration(Duration::from_secs(59)), "59s");
        assert_eq!(duration(Duration::from_secs(90_000)), "1d01h");
    }
}
