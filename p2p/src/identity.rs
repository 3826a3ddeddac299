//! A node's own keys: an Ed25519 key that is both its libp2p identity and the key it signs
//! envelopes with, and an X25519 key that sharing-group keys are wrapped to.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use libp2p::PeerId;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::membership::JoinRequest;

pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
}

impl Identity {
    pub fn generate() -> Self {
        let s = Zeroizing::new(rand::random::<[u8; 32]>());
        let a = Zeroizing::new(rand::random::<[u8; 32]>());
        Self::from_secrets(&s, &a)
    }

    pub fn from_secrets(signing: &[u8; 32], agreement: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(signing),
            agreement: StaticSecret::from(*agreement),
        }
    }

    pub fn signing_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    pub fn agreement_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.agreement.to_bytes())
    }

    pub fn agreement(&self) -> &StaticSecret {
        &self.agreement
    }

    pub fn member_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn join_request(&self) -> JoinRequest {
        JoinRequest {
            member: self.member_key(),
            agreement: x25519_dalek::PublicKey::from(&self.agreement).to_bytes(),
        }
    }

    /// The libp2p keypair for the same Ed25519 secret, so gossipsub's message signatures and
    /// the envelope signatures are made by one key.
    pub fn keypair(&self) -> libp2p::identity::Keypair {
        let mut secret = self.signing.to_bytes();
        libp2p::identity::Keypair::ed25519_from_bytes(&mut secret).expect("32-byte Ed25519 secret")
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair().public().to_peer_id()
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.peer_id())
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self::from_secrets(&self.signing_secret(), &self.agreement_secret())
    }
}
