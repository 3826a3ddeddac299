//! What a received message must pass before it is stored or relayed.
//!
//! Gossipsub hands every message to the application first (`validate_messages`); only what
//! [`Validator::validate`] accepts is forwarded. Checks run cheapest first: decoding, the
//! author's credential (consortium signature, expiry, revocation), that the gossip author is
//! the credential's member, the envelope signature, freshness and replay, the author's rate,
//! then the body (decryption for sharing groups, schema limits, TLP and privacy policy).

use std::collections::{BTreeMap, HashSet};

use heir_model::Timestamp;
use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use serde::Serialize;

use crate::clock::SharedClock;
use crate::group::Keyring;
use crate::indicator::{Invalid, Item, Observable};
use crate::membership::{self, ConsortiumId, Revocations};
use crate::privacy::always_internal;
use crate::tlp::{Reach, Tlp};
use crate::trust::{self, RateLimiter, ReplayGuard};
use crate::wire::{self, Body, Envelope};

/// How a message reached us; it decides which checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Live gossip: `author` is gossipsub's verified message source.
    Gossip { author: Option<PeerId>, propagation: PeerId },
    /// Handed over by `from` in a backfill: not subject to freshness or rate limits, since it
    /// is old by nature and arrives in bulk.
    Backfill { from: PeerId },
    /// Read back from this node's own store.
    Store,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed: {0}")]
    Malformed(#[from] wire::Error),
    #[error("not a member: {0}")]
    NotMember(membership::Error),
    #[error("credential expired: {0}")]
    Expired(membership::Error),
    #[error("credential revoked: {0}")]
    Revoked(membership::Error),
    #[error("forged: {0}")]
    Forged(String),
    #[error("{0}")]
    Trust(#[from] trust::Error),
    #[error("invalid item: {0}")]
    Invalid(#[from] Invalid),
    #[error("policy violation: {0}")]
    Policy(String),
    #[error("already known")]
    Duplicate,
}

/// Rejection reasons as counters: what `heir mesh status` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Malformed,
    NotMember,
    Expired,
    Revoked,
    Forged,
    Stale,
    Replay,
    RateLimited,
    Invalid,
    Policy,
    Duplicate,
}

impl Rejection {
    pub fn reason(&self) -> Reason {
        match self {
            Rejection::Malformed(_) => Reason::Malformed,
            Rejection::NotMember(_) => Reason::NotMember,
            Rejection::Expired(_) => Reason::Expired,
            Rejection::Revoked(_) => Reason::Revoked,
            Rejection::Forged(_) => Reason::Forged,
            Rejection::Trust(trust::Error::Stale { .. } | trust::Error::Future { .. }) => Reason::Stale,
            Rejection::Trust(trust::Error::Replay) => Reason::Replay,
            Rejection::Trust(trust::Error::RateLimited) => Reason::RateLimited,
            Rejection::Invalid(_) => Reason::Invalid,
            Rejection::Policy(_) => Reason::Policy,
            Rejection::Duplicate => Reason::Duplicate,
        }
    }

    /// What gossipsub is told. Checks every honest node makes identically (membership,
    /// signatures, schema) reject and penalise whoever relayed the message; checks that
    /// depend on timing (rate, replay, freshness) penalise only an author that sent it itself,
    /// so honest relays are not punished for a neighbour's clock.
    pub fn acceptance(&self, relayed_by_author: bool) -> MessageAcceptance {
        match self {
            Rejection::Duplicate => MessageAcceptance::Ignore,
            Rejection::Trust(_) if !relayed_by_author => MessageAcceptance::Ignore,
            _ => MessageAcceptance::Reject,
        }
    }
}

/// A message that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    /// The item, unless it was sealed for a sharing group this node is not in.
    pub item: Option<Item>,
    pub hospital: String,
    pub author: PeerId,
}

pub struct Validator {
    consortium: ConsortiumId,
    revocations: Revocations,
    replay: ReplayGuard,
    rate: RateLimiter,
    clock: SharedClock,
    /// Hashes of credentials whose consortium signature was already checked.
    verified: HashSet<[u8; 32]>,
    counts: BTreeMap<Reason, u64>,
    accepted: u64,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("consortium", &self.consortium).field("counts", &self.counts).finish_non_exhaustive()
    }
}

impl Validator {
    pub fn new(consortium: ConsortiumId, revocations: Revocations, config: &trust::Config, clock: SharedClock) -> Self {
        Self {
            consortium,
            revocations,
            replay: ReplayGuard::new(config.max_age, config.max_skew, 200_000),
            rate: RateLimiter::new(config.burst, config.per_minute),
            clock,
            verified: HashSet::new(),
            counts: BTreeMap::new(),
            accepted: 0,
        }
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Installs a newer revocation list (already verified or not: it is checked here).
    pub fn update_revocations(&mut self, list: Revocations) -> Result<bool, membership::Error> {
        self.revocations.update(list, &self.consortium)
    }

    pub fn rejections(&self) -> &BTreeMap<Reason, u64> {
        &self.counts
    }

    /// Counts a refusal decided outside [`Validator::validate`] (e.g. a backfill request
    /// from a non-member), so status shows every refusal.
    pub fn count(&mut self, reason: Reason) {
        *self.counts.entry(reason).or_default() += 1;
    }

    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Records that this node itself published `envelope`, so a copy coming back is known.
    pub fn record_own(&mut self, envelope: &Envelope) {
        self.replay.record(&envelope.credential.member, &envelope.nonce, self.clock.now());
    }

    pub fn validate(&mut self, bytes: &[u8], origin: Origin, keys: &Keyring) -> Result<Accepted, Rejection> {
        let r = self.check(bytes, origin, keys);
        match &r {
            Ok(_) => self.accepted += 1,
            Err(e) => *self.counts.entry(e.reason()).or_default() += 1,
        }
        r
    }

    fn check(&mut self, bytes: &[u8], origin: Origin, keys: &Keyring) -> Result<Accepted, Rejection> {
        let now = self.clock.now();
        let env = Envelope::decode(bytes)?;
        let cred = &env.credential;

        let digest = *blake3::hash(&postcard::to_allocvec(cred).unwrap_or_default()).as_bytes();
        if !self.verified.contains(&digest) {
            cred.verify_signature(&self.consortium).map_err(Rejection::NotMember)?;
            if self.verified.len() > 10_000 {
                self.verified.clear();
            }
            self.verified.insert(digest);
        }
        // A stored message stays valid after its author's credential lapses; live and
        // backfilled ones must come from a current member.
        let when = if origin == Origin::Store { env.issued } else { now };
        if let Err(e) = cred.check_time_and_revocation(&self.revocations, when) {
            return Err(match e {
                membership::Error::Revoked(_) => Rejection::Revoked(e),
                _ => Rejection::Expired(e),
            });
        }
        if origin != Origin::Store {
            // Messages issued while a credential was valid are judged by issue time too.
            cred.check_time_and_revocation(&self.revocations, env.issued).map_err(Rejection::Expired)?;
        }
        let author = cred.peer_id().map_err(Rejection::NotMember)?;
        if let Origin::Gossip { author: source, .. } = origin
            && source != Some(author)
        {
            return Err(Rejection::Forged(format!(
                "gossip author {} is not the credential's member {author}",
                source.map_or_else(|| "(none)".to_owned(), |p| p.to_string())
            )));
        }
        env.verify_signature().map_err(|e| Rejection::Forged(e.to_string()))?;

        match origin {
            Origin::Gossip { .. } => {
                self.replay.check_fresh(env.issued, now)?;
                if self.replay.seen(&cred.member, &env.nonce) {
                    return Err(trust::Error::Replay.into());
                }
                if !self.rate.allow(&cred.member, now) {
                    return Err(trust::Error::RateLimited.into());
                }
            }
            Origin::Backfill { .. } => {
                if env.issued > crate::clock::add(now, std::time::Duration::from_secs(60)) {
                    return Err(trust::Error::Future { issued: env.issued }.into());
                }
                if self.replay.seen(&cred.member, &env.nonce) {
                    return Err(Rejection::Duplicate);
                }
            }
            Origin::Store => {}
        }

        let item = match &env.body {
            Body::Clear(item) => {
                if item.tlp().reach() != Reach::Consortium {
                    return Err(Rejection::Policy(format!("{} item sent in clear to the consortium", item.tlp())));
                }
                Some(item.clone())
            }
            Body::Sealed(s) => {
                if !cred.in_group(&s.group) {
                    return Err(Rejection::Policy(format!("author is not in sharing group `{}`", s.group)));
                }
                match keys.get(&s.group, s.epoch) {
                    Ok(key) => {
                        let plain = key.open(s, &env.context()).map_err(|e| Rejection::Forged(e.to_string()))?;
                        let item: Item = postcard::from_bytes(&plain)
                            .map_err(|e| Rejection::Malformed(wire::Error::Decode(format!("sealed item: {e}"))))?;
                        if item.tlp() == Tlp::Red {
                            return Err(Rejection::Policy("TLP:RED item sent to a sharing group".into()));
                        }
                        Some(item)
                    }
                    // Not ours to read: relay it for the group's members.
                    Err(_) => None,
                }
            }
            Body::Revocations(list) => {
                self.revocations.update(list.clone(), &self.consortium).map_err(|e| match e {
                    membership::Error::StaleRevocations { .. } => Rejection::Duplicate,
                    e => Rejection::Forged(e.to_string()),
                })?;
                None
            }
        };
        if let Some(item) = &item {
            item.check()?;
            if let Item::Indicator(i) = item
                && let Observable::Ip(ip) = i.observable
                && always_internal(ip)
            {
                return Err(Rejection::Policy(format!("indicator names internal address {ip}")));
            }
        }
        self.replay.record(&cred.member, &env.nonce, now);
        let hospital = cred.hospital.clone();
        Ok(Accepted { bytes: bytes.to_vec(), item, hospital, author, envelope: env })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
