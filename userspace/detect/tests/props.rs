//! Property tests: nothing an event source can produce makes a rule or detector panic, and no
//! condition or rule file text makes the parsers panic.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use heir_detect::rules::expr::Expr;
use heir_detect::{Config, Engine, Kind, ManualClock, rules};
use heir_model::event::{
    Ancestor, CredCall, LoginOutcome, ModuleOp, Observation, ProcessInfo, TcpFlags, Transport,
};
use heir_model::{Event, EventKind, NetAddr, Process, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..4, any::<u8>()).prop_map(|(a, b)| IpAddr::from([10, 9, a, b])),
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z/._-]{0,24}",
        Just("/etc/shadow".to_owned()),
        Just("/etc/cron.d/x".to_owned()),
        Just("bash".to_owned()),
        Just("/dev/tcp/10.9.0.1/4444".to_owned()),
        Just("/memfd:x".to_owned()),
        any::<String>(),
    ]
}

fn addr() -> impl Strategy<Value = NetAddr> {
    prop_oneof![
        (
            ip(),
            prop_oneof![any::<u16>(), Just(22u16), Just(3333u16), Just(443u16)]
        )
            .prop_map(|(ip, port)| NetAddr::Inet { ip, port }),
        text().prop_map(|path| NetAddr::Unix { path }),
        any::<u16>().prop_map(|af| NetAddr::Other { af }),
    ]
}

fn outcome() -> impl Strategy<Value = Option<LoginOutcome>> {
    prop_oneof![
        Just(None),
        Just(Some(LoginOutcome::Success)),
        Just(Some(LoginOutcome::Failure))
    ]
}

fn observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        (text(), text(), any::<Option<bool>>()).prop_map(|(calling_ae, called_ae, accepted)| {
            Observation::Dicom {
                calling_ae,
                called_ae,
                accepted,
            }
        }),
        Just(Observation::DicomTls {
            versions: vec![0x0303],
            cipher_suites: vec![0x1301],
            ja4: String::new(),
        }),
        (text(), text()).prop_map(|(s, r)| Observation::Hl7Mllp {
            sending_application: s,
            receiving_application: r
        }),
        (proptest::option::of(text()), outcome())
            .prop_map(|(user, outcome)| Observation::Telnet { user, outcome }),
        (proptest::option::of(text()), any::<bool>(), outcome()).prop_map(|(user, c, outcome)| {
            Observation::Ftp {
                user,
                cleartext_credentials: c,
                outcome,
            }
        }),
        (
            text(),
            any::<bool>(),
            proptest::option::of(text()),
            any::<bool>(),
            any::<Option<u16>>()
        )
            .prop_map(|(method, admin_path, u, b, status)| Observation::Http {
                method,
                admin_path,
                basic_auth_user: u,
                basic_auth_cleartext: b,
                status,
                host: None,
                url_digest: None,
            }),
        (proptest::option::of(text()), any::<bool>(), outcome()).prop_map(|(user, c, outcome)| {
            Observation::Mqtt {
                user,
                cleartext_credentials: c,
                outcome,
            }
        }),
        (
            proptest::collection::vec(any::<u16>(), 0..4),
            proptest::collection::vec(any::<u16>(), 0..8),
            proptest::option::of(text()),
            text()
        )
            .prop_map(
                |(versions, cipher_suites, sni, ja4)| Observation::TlsClientHello {
                    versions,
                    cipher_suites,
                    sni,
                    alpn: vec![],
                    ja4
                }
            ),
        (any::<u16>(), any::<u16>()).prop_map(|(version, cipher_suite)| {
            Observation::TlsServerHello {
                version,
                cipher_suite,
            }
        }),
        (text(), text()).prop_map(|(proto_version, software)| Observation::SshBanner {
            proto_version,
            software
        }),
        proptest::option::of(any::<u16>()).prop_map(|dialect| Observation::Smb { dialect }),
        proptest::option::of(any::<bool>())
            .prop_map(|standard_security| Observation::Rdp { standard_security }),
    ]
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (
            text(),
            proptest::collection::vec(text(), 0..4),
            any::<i64>()
        )
            .prop_map(|(filename, argv, ret)| EventKind::Exec {
                filename,
                argv,
                argv_truncated: false,
                ret
            }),
        any::<u32>().prop_map(|child_pid| EventKind::Fork { child_pid }),
        (any::<i32>(), any::<Option<i32>>())
            .prop_map(|(code, signal)| EventKind::Exit { code, signal }),
        (text(), any::<u32>(), any::<i64>()).prop_map(|(path, flags, ret)| EventKind::Open {
            path,
            flags,
            ret
        }),
        (text(), text(), any::<i64>()).prop_map(|(from, to, ret)| EventKind::Rename {
            from,
            to,
            ret
        }),
        (text(), any::<i64>()).prop_map(|(path, ret)| EventKind::Unlink { path, ret }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>()
        )
            .prop_map(|(writes, renames, unlinks, window_ms, children)| {
                EventKind::FileBurst {
                    writes,
                    renames,
                    unlinks,
                    window_ms,
                    children,
                }
            }),
        (addr(), any::<i64>()).prop_map(|(addr, ret)| EventKind::Connect { addr, ret }),
        (
            proptest::option::of(addr()),
            proptest::option::of(addr()),
            any::<i64>()
        )
            .prop_map(|(local, peer, ret)| EventKind::Accept { local, peer, ret }),
        (addr(), any::<i64>()).prop_map(|(addr, ret)| EventKind::Bind { addr, ret }),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<i64>()
        )
            .prop_map(|(real, effective, saved, ret)| EventKind::CredChange {
                call: CredCall::Setresuid,
                real,
                effective,
                saved,
                ret
            }),
        (any::<u64>(), any::<i64>()).prop_map(|(effective, ret)| EventKind::Capset {
            effective,
            permitted: effective,
            inheritable: 0,
            ret
        }),
        (any::<i64>(), any::<u32>(), any::<i64>()).prop_map(|(request, target, ret)| {
            EventKind::Ptrace {
                request,
                target,
                ret,
            }
        }),
        (proptest::option::of(text()), any::<i64>()).prop_map(|(name, ret)| EventKind::Module {
            op: ModuleOp::FinitModule,
            name,
            ret
        }),
        (any::<u32>(), any::<Option<u32>>(), any::<i64>()).prop_map(|(cmd, prog_type, ret)| {
            EventKind::Bpf {
                cmd,
                prog_type,
                ret,
            }
        }),
        (text(), any::<u32>(), any::<i64>())
            .prop_map(|(name, flags, ret)| EventKind::MemfdCreate { name, flags, ret }),
        (text(), text(), text(), any::<u64>(), any::<i64>()).prop_map(
            |(source, target, fstype, flags, ret)| EventKind::Mount {
                source,
                target,
                fstype,
                flags,
                ret
            }
        ),
        (
            ip(),
            any::<u16>(),
            ip(),
            any::<u16>(),
            any::<[u64; 4]>(),
            any::<[u8; 2]>(),
            any::<u32>(),
            any::<[bool; 2]>(),
            any::<[u64; 2]>(),
            0u8..3
        )
            .prop_map(
                |(src, src_port, dst, dst_port, c, f, syn_unanswered, b, t, tr)| EventKind::Flow {
                    src,
                    src_port,
                    dst,
                    dst_port,
                    transport: [Transport::Tcp, Transport::Udp, Transport::Icmp][tr as usize],
                    packets_out: c[0],
                    bytes_out: c[1],
                    packets_in: c[2],
                    bytes_in: c[3],
                    flags_out: TcpFlags(f[0]),
                    flags_in: TcpFlags(f[1]),
                    syn_unanswered,
                    established: b[0],
                    icmp_unreachable: b[1],
                    first_seen: Timestamp::from_nanos(t[0]),
                    last_seen: Timestamp::from_nanos(t[1]),
                    link: None,
                }
            ),
        (ip(), any::<u16>(), ip(), any::<u16>(), observation()).prop_map(
            |(src, src_port, dst, dst_port, observation)| EventKind::Protocol {
                src,
                src_port,
                dst,
                dst_port,
                observation
            }
        ),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            any::<u64>(),
            (0u64..600_000_000_000).prop_map(|t| 1_767_225_600_000_000_000 + t)
        ],
        (
            1u32..64,
            1u32..64,
            prop_oneof![Just(0u32), Just(1000u32), any::<u32>()],
            prop_oneof![Just(0u32), any::<u32>()],
        ),
        text(),
        proptest::option::of((
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3),
            text(),
        )),
        kind(),
    )
        .prop_map(|(ts, (pid, ppid, uid, euid), comm, info, kind)| Event {
            ts: Timestamp::from_nanos(ts),
            process: Process {
                pid,
                tid: pid,
                ppid,
                uid,
                euid,
                gid: uid,
                comm,
                cgroup: 0,
                info: info.map(|(exe, args, parent)| {
                    Arc::new(ProcessInfo {
                        exe,
                        args,
                        started: None,
                        lineage: vec![Ancestor {
                            pid: ppid,
                            exe: parent,
                        }],
                    })
                }),
            },
            kind,
        })
}

fn engine() -> Engine {
    let mut e = Engine::new(
        &Config::default(),
        Arc::new(ManualClock::new(Timestamp::from_secs(1_767_225_600))),
    );
    e.reload_rules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("shipped rules load");
    e
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_rule_or_detector_panics_on_arbitrary_events(events in proptest::collection::vec(event(), 1..200)) {
        let mut e = engine();
        let mut out = Vec::new();
        for ev in &events {
            e.process(ev, &mut out);
        }
        e.tick(&mut out);
        for a in &out {
            prop_assert!((0.0..=1.0).contains(&a.confidence));
            prop_assert!(!a.evidence.is_empty());
            prop_assert!(a.count >= 1);
        }
        let state = e.save_state();
        let mut fresh = engine();
        prop_assert!(fresh.restore_state(&state).is_ok());
    }

    /// Few endpoints and extreme counters: the same windows and series fill up and overflow
    /// if any sum is unchecked.
    #[test]
    fn extreme_counters_on_few_endpoints_never_panic(
        flows in proptest::collection::vec((0usize..2, 0usize..2, any::<[u64; 4]>(), any::<u32>(), 0u64..5_000_000_000), 1..300)
    ) {
        let ips: [IpAddr; 4] = ["10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap(), "198.51.100.1".parse().unwrap(), "203.0.113.1".parse().unwrap()];
        let mut e = engine();
        let mut out = Vec::new();
        let mut t = 1_767_225_600_000_000_000u64;
        for (s, d, c, syn, gap) in flows {
            t = t.saturating_add(gap);
            let ev = Event {
                ts: Timestamp::from_nanos(t),
                process: Process::default(),
                kind: EventKind::Flow {
                    src: ips[s],
                    src_port: 40000,
                    dst: ips[2 + d],
                    dst_port: 443,
                    transport: Transport::Tcp,
                    packets_out: c[0],
                    bytes_out: c[1],
                    packets_in: c[2],
                    bytes_in: c[3],
                    flags_out: TcpFlags(0x1b),
                    flags_in: TcpFlags(0x1b),
                    syn_unanswered: syn,
                    established: true,
                    icmp_unreachable: false,
                    first_seen: Timestamp::from_nanos(t),
                    last_seen: Timestamp::from_nanos(t),
                    link: None,
                },
            };
            e.process(&ev, &mut out);
        }
        e.tick(&mut out);
        prop_assert!(out.iter().all(|a| (0.0..=1.0).contains(&a.confidence)));
    }

    #[test]
    fn beacon_analysis_is_total_and_bounded(
        gaps in proptest::collection::vec(prop_oneof![0u64..2_000_000_000, 0u64..100_000_000_000_000, any::<u64>()], 0..140),
        sizes in proptest::collection::vec(any::<u64>(), 0..140),
    ) {
        let mut times = Vec::with_capacity(gaps.len());
        let mut t = 0u64;
        for g in gaps {
            t = t.saturating_add(g);
            times.push(t);
        }
        let mut b = heir_detect::beacon::Beacon::new(heir_detect::beacon::Config::default());
        if let Some(p) = b.analyse(&times, &sizes) {
            prop_assert!(p.period_secs > 0.0 && p.period_secs.is_finite());
            prop_assert!((0.0..=1.0).contains(&p.confidence), "{p:?}");
            prop_assert!((0.0..=1.0).contains(&p.spectral) && (0.0..=1.0).contains(&p.timing));
        }
    }

    #[test]
    fn conditions_never_panic(src in prop_oneof![any::<String>(), "[a-z_ =!<>&|()\\[\\]\",0-9x-]{0,60}"]) {
        let _ = Expr::compile(&src, &Kind::ALL);
    }

    #[test]
    fn rule_files_never_panic(text in prop_oneof![any::<String>(), "[-a-z_:'\" \n\\[\\]{},0-9]{0,200}"]) {
        let _ = rules::parse_str(Path::new("fuzz.yaml"), &text);
    }

    #[test]
    fn state_restore_rejects_or_accepts_garbage_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut e = engine();
        let _ = e.restore_state(&bytes);
    }
}

#[test]
fn new_event_kinds_round_trip_as_json() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..200 {
        let ev = event().new_tree(&mut runner).unwrap().current();
        if !matches!(Kind::of(&ev.kind), Kind::Flow | Kind::Protocol) {
            continue;
        }
        let back: Event = serde_json::from_str(&ev.to_json_line()).unwrap();
        assert_eq!(back, ev);
    }
}
