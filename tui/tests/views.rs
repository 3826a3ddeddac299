//! Every view rendered at 80×24 from fixture state, read back from the buffer.

use heir_api::fixture;
use heir_api::{Availability, fixture::NOW};
use heir_tui::app::{App, Outcome, Request, View};
use heir_tui::state::{Connection, State};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn full() -> State {
    State {
        connection: Connection::Connected,
        now: NOW,
        status: Some(fixture::status()),
        rama: Some(heir_api::Rama {
            peer_percentile: Some(fixture::PEER_PERCENTILE),
            ..fixture::rama()
        }),
        devices: fixture::devices(),
        report: fixture::report("pump-icu-3"),
        alerts: fixture::alerts().into_iter().rev().collect(),
        indicators: Some(Availability::Available(fixture::indicators())),
        peers: Some(Availability::Available(fixture::peers())),
        blocks: Some(Availability::Available(fixture::blocks())),
        missed: 0,
        message: None,
    }
}

fn core() -> State {
    State {
        rama: Some(fixture::rama()),
        indicators: Some(Availability::not_built(heir_api::backend::MESH_NOT_BUILT)),
        peers: Some(Availability::not_built(heir_api::backend::MESH_NOT_BUILT)),
        blocks: Some(Availability::not_built(
            heir_api::backend::RESPONDER_NOT_BUILT,
        )),
        ..full()
    }
}

/// The screen as 24 lines of text.
fn render(app: &App, s: &State) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| heir_tui::view::draw(f, app, s)).unwrap();
    let buf = t.backend().buffer();
    (0..24)
        .map(|y| {
            (0..80)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect()
}

fn screen(app: &App, s: &State) -> String {
    render(app, s).join("\n")
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn press(app: &mut App, s: &State, keys: &[KeyCode]) -> Outcome {
    let mut last = Outcome::Nothing;
    for k in keys {
        last = app.handle_key(key(*k), s);
    }
    last
}

fn at(view: View) -> App {
    App {
        view,
        ..App::default()
    }
}

fn row_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
}

#[test]
fn overview_shows_rama_rate_devices_and_sensor_health() {
    let s = full();
    let lines = render(&at(View::Overview), &s);
    assert!(lines[0].contains("1 Overview") && lines[0].contains("6 Response"));
    let hospital = s.rama.as_ref().unwrap().hospital.value;
    assert!(
        row_with(&lines, "Hospital RAMA").contains("Alerts/min, last 42 min · 4 unacked"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(&format!("{hospital:.1} critical")),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("4 dev: 1 crit 0 high 0 med 3 low"),
        "{}",
        lines[3]
    );
    // Top risky devices, worst first.
    let pump = lines
        .iter()
        .position(|l| l.contains("ICU infusion pump 3"))
        .unwrap();
    let pacs = lines
        .iter()
        .position(|l| l.contains("PACS archive"))
        .unwrap();
    assert!(pump < pacs);
    assert!(lines[pump].contains(" 89.6 "), "{}", lines[pump]);
    // Sensor health with lost-event counters, per kind and in total.
    assert!(row_with(&lines, "ev/s").contains("842 ev/s  lost 329"));
    assert!(row_with(&lines, "probes 2/3").contains("dropped 0"));
    assert!(!lines.iter().any(|l| l.contains("view behind")));
    let open = row_with(&lines, "│open");
    assert!(open.contains("1.2M") && open.contains("312"), "{open}");

    // The sparkline: the 212-occurrence brute force 15 minutes ago is the only full column
    // (buckets are one minute, newest at the right edge, x = 78 - 1 - 15 + 1).
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| heir_tui::view::draw(f, &at(View::Overview), &s))
        .unwrap();
    let buf = t.backend().buffer();
    let full_columns: Vec<u16> = (37..79).filter(|&x| buf[(x, 2)].symbol() == "█").collect();
    assert_eq!(full_columns, [63], "{}", lines[2]);
    // Lost counters are red so a loss is never missed.
    let y = lines.iter().position(|l| l.contains("│open")).unwrap() as u16;
    let x = lines[y as usize].find("312").unwrap();
    let x = lines[y as usize][..x].chars().count() as u16;
    assert_eq!(buf[(x, y)].fg, ratatui::style::Color::Red);
}

#[test]
fn a_view_that_fell_behind_says_so_apart_from_the_agents_drops() {
    // Live items this UI skipped are still in the agent's store: they are not the agent's
    // loss, and a sysadmin must be able to tell the two apart.
    let s = State {
        missed: 200_000,
        ..full()
    };
    let lines = render(&at(View::Overview), &s);
    let row = row_with(&lines, "probes 2/3");
    assert!(row.contains("dropped 0"), "{row}");
    let behind = row_with(&lines, "view behind");
    assert!(behind.contains("0.2M live items skipped"), "{behind}");
}

#[test]
fn devices_sort_and_explain() {
    let s = full();
    let mut app = at(View::Devices);
    let lines = render(&app, &s);
    assert!(
        lines[1].contains("Devices (4) · sort score ↓"),
        "{}",
        lines[1]
    );
    let order = |lines: &[String]| -> Vec<usize> {
        ["ICU infusion", "PACS archive", "Ward 7", "mac:00:1b"]
            .iter()
            .map(|n| lines.iter().position(|l| l.contains(n)).unwrap())
            .collect()
    };
    let o = order(&lines);
    assert!(o[0] < o[1] && o[1] < o[2] && o[2] < o[3], "by score: {o:?}");
    // The explanation of the selected (first) device.
    assert!(row_with(&lines, "RAMA of ICU infusion pump 3").starts_with('┌'));
    assert!(row_with(&lines, "exposure 0.78").contains("threat 0.78"));
    row_with(&lines, "default password accepted by telnet on 23");
    row_with(
        &lines,
        "-10.3 patch CVE-2025-0001 (update to 4.2.1 or later)",
    );

    // s: by name (ascending); r: reversed.
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Char('s')]),
        Outcome::Send(Request::Explain("pump-icu-3".into()))
    );
    let lines = render(&app, &s);
    assert!(lines[1].contains("sort name ↑"), "{}", lines[1]);
    let o = order(&lines);
    assert!(o[0] < o[3] && o[3] < o[1] && o[1] < o[2], "by name: {o:?}");
    press(&mut app, &s, &[KeyCode::Char('r')]);
    let o = order(&render(&app, &s));
    assert!(o[2] < o[1] && o[1] < o[3] && o[3] < o[0], "reversed: {o:?}");

    // Moving the selection asks for that device's explanation; until it arrives, the score.
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Down]),
        Outcome::Send(Request::Explain("pacs-1".into()))
    );
    let lines = render(&app, &s);
    assert!(row_with(&lines, "RAMA of PACS archive").starts_with('┌'));
    row_with(&lines, "18.4 low — loading the explanation…");
}

#[test]
fn alerts_list_filter_detail_and_acknowledge() {
    let s = full();
    let mut app = at(View::Alerts);
    let lines = render(&app, &s);
    assert!(lines[1].contains("Alerts (5)"));
    // Newest first; the acknowledged one is marked.
    assert!(lines[3].contains("06:59:30 info") && lines[3].contains("Unusual connection"));
    assert!(row_with(&lines, "port_scan").contains("medium   ✓ port_scan"));

    // `/brute` + Enter keeps one alert and says so in the title.
    press(
        &mut app,
        &s,
        &[
            KeyCode::Char('/'),
            KeyCode::Char('b'),
            KeyCode::Char('r'),
            KeyCode::Char('u'),
            KeyCode::Char('t'),
            KeyCode::Char('e'),
        ],
    );
    assert!(app.editing);
    assert!(render(&app, &s)[23].starts_with("filter: brute"));
    press(&mut app, &s, &[KeyCode::Enter]);
    let lines = render(&app, &s);
    assert!(
        lines[1].contains("Alerts (1 of 5, filter \"brute\")"),
        "{}",
        lines[1]
    );
    assert!(lines[3].contains("Telnet brute force against pump"));
    assert!(!screen(&app, &s).contains("Reverse shell"));

    // Detail: evidence, taxonomy, flow, aggregate count.
    press(&mut app, &s, &[KeyCode::Enter]);
    let lines = render(&app, &s);
    assert!(lines[1].contains("Alert 2 ·"), "{}", lines[1]);
    row_with(
        &lines,
        "taxonomy   OWASP IoT I1 · ENISA Brute force · ATT&CK T1110",
    );
    row_with(&lines, "flow       10.20.5.66 → 10.20.0.13:23");
    row_with(&lines, "confidence 90% · ×212");
    row_with(&lines, "• 212 failed logins in 60 s");
    row_with(&lines, "• user names tried: admin, root, service");
    row_with(&lines, "new (a to acknowledge)");
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Char('a')]),
        Outcome::Send(Request::Acknowledge(2))
    );
    // Esc leaves the detail, then clears the filter.
    press(&mut app, &s, &[KeyCode::Esc]);
    assert!(!app.detail);
    press(&mut app, &s, &[KeyCode::Esc]);
    assert!(render(&app, &s)[1].contains("Alerts (5)"));

    // u: only unacknowledged; the acknowledged port scan disappears; acking it again is a no-op.
    press(&mut app, &s, &[KeyCode::End]);
    assert_eq!(app.selected_alert(&s).unwrap().seq, 1);
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('a')]), Outcome::Nothing);
    press(&mut app, &s, &[KeyCode::Char('u')]);
    let lines = render(&app, &s);
    assert!(lines[1].contains("unacked only"), "{}", lines[1]);
    assert!(!screen(&app, &s).contains("Port scan of the ICU"));
    assert_eq!(app.selected_alert(&s).unwrap().seq, 2, "selection clamped");
}

#[test]
fn observatory_mesh_and_response_with_data() {
    let s = full();
    let obs = render(&at(View::Observatory), &s);
    assert_eq!(
        obs[1].trim_end(),
        " RAMA among mesh peers: riskier than 83% of them"
    );
    assert!(obs[2].contains("Mesh indicators (2)"));
    assert!(row_with(&obs, "203.0.113.9").contains("reverse_shell      80%  3"));
    assert!(
        row_with(&obs, "brute_force").contains("212"),
        "local alerts by category"
    );
    assert!(row_with(&obs, "Archive 9").contains('1'));

    let mesh = render(&at(View::Mesh), &s);
    assert!(row_with(&mesh, "st-mary").starts_with("│up"));
    assert!(row_with(&mesh, "city-general").contains("never"));

    let mut app = at(View::Response);
    let resp = render(&app, &s);
    assert!(resp[1].contains("1 pending, 1 active"));
    assert!(row_with(&resp, "approve?").contains("203.0.113.9"));
    assert!(row_with(&resp, "blocked").contains("until 08:00:00"));
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Char('y')]),
        Outcome::Send(Request::Approve("p-1".into()))
    );
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Char('n')]),
        Outcome::Send(Request::Deny("p-1".into()))
    );
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('x')]), Outcome::Nothing);
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Down, KeyCode::Char('x')]),
        Outcome::Send(Request::Unblock("10.20.5.66".parse().unwrap()))
    );
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('y')]), Outcome::Nothing);
}

#[test]
fn parts_not_built_say_so_plainly() {
    let s = core();
    for (view, title, part) in [
        (View::Observatory, "Mesh indicators", "mesh"),
        (View::Mesh, "Mesh peers", "mesh"),
        (View::Response, "Response", "responder"),
    ] {
        let lines = render(&at(view), &s);
        let top = if view == View::Observatory { 2 } else { 1 };
        assert!(lines[top].contains(title), "{}", lines[top]);
        assert!(
            lines[top + 1].contains("Not available"),
            "{}",
            lines[top + 1]
        );
        let text = screen(&at(view), &s);
        assert!(
            text.contains(&format!(
                "the {}",
                if part == "mesh" {
                    "threat-sharing mesh"
                } else {
                    "responder (blocking)"
                }
            )),
            "{text}"
        );
        assert!(text.contains("not part of this build"), "{text}");
        assert!(
            !text.contains("203.0.113.9") && !text.contains("st-mary"),
            "no fake data"
        );
    }
    assert!(
        render(&at(View::Observatory), &s)[1].contains("not available (no mesh in this build)")
    );
    // Local data in the Observatory is still shown.
    assert!(screen(&at(View::Observatory), &s).contains("Local alerts by category"));
    // Actions on a view with no data do nothing.
    let mut app = at(View::Response);
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('y')]), Outcome::Nothing);
}

#[test]
fn disconnected_says_retrying_and_keeps_last_data() {
    let err = "cannot connect to the agent at /run/heir/api.sock: No such file or directory";
    let gone = State {
        connection: Connection::Disconnected {
            error: err.into(),
            retry_in: std::time::Duration::from_secs(2),
            attempts: 3,
        },
        ..State::default()
    };
    let lines = render(&at(View::Overview), &gone);
    assert!(
        lines[23].starts_with("disconnected, retrying in 2s: cannot connect"),
        "{}",
        lines[23]
    );
    assert!(screen(&at(View::Overview), &gone).contains("the agent is not reachable"));
    assert!(screen(&at(View::Devices), &gone).contains("the agent is not reachable"));

    // Data from before the agent went away stays on screen, under the warning.
    let stale = State {
        connection: gone.connection.clone(),
        ..full()
    };
    let lines = render(&at(View::Devices), &stale);
    assert!(lines[23].starts_with("disconnected, retrying"));
    row_with(&lines, "ICU infusion pump 3");

    let connecting = render(&at(View::Alerts), &State::default());
    assert!(connecting[23].starts_with("connecting to the agent"));
    assert!(connecting.join("").contains("Waiting for the agent"));
}

#[test]
fn help_overlay_and_view_keys() {
    let s = full();
    let mut app = App::default();
    assert_eq!(app.view, View::Overview);
    press(&mut app, &s, &[KeyCode::Char('?')]);
    assert!(app.help);
    let lines = render(&app, &s);
    row_with(&lines, "Keys");
    row_with(&lines, "acknowledge the selected alert");
    // Any key closes help without acting.
    assert_eq!(press(&mut app, &s, &[KeyCode::Tab]), Outcome::Nothing);
    assert!(!app.help);
    assert_eq!(app.view, View::Overview);

    press(&mut app, &s, &[KeyCode::Tab]);
    assert_eq!(app.view, View::Devices);
    press(&mut app, &s, &[KeyCode::BackTab, KeyCode::BackTab]);
    assert_eq!(app.view, View::Response);
    for (k, v) in ['1', '2', '3', '4', '5', '6'].into_iter().zip(View::ALL) {
        press(&mut app, &s, &[KeyCode::Char(k)]);
        assert_eq!(app.view, v);
        assert!(render(&app, &s)[0].contains(v.title()));
    }
    // The selected tab is highlighted.
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| heir_tui::view::draw(f, &app, &s)).unwrap();
    let line0 = render(&app, &s)[0].clone();
    let x = line0[..line0.find("6 Response").unwrap()].chars().count() as u16;
    assert!(
        t.backend().buffer()[(x, 0)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );

    // '/' only where there is a list; typed 'q' goes into the filter, not quit.
    press(&mut app, &s, &[KeyCode::Char('1'), KeyCode::Char('/')]);
    assert!(!app.editing, "Overview has no list to filter");
    press(&mut app, &s, &[KeyCode::Char('3'), KeyCode::Char('/')]);
    assert!(app.editing);
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('q')]), Outcome::Nothing);
    assert_eq!(app.filter, "q");
    press(&mut app, &s, &[KeyCode::Backspace, KeyCode::Esc]);
    assert!(!app.editing && app.filter.is_empty());
    assert_eq!(press(&mut app, &s, &[KeyCode::Char('q')]), Outcome::Quit);
    assert_eq!(
        app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &s),
        Outcome::Quit
    );

    // Selection stays within the list.
    let mut app = at(View::Alerts);
    press(&mut app, &s, &[KeyCode::Up, KeyCode::Up]);
    assert_eq!(app.selection(&s), 0);
    press(&mut app, &s, &[KeyCode::PageDown]);
    assert_eq!(app.selection(&s), 4);
    press(&mut app, &s, &[KeyCode::Char('k'), KeyCode::Char('g')]);
    assert_eq!(app.selection(&s), 0);
}

#[test]
fn long_lists_page_with_the_selection() {
    let base = fixture::alerts();
    let s = State {
        alerts: (0..1000)
            .map(|i| {
                let mut a = base[i % base.len()].clone();
                a.seq = 1000 - i as u64;
                a.alert.title = format!("alert number {}", a.seq);
                a
            })
            .collect(),
        ..full()
    };
    let mut app = at(View::Alerts);
    for _ in 0..50 {
        press(&mut app, &s, &[KeyCode::PageDown]);
    }
    press(&mut app, &s, &[KeyCode::Down, KeyCode::Down, KeyCode::Down]);
    assert_eq!(app.selection(&s), 503);
    let selected = app.selected_alert(&s).unwrap().alert.title.clone();
    assert_eq!(selected, "alert number 497");
    let lines = render(&app, &s);
    let y = lines.iter().position(|l| l.contains(&selected)).unwrap();
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| heir_tui::view::draw(f, &app, &s)).unwrap();
    assert!(
        t.backend().buffer()[(40, y as u16)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED),
        "the selected row is highlighted"
    );
    // Neighbours on the same page are shown too; far rows are not.
    row_with(&lines, "alert number 498");
    assert!(!lines.join("").contains("alert number 1000"));
}

#[test]
fn selection_follows_the_row_not_the_position() {
    let mut s = full();
    let mut app = at(View::Alerts);
    press(&mut app, &s, &[KeyCode::Down]);
    assert_eq!(app.selected_alert(&s).unwrap().seq, 4);
    // A new alert arrives at the top while the operator reads.
    let mut late = s.alerts[0].clone();
    late.seq = 6;
    late.alert.title = "Arrived later".into();
    s.merge_alert(late);
    assert_eq!(app.selected_alert(&s).unwrap().seq, 4);
    assert_eq!(app.selection(&s), 2);
    assert_eq!(
        press(&mut app, &s, &[KeyCode::Char('a')]),
        Outcome::Send(Request::Acknowledge(4)),
        "acknowledges the alert on screen, not the newcomer"
    );
    press(&mut app, &s, &[KeyCode::Enter]);
    assert!(render(&app, &s)[1].contains("Alert 4 ·"));

    // A device whose score changes rank stays selected.
    let mut app = at(View::Devices);
    press(&mut app, &s, &[KeyCode::Down]);
    assert_eq!(app.selected_device(&s).unwrap().id, "pacs-1");
    s.devices[1].score.value = 95.0;
    s.devices
        .sort_by(|a, b| b.score.value.total_cmp(&a.score.value));
    assert_eq!(app.selected_device(&s).unwrap().id, "pacs-1");
    assert_eq!(app.selection(&s), 0);
    // When the selected row goes away, the position is kept.
    s.devices.retain(|d| d.id != "pacs-1");
    assert_eq!(app.selection(&s), 1);
}

#[test]
fn alerts_older_than_a_day_show_their_date() {
    let s = State {
        now: heir_model::Timestamp::from_secs(NOW.as_nanos() / 1_000_000_000 + 2 * 86_400),
        ..full()
    };
    let lines = render(&at(View::Alerts), &s);
    assert!(lines[3].starts_with("│11-28 06:59 info"), "{}", lines[3]);
}
