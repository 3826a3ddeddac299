//! The API client used by the TUI and the CLI: one HTTP/1 connection per request over the
//! agent's Unix socket.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use heir_rama::Report;

use crate::lines::{Lines, MAX_LINE, TooLong};
use crate::{
    AlertQuery, AuditEntry, Availability, Block, BlockRequest, Blocks, Device, ErrorBody,
    ImportOutcome, ImportRequest, Indicator, Live, Peer, Pending, Rama, Status, Stored,
    StreamQuery, UnblockRequest,
};

/// How long a snapshot or action may take before the client gives up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot connect to the agent at {path} (is `heir agent` running, and are you root or in the `heir` group?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the agent at {path}")]
    Http { path: PathBuf, source: hyper::Error },
    #[error("the agent did not answer {route} within {timeout:?}")]
    Timeout { route: String, timeout: Duration },
    /// The agent answered with an error status; `code` is [`ErrorBody::code`].
    #[error("{route}: {message} ({status})")]
    Api {
        route: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the agent's answer to {route} is not what this client understands")]
    Decode {
        route: String,
        source: serde_json::Error,
    },
    #[error("live stream: a line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

impl Error {
    /// True when the agent was not reachable at all (not running, socket missing).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }
}

/// A handle on the agent's API. Cheap to clone; holds no connection between requests, so it
/// keeps working across agent restarts.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.get("/v1/status").await
    }

    pub async fn devices(&self) -> Result<Vec<Device>, Error> {
        self.get("/v1/devices").await
    }

    pub async fn device(&self, id: &str) -> Result<Report, Error> {
        self.get(&format!("/v1/devices/{}", encode(id))).await
    }

    pub async fn rama(&self) -> Result<Rama, Error> {
        self.get("/v1/rama").await
    }

    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<Stored>, Error> {
        let mut route = format!(
            "/v1/alerts?limit={}&unacknowledged={}",
            q.limit, q.unacknowledged
        );
        if let Some(after) = q.after {
            route.push_str(&format!("&after={after}"));
        }
        if let Some(before) = q.before {
            route.push_str(&format!("&before={before}"));
        }
        self.get(&route).await
    }

    pub async fn acknowledge(&self, seq: u64) -> Result<Stored, Error> {
        self.post(&format!("/v1/alerts/{seq}/ack"), None).await
    }

    pub async fn indicators(&self) -> Result<Availability<Vec<Indicator>>, Error> {
        self.get("/v1/indicators").await
    }

    pub async fn import(&self, r: &ImportRequest) -> Result<ImportOutcome, Error> {
        self.post("/v1/indicators", Some(json(r))).await
    }

    pub async fn peers(&self) -> Result<Availability<Vec<Peer>>, Error> {
        self.get("/v1/peers").await
    }

    pub async fn blocks(&self) -> Result<Availability<Blocks>, Error> {
        self.get("/v1/blocks").await
    }

    pub async fn audit(&self) -> Result<Availability<Vec<AuditEntry>>, Error> {
        self.get("/v1/audit").await
    }

    pub async fn block(&self, r: &BlockRequest) -> Result<Block, Error> {
        self.post("/v1/block", Some(json(r))).await
    }

    pub async fn unblock(&self, addr: IpAddr) -> Result<Block, Error> {
        self.post("/v1/unblock", Some(json(&UnblockRequest { addr })))
            .await
    }

    pub async fn approve(&self, id: &str) -> Result<Block, Error> {
        self.post(&format!("/v1/pending/{}/approve", encode(id)), None)
            .await
    }

    pub async fn deny(&self, id: &str) -> Result<Pending, Error> {
        self.post(&format!("/v1/pending/{}/deny", encode(id)), None)
            .await
    }

    /// Opens the live stream. Connecting is bounded by the timeout; reading is not (the
    /// agent sends a heartbeat every [`crate::server::HEARTBEAT`] when quiet).
    pub async fn stream(&self, q: StreamQuery) -> Result<LiveStream, Error> {
        let route = format!("/v1/stream?alerts={}&events={}", q.alerts, q.events);
        let resp = self.send(Method::GET, &route, None).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = self.collect(&route, resp.into_body()).await?;
            return Err(api_error(&route, status, &body));
        }
        Ok(LiveStream {
            body: resp.into_body(),
            lines: Lines::default(),
            path: self.path.clone(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, Error> {
        self.call(Method::GET, route, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        route: &str,
        body: Option<Bytes>,
    ) -> Result<T, Error> {
        self.call(Method::POST, route, body).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<Bytes>,
    ) -> Result<T, Error> {
        let exchange = async {
            let resp = self.send(method, route, body).await?;
            let status = resp.status();
            let bytes = self.collect(route, resp.into_body()).await?;
            if !status.is_success() {
                return Err(api_error(route, status, &bytes));
            }
            serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
                route: route.to_owned(),
                source,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                route: route.to_owned(),
                timeout: self.timeout,
            })?
    }

    async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<Bytes>,
    ) -> Result<hyper::Response<Incoming>, Error> {
        let connect = async {
            let stream =
                UnixStream::connect(&self.path)
                    .await
                    .map_err(|source| Error::Connect {
                        path: self.path.clone(),
                        source,
                    })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| self.http(e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("api connection: {e}");
                }
            });
            let mut req = Request::builder()
                .method(method)
                .uri(route)
                .header(hyper::header::HOST, "heir");
            if body.is_some() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(body.unwrap_or_default()))
                .expect("routes built here are valid URIs");
            sender.send_request(req).await.map_err(|e| self.http(e))
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| Error::Timeout {
                route: route.to_owned(),
                timeout: self.timeout,
            })?
    }

    async fn collect(&self, _route: &str, body: Incoming) -> Result<Bytes, Error> {
        body.collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| self.http(e))
    }

    fn http(&self, source: hyper::Error) -> Error {
        Error::Http {
            path: self.path.clone(),
            source,
        }
    }
}

fn json<T: serde::Serialize>(t: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(t).expect("requests serialise"))
}

fn api_error(route: &str, status: StatusCode, body: &[u8]) -> Error {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (b.code, b.error),
        Err(_) => (
            "unknown".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ),
    };
    Error::Api {
        route: route.to_owned(),
        status: status.as_u16(),
        code,
        message,
    }
}

/// Percent-encodes a path segment (device ids contain `:`; registry keys may contain spaces).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The live stream: [`Live`] items as the agent sends them.
#[derive(Debug)]
pub struct LiveStream {
    body: Incoming,
    lines: Lines,
    path: PathBuf,
}

impl LiveStream {
    /// The next item; `None` when the agent closed the stream (it shut down).
    pub async fn next(&mut self) -> Option<Result<Live, Error>> {
        loop {
            match self.lines.next_line() {
                Some(Ok(line)) => {
                    return Some(
                        serde_json::from_slice(&line).map_err(|source| Error::Decode {
                            route: "/v1/stream".to_owned(),
                            source,
                        }),
                    );
                }
                Some(Err(TooLong)) => return Some(Err(Error::LineTooLong)),
                None => {}
            }
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.lines.push(&data);
                    }
                }
                Err(source) => {
                    return Some(Err(Error::Http {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("mac:00:11"), "mac%3A00%3A11");
        assert_eq!(encode("pump 3/icu"), "pump%203%2Ficu");
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }
}
