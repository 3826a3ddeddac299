//! Sharing-group confidentiality: TLP:AMBER items travel sealed with ChaCha20-Poly1305 under
//! the group's current key, so the consortium can relay them but only the group can read them.
//!
//! A group key is a 32-byte secret per (group, epoch). The payload key is derived from it with
//! HKDF-SHA256, so the secret itself never touches a cipher. Keys reach members wrapped: an
//! ephemeral X25519 key agreement with the member's agreement key, HKDF, then AEAD. Rotation
//! makes a new epoch; receivers keep a few old epochs so messages in flight still open.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// How many past epochs a receiver keeps after a rotation.
pub const RETAINED_EPOCHS: usize = 3;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("no key for sharing group `{group}` epoch {epoch}")]
    UnknownKey { group: String, epoch: u32 },
    #[error("no key for sharing group `{0}`: this node is not in it")]
    NotInGroup(String),
    #[error("sealed payload for group `{group}` epoch {epoch} failed authentication")]
    Authentication { group: String, epoch: u32 },
    #[error(
        "wrapped key for group `{group}` epoch {epoch} failed authentication (not addressed to this node?)"
    )]
    Unwrap { group: String, epoch: u32 },
}

/// One epoch of one group's secret. Zeroized when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct GroupKey {
    #[zeroize(skip)]
    pub group: String,
    #[zeroize(skip)]
    pub epoch: u32,
    secret: [u8; 32],
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey({}#{})", self.group, self.epoch)
    }
}

/// A payload sealed for a sharing group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub group: String,
    pub epoch: u32,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

/// A group key wrapped to one member's X25519 agreement key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub group: String,
    pub epoch: u32,
    /// The member's agreement public key this is addressed to.
    pub recipient: [u8; 32],
    pub ephemeral: [u8; 32],
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

fn aad(group: &str, epoch: u32, extra: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(group.len() + 8 + extra.len());
    v.extend_from_slice(&(group.len() as u32).to_le_bytes());
    v.extend_from_slice(group.as_bytes());
    v.extend_from_slice(&epoch.to_le_bytes());
    v.extend_from_slice(extra);
    v
}

impl GroupKey {
    pub fn generate(group: impl Into<String>, epoch: u32) -> Self {
        Self {
            group: group.into(),
            epoch,
            secret: rand::random(),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        let hk = Hkdf::<Sha256>::new(
            Some(&aad(&self.group, self.epoch, b"heir-mesh group")),
            &self.secret,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"heir-mesh payload key v1", key.as_mut())
            .expect("32 bytes is a valid HKDF length");
        ChaCha20Poly1305::new(&(*key).into())
    }

    /// Seals `plaintext`, binding `context` (the envelope header) as associated data.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad(&self.group, self.epoch, context),
                },
            )
            .expect("ChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        Sealed {
            group: self.group.clone(),
            epoch: self.epoch,
            nonce,
            ciphertext,
        }
    }

    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.cipher()
            .decrypt(
                &Nonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad(&sealed.group, sealed.epoch, context),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Authentication {
                group: sealed.group.clone(),
                epoch: sealed.epoch,
            })
    }

    fn wrapping_cipher(
        shared: &[u8; 32],
        ephemeral: &[u8; 32],
        recipient: &[u8; 32],
    ) -> ChaCha20Poly1305 {
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(ephemeral);
        salt[32..].copy_from_slice(recipient);
        let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"heir-mesh key wrap v1", key.as_mut())
            .expect("valid HKDF length");
        ChaCha20Poly1305::new(&(*key).into())
    }

    /// Wraps this key for the member whose agreement public key is `recipient`.
    pub fn wrap_for(&self, recipient: &[u8; 32]) -> WrappedKey {
        let eph = StaticSecret::from(*Zeroizing::new(rand::random::<[u8; 32]>()));
        let eph_pub = PublicKey::from(&eph).to_bytes();
        let shared = eph.diffie_hellman(&PublicKey::from(*recipient));
        let nonce: [u8; 12] = rand::random();
        let ciphertext = Self::wrapping_cipher(shared.as_bytes(), &eph_pub, recipient)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &self.secret,
                    aad: &aad(&self.group, self.epoch, b"wrap"),
                },
            )
            .expect("encryption does not fail");
        WrappedKey {
            group: self.group.clone(),
            epoch: self.epoch,
            recipient: *recipient,
            ephemeral: eph_pub,
            nonce,
            ciphertext,
        }
    }

    pub fn unwrap(wrapped: &WrappedKey, agreement: &StaticSecret) -> Result<GroupKey, Error> {
        let err = || Error::Unwrap {
            group: wrapped.group.clone(),
            epoch: wrapped.epoch,
        };
        let ours = PublicKey::from(agreement).to_bytes();
        let shared = agreement.diffie_hellman(&PublicKey::from(wrapped.ephemeral));
        let plain = Zeroizing::new(
            Self::wrapping_cipher(shared.as_bytes(), &wrapped.ephemeral, &ours)
                .decrypt(
                    &Nonce::from(wrapped.nonce),
                    Payload {
                        msg: &wrapped.ciphertext,
                        aad: &aad(&wrapped.group, wrapped.epoch, b"wrap"),
                    },
                )
                .map_err(|_| err())?,
        );
        let secret: [u8; 32] = plain.as_slice().try_into().map_err(|_| err())?;
        Ok(GroupKey {
            group: wrapped.group.clone(),
            epoch: wrapped.epoch,
            secret,
        })
    }
}

/// The group keys a node holds, a few epochs per group.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Keyring {
    groups: HashMap<String, BTreeMap<u32, GroupKey>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        for (g, e) in &self.groups {
            d.entry(g, &e.keys().collect::<Vec<_>>());
        }
        d.finish()
    }
}

impl Keyring {
    pub fn insert(&mut self, key: GroupKey) {
        let epochs = self.groups.entry(key.group.clone()).or_default();
        epochs.insert(key.epoch, key);
        while epochs.len() > RETAINED_EPOCHS {
            epochs.pop_first();
        }
    }

    /// The key new messages to `group` are sealed with.
    pub fn current(&self, group: &str) -> Result<&GroupKey, Error> {
        self.groups
            .get(group)
            .and_then(|e| e.values().next_back())
            .ok_or_else(|| Error::NotInGroup(group.to_owned()))
    }

    pub fn get(&self, group: &str, epoch: u32) -> Result<&GroupKey, Error> {
        self.groups
            .get(group)
            .and_then(|e| e.get(&epoch))
            .ok_or_else(|| Error::UnknownKey {
                group: group.to_owned(),
                epoch,
            })
    }

    /// Starts a new epoch for `group` (creating the group if new) and returns its key, to be
    /// wrapped for every member of the group.
    pub fn rotate(&mut self, group: &str) -> GroupKey {
        let next = self
            .groups
            .get(group)
            .and_then(|e| e.keys().next_back())
            .map_or(1, |e| e + 1);
        let key = GroupKey::generate(group, next);
        self.insert(key.clone());
        key
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.get(&sealed.group, sealed.epoch)?.open(sealed, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = GroupKey::generate("icu", 1);
        let s = k.seal(b"amber payload", b"hdr");
        assert_eq!(&**k.open(&s, b"hdr").unwrap(), b"amber payload");
        assert!(k.open(&s, b"other header").is_err());
        let mut t = s.clone();
        t.ciphertext[0] ^= 1;
        assert!(matches!(
            k.open(&t, b"hdr"),
            Err(Error::Authentication { .. })
        ));
        let other = GroupKey::generate("icu", 1);
        assert!(other.open(&s, b"hdr").is_err());
    }

    #[test]
    fn wrap_reaches_only_its_recipient() {
        let k = GroupKey::generate("icu", 4);
        let alice = StaticSecret::from([1u8; 32]);
        let bob = StaticSecret::from([2u8; 32]);
        let w = k.wrap_for(&PublicKey::from(&alice).to_bytes());
        let got = GroupKey::unwrap(&w, &alice).unwrap();
        assert_eq!(got.secret, k.secret);
        assert!(matches!(
            GroupKey::unwrap(&w, &bob),
            Err(Error::Unwrap { .. })
        ));
    }

    #[test]
    fn rotation_keeps_recent_epochs_only() {
        let mut ring = Keyring::default();
        let first = ring.rotate("icu");
        let sealed_old = first.seal(b"x", b"");
        for _ in 0..RETAINED_EPOCHS - 1 {
            ring.rotate("icu");
        }
        assert_eq!(ring.current("icu").unwrap().epoch, RETAINED_EPOCHS as u32);
        assert!(
            ring.open(&sealed_old, b"").is_ok(),
            "old epoch still opens while retained"
        );
        ring.rotate("icu");
        assert!(matches!(
            ring.open(&sealed_old, b""),
            Err(Error::UnknownKey { .. })
        ));
        assert!(matches!(ring.current("lab"), Err(Error::NotInGroup(_))));
    }
}
