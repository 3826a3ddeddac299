//! The agent's RAMA engine and where its state lives between runs.
//!
//! The state (inventory, imported knowledge, decaying threat activity, score history) is one
//! JSON document in the data directory, replaced atomically (write, fsync, rename) so a crash
//! at any moment leaves either the previous state or the new one, never a torn file.

use std::path::{Path, PathBuf};

use heir_rama::{Rama, Registry, Snapshot, SystemClock, oui};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading RAMA state {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("RAMA state {path} is not a state file this heir can read; it was left untouched")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing RAMA state {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device registry")]
    Registry(#[from] heir_rama::registry::Error),
}

/// The RAMA engine with its state file.
pub struct RamaState {
    pub rama: Rama<SystemClock>,
    path: PathBuf,
}

impl RamaState {
    pub fn state_path(data_dir: &Path) -> PathBuf {
        data_dir.join("rama.json")
    }

    /// Loads the saved state (or starts empty) and merges the operator's registry, if any.
    pub fn open(data_dir: &Path, registry: Option<&Path>) -> Result<RamaState, Error> {
        let path = Self::state_path(data_dir);
        let oui = oui::Table::load_default().unwrap_or_else(|_| oui::Table::curated());
        let mut rama = match std::fs::read(&path) {
            Ok(bytes) => {
                let snap: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                Rama::restore(SystemClock, oui, snap)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rama::new(SystemClock, oui),
            Err(source) => {
                return Err(Error::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        if let Some(reg) = registry {
            rama.load_registry(&Registry::load(reg)?);
        }
        Ok(RamaState { rama, path })
    }

    /// Writes the state now. Holds `self` for the whole write: where the state is shared,
    /// take a [`RamaState::saving`] under the lock and write it after releasing the lock.
    pub fn save(&self) -> Result<(), Error> {
        self.saving().write()
    }

    /// The state as it is now, ready to be written without holding the engine.
    pub fn saving(&self) -> Saving {
        Saving {
            snapshot: self.rama.snapshot(),
            path: self.path.clone(),
        }
    }
}

/// A copy of the state on its way to the disk.
pub struct Saving {
    snapshot: Snapshot,
    path: PathBuf,
}

impl Saving {
    /// Replaces the state file atomically: write, fsync, rename.
    pub fn write(self) -> Result<(), Error> {
        let err = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&self.snapshot)
            .map_err(std::io::Error::other)
            .map_err(err)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        Ok(())
    }
}

pub fn registry_path(data_dir: &Path, given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_owned).or_else(|| {
        let p = data_dir.join("devices.toml");
        p.exists().then_some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_restart_and_a_corrupt_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("devices.toml");
        std::fs::write(
            &reg,
            "[device.pacs-1]\nname = \"PACS\"\nclass = \"pacs\"\nip = \"10.1.0.5\"\n",
        )
        .unwrap();
        let risk = RamaState::open(dir.path(), Some(&reg)).unwrap();
        assert_eq!(risk.rama.listing().devices.len(), 1);
        risk.save().unwrap();
        let again = RamaState::open(dir.path(), None).unwrap();
        assert_eq!(again.rama.listing().devices.len(), 1);

        let state = RamaState::state_path(dir.path());
        std::fs::write(&state, b"{not json").unwrap();
        let err = RamaState::open(dir.path(), None).err().unwrap().to_string();
        assert!(err.contains("left untouched"), "{err}");
        assert_eq!(std::fs::read(&state).unwrap(), b"{not json");
    }
}
