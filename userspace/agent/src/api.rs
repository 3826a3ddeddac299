//! The agent's answers to the local API: its state as the sysadmin's tools see it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use heir_api::{
    AlertQuery, Availability, Backend, BackendError, Caller, Chain, Device, ImportOutcome,
    ImportRequest, Indicator, Live, Peer, Rama, Status, Stored,
};
use heir_rama::Report;
use heir_store::{Read as _, Store};
use tokio::sync::broadcast;

use crate::mesh::Mesh;
use crate::rama_state::RamaState;

/// What the agent's main loop refreshes every second for `GET /v1/status`.
pub type SharedStatus = Arc<Mutex<Status>>;

pub struct Agent {
    pub store: Arc<Store>,
    pub risk: Arc<Mutex<RamaState>>,
    pub status: SharedStatus,
    pub live: broadcast::Sender<Live>,
    pub mesh: Option<Arc<Mesh>>,
    pub responder: Arc<crate::respond::policy::Responder>,
    pub started: Instant,
    /// New indicators for the matcher and the retro-hunt.
    pub learn: tokio::sync::mpsc::Sender<crate::intel::Learn>,
    /// One import at a time: each reads, merges and writes the stored set.
    pub importing: tokio::sync::Mutex<()>,
}

fn responder_error(e: crate::respond::policy::Error) -> BackendError {
    use crate::respond::blocklist::Error as T;
    use crate::respond::policy::Error as E;
    match e {
        E::NoPending(id) => BackendError::NotFound {
            what: format!("pending block `{id}`"),
        },
        E::Tables(T::Protected { .. }) | E::Tables(T::ReasonTooLong { .. }) => {
            BackendError::Refused(Chain(&e).to_string())
        }
        other => internal(other),
    }
}

fn api_block(
    addr: std::net::IpAddr,
    reason: &str,
    origin: heir_api::Origin,
    ttl: u64,
) -> heir_api::Block {
    let now = heir_model::Timestamp::now();
    heir_api::Block {
        addr,
        reason: reason.to_owned(),
        origin,
        since: now,
        expires: Some(heir_model::Timestamp::from_nanos(
            now.as_nanos()
                .saturating_add(ttl.saturating_mul(1_000_000_000)),
        )),
        alert: None,
    }
}

/// A failure of the agent, with its causes, for the error answer's body.
fn internal(e: impl std::error::Error) -> BackendError {
    let mut message = e.to_string();
    if let Some(cause) = e.source() {
        message = format!("{message}: {}", Chain(cause));
    }
    BackendError::Internal(message)
}

impl Backend for Agent {
    async fn status(&self) -> Result<Status, BackendError> {
        let mut s = self.status.lock().map_err(internal)?.clone();
        s.uptime_secs = self.started.elapsed().as_secs();
        Ok(s)
    }

    async fn devices(&self) -> Result<Vec<Device>, BackendError> {
        let risk = self.risk.lock().map_err(internal)?;
        let rama = &risk.rama;
        let listing = rama.listing();
        let mut out: Vec<Device> = rama
            .scores()
            .into_iter()
            .filter_map(|(id, score)| {
                let d = listing.devices.iter().find(|d| d.id == id)?;
                let reg = d.registered.as_ref();
                Some(Device {
                    name: reg.map(|r| r.name.clone()).unwrap_or_else(|| id.clone()),
                    class: reg.map(|r| r.class).unwrap_or(heir_rama::Class::Other),
                    criticality: reg
                        .map(|r| r.criticality())
                        .unwrap_or_else(|| heir_rama::Class::Other.default_criticality()),
                    ip: d.ip,
                    manufacturer: d.manufacturer.clone(),
                    model: reg.and_then(|r| r.model.clone()),
                    last_seen: d.last_seen,
                    score,
                    id,
                })
            })
            .collect();
        out.sort_by(|a, b| b.score.value.total_cmp(&a.score.value));
        Ok(out)
    }

    async fn device(&self, id: &str) -> Result<Report, BackendError> {
        let risk = self.risk.lock().map_err(internal)?;
        risk.rama.explain(id).ok_or_else(|| BackendError::NotFound {
            what: format!("device `{id}`"),
        })
    }

    async fn rama(&self) -> Result<Rama, BackendError> {
        let risk = self.risk.lock().map_err(internal)?;
        Ok(Rama {
            hospital: risk.rama.hospital(),
            history: risk.rama.hospital_history().points().cloned().collect(),
            peer_percentile: None,
        })
    }

    async fn alerts(&self, q: AlertQuery) -> Result<Vec<Stored>, BackendError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let all = store
                .alerts(q.after.unwrap_or(0), usize::MAX)
                .map_err(internal)?;
            Ok(all
                .into_iter()
                .rev()
                .filter(|a| q.before.is_none_or(|b| a.seq < b))
                .filter(|a| !q.unacknowledged || a.acknowledged.is_none())
                .take(q.limit)
                .collect())
        })
        .await
        .map_err(internal)?
    }

    async fn acknowledge(&self, seq: u64, by: &Caller) -> Result<Stored, BackendError> {
        let by = by.to_string();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let current = store
                .alerts(seq.saturating_sub(1), 1)
                .map_err(internal)?
                .into_iter()
                .find(|a| a.seq == seq)
                .ok_or_else(|| BackendError::NotFound {
                    what: format!("alert {seq}"),
                })?;
            if current.acknowledged.is_none() {
                store
                    .acknowledge(seq, &by, heir_model::Timestamp::now())
                    .map_err(internal)?;
            }
            let now = store
                .alerts(seq.saturating_sub(1), 1)
                .map_err(internal)?
                .into_iter()
                .next()
                .ok_or_else(|| BackendError::Internal(format!("alert {seq} vanished")))?;
            Ok(now)
        })
        .await
        .map_err(internal)?
    }

    fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    async fn audit(&self) -> Result<Availability<Vec<heir_api::AuditEntry>>, BackendError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let entries = store.audit().map_err(internal)?;
            Ok(Availability::Available(entries))
        })
        .await
        .map_err(internal)?
    }

    async fn blocks(&self) -> Result<Availability<heir_api::Blocks>, BackendError> {
        let r = self.responder.clone();
        tokio::task::spawn_blocking(move || {
            let now = heir_model::Timestamp::now();
            let active = r
                .blocks()
                .map_err(responder_error)?
                .into_iter()
                .filter(|b| !b.expired)
                .filter_map(|b| {
                    let addr = b.target.to_string().parse().ok()?;
                    Some(heir_api::Block {
                        addr,
                        reason: b.reason,
                        origin: match b.origin {
                            Some(crate::respond::Origin::Rule) => heir_api::Origin::Policy,
                            Some(crate::respond::Origin::Mesh) => heir_api::Origin::Mesh,
                            _ => heir_api::Origin::Operator,
                        },
                        since: heir_model::Timestamp::from_secs(b.created_unix),
                        expires: b.remaining.map(|d| {
                            heir_model::Timestamp::from_nanos(
                                now.as_nanos().saturating_add(d.as_nanos() as u64),
                            )
                        }),
                        alert: None,
                    })
                })
                .collect();
            let pending = r
                .pending()
                .into_iter()
                .map(|p| heir_api::Pending {
                    id: p.id,
                    addr: p.addr,
                    reason: p.reason,
                    category: p.category,
                    severity: p.severity,
                    confidence: p.confidence,
                    requested: p.requested,
                    alert: None,
                })
                .collect();
            Ok(Availability::Available(heir_api::Blocks {
                active,
                pending,
            }))
        })
        .await
        .map_err(internal)?
    }

    async fn block(
        &self,
        req: heir_api::BlockRequest,
        by: &Caller,
    ) -> Result<heir_api::Block, BackendError> {
        let (r, by) = (self.responder.clone(), by.to_string());
        tokio::task::spawn_blocking(move || {
            let reason = req.reason.unwrap_or_else(|| "operator".into());
            let ttl = req.ttl_secs.unwrap_or(r.ttl_secs());
            r.block_for(
                req.addr,
                &reason,
                crate::respond::Origin::Operator,
                &by,
                std::time::Duration::from_secs(ttl),
            )
            .map_err(responder_error)?;
            Ok(api_block(
                req.addr,
                &reason,
                heir_api::Origin::Operator,
                ttl,
            ))
        })
        .await
        .map_err(internal)?
    }

    async fn unblock(
        &self,
        addr: std::net::IpAddr,
        by: &Caller,
    ) -> Result<heir_api::Block, BackendError> {
        let (r, by) = (self.responder.clone(), by.to_string());
        tokio::task::spawn_blocking(move || {
            if !r.unblock(addr, &by).map_err(responder_error)? {
                return Err(BackendError::NotFound {
                    what: format!("a block of {addr}"),
                });
            }
            Ok(api_block(addr, "unblocked", heir_api::Origin::Operator, 0))
        })
        .await
        .map_err(internal)?
    }

    async fn approve(&self, id: &str, by: &Caller) -> Result<heir_api::Block, BackendError> {
        let (r, id, by) = (self.responder.clone(), id.to_owned(), by.to_string());
        tokio::task::spawn_blocking(move || {
            let p = r.approve(&id, &by).map_err(responder_error)?;
            Ok(api_block(
                p.addr,
                &p.reason,
                heir_api::Origin::Approved,
                r.ttl_secs(),
            ))
        })
        .await
        .map_err(internal)?
    }

    async fn deny(&self, id: &str, by: &Caller) -> Result<heir_api::Pending, BackendError> {
        let p = self
            .responder
            .deny(id, &by.to_string())
            .map_err(responder_error)?;
        Ok(heir_api::Pending {
            id: p.id,
            addr: p.addr,
            reason: p.reason,
            category: p.category,
            severity: p.severity,
            confidence: p.confidence,
            requested: p.requested,
            alert: None,
        })
    }

    async fn indicators(&self) -> Result<Availability<Vec<Indicator>>, BackendError> {
        let store = self.store.clone();
        let imported = tokio::task::spawn_blocking(move || crate::intel::import::stored(&*store))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let mut list: Vec<Indicator> = Vec::new();
        if let Some(mesh) = &self.mesh {
            let entries = mesh.client.indicators().await.map_err(internal)?;
            list.extend(entries.into_iter().map(|e| {
                Indicator {
                    id: e.indicator.id.to_string(),
                    kind: observable_kind(&e.indicator.observable).to_owned(),
                    value: observable_value(&e.indicator.observable),
                    category: e.indicator.category,
                    confidence: e.confidence as f32,
                    sources: e.reports.iter().map(|r| r.hospital.clone()).collect(),
                    first_seen: e.first_seen,
                    last_seen: e.last_seen,
                    sightings: e.sightings,
                    device_model: e
                        .indicator
                        .target
                        .as_ref()
                        .map(|p| format!("{} {}", p.vendor, p.model)),
                    origin: heir_api::IndicatorOrigin::Mesh,
                    tlp: Some(e.indicator.tlp.label().to_owned()),
                }
            }));
        } else if imported.is_empty() {
            return Ok(Availability::not_built(
                "the mesh: this node is not a member (heir mesh init / join); nothing imported (heir import)",
            ));
        }
        list.extend(imported.iter().map(crate::intel::import::listed));
        Ok(Availability::Available(list))
    }

    async fn import(
        &self,
        request: ImportRequest,
        by: &Caller,
    ) -> Result<ImportOutcome, BackendError> {
        // All or nothing: every entry is checked before anything is stored.
        let mut known = Vec::with_capacity(request.indicators.len());
        for (n, i) in request.indicators.iter().enumerate() {
            known.push(crate::intel::import::known(i).ok_or_else(|| {
                BackendError::Refused(format!(
                    "indicators[{n}]: `{}` is not a valid {}",
                    i.value,
                    i.kind.as_str()
                ))
            })?);
        }
        if request.share && self.mesh.is_none() {
            return Err(BackendError::Refused(
                "sharing needs the mesh: this node is not a member (heir mesh init / join)".into(),
            ));
        }
        let _one = self.importing.lock().await;
        let store = self.store.clone();
        let new = request.indicators.clone();
        let (added, replaced) =
            tokio::task::spawn_blocking(move || crate::intel::import::store(&store, &new, false))
                .await
                .map_err(internal)?
                .map_err(internal)?;
        tracing::info!(
            "{} indicator(s) imported by {by} ({added} new, {replaced} replaced)",
            known.len()
        );
        for k in known {
            let learn = crate::intel::Learn {
                update: heir_detect::known::Update::Add(k),
                hunt: true,
            };
            if self.learn.send(learn).await.is_err() {
                return Err(BackendError::Internal(
                    "stored, but the agent is stopping: matched from its next start".into(),
                ));
            }
        }
        let mut outcome = ImportOutcome {
            added,
            replaced,
            ..ImportOutcome::default()
        };
        if let (true, Some(mesh)) = (request.share, &self.mesh) {
            for i in &request.indicators {
                let r = match crate::intel::import::shareable(i) {
                    Ok(ind) => mesh
                        .client
                        .publish(heir_mesh::Item::Indicator(ind), None)
                        .await
                        .map_err(|e| heir_mesh::report(&e)),
                    Err(why) => Err(why),
                };
                match r {
                    Ok(_) => outcome.shared += 1,
                    Err(why) => outcome.not_shared.push(format!("{}: {why}", i.value)),
                }
            }
        }
        Ok(outcome)
    }

    async fn peers(&self) -> Result<Availability<Vec<Peer>>, BackendError> {
        let Some(mesh) = &self.mesh else {
            return Ok(Availability::not_built(
                "the mesh: this node is not a member (heir mesh init / join)",
            ));
        };
        let peers = mesh.client.peers().await.map_err(internal)?;
        Ok(Availability::Available(
            peers
                .into_iter()
                .map(|p| Peer {
                    id: p.peer_id.to_string(),
                    name: p.hospital.clone(),
                    address: None,
                    trust: p.reputation.unwrap_or(0.0) as f32,
                    connected: true,
                    last_seen: None,
                    indicators: 0,
                })
                .collect(),
        ))
    }
}

fn observable_kind(o: &heir_mesh::Observable) -> &'static str {
    match o {
        heir_mesh::Observable::Ip(_) => "ip",
        heir_mesh::Observable::Domain(_) => "domain",
        heir_mesh::Observable::Sha256(_) => "sha256",
        heir_mesh::Observable::Url(_) => "url",
        heir_mesh::Observable::Product(_) => "product",
    }
}

fn observable_value(o: &heir_mesh::Observable) -> String {
    match o {
        heir_mesh::Observable::Ip(a) => a.to_string(),
        heir_mesh::Observable::Domain(d) | heir_mesh::Observable::Url(d) => d.clone(),
        heir_mesh::Observable::Sha256(h) => h.iter().map(|b| format!("{b:02x}")).collect(),
        heir_mesh::Observable::Product(p) => format!(
            "{} {}{}",
            p.vendor,
            p.model,
            p.firmware
                .as_ref()
                .map(|f| format!(" {f}"))
                .unwrap_or_default()
        ),
    }
}
