//! The composed libp2p behaviour and its tuning.

use std::time::Duration;

use heir_model::Timestamp;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::{NetworkBehaviour, behaviour::toggle::Toggle};
use libp2p::{StreamProtocol, allow_block_list, identify, mdns, ping, request_response};
use serde::{Deserialize, Serialize};

use super::{Config, Error};
use crate::membership::Credential;
use crate::wire;

/// The one gossip topic of the consortium; sharing-group items travel on it sealed.
pub const TOPIC: &str = "heir/indicators/1";
const BACKFILL_PROTOCOL: &str = "/heir/backfill/1";
const KAD_PROTOCOL: &str = "/heir/kad/1";
const IDENTIFY_PROTOCOL: &str = "/heir/1";

/// "Send me what you received since": asked of a peer after (re)connecting. The requester
/// proves membership, since the answer is consortium data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackfillRequest {
    pub credential: Credential,
    pub since: Timestamp,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BackfillResponse {
    /// Envelopes as received, oldest first; each is validated again by the requester.
    Envelopes(Vec<Vec<u8>>),
    Refused(String),
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub gossipsub: gossipsub::Behaviour,
    pub kademlia: kad::Behaviour<MemoryStore>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub backfill: request_response::cbor::Behaviour<BackfillRequest, BackfillResponse>,
}

/// Score parameters for a quiet topic: indicators are rare, so peers are not expected to
/// deliver at a rate (P3 off); what counts is never relaying invalid messages (P4), which
/// quickly pushes an offender below the graylist threshold.
fn score_params(config: &Config, topic: &IdentTopic) -> (PeerScoreParams, PeerScoreThresholds) {
    let mut params = PeerScoreParams {
        ip_colocation_factor_whitelist: config.colocation_whitelist.iter().copied().collect(),
        app_specific_weight: 10.0,
        ..PeerScoreParams::default()
    };
    let topic_params = TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 50.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    };
    params.topics.insert(topic.hash(), topic_params);
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -20.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

impl Behaviour {
    pub(super) fn new(key: &Keypair, config: &Config) -> Result<Self, Error> {
        let peer_id = key.public().to_peer_id();
        let gcfg = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(config.heartbeat)
            .validation_mode(ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|m: &gossipsub::Message| MessageId::from(wire::message_id(&m.data)))
            .max_transmit_size(wire::MAX_ENVELOPE + 1024)
            .duplicate_cache_time(config.duplicate_cache)
            .history_gossip(3)
            .build()
            .map_err(|e| Error::GossipsubSetup(e.to_string()))?;
        let mut gossipsub =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gcfg)
                .map_err(|e| Error::GossipsubSetup(e.to_owned()))?;
        let topic = IdentTopic::new(TOPIC);
        let (params, thresholds) = score_params(config, &topic);
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(Error::GossipsubSetup)?;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| Error::GossipsubSetup(e.to_string()))?;

        let mut kcfg = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kcfg.set_query_timeout(Duration::from_secs(30));
        let mut kademlia = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kcfg);
        kademlia.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.to_owned(),
            key.public(),
        ));
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(Error::Mdns)?,
            )
        } else {
            None
        };
        let backfill = request_response::cbor::Behaviour::new(
            [(
                StreamProtocol::new(BACKFILL_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        Ok(Self {
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            kademlia,
            identify,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.ping_interval * 2),
            ),
            mdns: mdns.into(),
            backfill,
        })
    }
}
