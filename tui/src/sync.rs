//! The background task that keeps [`State`] current: polls the snapshots, follows the live
//! stream, carries out the operator's requests, and reconnects when the agent goes away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use heir_api::{AlertQuery, Client, ClientError, Live, StreamQuery};
use heir_model::Timestamp;
use tokio::sync::mpsc;

use crate::app::Request;
use crate::state::{Connection, MAX_ALERTS, State};

/// How often snapshots are refreshed while connected.
pub const POLL: Duration = Duration::from_secs(1);
/// Reconnect back-off: doubles from the first to the last.
pub const RETRY: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(5));

/// Pacing of the sync loop (tests shorten it).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub poll: Duration,
    pub retry_first: Duration,
    pub retry_max: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            poll: POLL,
            retry_first: RETRY.0,
            retry_max: RETRY.1,
        }
    }
}

fn lock(shared: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock leaves a state that is still worth showing.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs until `requests` closes (the UI quit).
pub async fn run(
    client: Client,
    shared: Arc<Mutex<State>>,
    mut requests: mpsc::Receiver<Request>,
    pace: Pace,
) {
    let mut explain: Option<String> = None;
    let mut retry = pace.retry_first;
    let mut attempts = 0u32;
    loop {
        let mut reached = false;
        let ended = session(
            &client,
            &shared,
            &mut requests,
            &mut explain,
            &mut reached,
            pace,
        );
        match ended.await {
            Ended::Quit => return,
            Ended::Lost(e) => {
                if reached {
                    retry = pace.retry_first;
                    attempts = 0;
                }
                attempts += 1;
                lock(&shared).connection = Connection::Disconnected {
                    error: heir_api::Chain(&e).to_string(),
                    retry_in: retry,
                    attempts,
                };
                // Keep taking requests while waiting, so the UI never blocks on a full queue.
                let wait = tokio::time::sleep(retry);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        r = requests.recv() => match r {
                            None => return,
                            Some(Request::Explain(id)) => explain = Some(id),
                            Some(_) => {
                                lock(&shared).message =
                                    Some("not sent: the agent is not reachable".into());
                            }
                        },
                    }
                }
                retry = (retry * 2).min(pace.retry_max);
            }
        }
    }
}

enum Ended {
    Quit,
    Lost(ClientError),
}

/// One connected stretch: from the first snapshot until the agent goes away.
async fn session(
    client: &Client,
    shared: &Arc<Mutex<State>>,
    requests: &mut mpsc::Receiver<Request>,
    explain: &mut Option<String>,
    reached: &mut bool,
    pace: Pace,
) -> Ended {
    let mut stream = match client.stream(StreamQuery::default()).await {
        Ok(s) => s,
        Err(e) => return Ended::Lost(e),
    };
    if let Err(e) = refresh(client, shared, explain.as_deref(), true).await {
        return Ended::Lost(e);
    }
    lock(shared).connection = Connection::Connected;
    *reached = true;
    let mut tick = tokio::time::interval(pace.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut polls = 0u32;
    let mut missed = lock(shared).missed;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                None => {
                    return Ended::Lost(ClientError::Api {
                        route: "/v1/stream".into(),
                        status: 503,
                        code: "closed".into(),
                        message: "the agent closed the live stream".into(),
                    });
                }
                Some(Err(e)) => return Ended::Lost(e),
                Some(Ok(Live::Alert(a))) => lock(shared).merge_alert(a),
                Some(Ok(Live::Lagged { missed })) => lock(shared).missed += missed,
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                polls += 1;
                let now_missed = lock(shared).missed;
                // New alerts come by the stream; the whole list is re-read now and then for
                // acknowledgements made elsewhere, and at once when the stream dropped some.
                let full = polls.is_multiple_of(FULL_EVERY) || now_missed != missed;
                missed = now_missed;
                if let Err(e) = refresh(client, shared, explain.as_deref(), full).await {
                    return Ended::Lost(e);
                }
            }
            r = requests.recv() => match r {
                None => return Ended::Quit,
                Some(Request::Explain(id)) => {
                    *explain = Some(id);
                    if let Err(e) = refresh_report(client, shared, explain.as_deref()).await {
                        return Ended::Lost(e);
                    }
                }
                Some(r) => {
                    let msg = act(client, shared, r).await;
                    lock(shared).message = Some(msg);
                }
            },
        }
    }
}

/// Every how many polls the alert list is re-read whole.
pub const FULL_EVERY: u32 = 10;

/// Takes every snapshot, then swaps them in at once. Unless `full`, only alerts newer than
/// the newest one held are read.
async fn refresh(
    client: &Client,
    shared: &Mutex<State>,
    explain: Option<&str>,
    full: bool,
) -> Result<(), ClientError> {
    let status = client.status().await?;
    let rama = client.rama().await?;
    let devices = client.devices().await?;
    let after = if full {
        None
    } else {
        lock(shared).alerts.first().map(|a| a.seq)
    };
    let alerts = client
        .alerts(&AlertQuery {
            limit: MAX_ALERTS,
            after,
            before: None,
            unacknowledged: false,
        })
        .await?;
    let indicators = client.indicators().await?;
    let peers = client.peers().await?;
    let blocks = client.blocks().await?;
    {
        let mut s = lock(shared);
        s.now = Timestamp::now();
        s.status = Some(status);
        s.rama = Some(rama);
        s.devices = devices;
        if after.is_some() {
            for a in alerts.into_iter().rev() {
                s.merge_alert(a);
            }
        } else {
            s.alerts = alerts;
        }
        s.indicators = Some(indicators);
        s.peers = Some(peers);
        s.blocks = Some(blocks);
    }
    refresh_report(client, shared, explain).await
}

async fn refresh_report(
    client: &Client,
    shared: &Mutex<State>,
    explain: Option<&str>,
) -> Result<(), ClientError> {
    let Some(id) = explain else { return Ok(()) };
    match client.device(id).await {
        Ok(r) => lock(shared).report = Some(r),
        // The device left the inventory: nothing to explain, not a lost connection.
        Err(ClientError::Api { status: 404, .. }) => lock(shared).report = None,
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Carries out one operator request; returns what to tell the operator.
async fn act(client: &Client, shared: &Mutex<State>, r: Request) -> String {
    let result = match &r {
        Request::Acknowledge(seq) => client.acknowledge(*seq).await.map(|s| {
            let msg = format!("alert {seq} acknowledged");
            lock(shared).merge_alert(s);
            msg
        }),
        Request::Approve(id) => client
            .approve(id)
            .await
            .map(|b| format!("approved: {} blocked", b.addr)),
        Request::Deny(id) => client
            .deny(id)
            .await
            .map(|p| format!("denied: {} not blocked", p.addr)),
        Request::Unblock(addr) => client
            .unblock(*addr)
            .await
            .map(|b| format!("{} unblocked", b.addr)),
        Request::Explain(_) => return String::new(),
    };
    match result {
        Ok(m) => {
            if !matches!(r, Request::Acknowledge(_))
                && let Ok(b) = client.blocks().await
            {
                lock(shared).blocks = Some(b);
            }
            m
        }
        Err(ClientError::Api { message, .. }) => format!("refused: {message}"),
        Err(e) => format!("failed: {}", heir_api::Chain(&e)),
    }
}
