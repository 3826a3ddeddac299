//! A node's keys and membership on disk.
//!
//! One directory (mode 0700), one file per secret (mode 0600, written atomically). Files that
//! hold secrets are refused if anyone but the owner can read them, as ssh does.
//!
//! | file             | holds                                                   |
//! |------------------|---------------------------------------------------------|
//! | `identity.key`   | Ed25519 signing secret + X25519 agreement secret        |
//! | `consortium.key` | the consortium's signing secret (admitting node only)   |
//! | `membership`     | own credential, consortium public key, bootstrap peers  |
//! | `groups.key`     | sharing-group keys, a few epochs each                   |
//! | `revocations`    | the latest signed revocation list                       |
//! | `pseudonym.key`  | the key internal names are pseudonymised with           |
//! | `serial`         | last credential serial issued (admitting node only)     |
//! | `knowledge.log`  | accepted envelopes (see [`crate::knowledge::Log`])      |

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use heir_model::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::group::{GroupKey, Keyring};
use crate::identity::Identity;
use crate::membership::{
    self, ConsortiumId, ConsortiumKey, Credential, Invite, JoinRequest, Revocations, Terms,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{path}: corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{0}: this node holds no consortium key (only the node that ran `heir mesh init` can invite)"
    )]
    NoConsortiumKey(PathBuf),
    #[error("{0}: a consortium already exists here")]
    AlreadyInitialised(PathBuf),
    #[error(
        "{0}: this node has not joined a consortium (run `heir mesh init` or `heir mesh join`)"
    )]
    NotJoined(PathBuf),
    #[error("invite")]
    Invite(#[from] membership::Error),
    #[error("invite: sharing-group key")]
    GroupKey(#[from] crate::group::Error),
}

/// Membership as this node holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub credential: Credential,
    pub consortium: ConsortiumId,
    pub bootstrap: Vec<String>,
}

/// Writes `bytes` to `path` with mode 0600, atomically (temporary file, fsync, rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// Opens the directory, creating it with mode 0700 if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            Error::Io {
                path: dir.clone(),
                source,
            }
        })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read_secret(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let path = self.path(name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecurePermissions { path, mode });
        }
        fs::read(&path)
            .map(|b| Some(Zeroizing::new(b)))
            .map_err(|source| Error::Io { path, source })
    }

    fn read_record<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let Some(bytes) = self.read_secret(name)? else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: self.path(name),
                reason: e.to_string(),
            })
    }

    fn write_record<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let bytes = Zeroizing::new(postcard::to_allocvec(value).expect("records serialise"));
        write_private(&self.path(name), &bytes)
    }

    fn fixed<const N: usize>(&self, name: &str, bytes: &[u8]) -> Result<Zeroizing<[u8; N]>, Error> {
        let mut out = Zeroizing::new([0u8; N]);
        if bytes.len() != N {
            return Err(Error::Corrupt {
                path: self.path(name),
                reason: format!("expected {N} bytes, found {}", bytes.len()),
            });
        }
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The node's identity, created on first use.
    pub fn identity(&self) -> Result<Identity, Error> {
        const NAME: &str = "identity.key";
        if let Some(b) = self.read_secret(NAME)? {
            let both = self.fixed::<64>(NAME, &b)?;
            let s: [u8; 32] = both[..32].try_into().expect("32 bytes");
            let a: [u8; 32] = both[32..].try_into().expect("32 bytes");
            let id = Identity::from_secrets(&s, &a);
            return Ok(id);
        }
        let id = Identity::generate();
        let mut both = Zeroizing::new([0u8; 64]);
        both[..32].copy_from_slice(&*id.signing_secret());
        both[32..].copy_from_slice(&*id.agreement_secret());
        write_private(&self.path(NAME), &*both)?;
        Ok(id)
    }

    /// The key internal names are pseudonymised with, created on first use.
    pub fn pseudonym_key(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        const NAME: &str = "pseudonym.key";
        if let Some(b) = self.read_secret(NAME)? {
            return self.fixed::<32>(NAME, &b);
        }
        let k = Zeroizing::new(rand::random::<[u8; 32]>());
        write_private(&self.path(NAME), &*k)?;
        Ok(k)
    }

    pub fn consortium_key(&self) -> Result<ConsortiumKey, Error> {
        const NAME: &str = "consortium.key";
        let b = self
            .read_secret(NAME)?
            .ok_or_else(|| Error::NoConsortiumKey(self.path(NAME)))?;
        Ok(ConsortiumKey::from_bytes(&*self.fixed::<32>(NAME, &b)?))
    }

    pub fn membership(&self) -> Result<Membership, Error> {
        self.read_record("membership")?
            .ok_or_else(|| Error::NotJoined(self.path("membership")))
    }

    pub fn keyring(&self) -> Result<Keyring, Error> {
        Ok(self.read_record("groups.key")?.unwrap_or_default())
    }

    pub fn save_keyring(&self, ring: &Keyring) -> Result<(), Error> {
        self.write_record("groups.key", ring)
    }

    pub fn revocations(&self) -> Result<Revocations, Error> {
        let m = self.membership()?;
        Ok(self
            .read_record("revocations")?
            .unwrap_or_else(|| Revocations::empty(m.consortium)))
    }

    pub fn save_revocations(&self, r: &Revocations) -> Result<(), Error> {
        self.write_record("revocations", r)
    }

    /// `heir mesh init`: creates a consortium with this node as its first member, in
    /// `groups`, valid for `validity`.
    pub fn init(
        &self,
        hospital: &str,
        groups: &[String],
        validity: Duration,
        now: Timestamp,
    ) -> Result<Membership, Error> {
        if self.path("consortium.key").exists() || self.path("membership").exists() {
            return Err(Error::AlreadyInitialised(self.dir.clone()));
        }
        let id = self.identity()?;
        let ck = ConsortiumKey::generate();
        write_private(&self.path("consortium.key"), &*ck.to_bytes())?;
        let credential = ck.issue(
            &id.join_request(),
            self.terms(hospital, groups, validity, now)?,
        );
        let mut ring = self.keyring()?;
        for g in groups {
            ring.rotate(g);
        }
        self.save_keyring(&ring)?;
        let m = Membership {
            credential,
            consortium: ck.public(),
            bootstrap: Vec::new(),
        };
        self.write_record("membership", &m)?;
        Ok(m)
    }

    fn terms(
        &self,
        hospital: &str,
        groups: &[String],
        validity: Duration,
        now: Timestamp,
    ) -> Result<Terms, Error> {
        let serial = match self.read_record::<u64>("serial")? {
            Some(s) => s + 1,
            None => 1,
        };
        self.write_record("serial", &serial)?;
        Ok(Terms {
            hospital: hospital.to_owned(),
            groups: groups.to_vec(),
            serial,
            issued: now,
            expires: crate::clock::add(now, validity),
        })
    }

    /// `heir mesh invite`: admits the node that sent `request`, wrapping to it the current
    /// keys of those of its groups this node holds.
    pub fn invite(
        &self,
        request: &JoinRequest,
        hospital: &str,
        groups: &[String],
        validity: Duration,
        bootstrap: Vec<String>,
        now: Timestamp,
    ) -> Result<Invite, Error> {
        let ck = self.consortium_key()?;
        let credential = ck.issue(request, self.terms(hospital, groups, validity, now)?);
        let ring = self.keyring()?;
        let mut group_keys = Vec::new();
        for g in groups {
            group_keys.push(ring.current(g)?.wrap_for(&request.agreement));
        }
        Ok(Invite {
            credential,
            consortium: ck.public(),
            bootstrap,
            group_keys,
        })
    }

    /// `heir mesh join`: checks the invite is genuine and for this node, then stores it.
    pub fn join(&self, invite: &Invite, now: Timestamp) -> Result<Membership, Error> {
        let id = self.identity()?;
        invite.check(&id.member_key(), now)?;
        let mut ring = self.keyring()?;
        for w in &invite.group_keys {
            ring.insert(GroupKey::unwrap(w, id.agreement())?);
        }
        self.save_keyring(&ring)?;
        let m = Membership {
            credential: invite.credential.clone(),
            consortium: invite.consortium,
            bootstrap: invite.bootstrap.clone(),
        };
        self.write_record("membership", &m)?;
        Ok(m)
    }

    /// Replaces the node's credential, e.g. after renewal.
    pub fn save_membership(&self, m: &Membership) -> Result<(), Error> {
        self.write_record("membership", m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn init_invite_join_and_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let admin = Keystore::open(tmp.path().join("admin")).unwrap();
        let now = Timestamp::from_secs(1_000_000);
        let m = admin.init("H-1", &["icu".into()], 365 * DAY, now).unwrap();
        assert!(matches!(
            admin.init("H-1", &[], DAY, now),
            Err(Error::AlreadyInitialised(_))
        ));
        let mode = fs::metadata(admin.path("consortium.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(admin.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);

        let newbie = Keystore::open(tmp.path().join("new")).unwrap();
        let req = newbie.identity().unwrap().join_request();
        let inv = admin
            .invite(
                &req,
                "H-2",
                &["icu".into()],
                30 * DAY,
                vec!["/ip4/127.0.0.1/tcp/1".into()],
                now,
            )
            .unwrap();
        assert_eq!(inv.credential.serial, 2);
        let joined = newbie
            .join(&Invite::decode(&inv.encode()).unwrap(), now)
            .unwrap();
        assert_eq!(joined.consortium, m.consortium);
        let a = admin.keyring().unwrap();
        let b = newbie.keyring().unwrap();
        let sealed = a.current("icu").unwrap().seal(b"x", b"");
        assert_eq!(&**b.open(&sealed, b"").unwrap(), b"x");
        assert!(matches!(
            newbie.consortium_key(),
            Err(Error::NoConsortiumKey(_))
        ));

        // Identity is stable across opens.
        assert_eq!(
            newbie.identity().unwrap().peer_id(),
            Keystore::open(newbie.dir())
                .unwrap()
                .identity()
                .unwrap()
                .peer_id()
        );

        // Someone else's invite is refused.
        let other = Keystore::open(tmp.path().join("other")).unwrap();
        assert!(matches!(
            other.join(&inv, now),
            Err(Error::Invite(membership::Error::NotForUs { .. }))
        ));

        fs::set_permissions(
            newbie.path("identity.key"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            newbie.identity(),
            Err(Error::InsecurePermissions { .. })
        ));
        fs::write(admin.path("membership"), b"\xff\xff").unwrap();
        fs::set_permissions(admin.path("membership"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(admin.membership(), Err(Error::Corrupt { .. })));
        assert!(matches!(
            Keystore::open(tmp.path().join("x")).unwrap().membership(),
            Err(Error::NotJoined(_))
        ));
    }
}
