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
        rama: Some(fixture::rama()),
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

#[test]
fn dump() {
    for v in View::ALL {
        println!("{}\n", screen(&at(v), &full()));
    }
    for v in [View::Observatory, View::Mesh, View::Response] {
        println!("{}\n", screen(&at(v), &core()));
    }
    let mut a = at(View::Alerts);
    press(&mut a, &full(), &[KeyCode::Down, KeyCode::Enter]);
    println!("{}\n", screen(&a, &full()));
    a.help = true;
    println!("{}\n", screen(&a, &full()));
    let s = State { connection: Connection::Disconnected { error: "cannot connect to the agent at /run/heir/api.sock: No such file".into(), retry_in: std::time::Duration::from_secs(2), attempts: 3 }, ..State::default() };
    println!("{}\n", screen(&at(View::Overview), &s));
}
