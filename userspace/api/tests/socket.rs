//! The API over a real Unix socket, against the in-memory agent.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use heir_api::fixture::{self, Memory, Parts};
use heir_api::{
    AlertQuery, Availability, BlockRequest, Client, ClientError, Live, Origin, Socket, SocketError,
    StreamQuery,
};
use heir_model::{Category, Event, EventKind, Process, Severity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Agent {
    _dir: tempfile::TempDir,
    path: PathBuf,
    memory: Arc<Memory>,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<Result<(), SocketError>>,
}

impl Agent {
    fn start(parts: Parts, capacity: usize) -> Agent {
        Self::start_with(parts, capacity, heir_api::server::HEARTBEAT)
    }

    fn start_with(parts: Parts, capacity: usize, heartbeat: Duration) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/api.sock");
        let memory = Arc::new(Memory::new(parts, capacity));
        let socket = Socket::bind(&path).unwrap().with_heartbeat(heartbeat);
        let (tx, rx) = oneshot::channel();
        let served = tokio::spawn(socket.serve(
            memory.clone(),
            heir_api::Access::new("heir-admin"),
            async {
                let _ = rx.await;
            },
        ));
        Agent {
            _dir: dir,
            path,
            memory,
            stop: Some(tx),
            served,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.path).with_timeout(Duration::from_secs(5))
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.served)
            .await
            .expect("graceful shutdown within 5 s")
            .unwrap()
            .unwrap();
        assert!(!self.path.exists(), "socket file removed on shutdown");
    }

    /// Sends raw bytes and returns (status, body) of the answer.
    async fn raw(&self, request: &str) -> (u16, String) {
        let mut s = UnixStream::connect(&self.path).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("answer within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    async fn post(&self, route: &str, content_type: Option<&str>, body: &str) -> (u16, String) {
        let ct = content_type.map_or(String::new(), |c| format!("Content-Type: {c}\r\n"));
        self.raw(&format!(
            "POST {route} HTTP/1.1\r\nHost: heir\r\nConnection: close\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await
    }

    async fn get(&self, route: &str) -> (u16, String) {
        self.raw(&format!(
            "GET {route} HTTP/1.1\r\nHost: heir\r\nConnection: close\r\n\r\n"
        ))
        .await
    }
}

fn error_of(body: &str) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("error body {body:?}: {e}"));
    (
        v["code"].as_str().unwrap().to_owned(),
        v["error"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn snapshots_round_trip() {
    let agent = Agent::start(Parts::Core, 16);
    let c = agent.client();
    let status = c.status().await.unwrap();
    assert_eq!(status.version, "0.1.0");
    assert_eq!(status.total().lost, 329);
    let devices = c.devices().await.unwrap();
    assert_eq!(devices.len(), 4);
    assert_eq!(devices[0].id, "pump-icu-3", "worst first");
    assert!(devices[0].score.value > devices[1].score.value);
    // A discovered device's id has colons: the client must encode it.
    let report = c.device("mac:00:1b:2c:3d:4e:5f").await.unwrap();
    assert_eq!(report.device, "mac:00:1b:2c:3d:4e:5f");
    let rama = c.rama().await.unwrap();
    assert_eq!(rama.hospital.devices, 4);
    assert_eq!(rama.history.len(), 5);

    let all = c.alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    let page = c
        .alerts(&AlertQuery {
            limit: 2,
            after: Some(2),
            before: None,
            unacknowledged: true,
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|s| s.seq).collect::<Vec<_>>(), [5, 4]);
    // Walking back: the page before seq 4.
    let older = c
        .alerts(&AlertQuery {
            limit: 2,
            before: Some(4),
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(older.iter().map(|s| s.seq).collect::<Vec<_>>(), [3, 2]);
    let unacked = c
        .alerts(&AlertQuery {
            unacknowledged: true,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(unacked.len(), 4, "seq 1 is acknowledged in the fixture");

    // Mesh and responder are not built in this agent: the views say so.
    match c.peers().await.unwrap() {
        Availability::NotBuilt { what } => assert!(what.contains("mesh"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.indicators().await.unwrap(),
        Availability::NotBuilt { .. }
    ));
    assert!(matches!(
        c.blocks().await.unwrap(),
        Availability::NotBuilt { .. }
    ));
    agent.stop().await;
}

#[tokio::test]
async fn acknowledge_is_kept_and_unknown_alerts_are_404() {
    let agent = Agent::start(Parts::Core, 16);
    let c = agent.client();
    let s = c.acknowledge(3).await.unwrap();
    assert_eq!(s.seq, 3);
    assert!(s.acknowledged.is_some());
    let again = c.acknowledge(3).await.unwrap();
    assert_eq!(again.acknowledged, s.acknowledged);
    let stored = agent.memory.alerts.lock().unwrap()[2].clone();
    assert!(stored.acknowledged.is_some(), "the backend saw the ack");

    match c.acknowledge(99).await.unwrap_err() {
        ClientError::Api {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!((status, code.as_str()), (404, "not_found"));
            assert!(message.contains("alert 99"), "{message}");
        }
        e => panic!("{e}"),
    }
    agent.stop().await;
}

#[tokio::test]
async fn responder_actions() {
    let agent = Agent::start(Parts::All, 16);
    let c = agent.client();
    let b = c
        .block(&BlockRequest {
            addr: "198.51.100.7".parse().unwrap(),
            ttl_secs: Some(60),
            reason: Some("scanner".into()),
        })
        .await
        .unwrap();
    assert_eq!(b.origin, Origin::Operator);
    assert!(b.expires.is_some());
    let blocks = c.blocks().await.unwrap();
    let blocks = blocks.available().unwrap();
    assert_eq!(blocks.active.len(), 2);

    // A protected device is refused with the reason.
    match c
        .block(&BlockRequest {
            addr: "10.20.0.13".parse().unwrap(),
            ttl_secs: None,
            reason: None,
        })
        .await
        .unwrap_err()
    {
        ClientError::Api {
            status, message, ..
        } => {
            assert_eq!(status, 422);
            assert!(message.contains("protected"), "{message}");
        }
        e => panic!("{e}"),
    }

    let lifted = c.unblock("198.51.100.7".parse().unwrap()).await.unwrap();
    assert_eq!(lifted.reason, "scanner");
    let approved = c.approve("p-1").await.unwrap();
    assert_eq!(approved.origin, Origin::Approved);
    assert!(matches!(
        c.deny("p-1").await.unwrap_err(),
        ClientError::Api { status: 404, .. }
    ));
    let now = c.blocks().await.unwrap();
    let now = now.available().unwrap();
    assert!(now.pending.is_empty());
    assert_eq!(now.active.len(), 2);
    agent.stop().await;
}

#[tokio::test]
async fn actions_of_parts_not_built_answer_501() {
    let agent = Agent::start(Parts::Core, 16);
    let c = agent.client();
    match c
        .unblock("198.51.100.7".parse().unwrap())
        .await
        .unwrap_err()
    {
        ClientError::Api {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!((status, code.as_str()), (501, "not_built"));
            assert!(message.contains("responder"), "{message}");
        }
        e => panic!("{e}"),
    }
    agent.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_4xx_naming_the_fault() {
    let agent = Agent::start(Parts::All, 16);
    let json = Some("application/json");

    let (st, body) = agent.post("/v1/block", json, "{\"addr\": ").await;
    assert_eq!(st, 400);
    let (code, msg) = error_of(&body);
    assert_eq!(code, "bad_request");
    assert!(msg.starts_with("body:"), "{msg}");

    let (st, body) = agent
        .post("/v1/block", json, "{\"addr\": \"10.0.0.300\"}")
        .await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("addr"), "{body}");

    let (st, body) = agent
        .post("/v1/block", json, "{\"addr\": \"10.0.0.3\", \"ttl\": 5}")
        .await;
    assert_eq!(st, 400);
    assert!(
        error_of(&body).1.contains("ttl"),
        "unknown field named: {body}"
    );

    let (st, body) = agent
        .post(
            "/v1/block",
            json,
            "{\"addr\": \"10.0.0.3\", \"ttl_secs\": 0}",
        )
        .await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("ttl_secs"), "{body}");

    let (st, body) = agent.post("/v1/unblock", None, "{}").await;
    assert_eq!(st, 415);
    assert!(error_of(&body).1.contains("Content-Type"), "{body}");

    let (st, body) = agent.post("/v1/alerts/abc/ack", None, "").await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.starts_with("path:"), "{body}");

    let (st, body) = agent.get("/v1/alerts?limit=0").await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("limit"), "{body}");

    let (st, body) = agent.get("/v1/alerts?limit=many").await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("limit"), "{body}");

    let (st, body) = agent.get("/v1/alerts?colour=red").await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("colour"), "{body}");

    let (st, body) = agent.get("/v1/stream?events=maybe").await;
    assert_eq!(st, 400);
    assert!(error_of(&body).1.contains("events"), "{body}");

    let (st, body) = agent.get("/v2/status").await;
    assert_eq!(st, 404);
    assert_eq!(error_of(&body).0, "no_route");

    let (st, body) = agent.get("/v1/block").await;
    assert_eq!(st, 405);
    assert!(error_of(&body).1.contains("GET"), "{body}");

    let (st, body) = agent.get("/v1/devices/nonesuch").await;
    assert_eq!(st, 404);
    assert!(error_of(&body).1.contains("nonesuch"), "{body}");

    // Not HTTP at all: the connection is answered 400 and the server carries on.
    let (st, _) = agent.raw("\x00\x01garbage\r\n\r\n").await;
    assert_eq!(st, 400);
    assert_eq!(agent.client().status().await.unwrap().version, "0.1.0");
    agent.stop().await;
}

fn event(pid: u32) -> Event {
    Event {
        ts: fixture::NOW,
        process: Process {
            pid,
            comm: "sh".into(),
            ..Process::default()
        },
        kind: EventKind::Fork { child_pid: pid + 1 },
    }
}

async fn next(s: &mut heir_api::LiveStream) -> Live {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a live item within 5 s")
        .expect("stream open")
        .expect("valid item")
}

#[tokio::test]
async fn live_stream_delivers_alerts_and_events_as_asked() {
    let agent = Agent::start(Parts::Core, 64);
    let c = agent.client();
    let mut alerts_only = c.stream(StreamQuery::default()).await.unwrap();
    let mut both = c
        .stream(StreamQuery {
            alerts: true,
            events: true,
        })
        .await
        .unwrap();
    // Both subscriptions are registered once their answer headers arrived.
    agent.memory.live.send(Live::Event(event(100))).unwrap();
    let a = fixture::alert(
        0,
        "net.port_scan",
        "Port scan",
        Category::PortScan,
        Severity::High,
        None,
    );
    let stored = agent.memory.push(a.clone());
    assert_eq!(stored.seq, 6);

    match next(&mut alerts_only).await {
        Live::Alert(s) => assert_eq!((s.seq, s.alert), (6, a.clone())),
        other => panic!("events were not asked for: {other:?}"),
    }
    assert_eq!(next(&mut both).await, Live::Event(event(100)));
    assert!(matches!(next(&mut both).await, Live::Alert(s) if s.seq == 6));

    // Shutdown ends open streams rather than waiting for them.
    agent.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), both.next())
        .await
        .unwrap();
    assert!(end.is_none(), "stream ended on shutdown: {end:?}");
}

#[tokio::test]
async fn a_quiet_stream_carries_heartbeats() {
    let agent = Agent::start_with(Parts::Core, 4, Duration::from_millis(50));
    let mut s = agent.client().stream(StreamQuery::default()).await.unwrap();
    let start = std::time::Instant::now();
    for _ in 0..2 {
        assert!(matches!(next(&mut s).await, Live::Heartbeat { .. }));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "not before the interval"
    );
    // Events this subscriber did not ask for do not count as traffic.
    let flooding = std::time::Instant::now();
    let flood = {
        let live = agent.memory.live.clone();
        tokio::spawn(async move {
            for pid in 0..100 {
                let _ = live.send(Live::Event(event(pid)));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    assert!(matches!(next(&mut s).await, Live::Heartbeat { .. }));
    assert!(
        flooding.elapsed() < Duration::from_millis(400),
        "heartbeat during the flood (it lasts 500 ms), not after: {:?}",
        flooding.elapsed()
    );
    flood.abort();
    agent.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_told_what_it_missed() {
    let agent = Agent::start(Parts::Core, 4);
    let c = agent.client();
    let mut s = c
        .stream(StreamQuery {
            alerts: true,
            events: true,
        })
        .await
        .unwrap();
    // The stream task may have taken one item already before the burst overflows its queue.
    for pid in 0..50 {
        let _ = agent.memory.live.send(Live::Event(event(pid)));
    }
    let mut missed = 0;
    let mut got = Vec::new();
    while got.last() != Some(&49) {
        match next(&mut s).await {
            Live::Lagged { missed: m } => missed += m,
            Live::Event(e) => got.push(e.process.pid),
            other => panic!("{other:?}"),
        }
    }
    assert!(missed >= 45, "missed {missed}, got {got:?}");
    assert_eq!(missed + got.len() as u64, 50, "nothing lost silently");
    agent.stop().await;
}

#[tokio::test]
async fn socket_is_0660_and_refuses_to_clobber() {
    let agent = Agent::start(Parts::Core, 4);
    let mode = std::fs::metadata(&agent.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let dir_mode = std::fs::metadata(agent.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o750);
    // A live agent is not displaced.
    assert!(matches!(
        Socket::bind(&agent.path).unwrap_err(),
        SocketError::InUse { .. }
    ));
    agent.stop().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A stale socket (its agent died) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let s = Socket::bind(&stale).unwrap();
    drop(s);
    assert!(!stale.exists(), "dropping a Socket removes its file");

    // Anything else is never overwritten.
    let file = dir.join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let e = Socket::bind(&file).unwrap_err();
    assert!(matches!(e, SocketError::NotASocket { .. }), "{e}");
    assert!(e.to_string().contains("notes.txt"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test]
async fn no_agent_is_a_connect_error_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new(dir.path().join("absent.sock"));
    let e = c.status().await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.to_string().contains("absent.sock"), "{e}");
}
