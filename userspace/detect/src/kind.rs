//! Event kinds as a dense index, so the engine dispatches each event only to the detectors and
//! rules that asked for its kind, without comparing strings on the hot path.

use heir_model::EventKind;

/// One of the [`EventKind`] variants, without its payload.
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

    /// The `kind` tag of the event JSON.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_model_and_indices_are_dense() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        let e = EventKind::Fork { child_pid: 1 };
        assert_eq!(Kind::of(&e).name(), e.name());
    }
}
