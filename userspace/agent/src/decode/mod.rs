//! The one place where kernel records become [`Event`]s.
//!
//! Records arrive as bytes from the ring buffer (or from a fixture). Nothing here trusts them:
//! the kind must be known, the length must match the kind's layout exactly, strings are cut at
//! their first NUL and decoded lossily. Arbitrary bytes give an error, never a panic.

pub mod fixtures;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heir_abi::{
    ArgsRecord, ExecRecord, HDR_MORE_ARGS, Header, Kind, NameRecord, PathRecord, SOCKADDR_LEN,
    Shape, SockRecord, TwoPathRecord, cred, module,
};
use heir_model::event::{CredCall, ModuleOp};
use heir_model::{BootClock, Event, EventKind, NetAddr, Process};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("record of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("{kind} record has {got} bytes, expected {want}")]
    Length {
        kind: &'static str,
        got: usize,
        want: usize,
    },
    #[error("{kind} record carries an unknown operation code {code}")]
    UnknownOp { kind: &'static str, code: u64 },
}

/// Reads a `T` from the start of `bytes`; the caller has checked the length.
fn read<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: length checked above; T is a plain #[repr(C)] record valid for any bit pattern;
    // read_unaligned copes with any alignment of the source.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

/// The string in `buf` up to its first NUL.
pub fn c_str(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Decodes one record.
pub fn decode(bytes: &[u8], clock: &BootClock) -> Result<Event, Error> {
    if bytes.len() < size_of::<Header>() {
        return Err(Error::Short(bytes.len()));
    }
    let h: Header = read(bytes);
    let kind = Kind::from_u16(h.kind).ok_or(Error::UnknownKind(h.kind))?;
    let want = kind.shape().size();
    if bytes.len() != want {
        return Err(Error::Length {
            kind: heir_model::Kind::from(kind).name(),
            got: bytes.len(),
            want,
        });
    }
    let process = Process {
        pid: h.tgid,
        tid: h.tid,
        ppid: h.ppid,
        uid: h.uid,
        euid: h.euid,
        gid: h.gid,
        comm: c_str(&h.comm),
        cgroup: h.cgroup_id,
        info: None,
    };
    let kind = match kind.shape() {
        Shape::Exec => {
            let r: ExecRecord = read(bytes);
            let argc = (r.argc as usize).min(r.args.len());
            EventKind::Exec {
                filename: c_str(&r.filename),
                argv: r.args[..argc].iter().map(|a| c_str(a)).collect(),
                argv_truncated: h.flags & HDR_MORE_ARGS != 0,
                ret: r.ret,
            }
        }
        Shape::Path => {
            let r: PathRecord = read(bytes);
            let path = c_str(&r.path);
            match kind {
                Kind::Open => EventKind::Open {
                    path,
                    flags: r.a as u32,
                    ret: r.ret,
                },
                Kind::Unlink => EventKind::Unlink { path, ret: r.ret },
                _ => EventKind::MemfdCreate {
                    name: path,
                    flags: r.a as u32,
                    ret: r.ret,
                },
            }
        }
        Shape::TwoPaths => {
            let r: TwoPathRecord = read(bytes);
            match kind {
                Kind::Rename => EventKind::Rename {
                    from: c_str(&r.first),
                    to: c_str(&r.second),
                    ret: r.ret,
                },
                _ => EventKind::Mount {
                    source: c_str(&r.first),
                    target: c_str(&r.second),
                    fstype: c_str(&r.name),
                    flags: r.a,
                    ret: r.ret,
                },
            }
        }
        Shape::Name => {
            let r: NameRecord = read(bytes);
            let op = match r.nr {
                module::INIT => ModuleOp::InitModule,
                module::FINIT => ModuleOp::FinitModule,
                module::DELETE => ModuleOp::DeleteModule,
                code => {
                    return Err(Error::UnknownOp {
                        kind: "module",
                        code,
                    });
                }
            };
            let name = c_str(&r.name);
            EventKind::Module {
                op,
                name: (!name.is_empty()).then_some(name),
                ret: r.ret,
            }
        }
        Shape::Sock => {
            let r: SockRecord = read(bytes);
            let addr = sockaddr(&r.addr, r.addr_len);
            let local = sockaddr(&r.local, r.local_len);
            match kind {
                Kind::Connect => EventKind::Connect {
                    addr: addr.unwrap_or(NetAddr::Other { af: 0 }),
                    ret: r.ret,
                },
                Kind::Bind => EventKind::Bind {
                    addr: addr.unwrap_or(NetAddr::Other { af: 0 }),
                    ret: r.ret,
                },
                Kind::Accept => EventKind::Accept {
                    local,
                    peer: addr,
                    ret: r.ret,
                },
                _ => EventKind::Listen {
                    addr: local,
                    backlog: r.backlog as i32,
                    ret: r.ret,
                },
            }
        }
        Shape::Args => {
            let r: ArgsRecord = read(bytes);
            let a = r.args;
            match kind {
                Kind::Fork => EventKind::Fork {
                    child_pid: a[0] as u32,
                },
                Kind::Exit => {
                    // The kernel's exit_code: exit status in bits 8..16, terminating signal
                    // in the low 7 bits.
                    let raw = a[0] as u32;
                    let signal = raw & 0x7f;
                    EventKind::Exit {
                        code: ((raw >> 8) & 0xff) as i32,
                        signal: (signal != 0).then_some(signal as i32),
                    }
                }
                Kind::FileBurst => EventKind::FileBurst {
                    writes: a[0] as u32,
                    renames: a[1] as u32,
                    unlinks: a[2] as u32,
                    window_ms: a[3] as u32,
                    children: r.nr == heir_abi::BURST_CHILDREN,
                },
                Kind::CredChange => {
                    let call = match r.nr {
                        cred::SETUID => CredCall::Setuid,
                        cred::SETREUID => CredCall::Setreuid,
                        cred::SETRESUID => CredCall::Setresuid,
                        cred::SETGID => CredCall::Setgid,
                        cred::SETREGID => CredCall::Setregid,
                        cred::SETRESGID => CredCall::Setresgid,
                        code => {
                            return Err(Error::UnknownOp {
                                kind: "cred_change",
                                code,
                            });
                        }
                    };
                    let id = |v: u64| (v <= u64::from(u32::MAX - 1)).then_some(v as u32);
                    let (real, effective, saved) = match call {
                        CredCall::Setuid | CredCall::Setgid => (None, id(a[0]), None),
                        CredCall::Setreuid | CredCall::Setregid => (id(a[0]), id(a[1]), None),
                        CredCall::Setresuid | CredCall::Setresgid => (id(a[0]), id(a[1]), id(a[2])),
                    };
                    EventKind::CredChange {
                        call,
                        real,
                        effective,
                        saved,
                        ret: r.ret,
                    }
                }
                Kind::Capset => EventKind::Capset {
                    effective: a[0],
                    permitted: a[1],
                    inheritable: a[2],
                    ret: r.ret,
                },
                Kind::Ptrace => EventKind::Ptrace {
                    request: a[0] as i64,
                    target: a[1] as u32,
                    ret: r.ret,
                },
                _ => EventKind::Bpf {
                    cmd: a[0] as u32,
                    prog_type: (a[1] != u64::MAX).then_some(a[1] as u32),
                    ret: r.ret,
                },
            }
        }
    };
    Ok(Event {
        ts: clock.wall(h.ts_boot_ns),
        process,
        kind,
    })
}

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Decodes a `sockaddr` as the probe copied it; `None` when nothing was copied.
pub fn sockaddr(buf: &[u8; SOCKADDR_LEN], len: u32) -> Option<NetAddr> {
    let len = (len as usize).min(SOCKADDR_LEN);
    if len < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([buf[0], buf[1]]);
    let port = u16::from_be_bytes([buf[2], buf[3]]);
    Some(match family {
        AF_INET if len >= 8 => NetAddr::Inet {
            ip: IpAddr::V4(Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7])),
            port,
        },
        AF_INET6 if len >= 24 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&buf[8..24]);
            NetAddr::Inet {
                ip: IpAddr::V6(Ipv6Addr::from(o)),
                port,
            }
        }
        AF_UNIX => {
            let path = &buf[2..len];
            // Abstract socket names start with a NUL; show them as `@name` like ss(8) does.
            let path = if path.first() == Some(&0) {
                format!("@{}", c_str(&path[1..]))
            } else {
                c_str(path)
            };
            NetAddr::Unix { path }
        }
        af => NetAddr::Other { af },
    })
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use heir_model::Timestamp;
    use proptest::prelude::*;

    const CLOCK: BootClock = BootClock::with_offset(1_700_000_000_000_000_000);

    #[test]
    fn exec_records_decode_with_argv_and_wall_time() {
        let e = decode(&bytes(&exec(7, "/bin/sh", &["sh", "-c", "id"], 0)), &CLOCK).unwrap();
        assert_eq!(e.ts, Timestamp::from_nanos(1_700_000_005_000_000_000));
        assert_eq!(
            (e.process.pid, e.process.ppid, e.process.uid, e.process.euid),
            (7, 1, 1000, 0)
        );
        assert_eq!(e.process.comm, "bash");
        assert_eq!(
            e.kind,
            EventKind::Exec {
                filename: "/bin/sh".into(),
                argv: vec!["sh".into(), "-c".into(), "id".into()],
                argv_truncated: false,
                ret: 0
            }
        );
    }

    #[test]
    fn argc_beyond_the_slots_is_clamped_and_flagged() {
        let mut r = exec(7, "/bin/echo", &["echo"; 16], 0);
        r.argc = 500;
        r.header.flags = HDR_MORE_ARGS;
        let EventKind::Exec {
            argv,
            argv_truncated,
            ..
        } = decode(&bytes(&r), &CLOCK).unwrap().kind
        else {
            panic!()
        };
        assert_eq!(argv.len(), 16);
        assert!(argv_truncated);
    }

    #[test]
    fn sockaddrs_decode_for_every_family() {
        let e = decode(&bytes(&connect_v4(9, [10, 1, 2, 3], 2575, -111)), &CLOCK).unwrap();
        assert_eq!(
            e.kind,
            EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: "10.1.2.3".parse().unwrap(),
                    port: 2575
                },
                ret: -111
            }
        );
        let mut v6 = [0u8; SOCKADDR_LEN];
        v6[..2].copy_from_slice(&10u16.to_ne_bytes());
        v6[2..4].copy_from_slice(&104u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(
            sockaddr(&v6, 28),
            Some(NetAddr::Inet {
                ip: "::1".parse().unwrap(),
                port: 104
            })
        );
        let mut un = [0u8; SOCKADDR_LEN];
        un[..2].copy_from_slice(&1u16.to_ne_bytes());
        un[3..7].copy_from_slice(b"heir");
        assert_eq!(
            sockaddr(&un, 7),
            Some(NetAddr::Unix {
                path: "@heir".into()
            })
        );
        assert_eq!(sockaddr(&un, 0), None);
    }

    #[test]
    fn unchanged_ids_are_absent_and_exit_status_is_split() {
        let r = args(
            Kind::CredChange,
            3,
            cred::SETRESUID,
            [u64::from(u32::MAX), 0, u64::from(u32::MAX), 0],
            0,
        );
        assert_eq!(
            decode(&bytes(&r), &CLOCK).unwrap().kind,
            EventKind::CredChange {
                call: CredCall::Setresuid,
                real: None,
                effective: Some(0),
                saved: None,
                ret: 0
            }
        );
        let r = args(Kind::Exit, 3, 0, [9, 0, 0, 0], 0);
        assert_eq!(
            decode(&bytes(&r), &CLOCK).unwrap().kind,
            EventKind::Exit {
                code: 0,
                signal: Some(9)
            }
        );
        let r = args(Kind::Exit, 3, 0, [3 << 8, 0, 0, 0], 0);
        assert_eq!(
            decode(&bytes(&r), &CLOCK).unwrap().kind,
            EventKind::Exit {
                code: 3,
                signal: None
            }
        );
    }

    #[test]
    fn malformed_records_are_errors_that_say_what() {
        let good = bytes(&path(Kind::Open, 1, "/etc/shadow", 0, 3));
        assert_eq!(decode(&good[..10], &CLOCK), Err(Error::Short(10)));
        assert_eq!(
            decode(&good[..good.len() - 1], &CLOCK),
            Err(Error::Length {
                kind: "open",
                got: good.len() - 1,
                want: good.len()
            })
        );
        let mut bad = good.clone();
        bad[0] = 0xff;
        assert_eq!(decode(&bad, &CLOCK), Err(Error::UnknownKind(0xff)));
        let r = args(Kind::CredChange, 3, 99, [0; 4], 0);
        assert!(
            decode(&bytes(&r), &CLOCK)
                .unwrap_err()
                .to_string()
                .contains("cred_change")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = decode(&data, &CLOCK);
        }

        #[test]
        fn arbitrary_bodies_of_every_kind_never_panic(kind in 1u16..19, fill in any::<u8>(), seed in any::<u64>()) {
            let k = Kind::from_u16(kind).unwrap();
            let mut data = vec![fill; k.shape().size()];
            data[..2].copy_from_slice(&kind.to_ne_bytes());
            for (i, b) in data.iter_mut().enumerate().skip(2) {
                *b ^= (seed.rotate_left(i as u32 % 64) & 0xff) as u8;
            }
            let _ = decode(&data, &CLOCK);
        }
    }
}
