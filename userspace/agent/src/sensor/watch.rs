//! The in-kernel path filter: which path prefixes are watched, and for which accesses.

use aya::{
    Ebpf,
    maps::{LpmTrie, lpm_trie::Key},
};
use heir_abi::{FILTER_LEN, FilterPath, WATCH_READ, WATCH_SSH_ONLY, WATCH_WRITE};
use serde::Deserialize;

use super::Error;

/// Which accesses under a prefix are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
    Any,
}

/// One watched prefix, e.g. `{ prefix = "/etc/shadow", access = "any" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub prefix: String,
    pub access: Access,
    /// Report only paths containing `/.ssh/` (for prefixes such as `/home/`).
    #[serde(default)]
    pub ssh_only: bool,
}

impl Rule {
    pub fn new(prefix: &str, access: Access) -> Self {
        Rule {
            prefix: prefix.to_owned(),
            access,
            ssh_only: false,
        }
    }
}

/// Credentials, privilege configuration, persistence locations, logs and medical data stores:
/// the paths whose access tells a story on an EMD server.
pub fn default_rules() -> Vec<Rule> {
    use Access::*;
    let mut rules: Vec<Rule> = [
        ("/etc/shadow", Any),
        ("/etc/gshadow", Any),
        ("/etc/sudoers", Any),
        ("/etc/passwd", Write),
        ("/etc/group", Write),
        ("/etc/pam.d/", Write),
        ("/etc/ssh/", Write),
        ("/root/.ssh/", Any),
        ("/etc/cron", Write),
        ("/etc/anacrontab", Write),
        ("/var/spool/cron/", Write),
        ("/var/spool/anacron/", Write),
        ("/etc/systemd/", Write),
        ("/lib/systemd/system/", Write),
        ("/usr/lib/systemd/system/", Write),
        ("/etc/rc", Write),
        ("/etc/init.d/", Write),
        ("/etc/ld.so.preload", Any),
        ("/etc/profile", Write),
        ("/etc/bash.bashrc", Write),
        ("/root/.bashrc", Write),
        ("/root/.bash_history", Write),
        ("/etc/udev/rules.d/", Write),
        ("/etc/update-motd.d/", Write),
        // Logs: truncation and deletion hide an intrusion (log daemons open them rarely).
        ("/var/log/", Write),
        // heir's own pinned maps: another program removing them blinds the sensor.
        ("/sys/fs/bpf/heir", Write),
        ("/var/lib/orthanc/", Write),
        ("/var/lib/dicom/", Write),
        ("/srv/dicom/", Write),
        ("/srv/pacs/", Write),
    ]
    .into_iter()
    .map(|(p, a)| Rule::new(p, a))
    .collect();
    rules.push(Rule {
        prefix: "/home/".into(),
        access: Any,
        ssh_only: true,
    });
    rules
}

pub(super) fn keys(rules: &[Rule]) -> Result<Vec<(Key<FilterPath>, u32)>, Error> {
    rules
        .iter()
        .map(|r| {
            if !r.prefix.starts_with('/') {
                return Err(Error::PrefixNotAbsolute(r.prefix.clone()));
            }
            let bytes = r.prefix.as_bytes();
            if bytes.len() > FILTER_LEN {
                return Err(Error::PrefixTooLong(r.prefix.clone()));
            }
            let mut data = [0u8; FILTER_LEN];
            data[..bytes.len()].copy_from_slice(bytes);
            let mut bits = match r.access {
                Access::Read => WATCH_READ,
                Access::Write => WATCH_WRITE,
                Access::Any => WATCH_READ | WATCH_WRITE,
            };
            if r.ssh_only {
                bits |= WATCH_SSH_ONLY;
            }
            Ok((Key::new(bytes.len() as u32 * 8, data), bits))
        })
        .collect()
}

pub(super) fn install(ebpf: &mut Ebpf, keys: &[(Key<FilterPath>, u32)]) -> Result<(), Error> {
    let map = ebpf.map_mut("WATCH").ok_or(Error::NoMap("WATCH"))?;
    let mut trie: LpmTrie<_, FilterPath, u32> =
        LpmTrie::try_from(map).map_err(|source| Error::Map {
            name: "WATCH",
            source,
        })?;
    for (key, bits) in keys {
        trie.insert(key, bits, 0).map_err(|source| Error::Map {
            name: "WATCH",
            source,
        })?;
    }
    Ok(())
}
