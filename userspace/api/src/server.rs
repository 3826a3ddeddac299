//! The HTTP router over a [`Backend`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream;
use heir_model::Timestamp;
use tokio::sync::{broadcast, watch};

use crate::access::{Access, Caller, PeerCred, Role};
use crate::alert::MAX_LIMIT;
use crate::{
    AlertQuery, ApiError, Backend, BlockRequest, ImportRequest, Live, StreamQuery, UnblockRequest,
};

/// A live stream sends a heartbeat after this much silence.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

struct Ctx<B> {
    backend: Arc<B>,
    /// Turns true when the server shuts down, so live streams end and graceful shutdown does
    /// not wait for them forever.
    closing: watch::Receiver<bool>,
    /// Keeps `closing` open for routers built without a shutdown signal.
    _never: Option<Arc<watch::Sender<bool>>>,
    heartbeat: Duration,
}

impl<B> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            closing: self.closing.clone(),
            _never: self._never.clone(),
            heartbeat: self.heartbeat,
        }
    }
}

type Answer = Result<Response, ApiError>;

/// The API's routes over `backend` (see the crate docs for the table). Live streams end when
/// the backend's broadcast sender is dropped or the client goes away.
///
/// Served without a socket, the router has no peer to ask about: every request is the
/// agent's own ([`Caller::in_process`]). [`crate::Socket::serve`] identifies each client.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    let (tx, rx) = watch::channel(false);
    routes(Ctx {
        backend,
        closing: rx,
        _never: Some(Arc::new(tx)),
        heartbeat: HEARTBEAT,
    })
    .layer(axum::middleware::from_fn_with_state(None, authorize))
}

/// Routes whose live streams also end when `closing` turns true, for clients identified by
/// their socket's peer credentials under `access`.
pub(crate) fn router_closing<B: Backend>(
    backend: Arc<B>,
    closing: watch::Receiver<bool>,
    heartbeat: Duration,
    access: Access,
) -> Router {
    routes(Ctx {
        backend,
        closing,
        _never: None,
        heartbeat,
    })
    .layer(axum::middleware::from_fn_with_state(
        Some(Arc::new(access)),
        authorize,
    ))
}

/// Names the caller of every request and refuses changes from anyone but an operator.
/// Reading (`GET`) is open to whoever could open the socket.
async fn authorize(
    State(access): State<Option<Arc<Access>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let caller = match (&access, req.extensions().get::<ConnectInfo<PeerCred>>()) {
        (None, _) => Caller::in_process(),
        (Some(access), Some(ConnectInfo(p))) => access.caller(p.uid, p.gid, p.pid),
        // A socket router always has the peer's credentials; without them, nobody is
        // trusted with anything.
        (Some(_), None) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the caller's credentials are unknown",
            )
            .into_response();
        }
    };
    if req.method() != Method::GET
        && caller.role != Role::Operator
        && let Some(access) = &access
    {
        let group = access.group();
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} {} changes the agent's state and needs an operator (root or group `{group}`); {caller} may only read",
                req.method(),
                req.uri().path()
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

fn routes<B: Backend>(ctx: Ctx<B>) -> Router {
    Router::new()
        .route("/v1/status", get(status::<B>))
        .route("/v1/devices", get(devices::<B>))
        .route("/v1/devices/{id}", get(device::<B>))
        .route("/v1/rama", get(rama::<B>))
        .route("/v1/alerts", get(alerts::<B>))
        .route("/v1/alerts/{seq}/ack", post(acknowledge::<B>))
        .route(
            "/v1/indicators",
            get(indicators::<B>)
                .post(import::<B>)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/v1/peers", get(peers::<B>))
        .route("/v1/blocks", get(blocks::<B>))
        .route("/v1/audit", get(audit::<B>))
        .route("/v1/block", post(block::<B>))
        .route("/v1/unblock", post(unblock::<B>))
        .route("/v1/pending/{id}/approve", post(approve::<B>))
        .route("/v1/pending/{id}/deny", post(deny::<B>))
        .route("/v1/stream", get(live::<B>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route {}; routes are under /v1/", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn ok<T: serde::Serialize>(t: T) -> Answer {
    Ok(Json(t).into_response())
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("path: {}", e.body_text())))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(|e| {
        let status = match e {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "bad_request", format!("body: {}", e.body_text()))
    })
}

async fn status<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.status().await?)
}

async fn devices<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.devices().await?)
}

async fn device<B: Backend>(
    State(c): State<Ctx<B>>,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path(id)?;
    ok(c.backend.device(&id).await?)
}

async fn rama<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.rama().await?)
}

async fn alerts<B: Backend>(
    State(c): State<Ctx<B>>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    if q.limit == 0 || q.limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "query: limit must be 1..={MAX_LIMIT}, not {}",
            q.limit
        )));
    }
    ok(c.backend.alerts(q).await?)
}

async fn acknowledge<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    seq: Result<Path<u64>, PathRejection>,
) -> Answer {
    let seq = path(seq)?;
    ok(c.backend.acknowledge(seq, &by).await?)
}

async fn indicators<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.indicators().await?)
}

async fn peers<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.peers().await?)
}

/// The largest import body: a feed of a few hundred thousand indicators.
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

async fn import<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    r: Result<Json<ImportRequest>, JsonRejection>,
) -> Answer {
    let r = body(r)?;
    ok(c.backend.import(r, &by).await?)
}

async fn blocks<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.blocks().await?)
}

async fn audit<B: Backend>(State(c): State<Ctx<B>>) -> Answer {
    ok(c.backend.audit().await?)
}

async fn block<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    r: Result<Json<BlockRequest>, JsonRejection>,
) -> Answer {
    let r = body(r)?;
    if r.ttl_secs == Some(0) {
        return Err(ApiError::bad_request(
            "body: ttl_secs must be at least 1 (omit it to block until unblocked)",
        ));
    }
    ok(c.backend.block(r, &by).await?)
}

async fn unblock<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    r: Result<Json<UnblockRequest>, JsonRejection>,
) -> Answer {
    let r = body(r)?;
    ok(c.backend.unblock(r.addr, &by).await?)
}

async fn approve<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path(id)?;
    ok(c.backend.approve(&id, &by).await?)
}

async fn deny<B: Backend>(
    State(c): State<Ctx<B>>,
    Extension(by): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path(id)?;
    ok(c.backend.deny(&id, &by).await?)
}

/// Chunked JSON lines: one [`Live`] per line, flushed as it comes.
async fn live<B: Backend>(
    State(c): State<Ctx<B>>,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let rx = c.backend.subscribe();
    let heartbeat = c.heartbeat;
    let s = stream::unfold(
        (rx, c.closing.clone()),
        move |(mut rx, mut closing)| async move {
            // Silence is measured from the last line sent, whatever is filtered out meanwhile.
            let quiet_until = tokio::time::Instant::now() + heartbeat;
            loop {
                if *closing.borrow() {
                    return None;
                }
                let item = tokio::select! {
                    r = rx.recv() => match r {
                        Ok(item) => item,
                        Err(broadcast::error::RecvError::Lagged(missed)) => Live::Lagged { missed },
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = closing.changed() => return None,
                    _ = tokio::time::sleep_until(quiet_until) => Live::Heartbeat { ts: Timestamp::now() },
                };
                if !item.wanted(q) {
                    continue;
                }
                let mut line = serde_json::to_vec(&item).expect("live items serialise");
                line.push(b'\n');
                return Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, closing)));
            }
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(s),
    )
        .into_response())
}
