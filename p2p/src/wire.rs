//! The envelope every mesh message is: the author's credential, a nonce and time for replay
//! protection, the body (clear, or sealed for a sharing group) and the author's signature.
//!
//! Gossipsub signs messages too, but only hop by hop within gossip; the envelope signature
//! survives storage, so items handed over in a backfill are as verifiable as live ones.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use heir_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::group::{GroupKey, Sealed, WrappedKey};
use crate::identity::Identity;
use crate::indicator::Item;
use crate::membership::{Credential, Revocations};

pub const VERSION: u8 = 1;
/// Largest envelope accepted; gossipsub's transmit limit is set to match.
pub const MAX_ENVELOPE: usize = 16 * 1024;
const ENVELOPE_CONTEXT: &[u8] = b"heir-mesh envelope v1";

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("envelope of {0} bytes is larger than {MAX_ENVELOPE}")]
    TooLarge(usize),
    #[error("envelope does not decode: {0}")]
    Decode(String),
    #[error("envelope version {0} is not supported (this node speaks {VERSION})")]
    Version(u8),
    #[error("envelope signature does not verify against its credential's member key")]
    BadSignature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// For the whole consortium (TLP:CLEAR and GREEN).
    Clear(Item),
    /// For one sharing group (TLP:AMBER, AMBER+STRICT): a postcard-encoded [`Item`] sealed.
    Sealed(Sealed),
    /// The consortium's latest revocation list, relayed by any member.
    Revocations(Revocations),
    /// A sharing group's new key epoch, wrapped to each member of the group.
    GroupKeys(Vec<WrappedKey>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    pub credential: Credential,
    pub nonce: [u8; 16],
    pub issued: Timestamp,
    pub body: Body,
    pub signature: Vec<u8>,
}

impl Envelope {
    /// The header bound into sealed payloads, so a ciphertext cannot be moved to another
    /// envelope.
    pub(crate) fn header(member: &[u8; 32], nonce: &[u8; 16], issued: Timestamp) -> Vec<u8> {
        let mut h = Vec::with_capacity(56);
        h.extend_from_slice(member);
        h.extend_from_slice(nonce);
        h.extend_from_slice(&issued.as_nanos().to_le_bytes());
        h
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = ENVELOPE_CONTEXT.to_vec();
        let fields = (
            self.version,
            &self.credential.member,
            self.credential.serial,
            &self.nonce,
            self.issued,
            &self.body,
        );
        out.extend(postcard::to_allocvec(&fields).expect("envelope fields serialise"));
        out
    }

    fn new(
        identity: &Identity,
        credential: &Credential,
        issued: Timestamp,
        body: impl FnOnce(&[u8]) -> Body,
    ) -> Self {
        let nonce: [u8; 16] = rand::random();
        let body = body(&Self::header(&credential.member, &nonce, issued));
        let mut e = Self {
            version: VERSION,
            credential: credential.clone(),
            nonce,
            issued,
            body,
            signature: Vec::new(),
        };
        e.signature = identity.sign(&e.signed_bytes()).to_vec();
        e
    }

    pub fn clear(
        identity: &Identity,
        credential: &Credential,
        issued: Timestamp,
        item: Item,
    ) -> Self {
        Self::new(identity, credential, issued, |_| Body::Clear(item))
    }

    pub fn sealed(
        identity: &Identity,
        credential: &Credential,
        issued: Timestamp,
        item: &Item,
        key: &GroupKey,
    ) -> Self {
        let plain = zeroize::Zeroizing::new(postcard::to_allocvec(item).expect("items serialise"));
        Self::new(identity, credential, issued, |hdr| {
            Body::Sealed(key.seal(&plain, hdr))
        })
    }

    pub fn revocations(
        identity: &Identity,
        credential: &Credential,
        issued: Timestamp,
        list: Revocations,
    ) -> Self {
        Self::new(identity, credential, issued, |_| Body::Revocations(list))
    }

    pub fn group_keys(
        identity: &Identity,
        credential: &Credential,
        issued: Timestamp,
        keys: Vec<WrappedKey>,
    ) -> Self {
        Self::new(identity, credential, issued, |_| Body::GroupKeys(keys))
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("envelopes serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(Error::TooLarge(bytes.len()));
        }
        let (e, rest): (Envelope, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| Error::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::Decode(format!("{} trailing bytes", rest.len())));
        }
        if e.version != VERSION {
            return Err(Error::Version(e.version));
        }
        Ok(e)
    }

    /// That the credential's member signed exactly this envelope.
    pub fn verify_signature(&self) -> Result<(), Error> {
        let key =
            VerifyingKey::from_bytes(&self.credential.member).map_err(|_| Error::BadSignature)?;
        let sig = Signature::from_slice(&self.signature).map_err(|_| Error::BadSignature)?;
        key.verify(&self.signed_bytes(), &sig)
            .map_err(|_| Error::BadSignature)
    }

    pub fn context(&self) -> Vec<u8> {
        Self::header(&self.credential.member, &self.nonce, self.issued)
    }
}

/// Gossipsub message id: a hash of the content, so the same bytes relayed by several peers are
/// recognised as one message.
pub fn message_id(data: &[u8]) -> Vec<u8> {
    blake3::hash(data).as_bytes()[..20].to_vec()
}
