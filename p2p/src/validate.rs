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
    Gossip {
        author: Option<PeerId>,
        propagation: PeerId,
    },
    /// Handed over by `from` in a backfill: old by nature and arriving in bulk, so not held
    /// to freshness, and rate-limited by when it was issued rather than when it arrived.
    Backfill { from: PeerId },
    /// Read back from this node's own store.
    Store,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed")]
    Malformed(#[from] wire::Error),
    #[error("not a member")]
    NotMember(#[source] membership::Error),
    #[error("credential expired")]
    Expired(#[source] membership::Error),
    #[error("credential revoked")]
    Revoked(#[source] membership::Error),
    #[error("forged: {0}")]
    Forged(String),
    #[error(transparent)]
    Trust(#[from] trust::Error),
    #[error("invalid item")]
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
            Rejection::Trust(trust::Error::Stale { .. } | trust::Error::Future { .. }) => {
                Reason::Stale
            }
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
    /// Per-author rate by arrival time, for live gossip.
    rate: RateLimiter,
    /// Per-author rate by issue time: bounds what a backfill may deliver to what the author
    /// could have published live.
    issued_rate: RateLimiter,
    clock: SharedClock,
    /// Hashes of credentials whose consortium signature was already checked.
    verified: HashSet<[u8; 32]>,
    counts: BTreeMap<Reason, u64>,
    accepted: u64,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("consortium", &self.consortium)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Validator {
    pub fn new(
        consortium: ConsortiumId,
        revocations: Revocations,
        config: &trust::Config,
        clock: SharedClock,
    ) -> Self {
        Self {
            consortium,
            revocations,
            replay: ReplayGuard::new(config.max_age, config.max_skew, 200_000),
            rate: RateLimiter::new(config.burst, config.per_minute),
            issued_rate: RateLimiter::new(config.burst, config.per_minute),
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
        self.replay.record(
            &envelope.credential.member,
            &envelope.nonce,
            self.clock.now(),
        );
    }

    pub fn validate(
        &mut self,
        bytes: &[u8],
        origin: Origin,
        keys: &Keyring,
    ) -> Result<Accepted, Rejection> {
        let r = self.check(bytes, origin, keys);
        match &r {
            Ok(_) => self.accepted += 1,
            Err(e) => *self.counts.entry(e.reason()).or_default() += 1,
        }
        r
    }

    fn check(
        &mut self,
        bytes: &[u8],
        origin: Origin,
        keys: &Keyring,
    ) -> Result<Accepted, Rejection> {
        let now = self.clock.now();
        let env = Envelope::decode(bytes)?;
        let cred = &env.credential;

        let digest = *blake3::hash(&postcard::to_allocvec(cred).unwrap_or_default()).as_bytes();
        if !self.verified.contains(&digest) {
            cred.verify_signature(&self.consortium)
                .map_err(Rejection::NotMember)?;
            if self.verified.len() > 10_000 {
                self.verified.clear();
            }
            self.verified.insert(digest);
        }
        // A stored message stays valid after its author's credential lapses; live and
        // backfilled ones must come from a current member.
        let when = if origin == Origin::Store {
            env.issued
        } else {
            now
        };
        if let Err(e) = cred.check_time_and_revocation(&self.revocations, when) {
            return Err(match e {
                membership::Error::Revoked(_) => Rejection::Revoked(e),
                _ => Rejection::Expired(e),
            });
        }
        if origin != Origin::Store {
            // Messages issued while a credential was valid are judged by issue time too.
            cred.check_time_and_revocation(&self.revocations, env.issued)
                .map_err(Rejection::Expired)?;
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
        env.verify_signature()
            .map_err(|e| Rejection::Forged(e.to_string()))?;

        match origin {
            Origin::Gossip { .. } => {
                self.replay.check_fresh(env.issued, now)?;
                if self.replay.seen(&cred.member, &env.nonce) {
                    return Err(trust::Error::Replay.into());
                }
                if !self.rate.allow(&cred.member, now) {
                    return Err(trust::Error::RateLimited.into());
                }
                // Also spend from the issue-time bucket, so the same messages cannot be
                // pushed again through a backfill.
                self.issued_rate.allow(&cred.member, env.issued);
            }
            Origin::Backfill { .. } => {
                if env.issued > crate::clock::add(now, std::time::Duration::from_secs(60)) {
                    return Err(trust::Error::Future { issued: env.issued }.into());
                }
                if self.replay.seen(&cred.member, &env.nonce) {
                    return Err(Rejection::Duplicate);
                }
                if !self.issued_rate.allow(&cred.member, env.issued) {
                    return Err(trust::Error::RateLimited.into());
                }
            }
            Origin::Store => {}
        }

        let item = match &env.body {
            Body::Clear(item) => {
                if item.tlp().reach() != Reach::Consortium {
                    return Err(Rejection::Policy(format!(
                        "{} item sent in clear to the consortium",
                        item.tlp()
                    )));
                }
                Some(item.clone())
            }
            Body::Sealed(s) => {
                if !cred.in_group(&s.group) {
                    return Err(Rejection::Policy(format!(
                        "author is not in sharing group `{}`",
                        s.group
                    )));
                }
                match keys.get(&s.group, s.epoch) {
                    Ok(key) => {
                        let plain = key
                            .open(s, &env.context())
                            .map_err(|e| Rejection::Forged(e.to_string()))?;
                        let item: Item = postcard::from_bytes(&plain).map_err(|e| {
                            Rejection::Malformed(wire::Error::Decode(format!("sealed item: {e}")))
                        })?;
                        if item.tlp() == Tlp::Red {
                            return Err(Rejection::Policy(
                                "TLP:RED item sent to a sharing group".into(),
                            ));
                        }
                        Some(item)
                    }
                    // Not ours to read: relay it for the group's members.
                    Err(_) => None,
                }
            }
            Body::Revocations(list) => {
                self.revocations
                    .update(list.clone(), &self.consortium)
                    .map_err(|e| match e {
                        membership::Error::StaleRevocations { .. } => Rejection::Duplicate,
                        e => Rejection::Forged(e.to_string()),
                    })?;
                None
            }
            Body::GroupKeys(keys) => {
                let Some(first) = keys.first() else {
                    return Err(Rejection::Policy("empty group key rotation".into()));
                };
                if keys
                    .iter()
                    .any(|k| k.group != first.group || k.epoch != first.epoch)
                {
                    return Err(Rejection::Policy(
                        "group key rotation mixes groups or epochs".into(),
                    ));
                }
                if !cred.in_group(&first.group) {
                    return Err(Rejection::Policy(format!(
                        "author is not in sharing group `{}`",
                        first.group
                    )));
                }
                None
            }
        };
        if let Some(item) = &item {
            item.check()?;
            if let Item::Indicator(i) = item
                && let Observable::Ip(ip) = i.observable
                && always_internal(ip)
            {
                return Err(Rejection::Policy(format!(
                    "indicator names internal address {ip}"
                )));
            }
        }
        self.replay.record(&cred.member, &env.nonce, now);
        let hospital = cred.hospital.clone();
        Ok(Accepted {
            bytes: bytes.to_vec(),
            item,
            hospital,
            author,
            envelope: env,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use heir_model::{Category, Severity};

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::group::GroupKey;
    use crate::identity::Identity;
    use crate::indicator::Indicator;
    use crate::membership::{ConsortiumKey, Credential, Terms};

    const T0: u64 = 1_800_000_000;

    struct World {
        ck: ConsortiumKey,
        clock: ManualClock,
        v: Validator,
        keys: Keyring,
    }

    fn world(config: trust::Config) -> World {
        let ck = ConsortiumKey::generate();
        let clock = ManualClock::new(Timestamp::from_secs(T0));
        let v = Validator::new(
            ck.public(),
            Revocations::empty(ck.public()),
            &config,
            Arc::new(clock.clone()),
        );
        let mut keys = Keyring::default();
        keys.insert(GroupKey::generate("icu", 1));
        World { ck, clock, v, keys }
    }

    fn member(ck: &ConsortiumKey, serial: u64, groups: &[&str]) -> (Identity, Credential) {
        let id = Identity::generate();
        let c = ck.issue(
            &id.join_request(),
            Terms {
                hospital: format!("H-{serial}"),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                serial,
                issued: Timestamp::from_secs(T0 - 10_000),
                expires: Timestamp::from_secs(T0 + 3600),
            },
        );
        (id, c)
    }

    fn item(n: u8) -> Item {
        let mut i = Indicator::new(
            Observable::Ip(format!("198.51.100.{n}").parse().unwrap()),
            Category::PortScan,
            Severity::Medium,
            Timestamp::from_secs(T0),
        );
        i.confidence = 70;
        Item::Indicator(i)
    }

    fn gossip(id: &Identity) -> Origin {
        Origin::Gossip {
            author: Some(id.peer_id()),
            propagation: id.peer_id(),
        }
    }

    #[test]
    fn accepts_a_member_and_refuses_the_rest() {
        let mut w = world(trust::Config::default());
        let now = w.clock.now();
        let (id, cred) = member(&w.ck, 1, &[]);
        let ok = Envelope::clear(&id, &cred, now, item(1)).encode();
        let acc = w.v.validate(&ok, gossip(&id), &w.keys).unwrap();
        assert_eq!(acc.hospital, "H-1");
        assert_eq!(acc.item, Some(item(1)));

        // Non-member: credential from another consortium.
        let other = ConsortiumKey::generate();
        let (rid, rcred) = member(&other, 1, &[]);
        let e =
            w.v.validate(
                &Envelope::clear(&rid, &rcred, now, item(2)).encode(),
                gossip(&rid),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::NotMember);
        assert_eq!(e.acceptance(true), MessageAcceptance::Reject);

        // Impersonation: gossip author differs from the credential's member.
        let (mid, _) = member(&w.ck, 2, &[]);
        let e =
            w.v.validate(
                &Envelope::clear(&mid, &cred, now, item(3)).encode(),
                gossip(&mid),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::Forged);
        // Right author, wrong signing key.
        let e =
            w.v.validate(
                &Envelope::clear(&mid, &cred, now, item(3)).encode(),
                gossip(&id),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::Forged);

        // Replay of the accepted message, by the author and by a relay.
        let e = w.v.validate(&ok, gossip(&id), &w.keys).unwrap_err();
        assert_eq!(e.reason(), Reason::Replay);
        assert_eq!(e.acceptance(true), MessageAcceptance::Reject);
        assert_eq!(e.acceptance(false), MessageAcceptance::Ignore);

        // Malformed bytes and trailing garbage.
        assert_eq!(
            w.v.validate(b"\x01\x02", gossip(&id), &w.keys)
                .unwrap_err()
                .reason(),
            Reason::Malformed
        );
        let mut long = Envelope::clear(&id, &cred, now, item(4)).encode();
        long.push(0);
        assert_eq!(
            w.v.validate(&long, gossip(&id), &w.keys)
                .unwrap_err()
                .reason(),
            Reason::Malformed
        );

        // Stale and future-dated.
        let old = Envelope::clear(&id, &cred, Timestamp::from_secs(T0 - 1000), item(5)).encode();
        assert_eq!(
            w.v.validate(&old, gossip(&id), &w.keys)
                .unwrap_err()
                .reason(),
            Reason::Stale
        );
        let future = Envelope::clear(&id, &cred, Timestamp::from_secs(T0 + 1000), item(6)).encode();
        assert_eq!(
            w.v.validate(&future, gossip(&id), &w.keys)
                .unwrap_err()
                .reason(),
            Reason::Stale
        );

        assert_eq!(w.v.accepted(), 1);
        assert_eq!(w.v.rejections()[&Reason::Forged], 2);
    }

    #[test]
    fn expiry_and_revocation_follow_the_clock_and_the_list() {
        let mut w = world(trust::Config::default());
        let (id, cred) = member(&w.ck, 7, &[]);
        let msg = |n| Envelope::clear(&id, &cred, w.clock.now(), item(n)).encode();
        let m = msg(1);
        assert!(w.v.validate(&m, gossip(&id), &w.keys).is_ok());
        w.v.update_revocations(w.ck.revoke(1, [7].into())).unwrap();
        let m = Envelope::clear(&id, &cred, w.clock.now(), item(2)).encode();
        assert_eq!(
            w.v.validate(&m, gossip(&id), &w.keys).unwrap_err().reason(),
            Reason::Revoked
        );
        w.v.update_revocations(w.ck.revoke(2, [].into())).unwrap();
        w.clock.advance(Duration::from_secs(3600));
        let m = Envelope::clear(&id, &cred, w.clock.now(), item(3)).encode();
        assert_eq!(
            w.v.validate(&m, gossip(&id), &w.keys).unwrap_err().reason(),
            Reason::Expired
        );
    }

    #[test]
    fn rate_limit_is_per_author_and_refills() {
        let mut w = world(trust::Config {
            burst: 2,
            per_minute: 60,
            ..trust::Config::default()
        });
        let (a, ca) = member(&w.ck, 1, &[]);
        let (b, cb) = member(&w.ck, 2, &[]);
        let now = w.clock.now();
        for n in 0..2 {
            assert!(
                w.v.validate(
                    &Envelope::clear(&a, &ca, now, item(n)).encode(),
                    gossip(&a),
                    &w.keys
                )
                .is_ok()
            );
        }
        let e =
            w.v.validate(
                &Envelope::clear(&a, &ca, now, item(9)).encode(),
                gossip(&a),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::RateLimited);
        assert!(
            w.v.validate(
                &Envelope::clear(&b, &cb, now, item(9)).encode(),
                gossip(&b),
                &w.keys
            )
            .is_ok()
        );
        w.clock.advance(Duration::from_secs(1));
        let now = w.clock.now();
        assert!(
            w.v.validate(
                &Envelope::clear(&a, &ca, now, item(10)).encode(),
                gossip(&a),
                &w.keys
            )
            .is_ok()
        );
    }

    #[test]
    fn tlp_and_groups_are_enforced_on_receipt() {
        let mut w = world(trust::Config::default());
        let now = w.clock.now();
        let (id, cred) = member(&w.ck, 1, &["icu"]);
        let (out, out_cred) = member(&w.ck, 2, &[]);
        let mut amber = item(1);
        if let Item::Indicator(i) = &mut amber {
            i.tlp = Tlp::Amber;
        }
        // AMBER in clear is a sender's breach.
        let e =
            w.v.validate(
                &Envelope::clear(&id, &cred, now, amber.clone()).encode(),
                gossip(&id),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::Policy);
        // Sealed for the group: opens with the group key.
        let key = w.keys.current("icu").unwrap().clone();
        let sealed = Envelope::sealed(&id, &cred, now, &amber, &key).encode();
        assert_eq!(
            w.v.validate(&sealed, gossip(&id), &w.keys).unwrap().item,
            Some(amber.clone())
        );
        // A node without the key relays it unread.
        let mut w2 = world(trust::Config::default());
        w2.v = Validator::new(
            w.ck.public(),
            Revocations::empty(w.ck.public()),
            &trust::Config::default(),
            Arc::new(w.clock.clone()),
        );
        assert_eq!(
            w2.v.validate(&sealed, gossip(&id), &Keyring::default())
                .unwrap()
                .item,
            None
        );
        // An author outside the group may not seal for it.
        let e =
            w.v.validate(
                &Envelope::sealed(&out, &out_cred, now, &amber, &key).encode(),
                gossip(&out),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::Policy);
        // Internal address in a clear indicator.
        let leak = Item::Indicator(Indicator::new(
            Observable::Ip("10.0.0.1".parse().unwrap()),
            Category::PortScan,
            Severity::Low,
            now,
        ));
        let e =
            w.v.validate(
                &Envelope::clear(&id, &cred, now, leak).encode(),
                gossip(&id),
                &w.keys,
            )
            .unwrap_err();
        assert_eq!(e.reason(), Reason::Policy);
    }

    #[test]
    fn backfill_cannot_bypass_the_rate_limit() {
        let mut w = world(trust::Config {
            burst: 2,
            per_minute: 1,
            ..trust::Config::default()
        });
        let (a, ca) = member(&w.ck, 1, &[]);
        let from = Identity::generate().peer_id();
        let now = w.clock.now();
        let flood: Vec<Vec<u8>> = (0..5)
            .map(|n| Envelope::clear(&a, &ca, now, item(n)).encode())
            .collect();
        let live: Vec<bool> = flood
            .iter()
            .map(|m| w.v.validate(m, gossip(&a), &w.keys).is_ok())
            .collect();
        assert_eq!(live, [true, true, false, false, false]);
        // The author then offers its whole log in a backfill: the two known are duplicates,
        // the rest are still over its rate.
        let reasons: Vec<Reason> = flood
            .iter()
            .map(|m| {
                w.v.validate(m, Origin::Backfill { from }, &w.keys)
                    .unwrap_err()
                    .reason()
            })
            .collect();
        assert_eq!(
            reasons,
            [
                Reason::Duplicate,
                Reason::Duplicate,
                Reason::RateLimited,
                Reason::RateLimited,
                Reason::RateLimited
            ]
        );
        // Messages issued at the author's sustained rate pass a backfill.
        let (b, cb) = member(&w.ck, 2, &[]);
        for n in 0..5u64 {
            let m = Envelope::clear(
                &b,
                &cb,
                Timestamp::from_secs(T0 - 600 + n * 60),
                item(n as u8),
            )
            .encode();
            assert!(
                w.v.validate(&m, Origin::Backfill { from }, &w.keys).is_ok(),
                "message {n}"
            );
        }
    }

    #[test]
    fn backfill_skips_known_and_accepts_old() {
        let mut w = world(trust::Config::default());
        let (id, cred) = member(&w.ck, 1, &[]);
        let from = Identity::generate().peer_id();
        let old = Envelope::clear(&id, &cred, Timestamp::from_secs(T0 - 2000), item(1)).encode();
        assert!(
            w.v.validate(&old, Origin::Backfill { from }, &w.keys)
                .is_ok(),
            "old is fine in a backfill"
        );
        assert_eq!(
            w.v.validate(&old, Origin::Backfill { from }, &w.keys)
                .unwrap_err(),
            Rejection::Duplicate
        );
        assert_eq!(
            Rejection::Duplicate.acceptance(true),
            MessageAcceptance::Ignore
        );
    }
}
