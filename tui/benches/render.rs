//! One frame: what the UI thread spends per redraw (it redraws at least every 200 ms) with a
//! full alert list.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use heir_api::{Availability, fixture};
use heir_tui::app::{App, View};
use heir_tui::state::{Connection, MAX_ALERTS, State};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn state() -> State {
    let base = fixture::alerts();
    let alerts = (0..MAX_ALERTS)
        .map(|i| {
            let mut a = base[i % base.len()].clone();
            a.seq = (MAX_ALERTS - i) as u64;
            a
        })
        .collect();
    State {
        connection: Connection::Connected,
        now: fixture::NOW,
        status: Some(fixture::status()),
        rama: Some(fixture::rama()),
        devices: fixture::devices(),
        report: fixture::report("pump-icu-3"),
        alerts,
        indicators: Some(Availability::Available(fixture::indicators())),
        peers: Some(Availability::Available(fixture::peers())),
        blocks: Some(Availability::Available(fixture::blocks())),
        missed: 0,
        message: None,
    }
}

fn bench(c: &mut Criterion) {
    let s = state();
    let mut g = c.benchmark_group("frame_80x24");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for view in [
        View::Overview,
        View::Devices,
        View::Alerts,
        View::Observatory,
    ] {
        let app = App {
            view,
            ..App::default()
        };
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        g.bench_function(view.title(), |b| {
            b.iter(|| {
                t.draw(|f| heir_tui::view::draw(f, black_box(&app), black_box(&s)))
                    .unwrap();
            })
        });
    }
    let filtered = App {
        view: View::Alerts,
        filter: "brute".into(),
        ..App::default()
    };
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    g.bench_function("Alerts filtered", |b| {
        b.iter(|| {
            t.draw(|f| heir_tui::view::draw(f, black_box(&filtered), black_box(&s)))
                .unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
