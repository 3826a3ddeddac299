//! The consortium: who may speak on the mesh.
//!
//! A consortium is an Ed25519 key held by whoever admits hospitals. A hospital's node joins
//! with a [`Credential`]: its own public keys signed by the consortium key, with an expiry and
//! the sharing groups it belongs to. Every message carries its author's credential, so any node
//! can check membership without asking anyone, and revocation is a signed list of serials.

use std::collections::BTreeSet;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use heir_model::Timestamp;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::group::WrappedKey;

const CREDENTIAL_CONTEXT: &[u8] = b"heir-mesh credential v1";
const REVOCATION_CONTEXT: &[u8] = b"heir-mesh revocations v1";
const INVITE_PREFIX: &str = "heir-invite1:";
const JOIN_PREFIX: &str = "heir-join1:";

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("credential was signed by consortium {found}, not by ours ({expected})")]
    WrongConsortium { expected: String, found: String },
    #[error("credential signature does not verify")]
    BadSignature,
    #[error("credential serial {serial} expired at {expires}")]
    Expired { serial: u64, expires: Timestamp },
    #[error("credential serial {serial} is not valid before {not_before}")]
    NotYetValid { serial: u64, not_before: Timestamp },
    #[error("credential serial {0} is revoked")]
    Revoked(u64),
    #[error("member key is not a valid Ed25519 public key")]
    BadMemberKey,
    #[error("{what} is not valid: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("the invitation is for member {invited}, but this node is {ours}")]
    NotForUs { invited: String, ours: String },
    #[error("revocation list version {found} is older than the one in force ({current})")]
    StaleRevocations { current: u64, found: u64 },
}

/// The consortium's secret signing key. Only the admitting node holds it.
pub struct ConsortiumKey(SigningKey);

impl ConsortiumKey {
    pub fn generate() -> Self {
        let seed = Zeroizing::new(rand::random::<[u8; 32]>());
        Self(SigningKey::from_bytes(&seed))
    }

    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> ConsortiumId {
        ConsortiumId(self.0.verifying_key().to_bytes())
    }

    /// Admits a member: signs its keys, hospital label and groups until `expires`.
    pub fn issue(&self, request: &JoinRequest, terms: Terms) -> Credential {
        let mut c = Credential {
            consortium: self.public().0,
            member: request.member,
            agreement: request.agreement,
            hospital: terms.hospital,
            groups: terms.groups,
            serial: terms.serial,
            issued: terms.issued,
            expires: terms.expires,
            signature: Vec::new(),
        };
        c.signature = self.0.sign(&c.signed_bytes()).to_bytes().to_vec();
        c
    }

    /// Signs a revocation list; `version` must grow with every new list.
    pub fn revoke(&self, version: u64, serials: BTreeSet<u64>) -> Revocations {
        let mut r = Revocations {
            consortium: self.public().0,
            version,
            serials,
            signature: Vec::new(),
        };
        r.signature = self.0.sign(&r.signed_bytes()).to_bytes().to_vec();
        r
    }
}

impl fmt::Debug for ConsortiumKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsortiumKey({})", self.public())
    }
}

/// The consortium's public key: what every node checks credentials against.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsortiumId(pub [u8; 32]);

impl fmt::Display for ConsortiumId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ConsortiumId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsortiumId({self})")
    }
}

/// What the consortium grants a member.
#[derive(Debug, Clone)]
pub struct Terms {
    /// Opaque label of the hospital (e.g. "H-0042"); corroboration counts distinct labels, so
    /// a hospital running several nodes counts once.
    pub hospital: String,
    pub groups: Vec<String>,
    pub serial: u64,
    pub issued: Timestamp,
    pub expires: Timestamp,
}

/// A node's public keys, which it hands to the consortium to be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Ed25519 public key: the node's libp2p identity.
    pub member: [u8; 32],
    /// X25519 public key: group keys are wrapped to it.
    pub agreement: [u8; 32],
}

impl JoinRequest {
    pub fn peer_id(&self) -> Result<PeerId, Error> {
        peer_id_of(&self.member)
    }

    /// Text form to copy between hospitals (`heir mesh join-request` output).
    pub fn encode(&self) -> String {
        format!(
            "{JOIN_PREFIX}{}",
            hex::encode(postcard::to_allocvec(self).expect("fixed-size record"))
        )
    }

    pub fn decode(s: &str) -> Result<Self, Error> {
        decode_text(s, JOIN_PREFIX, "join request")
    }
}

/// A member's credential. Carried in every envelope, checked on every message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Credential {
    pub consortium: [u8; 32],
    pub member: [u8; 32],
    pub agreement: [u8; 32],
    pub hospital: String,
    pub groups: Vec<String>,
    pub serial: u64,
    pub issued: Timestamp,
    pub expires: Timestamp,
    pub signature: Vec<u8>,
}

impl Credential {
    fn signed_bytes(&self) -> Vec<u8> {
        let body = (
            &self.consortium,
            &self.member,
            &self.agreement,
            &self.hospital,
            &self.groups,
            self.serial,
            self.issued,
            self.expires,
        );
        let mut out = CREDENTIAL_CONTEXT.to_vec();
        out.extend(postcard::to_allocvec(&body).expect("credential fields serialise"));
        out
    }

    /// The signature alone: that the consortium issued exactly this credential.
    pub fn verify_signature(&self, consortium: &ConsortiumId) -> Result<(), Error> {
        if self.consortium != consortium.0 {
            return Err(Error::WrongConsortium {
                expected: consortium.to_string(),
                found: hex::encode(self.consortium),
            });
        }
        let key = VerifyingKey::from_bytes(&consortium.0).map_err(|_| Error::BadSignature)?;
        let sig = Signature::from_slice(&self.signature).map_err(|_| Error::BadSignature)?;
        key.verify(&self.signed_bytes(), &sig)
            .map_err(|_| Error::BadSignature)
    }

    /// Signature, validity window and revocation, at time `now`.
    pub fn verify(
        &self,
        consortium: &ConsortiumId,
        revoked: &Revocations,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.verify_signature(consortium)?;
        self.check_time_and_revocation(revoked, now)
    }

    pub(crate) fn check_time_and_revocation(
        &self,
        revoked: &Revocations,
        now: Timestamp,
    ) -> Result<(), Error> {
        if now < self.issued {
            return Err(Error::NotYetValid {
                serial: self.serial,
                not_before: self.issued,
            });
        }
        if now >= self.expires {
            return Err(Error::Expired {
                serial: self.serial,
                expires: self.expires,
            });
        }
        if revoked.serials.contains(&self.serial) {
            return Err(Error::Revoked(self.serial));
        }
        Ok(())
    }

    pub fn peer_id(&self) -> Result<PeerId, Error> {
        peer_id_of(&self.member)
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

pub(crate) fn peer_id_of(member: &[u8; 32]) -> Result<PeerId, Error> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(member)
        .map_err(|_| Error::BadMemberKey)?;
    Ok(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

/// Serials the consortium has withdrawn. Newer versions replace older ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    pub consortium: [u8; 32],
    pub version: u64,
    pub serials: BTreeSet<u64>,
    pub signature: Vec<u8>,
}

impl Revocations {
    /// The empty list a consortium starts with; needs no signature since it revokes nothing.
    pub fn empty(consortium: ConsortiumId) -> Self {
        Self {
            consortium: consortium.0,
            version: 0,
            serials: BTreeSet::new(),
            signature: Vec::new(),
        }
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = REVOCATION_CONTEXT.to_vec();
        out.extend(
            postcard::to_allocvec(&(&self.consortium, self.version, &self.serials))
                .expect("serialises"),
        );
        out
    }

    pub fn verify(&self, consortium: &ConsortiumId) -> Result<(), Error> {
        if self.consortium != consortium.0 {
            return Err(Error::WrongConsortium {
                expected: consortium.to_string(),
                found: hex::encode(self.consortium),
            });
        }
        if self.version == 0 && self.serials.is_empty() {
            return Ok(());
        }
        let key = VerifyingKey::from_bytes(&consortium.0).map_err(|_| Error::BadSignature)?;
        let sig = Signature::from_slice(&self.signature).map_err(|_| Error::BadSignature)?;
        key.verify(&self.signed_bytes(), &sig)
            .map_err(|_| Error::BadSignature)
    }

    /// Replaces `self` with `newer` if it verifies and is newer.
    pub fn update(&mut self, newer: Revocations, consortium: &ConsortiumId) -> Result<bool, Error> {
        newer.verify(consortium)?;
        if newer.version < self.version {
            return Err(Error::StaleRevocations {
                current: self.version,
                found: newer.version,
            });
        }
        let changed = newer.version > self.version;
        if changed {
            *self = newer;
        }
        Ok(changed)
    }
}

/// Everything a new member needs: its credential, the consortium key to check others
/// against, where to find the mesh, and its sharing groups' current keys wrapped to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub credential: Credential,
    pub consortium: ConsortiumId,
    pub bootstrap: Vec<String>,
    pub group_keys: Vec<WrappedKey>,
}

impl Invite {
    pub fn encode(&self) -> String {
        format!(
            "{INVITE_PREFIX}{}",
            hex::encode(postcard::to_allocvec(self).expect("invite serialises"))
        )
    }

    pub fn decode(s: &str) -> Result<Self, Error> {
        decode_text(s, INVITE_PREFIX, "invite")
    }

    /// Checks the invite is genuine, current, and addressed to the node holding `member`.
    pub fn check(&self, member: &[u8; 32], now: Timestamp) -> Result<(), Error> {
        self.credential
            .verify(&self.consortium, &Revocations::empty(self.consortium), now)?;
        if &self.credential.member != member {
            return Err(Error::NotForUs {
                invited: self.credential.peer_id()?.to_string(),
                ours: peer_id_of(member)?.to_string(),
            });
        }
        Ok(())
    }
}

fn decode_text<T: serde::de::DeserializeOwned>(
    s: &str,
    prefix: &str,
    what: &'static str,
) -> Result<T, Error> {
    let body = s.trim().strip_prefix(prefix).ok_or_else(|| Error::Decode {
        what,
        reason: format!("expected it to start with `{prefix}`"),
    })?;
    let bytes = hex::decode(body).map_err(|e| Error::Decode {
        what,
        reason: e.to_string(),
    })?;
    postcard::from_bytes(&bytes).map_err(|e| Error::Decode {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn terms(serial: u64) -> Terms {
        Terms {
            hospital: "H-1".into(),
            groups: vec!["radiology".into()],
            serial,
            issued: Timestamp::from_secs(100),
            expires: Timestamp::from_secs(200),
        }
    }

    #[test]
    fn credential_checks_signature_window_and_revocation() {
        let ck = ConsortiumKey::generate();
        let id = Identity::generate();
        let cred = ck.issue(&id.join_request(), terms(7));
        let none = Revocations::empty(ck.public());
        assert_eq!(
            cred.verify(&ck.public(), &none, Timestamp::from_secs(150)),
            Ok(())
        );
        assert!(matches!(
            cred.verify(&ck.public(), &none, Timestamp::from_secs(200)),
            Err(Error::Expired { .. })
        ));
        assert!(matches!(
            cred.verify(&ck.public(), &none, Timestamp::from_secs(50)),
            Err(Error::NotYetValid { .. })
        ));
        let revoked = ck.revoke(1, [7].into());
        assert_eq!(
            cred.verify(&ck.public(), &revoked, Timestamp::from_secs(150)),
            Err(Error::Revoked(7))
        );
        let other = ConsortiumKey::generate();
        assert!(matches!(
            cred.verify(&other.public(), &none, Timestamp::from_secs(150)),
            Err(Error::WrongConsortium { .. })
        ));
        let mut tampered = cred.clone();
        tampered.expires = Timestamp::from_secs(10_000);
        assert_eq!(
            tampered.verify(&ck.public(), &none, Timestamp::from_secs(150)),
            Err(Error::BadSignature)
        );
        assert_eq!(cred.peer_id().unwrap(), id.peer_id());
    }

    #[test]
    fn revocations_only_move_forward_and_must_be_signed() {
        let ck = ConsortiumKey::generate();
        let mut current = Revocations::empty(ck.public());
        assert_eq!(
            current.update(ck.revoke(2, [1].into()), &ck.public()),
            Ok(true)
        );
        assert!(matches!(
            current.update(ck.revoke(1, [].into()), &ck.public()),
            Err(Error::StaleRevocations { .. })
        ));
        let forged = ConsortiumKey::generate().revoke(3, [9].into());
        assert!(current.update(forged, &ck.public()).is_err());
        assert_eq!(current.version, 2);
    }

    #[test]
    fn invites_round_trip_and_bind_to_the_member() {
        let ck = ConsortiumKey::generate();
        let id = Identity::generate();
        let inv = Invite {
            credential: ck.issue(&id.join_request(), terms(1)),
            consortium: ck.public(),
            bootstrap: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            group_keys: vec![],
        };
        let text = inv.encode();
        let back = Invite::decode(&text).unwrap();
        assert_eq!(back, inv);
        assert_eq!(
            back.check(&id.join_request().member, Timestamp::from_secs(150)),
            Ok(())
        );
        let other = Identity::generate();
        assert!(matches!(
            back.check(&other.join_request().member, Timestamp::from_secs(150)),
            Err(Error::NotForUs { .. })
        ));
        assert!(matches!(
            Invite::decode("heir-invite1:zz"),
            Err(Error::Decode { what: "invite", .. })
        ));
        assert!(matches!(
            Invite::decode("nonsense"),
            Err(Error::Decode { .. })
        ));
        let jr = id.join_request();
        assert_eq!(JoinRequest::decode(&jr.encode()).unwrap(), jr);
    }
}
