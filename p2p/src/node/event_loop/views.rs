//! The node's state as `heir mesh peers` and `heir mesh status` show it.

use std::collections::HashSet;

use libp2p::PeerId;

use super::EventLoop;
use crate::node::{PeerInfo, Status};

impl EventLoop {
    pub(super) fn peers(&self) -> Vec<PeerInfo> {
        let gs = &self.swarm.behaviour().gossipsub;
        let mesh: HashSet<&PeerId> = gs.mesh_peers(&self.topic.hash()).collect();
        self.swarm
            .connected_peers()
            .map(|p| {
                let hospital = self.members.get(p).map(|c| c.hospital.clone());
                PeerInfo {
                    peer_id: *p,
                    gossip_score: gs.peer_score(p),
                    reputation: hospital.as_deref().map(|h| self.kb.reputation().get(h)),
                    hospital,
                    in_mesh: mesh.contains(p),
                }
            })
            .collect()
    }

    pub(super) fn status(&self) -> Status {
        let cred = &self.membership.credential;
        let mut groups: Vec<(String, u32)> = self
            .keyring
            .groups()
            .filter_map(|g| {
                self.keyring
                    .current(g)
                    .ok()
                    .map(|k| (g.to_owned(), k.epoch))
            })
            .collect();
        groups.sort();
        Status {
            peer_id: self.identity.peer_id(),
            hospital: cred.hospital.clone(),
            consortium: self.membership.consortium.to_string(),
            credential_expires: cred.expires,
            listen_addrs: self.listen_addrs.iter().map(ToString::to_string).collect(),
            connected: self.swarm.connected_peers().count(),
            mesh_peers: self
                .swarm
                .behaviour()
                .gossipsub
                .mesh_peers(&self.topic.hash())
                .count(),
            indicators: self.kb.len(),
            stored_envelopes: self.kb.log_len(),
            published: self.published,
            accepted: self.validator.accepted(),
            rejected: self.validator.rejections().clone(),
            backfilled: self.backfilled,
            dropped_events: self.dropped_events,
            blocked: self.blocked.iter().map(ToString::to_string).collect(),
            groups,
            revocations_version: self.validator.revocations().version,
            warnings: self.warnings.clone(),
        }
    }
}
