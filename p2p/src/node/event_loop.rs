//! The task that owns the swarm: it validates every gossip message before gossipsub may
//! forward it, answers and makes backfill requests, and serves the [`super::Client`].

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    Multiaddr, PeerId, Swarm, identify, kad, mdns, multiaddr::Protocol, noise, ping, tcp, yamux,
};
use tokio::sync::mpsc;

mod groups;
mod views;

use super::actionable::Handover;
use super::behaviour::{BackfillRequest, BackfillResponse, Behaviour, BehaviourEvent, TOPIC};
use super::client::{Command, Published};
use super::{Config, Error, Event, Setup, Via};
use crate::clock::{self, SharedClock};
use crate::group::Keyring;
use crate::identity::Identity;
use crate::indicator::Item;
use crate::keystore::Membership;
use crate::knowledge::{Change, KnowledgeBase, Log};
use crate::membership::Credential;
use crate::privacy::{Filter, Violation};
use crate::tlp::Reach;
use crate::validate::{Accepted, Origin, Reason, Rejection, Validator};
use crate::wire::{self, Envelope};

pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    identity: Identity,
    membership: Membership,
    keyring: Keyring,
    validator: Validator,
    kb: KnowledgeBase,
    log: Option<Log>,
    filter: Filter,
    config: Config,
    clock: SharedClock,
    topic: IdentTopic,
    /// Each peer's credential, as learnt from the messages it authored and its backfill
    /// requests.
    members: HashMap<PeerId, Credential>,
    strikes: HashMap<PeerId, u32>,
    blocked: HashSet<PeerId>,
    backfills: HashMap<OutboundRequestId, PeerId>,
    listen_addrs: Vec<Multiaddr>,
    published: u64,
    backfilled: u64,
    dropped_events: u64,
    warnings: Vec<String>,
    /// Whether a Kademlia bootstrap query ran since the first connection.
    discovered: bool,
    /// Corroborated addresses already handed to the application.
    handover: Handover,
}

impl EventLoop {
    pub(super) fn new(
        setup: Setup,
        config: Config,
        filter: Filter,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
    ) -> Result<Self, Error> {
        let keypair = setup.identity.keypair();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| Error::Transport(Box::new(e)))?
            .with_quic()
            .with_behaviour(|key| {
                Behaviour::new(key, &config)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })
            .map_err(|e| Error::Transport(Box::new(e)))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .build();
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|source| Error::Listen {
                    addr: addr.clone(),
                    source,
                })?;
        }
        let validator = Validator::new(
            setup.membership.consortium,
            setup.revocations,
            &config.trust,
            setup.clock.clone(),
        );
        let mut this = Self {
            swarm,
            commands,
            events,
            identity: setup.identity,
            keyring: setup.keyring,
            validator,
            kb: KnowledgeBase::new(config.log_capacity),
            log: None,
            filter,
            clock: setup.clock,
            topic: IdentTopic::new(TOPIC),
            members: HashMap::new(),
            strikes: HashMap::new(),
            blocked: HashSet::new(),
            backfills: HashMap::new(),
            listen_addrs: Vec::new(),
            published: 0,
            backfilled: 0,
            dropped_events: 0,
            warnings: Vec::new(),
            discovered: false,
            handover: Handover::default(),
            membership: setup.membership,
            config,
        };
        if let Some(path) = &setup.log {
            let (log, records, damage) = Log::open(path)?;
            if let Some(d) = damage {
                tracing::warn!("{d}");
                this.warnings.push(d.to_string());
            }
            let skipped = crate::knowledge::restore(
                records,
                &mut this.validator,
                &this.keyring,
                &mut this.kb,
                path,
            );
            this.warnings.extend(skipped);
            this.log = Some(log);
        }
        let mut bootstrap = this.config.bootstrap.clone();
        bootstrap.extend(
            this.membership
                .bootstrap
                .iter()
                .filter_map(|s| s.parse().ok()),
        );
        for addr in bootstrap {
            this.dial(addr)?;
        }
        Ok(this)
    }

    /// Runs until [`super::Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.redial_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => self.reconnect(),
            }
        }
    }

    /// Below half the peer target (after a partition, or a restart of peers), dial the
    /// bootstrap peers again and re-run discovery, which redials known peers.
    fn reconnect(&mut self) {
        if self.swarm.network_info().num_peers() * 2 >= self.config.target_peers {
            return;
        }
        for addr in self.bootstrap_addrs() {
            let known = matches!(addr.iter().last(), Some(Protocol::P2p(p)) if self.swarm.is_connected(&p) || self.blocked.contains(&p));
            if !known {
                let _ = self.swarm.dial(addr);
            }
        }
        let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
    }

    fn bootstrap_addrs(&self) -> Vec<Multiaddr> {
        let mut addrs = self.config.bootstrap.clone();
        addrs.extend(
            self.membership
                .bootstrap
                .iter()
                .filter_map(|s| s.parse().ok()),
        );
        addrs
    }

    /// Sends an event without waiting; a full queue drops it and counts the drop. Returns
    /// whether it was queued.
    fn emit(&mut self, ev: Event) -> bool {
        let sent = self.events.try_send(ev).is_ok();
        if !sent {
            self.dropped_events += 1;
        }
        sent
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<(), Error> {
        if let Some(Protocol::P2p(peer)) = addr.iter().last() {
            self.swarm
                .behaviour_mut()
                .kademlia
                .add_address(&peer, addr.clone());
        }
        self.swarm.dial(addr.clone()).map_err(|e| Error::Dial {
            addr,
            source: Box::new(e),
        })
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => self.listen_addrs.push(address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address)
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if !self.discovered {
                    // Learn the rest of the mesh from the first peer reached.
                    self.discovered = self.swarm.behaviour_mut().kademlia.bootstrap().is_ok();
                }
                if num_established.get() == 1 {
                    self.request_backfill(peer_id);
                    self.emit(Event::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.emit(Event::PeerDisconnected(peer_id));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.on_gossip(propagation_source, message_id, message);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Backfill(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = self.answer_backfill(peer, request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .backfill
                        .send_response(channel, response);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.backfills.remove(&request_id);
                    self.on_backfill(peer, response);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Backfill(
                request_response::Event::OutboundFailure {
                    peer,
                    request_id,
                    error,
                    ..
                },
            )) => {
                self.backfills.remove(&request_id);
                tracing::debug!(%peer, %error, "backfill request failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                tracing::debug!(%peer, %error, "ping failed, closing connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer, addr.clone());
                    if self.wants(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(kad::Event::RoutingUpdated {
                peer,
                ..
            })) if self.wants(&peer) => {
                let _ = self.swarm.dial(peer);
            }
            _ => {}
        }
    }

    /// Whether to dial a newly discovered peer: not already connected, not blocked, and this
    /// node still below its target number of connections.
    fn wants(&self, peer: &PeerId) -> bool {
        !self.swarm.is_connected(peer) && !self.blocked.contains(peer) && {
            let info = self.swarm.network_info();
            let pending = info.connection_counters().num_pending_outgoing() as usize;
            info.num_peers() + pending < self.config.target_peers
        }
    }

    fn on_gossip(
        &mut self,
        propagation: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let origin = Origin::Gossip {
            author: message.source,
            propagation,
        };
        match self
            .validator
            .validate(&message.data, origin, &self.keyring)
        {
            Ok(acc) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &propagation, MessageAcceptance::Accept);
                self.store(acc, Via::Gossip);
            }
            Err(rejection) => {
                let by_author = message.source == Some(propagation);
                let acceptance = rejection.acceptance(by_author);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &propagation, acceptance);
                if matches!(acceptance, MessageAcceptance::Reject) && by_author {
                    self.penalise(propagation, rejection.reason());
                }
                let detail = crate::report(&rejection);
                tracing::debug!(peer = %propagation, %detail, "gossip message rejected");
                self.emit(Event::Rejected {
                    peer: propagation,
                    reason: rejection.reason(),
                    detail,
                });
            }
        }
    }

    /// Blocks a peer outright when its own message shows it is not a current member, and
    /// after `ban_after` strikes for other offences.
    fn penalise(&mut self, peer: PeerId, reason: Reason) {
        let strikes = self.strikes.entry(peer).or_default();
        *strikes += 1;
        let ban = matches!(
            reason,
            Reason::NotMember | Reason::Expired | Reason::Revoked
        ) || *strikes >= self.config.ban_after;
        if ban {
            tracing::info!(%peer, ?reason, "blocking peer");
            self.block(peer);
        }
    }

    fn block(&mut self, peer: PeerId) {
        self.blocked.insert(peer);
        let b = self.swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.gossipsub.blacklist_peer(&peer);
    }

    fn store(&mut self, acc: Accepted, via: Via) {
        let now = self.clock.now();
        if let Some(log) = &mut self.log
            && let Err(e) = log.append(&crate::knowledge::Record {
                received: now,
                bytes: acc.bytes.clone(),
            })
        {
            let e = crate::report(&e);
            tracing::error!("{e}");
            self.warnings.push(e);
        }
        self.members
            .insert(acc.author, acc.envelope.credential.clone());
        if let crate::wire::Body::GroupKeys(keys) = &acc.envelope.body {
            self.install_group_key(keys);
        }
        let change = self.kb.insert(&acc, now);
        let score = self.kb.reputation().as_peer_score(&acc.hospital);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&acc.author, score);
        if let crate::wire::Body::Revocations(_) = acc.envelope.body {
            self.enforce_revocations();
        }
        let Some(item) = acc.item else {
            self.emit(Event::Relayed { author: acc.author });
            return;
        };
        let due = self
            .handover
            .due(&change, |id| self.kb.get(id), &self.config.trust, now);
        self.emit(Event::Received {
            item: Box::new(item),
            hospital: acc.hospital,
            author: acc.author,
            change,
            via,
        });
        if let Some(a) = due {
            if self.emit(Event::Actionable(a.clone())) {
                self.handover.given(&a);
            } else {
                tracing::warn!(
                    addr = %a.addr,
                    "event queue full: a corroborated address waits for the next report"
                );
            }
        }
    }

    fn enforce_revocations(&mut self) {
        let revoked = &self.validator.revocations().serials;
        let gone: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, c)| revoked.contains(&c.serial))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.block(p);
        }
    }

    fn request_backfill(&mut self, peer: PeerId) {
        let now = self.clock.now();
        let since = match self.kb.latest_received() {
            Some(t) => clock::sub(t, self.config.trust.max_skew),
            None => clock::sub(now, self.config.backfill_window),
        };
        let request = BackfillRequest {
            credential: self.membership.credential.clone(),
            since,
            limit: u32::try_from(self.config.backfill_limit).unwrap_or(u32::MAX),
        };
        let id = self
            .swarm
            .behaviour_mut()
            .backfill
            .send_request(&peer, request);
        self.backfills.insert(id, peer);
    }

    fn answer_backfill(&mut self, peer: PeerId, request: BackfillRequest) -> BackfillResponse {
        let now = self.clock.now();
        let cred = &request.credential;
        let check = cred
            .verify(
                &self.membership.consortium,
                self.validator.revocations(),
                now,
            )
            .map_err(|e| e.to_string())
            .and_then(|()| match cred.peer_id() {
                Ok(p) if p == peer => Ok(()),
                _ => Err(format!("credential is not {peer}'s")),
            });
        if let Err(reason) = check {
            tracing::info!(%peer, %reason, "backfill refused");
            self.validator.count(Reason::NotMember);
            self.emit(Event::Rejected {
                peer,
                reason: Reason::NotMember,
                detail: format!("backfill request: {reason}"),
            });
            self.block(peer);
            return BackfillResponse::Refused(reason);
        }
        self.members.insert(peer, request.credential.clone());
        let limit = (request.limit as usize).min(self.config.backfill_limit);
        BackfillResponse::Envelopes(self.kb.since(request.since, limit))
    }

    fn on_backfill(&mut self, peer: PeerId, response: BackfillResponse) {
        let envelopes = match response {
            BackfillResponse::Envelopes(e) => e,
            BackfillResponse::Refused(reason) => {
                tracing::warn!(%peer, %reason, "peer refused backfill");
                return;
            }
        };
        let offered = envelopes.len();
        let mut accepted = 0;
        for bytes in envelopes {
            match self
                .validator
                .validate(&bytes, Origin::Backfill { from: peer }, &self.keyring)
            {
                Ok(acc) => {
                    accepted += 1;
                    self.backfilled += 1;
                    self.store(acc, Via::Backfill);
                }
                Err(Rejection::Duplicate) => {}
                Err(r) => {
                    self.emit(Event::Rejected {
                        peer,
                        reason: r.reason(),
                        detail: format!("backfill: {}", crate::report(&r)),
                    });
                    // A relay answers for the integrity of what it hands over, not for
                    // its author's standing or timing.
                    if !matches!(r, Rejection::Expired(_) | Rejection::Revoked(_))
                        && matches!(r.acceptance(false), MessageAcceptance::Reject)
                    {
                        self.penalise(peer, r.reason());
                    }
                }
            }
        }
        self.emit(Event::BackfillCompleted {
            peer,
            offered,
            accepted,
        });
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { item, group, reply } => {
                let _ = reply.send(self.publish(item, group));
            }
            Command::PublishAlert {
                alert,
                device,
                group,
                reply,
            } => {
                let r = self
                    .filter
                    .candidate(&alert, device.as_ref())
                    .map_err(Error::from)
                    .and_then(|ind| self.publish(Item::Indicator(ind), group));
                let _ = reply.send(r);
            }
            Command::PublishStatistic {
                metric,
                counts,
                contributors,
                period,
                reply,
            } => {
                let r = self
                    .filter
                    .release(metric, &counts, contributors, period, &mut rand::rng())
                    .map_err(Error::from)
                    .and_then(|a| self.publish(Item::Aggregate(a), None));
                let _ = reply.send(r);
            }
            #[cfg(feature = "testing")]
            Command::PublishRaw { bytes, reply } => {
                let _ = reply.send(self.send(bytes));
            }
            Command::Dial { addr, reply } => {
                let _ = reply.send(self.dial(addr));
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peers());
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Indicators { reply } => {
                let _ = reply.send(self.kb.entries().cloned().collect());
            }
            Command::Indicator { id, reply } => {
                let _ = reply.send(self.kb.get(&id).cloned());
            }
            Command::Observatory { own_rama, reply } => {
                let _ = reply.send(crate::observatory::report(
                    &self.kb,
                    own_rama,
                    self.clock.now(),
                ));
            }
            Command::Envelopes { reply } => {
                let _ = reply.send(
                    self.kb
                        .since(heir_model::Timestamp::from_nanos(0), usize::MAX),
                );
            }
            Command::Block { peer, reply } => {
                self.block(peer);
                let _ = reply.send(());
            }
            Command::Unblock { peer, reply } => {
                self.blocked.remove(&peer);
                self.strikes.remove(&peer);
                let b = self.swarm.behaviour_mut();
                b.blocked.unblock_peer(peer);
                b.gossipsub.remove_blacklisted_peer(&peer);
                let _ = reply.send(());
            }
            Command::Revoke { list, reply } => {
                let r = self
                    .validator
                    .update_revocations(list.clone())
                    .map_err(|e| Error::Keystore(crate::keystore::Error::Invite(e)))
                    .and_then(|_| {
                        self.enforce_revocations();
                        let env = Envelope::revocations(
                            &self.identity,
                            &self.membership.credential,
                            self.clock.now(),
                            list,
                        );
                        self.validator.record_own(&env);
                        self.send(env.encode())
                    });
                let _ = reply.send(r);
            }
            Command::RotateGroup { group, reply } => {
                let _ = reply.send(self.rotate_group(group));
            }
            Command::Keyring { reply } => {
                let _ = reply.send(self.keyring.clone());
            }
            Command::Shutdown => {}
        }
    }

    fn publish(&mut self, item: Item, group: Option<String>) -> Result<Published, Error> {
        self.filter.check(&item)?;
        let now = self.clock.now();
        let cred = self.membership.credential.clone();
        let cred = &cred;
        let env = match item.tlp().reach() {
            Reach::LocalOnly => return Err(Violation::Red.into()),
            Reach::Consortium => Envelope::clear(&self.identity, cred, now, item.clone()),
            Reach::SharingGroup => {
                let group = group.ok_or(Error::NeedsGroup(item.tlp()))?;
                if !cred.in_group(&group) {
                    return Err(Error::NotInGroup(group));
                }
                Envelope::sealed(
                    &self.identity,
                    cred,
                    now,
                    &item,
                    self.keyring.current(&group)?,
                )
            }
        };
        let bytes = env.encode();
        let published = self.send(bytes.clone())?;
        self.validator.record_own(&env);
        let author = self.identity.peer_id();
        let hospital = cred.hospital.clone();
        let acc = Accepted {
            envelope: env,
            bytes,
            item: Some(item),
            hospital,
            author,
        };
        self.store_own(acc);
        Ok(published)
    }

    fn store_own(&mut self, acc: Accepted) {
        let now = self.clock.now();
        if let Some(log) = &mut self.log
            && let Err(e) = log.append(&crate::knowledge::Record {
                received: now,
                bytes: acc.bytes.clone(),
            })
        {
            let e = crate::report(&e);
            tracing::error!("{e}");
            self.warnings.push(e);
        }
        let _: Change = self.kb.insert(&acc, now);
    }

    fn send(&mut self, bytes: Vec<u8>) -> Result<Published, Error> {
        let size = bytes.len();
        let message_id = wire::message_id(&bytes);
        let sent = match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) => true,
            Err(PublishError::NoPeersSubscribedToTopic) => false,
            Err(e) => return Err(Error::Gossipsub(e)),
        };
        self.published += 1;
        Ok(Published {
            message_id,
            size,
            sent,
        })
    }
}
