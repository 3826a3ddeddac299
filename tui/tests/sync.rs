//! The sync task against a real agent socket: snapshots, live alerts, actions, and
//! reconnecting when the agent restarts.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heir_api::fixture::{self, Memory, Parts};
use heir_api::{Client, Socket, SocketError};
use heir_model::{Category, Severity};
use heir_tui::app::Request;
use heir_tui::state::{Connection, State};
use heir_tui::sync::{self, Pace};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Agent {
    memory: Arc<Memory>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), SocketError>>,
}

fn start(path: &Path) -> Agent {
    let memory = Arc::new(Memory::new(Parts::All, 64));
    let socket = Socket::bind(path).unwrap();
    let (stop, rx) = oneshot::channel();
    let served =
        tokio::spawn(
            socket.serve(memory.clone(), heir_api::Access::new("heir-admin"), async {
                let _ = rx.await;
            }),
        );
    Agent {
        memory,
        stop,
        served,
    }
}

impl Agent {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.served)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Waits (at most 5 s) until `cond` holds for the shared state.
async fn until(shared: &Mutex<State>, what: &str, cond: impl Fn(&State) -> bool) {
    let start = Instant::now();
    loop {
        if cond(&shared.lock().unwrap()) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}: {:?}",
            shared.lock().unwrap().connection
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn follows_the_agent_acts_and_reconnects_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.sock");
    let shared = Arc::new(Mutex::new(State::default()));
    let (tx, rx) = mpsc::channel(8);
    let pace = Pace {
        poll: Duration::from_millis(100),
        retry_first: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
    };
    let task = tokio::spawn(sync::run(
        Client::new(&path).with_timeout(Duration::from_secs(2)),
        shared.clone(),
        rx,
        pace,
    ));

    // No agent yet: disconnected, with the reason, retrying.
    until(&shared, "a failed attempt", |s| {
        matches!(&s.connection, Connection::Disconnected { error, attempts, .. }
            if error.contains("api.sock") && *attempts >= 2)
    })
    .await;

    let agent = start(&path);
    until(&shared, "the first snapshot", |s| {
        s.connection == Connection::Connected && s.devices.len() == 4 && s.alerts.len() == 5
    })
    .await;
    {
        let s = shared.lock().unwrap();
        assert_eq!(s.status.as_ref().unwrap().version, "0.1.0");
        assert!(s.blocks.as_ref().unwrap().available().is_some());
        assert_eq!(s.alerts[0].seq, 5, "newest first");
    }

    // The explanation of the device the user selects.
    tx.send(Request::Explain("pacs-1".into())).await.unwrap();
    until(&shared, "the report", |s| {
        s.report.as_ref().is_some_and(|r| r.device == "pacs-1")
    })
    .await;

    // A live alert arrives through the stream.
    agent.memory.push(fixture::alert(
        0,
        "proc.cryptominer",
        "Cryptominer on workstation",
        Category::Cryptomining,
        Severity::High,
        None,
    ));
    until(&shared, "the live alert", |s| {
        s.alerts.first().is_some_and(|a| a.seq == 6)
    })
    .await;

    // Acknowledge through the API: the agent records it, the UI shows it.
    tx.send(Request::Acknowledge(6)).await.unwrap();
    until(&shared, "the acknowledgement", |s| {
        s.alerts[0].acknowledged.is_some() && s.message.as_deref() == Some("alert 6 acknowledged")
    })
    .await;
    assert!(
        agent.memory.alerts.lock().unwrap()[5]
            .acknowledged
            .is_some()
    );

    // An alert the stream did not carry is found by the next poll.
    {
        let mut v = agent.memory.alerts.lock().unwrap();
        let mut quiet = v[0].clone();
        quiet.seq = 7;
        quiet.acknowledged = None;
        v.push(quiet);
    }
    until(&shared, "the polled alert", |s| s.alerts[0].seq == 7).await;
    // An acknowledgement made elsewhere (another operator's CLI) shows within a full re-read.
    agent.memory.alerts.lock().unwrap()[4].acknowledged = Some(heir_api::Ack::at(fixture::NOW));
    until(&shared, "the outside acknowledgement", |s| {
        s.alerts
            .iter()
            .any(|a| a.seq == 5 && a.acknowledged.is_some())
    })
    .await;

    // A refused action is reported, not fatal.
    tx.send(Request::Deny("nonesuch".into())).await.unwrap();
    until(&shared, "the refusal", |s| {
        s.message
            .as_deref()
            .is_some_and(|m| m.starts_with("refused:") && m.contains("nonesuch"))
    })
    .await;
    tx.send(Request::Approve("p-1".into())).await.unwrap();
    until(&shared, "the approval", |s| {
        s.blocks
            .as_ref()
            .and_then(|b| b.available())
            .is_some_and(|b| b.pending.is_empty() && b.active.len() == 2)
    })
    .await;

    // The agent stops: the UI says so and keeps the last data.
    agent.stop().await;
    until(&shared, "the disconnection", |s| {
        matches!(s.connection, Connection::Disconnected { .. })
    })
    .await;
    assert_eq!(shared.lock().unwrap().devices.len(), 4, "last data kept");

    // It comes back (a fresh agent: its store has the fixture's five alerts again).
    let again = start(&path);
    until(&shared, "the reconnection", |s| {
        s.connection == Connection::Connected && s.alerts.len() == 5
    })
    .await;
    again.memory.push(fixture::alert(
        0,
        "net.port_scan",
        "Port scan after restart",
        Category::PortScan,
        Severity::Medium,
        None,
    ));
    until(&shared, "a live alert after the restart", |s| {
        s.alerts
            .first()
            .is_some_and(|a| a.alert.title == "Port scan after restart")
    })
    .await;

    // Closing the request channel (the UI quit) ends the task.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("sync task ends when the UI quits")
        .unwrap();
    again.stop().await;
}
