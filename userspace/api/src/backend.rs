//! The trait the agent implements to answer the API.

use std::future::Future;
use std::net::IpAddr;

use heir_rama::Report;
use tokio::sync::broadcast;

use crate::access::Caller;
use crate::{
    AlertQuery, AuditEntry, Availability, BackendError, Block, BlockRequest, Blocks, Device,
    ImportOutcome, ImportRequest, Indicator, Live, Peer, Pending, Rama, Status, Stored,
};

/// What the API asks of the agent.
///
/// Methods return `Send` futures so the router can run them on any worker; implementations
/// write them as plain `async fn`. Every method must answer promptly from the agent's current
/// state: the API runs beside the pipeline and must never stall it (take locks briefly, never
/// across I/O to the client).
///
/// The mesh and the responder have default implementations that report themselves as not
/// built, so an agent without them implements only what it has.
pub trait Backend: Send + Sync + 'static {
    fn status(&self) -> impl Future<Output = Result<Status, BackendError>> + Send;

    /// Every device, worst score first.
    fn devices(&self) -> impl Future<Output = Result<Vec<Device>, BackendError>> + Send;

    /// One device's RAMA explanation; [`BackendError::NotFound`] for an unknown id.
    fn device(&self, id: &str) -> impl Future<Output = Result<Report, BackendError>> + Send;

    fn rama(&self) -> impl Future<Output = Result<Rama, BackendError>> + Send;

    /// Alerts newest first, as `query` selects (its `limit` is already capped).
    fn alerts(
        &self,
        query: AlertQuery,
    ) -> impl Future<Output = Result<Vec<Stored>, BackendError>> + Send;

    /// Marks an alert acknowledged by `by` (durably: it must survive a crash once this
    /// returns) and returns it. Acknowledging twice keeps the first acknowledgement.
    ///
    /// The methods that change state take the [`Caller`], an operator (the router refuses
    /// everyone else), for the record.
    fn acknowledge(
        &self,
        seq: u64,
        by: &Caller,
    ) -> impl Future<Output = Result<Stored, BackendError>> + Send;

    /// A receiver of live alerts and events. The agent keeps one `broadcast::Sender` and
    /// sends each [`Live::Alert`] and [`Live::Event`] to it; a full channel drops the oldest
    /// items for the slow subscriber only, which the stream reports as [`Live::Lagged`].
    fn subscribe(&self) -> broadcast::Receiver<Live>;

    fn indicators(
        &self,
    ) -> impl Future<Output = Result<Availability<Vec<Indicator>>, BackendError>> + Send {
        async { Ok(Availability::not_built(MESH_NOT_BUILT)) }
    }

    /// Stores imported indicators, all or none, and starts matching them.
    fn import(
        &self,
        request: ImportRequest,
        by: &Caller,
    ) -> impl Future<Output = Result<ImportOutcome, BackendError>> + Send {
        let _ = (request, by);
        async {
            Err(BackendError::NotBuilt {
                what: IMPORT_NOT_BUILT.into(),
            })
        }
    }

    fn peers(&self) -> impl Future<Output = Result<Availability<Vec<Peer>>, BackendError>> + Send {
        async { Ok(Availability::not_built(MESH_NOT_BUILT)) }
    }

    fn blocks(&self) -> impl Future<Output = Result<Availability<Blocks>, BackendError>> + Send {
        async { Ok(Availability::not_built(RESPONDER_NOT_BUILT)) }
    }

    /// The responder's audit log, oldest first.
    fn audit(
        &self,
    ) -> impl Future<Output = Result<Availability<Vec<AuditEntry>>, BackendError>> + Send {
        async { Ok(Availability::not_built(RESPONDER_NOT_BUILT)) }
    }

    /// Blocks the request's address for its `ttl_secs` (the responder's default when absent).
    fn block(
        &self,
        request: BlockRequest,
        by: &Caller,
    ) -> impl Future<Output = Result<Block, BackendError>> + Send {
        let _ = (request, by);
        async { Err(responder_not_built()) }
    }

    /// Lifts the block on `addr` and returns it.
    fn unblock(
        &self,
        addr: IpAddr,
        by: &Caller,
    ) -> impl Future<Output = Result<Block, BackendError>> + Send {
        let _ = (addr, by);
        async { Err(responder_not_built()) }
    }

    /// Carries out a pending block and returns it.
    fn approve(
        &self,
        id: &str,
        by: &Caller,
    ) -> impl Future<Output = Result<Block, BackendError>> + Send {
        let _ = (id, by);
        async { Err(responder_not_built()) }
    }

    /// Drops a pending block and returns it.
    fn deny(
        &self,
        id: &str,
        by: &Caller,
    ) -> impl Future<Output = Result<Pending, BackendError>> + Send {
        let _ = (id, by);
        async { Err(responder_not_built()) }
    }
}

/// What the default import method says.
pub const IMPORT_NOT_BUILT: &str = "indicator imports are not part of this build";

/// What the default mesh methods say.
pub const MESH_NOT_BUILT: &str = "the threat-sharing mesh is not part of this build";
/// What the default responder methods say.
pub const RESPONDER_NOT_BUILT: &str = "the responder (blocking) is not part of this build";

fn responder_not_built() -> BackendError {
    BackendError::NotBuilt {
        what: RESPONDER_NOT_BUILT.to_owned(),
    }
}
