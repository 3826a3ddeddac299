//! The typed fields a rule condition can name, which event kinds carry them, and how to read
//! them from an event without allocating.

use std::net::IpAddr;

use heir_model::event::{Ancestor, LoginOutcome, Observation};
use heir_model::{Event, EventKind, NetAddr};

use crate::Kind;

/// The static type of a field, checked when a rule loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Str,
    Int,
    Bool,
    Ip,
    /// A list of strings; operators apply to "any element".
    Strs,
}

impl Type {
    pub const fn name(self) -> &'static str {
        match self {
            Type::Str => "string",
            Type::Int => "integer",
            Type::Bool => "boolean",
            Type::Ip => "ip address",
            Type::Strs => "list of strings",
        }
    }
}

/// A value read from an event.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Strs(&'a [String]),
    Lineage(&'a [Ancestor]),
}

impl Val<'_> {
    /// Calls `f` on each string element of a list value (or the value itself if a string).
    pub fn any_str(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        match self {
            Val::Str(s) => f(s),
            Val::Strs(l) => l.iter().any(|s| f(s)),
            Val::Lineage(l) => l.iter().any(|a| f(&a.exe)),
            _ => false,
        }
    }

    pub fn render(&self) -> String {
        match self {
            Val::Str(s) => (*s).to_owned(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Ip(ip) => ip.to_string(),
            Val::Strs(l) => l.join(" "),
            Val::Lineage(l) => l
                .iter()
                .map(|a| a.exe.as_str())
                .collect::<Vec<_>>()
                .join(" < "),
        }
    }
}

macro_rules! fields {
    ($( $id:ident = $name:literal : $ty:ident [$($k:ident),*] ; $doc:literal )*) => {
        /// A field a condition can read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $( #[doc = $doc] $id, )* }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$id,)*];

            pub const fn name(self) -> &'static str {
                match self { $(Field::$id => $name,)* }
            }

            pub const fn ty(self) -> Type {
                match self { $(Field::$id => Type::$ty,)* }
            }

            /// Kinds that carry the field; empty means every kind.
            pub const fn kinds(self) -> &'static [Kind] {
                match self { $(Field::$id => &[$(Kind::$k),*],)* }
            }

            pub const fn doc(self) -> &'static str {
                match self { $(Field::$id => $doc,)* }
            }
        }
    };
}

fields! {
    KindName = "kind": Str []; "event kind tag"
    Pid = "pid": Int []; "process id"
    Tid = "tid": Int []; "thread id"
    Ppid = "ppid": Int []; "parent process id"
    Uid = "uid": Int []; "real user id"
    Euid = "euid": Int []; "effective user id"
    Gid = "gid": Int []; "group id"
    Comm = "comm": Str []; "kernel command name (16 bytes)"
    Cgroup = "cgroup": Int []; "cgroup id"
    Exe = "exe": Str []; "executable path (comm when unknown)"
    Args = "args": Strs []; "process arguments from the process table"
    ParentExe = "parent_exe": Str []; "parent's executable"
    Ancestors = "ancestors": Strs []; "executables of all known ancestors"
    Filename = "filename": Str [Exec]; "exec'd file"
    Argv = "argv": Strs [Exec]; "exec arguments"
    ChildPid = "child_pid": Int [Fork]; "new child's pid"
    Code = "code": Int [Exit]; "exit code"
    Path = "path": Str [Open, Unlink]; "file path"
    Flags = "flags": Int [Open, MemfdCreate, Mount]; "syscall flags"
    Write = "write": Bool [Open]; "opened for writing, creating or truncating"
    Ret = "ret": Int [Exec, Open, Rename, Unlink, Connect, Accept, Bind, Listen, CredChange, Capset, Ptrace, Module, Bpf, MemfdCreate, Mount]; "syscall return value (negative errno)"
    From = "from": Str [Rename]; "rename source"
    To = "to": Str [Rename]; "rename target"
    Writes = "writes": Int [FileBurst]; "files written in the burst"
    Renames = "renames": Int [FileBurst]; "files renamed in the burst"
    Unlinks = "unlinks": Int [FileBurst]; "files unlinked in the burst"
    WindowMs = "window_ms": Int [FileBurst]; "burst window"
    Ip = "ip": Ip [Connect, Accept, Bind, Listen]; "socket address (peer for accept)"
    Port = "port": Int [Connect, Accept, Bind, Listen]; "socket port (peer for accept)"
    LocalPort = "local_port": Int [Accept]; "local port of an accepted connection"
    Family = "family": Str [Connect, Accept, Bind, Listen]; "inet, unix or other"
    UnixPath = "unix_path": Str [Connect, Bind]; "unix socket path"
    Call = "call": Str [CredChange]; "setuid, setresuid, …"
    Real = "real": Int [CredChange]; "requested real id"
    Effective = "effective": Int [CredChange]; "requested effective id"
    Saved = "saved": Int [CredChange]; "requested saved id"
    CapEffective = "cap_effective": Int [Capset]; "effective capability mask"
    CapPermitted = "cap_permitted": Int [Capset]; "permitted capability mask"
    Request = "request": Int [Ptrace]; "ptrace request number"
    Target = "target": Int [Ptrace]; "ptrace target pid"
    Op = "op": Str [Module]; "init_module, finit_module or delete_module"
    Name = "name": Str [Module, MemfdCreate]; "module or memfd name"
    Cmd = "cmd": Int [Bpf]; "bpf command"
    ProgType = "prog_type": Int [Bpf]; "bpf program type"
    Source = "source": Str [Mount]; "mount source"
    MountTarget = "mount_target": Str [Mount]; "mount point"
    Fstype = "fstype": Str [Mount]; "filesystem type"
    SrcIp = "src_ip": Ip [Flow, Protocol]; "flow initiator"
    SrcPort = "src_port": Int [Flow, Protocol]; "initiator port"
    DstIp = "dst_ip": Ip [Flow, Protocol]; "flow responder"
    DstPort = "dst_port": Int [Flow, Protocol]; "responder port"
    Transport = "transport": Str [Flow]; "tcp, udp, icmp or other"
    PacketsOut = "packets_out": Int [Flow]; "packets src→dst"
    BytesOut = "bytes_out": Int [Flow]; "bytes src→dst"
    PacketsIn = "packets_in": Int [Flow]; "packets dst→src"
    BytesIn = "bytes_in": Int [Flow]; "bytes dst→src"
    FlagsOut = "flags_out": Int [Flow]; "TCP flags sent by src"
    FlagsIn = "flags_in": Int [Flow]; "TCP flags sent by dst"
    SynUnanswered = "syn_unanswered": Int [Flow]; "SYNs without a completed handshake"
    Established = "established": Bool [Flow]; "handshake completed"
    IcmpUnreachable = "icmp_unreachable": Bool [Flow]; "ICMP unreachable came back"
    DurationMs = "duration_ms": Int [Flow]; "last_seen - first_seen"
    Protocol = "protocol": Str [Protocol]; "recognised protocol tag"
    User = "user": Str [Protocol]; "login or Basic-auth user name"
    Outcome = "outcome": Str [Protocol]; "success or failure"
    CleartextCredentials = "cleartext_credentials": Bool [Protocol]; "credentials crossed in cleartext"
    CallingAe = "calling_ae": Str [Protocol]; "DICOM calling AE title"
    CalledAe = "called_ae": Str [Protocol]; "DICOM called AE title"
    SendingApplication = "sending_application": Str [Protocol]; "HL7 MSH-3"
    ReceivingApplication = "receiving_application": Str [Protocol]; "HL7 MSH-5"
    Method = "method": Str [Protocol]; "HTTP method"
    AdminPath = "admin_path": Bool [Protocol]; "HTTP administration path"
    Status = "status": Int [Protocol]; "HTTP status"
    TlsVersion = "tls_version": Int [Protocol]; "highest TLS version offered or negotiated"
    Ja4 = "ja4": Str [Protocol]; "TLS client fingerprint"
    Sni = "sni": Str [Protocol]; "TLS server name"
    Software = "software": Str [Protocol]; "SSH software banner"
    SmbDialect = "smb_dialect": Int [Protocol]; "SMB dialect"
    StandardSecurity = "standard_security": Bool [Protocol]; "legacy RDP security"
}

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    pub fn available(self, kind: Kind) -> bool {
        let ks = self.kinds();
        ks.is_empty() || ks.contains(&kind)
    }

    /// Reads the field; `None` when this event does not carry it.
    pub fn get(self, ev: &Event) -> Option<Val<'_>> {
        let p = &ev.process;
        let int = |v: u32| Some(Val::Int(i64::from(v)));
        Some(match self {
            Field::KindName => Val::Str(ev.kind.name()),
            Field::Pid => return int(p.pid),
            Field::Tid => return int(p.tid),
            Field::Ppid => return int(p.ppid),
            Field::Uid => return int(p.uid),
            Field::Euid => return int(p.euid),
            Field::Gid => return int(p.gid),
            Field::Comm => Val::Str(&p.comm),
            Field::Cgroup => Val::Int(p.cgroup as i64),
            Field::Exe => Val::Str(crate::util::exe(p)),
            Field::Args => Val::Strs(p.info.as_ref().map(|i| i.args.as_slice()).unwrap_or(&[])),
            Field::ParentExe => Val::Str(crate::util::parent_exe(p)?),
            Field::Ancestors => {
                Val::Lineage(p.info.as_ref().map(|i| i.lineage.as_slice()).unwrap_or(&[]))
            }
            _ => return self.get_kind(&ev.kind),
        })
    }

    fn get_kind(self, kind: &EventKind) -> Option<Val<'_>> {
        use EventKind as K;
        let int = |v: i64| Some(Val::Int(v));
        match (self, kind) {
            (Field::Filename, K::Exec { filename, .. }) => Some(Val::Str(filename)),
            (Field::Argv, K::Exec { argv, .. }) => Some(Val::Strs(argv)),
            (Field::ChildPid, K::Fork { child_pid }) => int(i64::from(*child_pid)),
            (Field::Code, K::Exit { code, .. }) => int(i64::from(*code)),
            (Field::Path, K::Open { path, .. } | K::Unlink { path, .. }) => Some(Val::Str(path)),
            (Field::Flags, K::Open { flags, .. } | K::MemfdCreate { flags, .. }) => {
                int(i64::from(*flags))
            }
            (Field::Flags, K::Mount { flags, .. }) => int(*flags as i64),
            (Field::Write, K::Open { flags, .. }) => Some(Val::Bool(open_writes(*flags))),
            (Field::From, K::Rename { from, .. }) => Some(Val::Str(from)),
            (Field::To, K::Rename { to, .. }) => Some(Val::Str(to)),
            (Field::Writes, K::FileBurst { writes, .. }) => int(i64::from(*writes)),
            (Field::Renames, K::FileBurst { renames, .. }) => int(i64::from(*renames)),
            (Field::Unlinks, K::FileBurst { unlinks, .. }) => int(i64::from(*unlinks)),
            (Field::WindowMs, K::FileBurst { window_ms, .. }) => int(i64::from(*window_ms)),
            (Field::Ip | Field::Port | Field::Family | Field::UnixPath, _) => {
                let addr = match kind {
                    K::Connect { addr, .. } | K::Bind { addr, .. } => Some(addr),
                    K::Accept { peer, .. } => peer.as_ref(),
                    K::Listen { addr, .. } => addr.as_ref(),
                    _ => None,
                }?;
                match (self, addr) {
                    (Field::Ip, NetAddr::Inet { ip, .. }) => Some(Val::Ip(*ip)),
                    (Field::Port, NetAddr::Inet { port, .. }) => int(i64::from(*port)),
                    (Field::UnixPath, NetAddr::Unix { path }) => Some(Val::Str(path)),
                    (Field::Family, NetAddr::Inet { .. }) => Some(Val::Str("inet")),
                    (Field::Family, NetAddr::Unix { .. }) => Some(Val::Str("unix")),
                    (Field::Family, NetAddr::Other { .. }) => Some(Val::Str("other")),
                    _ => None,
                }
            }
            (Field::LocalPort, K::Accept { local, .. }) => local
                .as_ref()
                .and_then(NetAddr::port)
                .map(|p| Val::Int(i64::from(p))),
            (Field::Call, K::CredChange { call, .. }) => Some(Val::Str(cred_call(*call))),
            (Field::Real, K::CredChange { real, .. }) => real.map(|v| Val::Int(i64::from(v))),
            (Field::Effective, K::CredChange { effective, .. }) => {
                effective.map(|v| Val::Int(i64::from(v)))
            }
            (Field::Saved, K::CredChange { saved, .. }) => saved.map(|v| Val::Int(i64::from(v))),
            (Field::CapEffective, K::Capset { effective, .. }) => int(*effective as i64),
            (Field::CapPermitted, K::Capset { permitted, .. }) => int(*permitted as i64),
            (Field::Request, K::Ptrace { request, .. }) => int(*request),
            (Field::Target, K::Ptrace { target, .. }) => int(i64::from(*target)),
            (Field::Op, K::Module { op, .. }) => Some(Val::Str(match op {
                heir_model::event::ModuleOp::InitModule => "init_module",
                heir_model::event::ModuleOp::FinitModule => "finit_module",
                heir_model::event::ModuleOp::DeleteModule => "delete_module",
            })),
            (Field::Name, K::Module { name, .. }) => name.as_deref().map(Val::Str),
            (Field::Name, K::MemfdCreate { name, .. }) => Some(Val::Str(name)),
            (Field::Cmd, K::Bpf { cmd, .. }) => int(i64::from(*cmd)),
            (Field::ProgType, K::Bpf { prog_type, .. }) => {
                prog_type.map(|v| Val::Int(i64::from(v)))
            }
            (Field::Source, K::Mount { source, .. }) => Some(Val::Str(source)),
            (Field::MountTarget, K::Mount { target, .. }) => Some(Val::Str(target)),
            (Field::Fstype, K::Mount { fstype, .. }) => Some(Val::Str(fstype)),
            (Field::Ret, _) => ret(kind).map(Val::Int),
            (Field::SrcIp, K::Flow { src, .. } | K::Protocol { src, .. }) => Some(Val::Ip(*src)),
            (Field::DstIp, K::Flow { dst, .. } | K::Protocol { dst, .. }) => Some(Val::Ip(*dst)),
            (Field::SrcPort, K::Flow { src_port, .. } | K::Protocol { src_port, .. }) => {
                int(i64::from(*src_port))
            }
            (Field::DstPort, K::Flow { dst_port, .. } | K::Protocol { dst_port, .. }) => {
                int(i64::from(*dst_port))
            }
            (Field::Transport, K::Flow { transport, .. }) => Some(Val::Str(match transport {
                heir_model::event::Transport::Tcp => "tcp",
                heir_model::event::Transport::Udp => "udp",
                heir_model::event::Transport::Icmp => "icmp",
                heir_model::event::Transport::Other => "other",
            })),
            (Field::PacketsOut, K::Flow { packets_out, .. }) => int(sat(*packets_out)),
            (Field::BytesOut, K::Flow { bytes_out, .. }) => int(sat(*bytes_out)),
            (Field::PacketsIn, K::Flow { packets_in, .. }) => int(sat(*packets_in)),
            (Field::BytesIn, K::Flow { bytes_in, .. }) => int(sat(*bytes_in)),
            (Field::FlagsOut, K::Flow { flags_out, .. }) => int(i64::from(flags_out.0)),
            (Field::FlagsIn, K::Flow { flags_in, .. }) => int(i64::from(flags_in.0)),
            (Field::SynUnanswered, K::Flow { syn_unanswered, .. }) => {
                int(i64::from(*syn_unanswered))
            }
            (Field::Established, K::Flow { established, .. }) => Some(Val::Bool(*established)),
            (
                Field::IcmpUnreachable,
                K::Flow {
                    icmp_unreachable, ..
                },
            ) => Some(Val::Bool(*icmp_unreachable)),
            (
                Field::DurationMs,
                K::Flow {
                    first_seen,
                    last_seen,
                    ..
                },
            ) => int(sat(last_seen.saturating_sub(*first_seen).as_millis() as u64)),
            (_, K::Protocol { observation, .. }) => self.get_observation(observation),
            _ => None,
        }
    }

    fn get_observation(self, o: &Observation) -> Option<Val<'_>> {
        fn s(v: &Option<String>) -> Option<Val<'_>> {
            v.as_deref().map(Val::Str)
        }
        use Observation as O;
        match (self, o) {
            (Field::Protocol, _) => Some(Val::Str(o.name())),
            (Field::User, O::Telnet { user, .. } | O::Ftp { user, .. } | O::Mqtt { user, .. }) => {
                s(user)
            }
            (
                Field::User,
                O::Http {
                    basic_auth_user, ..
                },
            ) => s(basic_auth_user),
            (
                Field::Outcome,
                O::Telnet { outcome, .. } | O::Ftp { outcome, .. } | O::Mqtt { outcome, .. },
            ) => outcome.map(|o| Val::Str(outcome_name(o))),
            (
                Field::CleartextCredentials,
                O::Ftp {
                    cleartext_credentials,
                    ..
                }
                | O::Mqtt {
                    cleartext_credentials,
                    ..
                },
            ) => Some(Val::Bool(*cleartext_credentials)),
            (
                Field::CleartextCredentials,
                O::Http {
                    basic_auth_cleartext,
                    ..
                },
            ) => Some(Val::Bool(*basic_auth_cleartext)),
            (Field::CleartextCredentials, O::Telnet { user, .. }) => {
                Some(Val::Bool(user.is_some()))
            }
            (Field::CallingAe, O::Dicom { calling_ae, .. }) => Some(Val::Str(calling_ae)),
            (Field::CalledAe, O::Dicom { called_ae, .. }) => Some(Val::Str(called_ae)),
            (
                Field::SendingApplication,
                O::Hl7Mllp {
                    sending_application,
                    ..
                },
            ) => Some(Val::Str(sending_application)),
            (
                Field::ReceivingApplication,
                O::Hl7Mllp {
                    receiving_application,
                    ..
                },
            ) => Some(Val::Str(receiving_application)),
            (Field::Method, O::Http { method, .. }) => Some(Val::Str(method)),
            (Field::AdminPath, O::Http { admin_path, .. }) => Some(Val::Bool(*admin_path)),
            (Field::Status, O::Http { status, .. }) => status.map(|v| Val::Int(i64::from(v))),
            (Field::TlsVersion, O::TlsClientHello { versions, .. }) => {
                versions.iter().max().map(|v| Val::Int(i64::from(*v)))
            }
            (Field::TlsVersion, O::TlsServerHello { version, .. }) => {
                Some(Val::Int(i64::from(*version)))
            }
            (Field::Ja4, O::TlsClientHello { ja4, .. }) => Some(Val::Str(ja4)),
            (Field::Sni, O::TlsClientHello { sni, .. }) => s(sni),
            (Field::Software, O::SshBanner { software, .. }) => Some(Val::Str(software)),
            (Field::SmbDialect, O::Smb { dialect }) => dialect.map(|d| Val::Int(i64::from(d))),
            (Field::StandardSecurity, O::Rdp { standard_security }) => {
                standard_security.map(Val::Bool)
            }
            _ => None,
        }
    }
}

fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn outcome_name(o: LoginOutcome) -> &'static str {
    match o {
        LoginOutcome::Success => "success",
        LoginOutcome::Failure => "failure",
    }
}

fn cred_call(c: heir_model::event::CredCall) -> &'static str {
    use heir_model::event::CredCall as C;
    match c {
        C::Setuid => "setuid",
        C::Setreuid => "setreuid",
        C::Setresuid => "setresuid",
        C::Setgid => "setgid",
        C::Setregid => "setregid",
        C::Setresgid => "setresgid",
    }
}

/// O_WRONLY | O_RDWR | O_CREAT | O_TRUNC on Linux.
pub const fn open_writes(flags: u32) -> bool {
    flags & (0o1 | 0o2 | 0o100 | 0o1000) != 0
}

pub fn ret(kind: &EventKind) -> Option<i64> {
    use EventKind as K;
    match kind {
        K::Exec { ret, .. }
        | K::Open { ret, .. }
        | K::Rename { ret, .. }
        | K::Unlink { ret, .. }
        | K::Connect { ret, .. }
        | K::Accept { ret, .. }
        | K::Bind { ret, .. }
        | K::Listen { ret, .. }
        | K::CredChange { ret, .. }
        | K::Capset { ret, .. }
        | K::Ptrace { ret, .. }
        | K::Module { ret, .. }
        | K::Bpf { ret, .. }
        | K::MemfdCreate { ret, .. }
        | K::Mount { ret, .. } => Some(*ret),
        _ => None,
    }
}
