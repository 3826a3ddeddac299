//! What kind of event something is, without its payload: the one table of kind names.
//!
//! The kernel ABI numbers its record kinds ([`heir_abi::Kind`]) and converts into this type;
//! the event JSON tags ([`EventKind`]'s `kind`), the rule files, the detectors' dispatch and the
//! per-kind counters all use these names.

use crate::EventKind;

/// One of the [`EventKind`] variants, without its payload, numbered densely from 0 so it can
/// index per-kind tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Exec,
    Fork,
    Exit,
    Open,
    Rename,
    Unlink,
    FileBurst,
    Connect,
    Accept,
    Bind,
    Listen,
    CredChange,
    Capset,
    Ptrace,
    Module,
    Bpf,
    MemfdCreate,
    Mount,
    Flow,
    Service,
    Dropped,
    Protocol,
}

impl Kind {
    pub const COUNT: usize = 22;

    pub const ALL: [Kind; Self::COUNT] = [
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::Open,
        Kind::Rename,
        Kind::Unlink,
        Kind::FileBurst,
        Kind::Connect,
        Kind::Accept,
        Kind::Bind,
        Kind::Listen,
        Kind::CredChange,
        Kind::Capset,
        Kind::Ptrace,
        Kind::Module,
        Kind::Bpf,
        Kind::MemfdCreate,
        Kind::Mount,
        Kind::Flow,
        Kind::Service,
        Kind::Dropped,
        Kind::Protocol,
    ];

    pub const fn of(kind: &EventKind) -> Kind {
        match kind {
            EventKind::Exec { .. } => Kind::Exec,
            EventKind::Fork { .. } => Kind::Fork,
            EventKind::Exit { .. } => Kind::Exit,
            EventKind::Open { .. } => Kind::Open,
            EventKind::Rename { .. } => Kind::Rename,
            EventKind::Unlink { .. } => Kind::Unlink,
            EventKind::FileBurst { .. } => Kind::FileBurst,
            EventKind::Connect { .. } => Kind::Connect,
            EventKind::Accept { .. } => Kind::Accept,
            EventKind::Bind { .. } => Kind::Bind,
            EventKind::Listen { .. } => Kind::Listen,
            EventKind::CredChange { .. } => Kind::CredChange,
            EventKind::Capset { .. } => Kind::Capset,
            EventKind::Ptrace { .. } => Kind::Ptrace,
            EventKind::Module { .. } => Kind::Module,
            EventKind::Bpf { .. } => Kind::Bpf,
            EventKind::MemfdCreate { .. } => Kind::MemfdCreate,
            EventKind::Mount { .. } => Kind::Mount,
            EventKind::Flow { .. } => Kind::Flow,
            EventKind::Service { .. } => Kind::Service,
            EventKind::Dropped { .. } => Kind::Dropped,
            EventKind::Protocol { .. } => Kind::Protocol,
        }
    }

    /// The `kind` tag of the event JSON, and the name rule files use.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "exit",
            Kind::Open => "open",
            Kind::Rename => "rename",
            Kind::Unlink => "unlink",
            Kind::FileBurst => "file_burst",
            Kind::Connect => "connect",
            Kind::Accept => "accept",
            Kind::Bind => "bind",
            Kind::Listen => "listen",
            Kind::CredChange => "cred_change",
            Kind::Capset => "capset",
            Kind::Ptrace => "ptrace",
            Kind::Module => "module",
            Kind::Bpf => "bpf",
            Kind::MemfdCreate => "memfd_create",
            Kind::Mount => "mount",
            Kind::Flow => "flow",
            Kind::Service => "service",
            Kind::Dropped => "dropped",
            Kind::Protocol => "protocol",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl EventKind {
    /// Which kind of event this is.
    pub const fn kind(&self) -> Kind {
        Kind::of(self)
    }
}

impl From<&EventKind> for Kind {
    fn from(kind: &EventKind) -> Kind {
        Kind::of(kind)
    }
}

/// The kinds the kernel probes record, by their ABI number.
impl From<heir_abi::Kind> for Kind {
    fn from(kind: heir_abi::Kind) -> Kind {
        use heir_abi::Kind as K;
        match kind {
            K::Exec => Kind::Exec,
            K::Fork => Kind::Fork,
            K::Exit => Kind::Exit,
            K::Open => Kind::Open,
            K::Rename => Kind::Rename,
            K::Unlink => Kind::Unlink,
            K::FileBurst => Kind::FileBurst,
            K::Connect => Kind::Connect,
            K::Accept => Kind::Accept,
            K::Bind => Kind::Bind,
            K::Listen => Kind::Listen,
            K::CredChange => Kind::CredChange,
            K::Capset => Kind::Capset,
            K::Ptrace => Kind::Ptrace,
            K::Module => Kind::Module,
            K::Bpf => Kind::Bpf,
            K::MemfdCreate => Kind::MemfdCreate,
            K::Mount => Kind::Mount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_names_parse() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
    }

    /// Every name is a `kind` tag the event JSON accepts: deserialising a bare tag fails for a
    /// missing field, never for an unknown variant.
    #[test]
    fn names_are_the_json_tags() {
        for k in Kind::ALL {
            let json = format!(r#"{{"kind":"{}"}}"#, k.name());
            if let Err(e) = serde_json::from_str::<EventKind>(&json) {
                assert!(!e.to_string().contains("unknown variant"), "{k}: {e}");
            }
        }
        let e = EventKind::Fork { child_pid: 1 };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], e.kind().name());
        assert_eq!(e.name(), "fork");
    }

    #[test]
    fn every_kernel_kind_converts() {
        for k in heir_abi::Kind::ALL {
            assert!(!matches!(
                Kind::from(k),
                Kind::Flow | Kind::Service | Kind::Dropped | Kind::Protocol
            ));
        }
        assert_eq!(
            Kind::from(heir_abi::Kind::MemfdCreate).name(),
            "memfd_create"
        );
    }
}
