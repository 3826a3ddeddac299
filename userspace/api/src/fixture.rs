//! Fixture data and an in-memory [`Backend`], for tests of the router and of API clients.
//!
//! The fixture is a small ward: four devices (one critical infusion pump), a handful of
//! alerts, and (optionally) a mesh and responder with data, so every view has something real
//! to show. Scores come from the real RAMA formula.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use heir_model::{Alert, Category, Severity, Taxonomy, Timestamp};
use heir_rama::history::Point;
use heir_rama::import::mds2::Capability;
use heir_rama::score::{Exposure, VulnInput};
use heir_rama::{Class, Criticality, Explanation, Hospital, Inputs, Report};
use heir_rama::{Protocol, Transport};
use tokio::sync::broadcast;

use crate::Caller;
use crate::{
    Ack, AlertQuery, Availability, Backend, BackendError, Block, BlockRequest, Blocks, Device,
    Indicator, Live, Origin, Peer, Pending, Pipeline, Probe, Probes, Rama, SensorCounts, Status,
    Stored,
};

/// The fixture's "now": 2026-11-28T07:00:00Z.
pub const NOW: Timestamp = Timestamp::from_secs(1_795_849_200);

struct Spec {
    id: &'static str,
    name: &'static str,
    class: Class,
    criticality: Criticality,
    ip: &'static str,
    manufacturer: &'static str,
    model: &'static str,
    inputs: fn() -> Inputs,
}

const SPECS: [Spec; 4] = [
    Spec {
        id: "pump-icu-3",
        name: "ICU infusion pump 3",
        class: Class::InfusionPump,
        criticality: Criticality::LifeSustaining,
        ip: "10.20.0.13",
        manufacturer: "Medipump",
        model: "MP-400",
        inputs: || Inputs {
            criticality: Criticality::LifeSustaining,
            exposures: vec![
                Exposure::Cleartext {
                    port: 23,
                    transport: Transport::Tcp,
                    protocol: Protocol::Telnet,
                },
                Exposure::DefaultCredentials {
                    port: 23,
                    protocol: Protocol::Telnet,
                },
            ],
            vulnerabilities: vec![VulnInput {
                id: "CVE-2025-0001".into(),
                cvss: 9.8,
                exploited: true,
                fixed_in: Some("4.2.1".into()),
                advisory: None,
                remediation: None,
            }],
            threat_load: 1.5,
            capabilities: vec![Capability::AuditLogging],
        },
    },
    Spec {
        id: "pacs-1",
        name: "PACS archive",
        class: Class::Pacs,
        criticality: Criticality::Moderate,
        ip: "10.20.1.5",
        manufacturer: "Imagix",
        model: "Archive 9",
        inputs: || Inputs {
            criticality: Criticality::Moderate,
            exposures: vec![Exposure::Cleartext {
                port: 104,
                transport: Transport::Tcp,
                protocol: Protocol::Dicom,
            }],
            vulnerabilities: vec![],
            threat_load: 0.2,
            capabilities: vec![Capability::Authentication, Capability::Patching],
        },
    },
    Spec {
        id: "mon-ward-7",
        name: "Ward 7 patient monitor",
        class: Class::PatientMonitor,
        criticality: Criticality::High,
        ip: "10.20.2.7",
        manufacturer: "Vitalis",
        model: "VM-12",
        inputs: || Inputs {
            criticality: Criticality::High,
            exposures: vec![],
            vulnerabilities: vec![VulnInput {
                id: "CVE-2024-1234".into(),
                cvss: 5.3,
                exploited: false,
                fixed_in: None,
                advisory: None,
                remediation: None,
            }],
            threat_load: 0.0,
            capabilities: vec![Capability::Segmentation, Capability::Authentication],
        },
    },
    Spec {
        id: "mac:00:1b:2c:3d:4e:5f",
        name: "mac:00:1b:2c:3d:4e:5f",
        class: Class::Other,
        criticality: Criticality::Moderate,
        ip: "10.20.9.99",
        manufacturer: "Unknown Labs",
        model: "",
        inputs: || Inputs {
            criticality: Criticality::Moderate,
            exposures: vec![],
            vulnerabilities: vec![],
            threat_load: 0.0,
            capabilities: vec![],
        },
    },
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("fixture addresses parse")
}

/// Devices worst first, scored by the real formula.
pub fn devices() -> Vec<Device> {
    let mut v: Vec<Device> = SPECS
        .iter()
        .map(|s| Device {
            id: s.id.into(),
            name: s.name.into(),
            class: s.class,
            criticality: s.criticality,
            ip: Some(ip(s.ip)),
            manufacturer: Some(s.manufacturer.into()),
            model: (!s.model.is_empty()).then(|| s.model.into()),
            last_seen: Some(NOW),
            score: heir_rama::Score::of(&(s.inputs)()),
        })
        .collect();
    v.sort_by(|a, b| b.score.value.total_cmp(&a.score.value));
    v
}

/// The RAMA report of a fixture device.
pub fn report(id: &str) -> Option<Report> {
    let s = SPECS.iter().find(|s| s.id == id)?;
    Some(Report {
        device: s.id.into(),
        name: s.name.into(),
        class: s.class,
        criticality: s.criticality,
        at: NOW,
        explanation: Explanation::of(&(s.inputs)()),
        matches: vec![],
        recent_alerts: vec![],
    })
}

pub fn rama() -> Rama {
    let devs = devices();
    let worst: Vec<f64> = devs.iter().map(|d| d.score.value).collect();
    let value = heir_rama::hospital::value(&worst);
    let mut bands = [0usize; 4];
    for d in &devs {
        bands[d.score.band as usize] += 1;
    }
    Rama {
        hospital: Hospital {
            value,
            band: heir_rama::Band::of(value),
            devices: devs.len(),
            bands,
            worst: devs.iter().map(|d| (d.id.clone(), d.score.value)).collect(),
        },
        history: (0..5)
            .map(|i| Point {
                ts: Timestamp::from_secs(NOW.as_nanos() / 1_000_000_000 - 600 + i * 120),
                value: value - 10.0 + 2.0 * i as f64,
            })
            .collect(),
        peer_percentile: None,
    }
}

pub fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        uptime_secs: 3725,
        probes: Probes {
            attached: vec!["sys_enter_execve".into(), "sys_enter_connect".into()],
            failed: vec![Probe {
                program: "sys_enter_init_module".into(),
                reason: "tracepoint missing".into(),
            }],
        },
        sensors: vec![
            SensorCounts {
                kind: "exec".into(),
                emitted: 15_234,
                lost: 0,
                filtered: 120,
            },
            SensorCounts {
                kind: "connect".into(),
                emitted: 88_002,
                lost: 17,
                filtered: 4_000,
            },
            SensorCounts {
                kind: "open".into(),
                emitted: 1_200_456,
                lost: 312,
                filtered: 900_000,
            },
        ],
        events_per_sec: 842.5,
        pipeline: Pipeline {
            records: 1_303_692,
            events: 1_303_690,
            decode_errors: 2,
            dropped: 0,
            alerts: 5,
        },
        sinks: Vec::new(),
    }
}

/// One alert as detectors make them.
pub fn alert(
    secs_ago: u64,
    rule: &str,
    title: &str,
    category: Category,
    severity: Severity,
    device: Option<&str>,
) -> Alert {
    let mut a = Alert::new(
        Timestamp::from_nanos(NOW.as_nanos() - secs_ago * 1_000_000_000),
        rule,
        title,
        category,
        severity,
        0.9,
    );
    a.device = device.map(str::to_owned);
    a
}

/// Five alerts, oldest first, seq 1..=5; the oldest one acknowledged.
pub fn alerts() -> Vec<Stored> {
    let mut scan = alert(
        3000,
        "net.port_scan",
        "Port scan of the ICU subnet",
        Category::PortScan,
        Severity::Medium,
        Some("pump-icu-3"),
    );
    scan.src_ip = Some(ip("10.20.5.66"));
    scan.evidence = vec!["1024 ports in 3 s from 10.20.5.66".into()];
    let mut brute = alert(
        900,
        "auth.telnet_brute",
        "Telnet brute force against pump",
        Category::BruteForce,
        Severity::High,
        Some("pump-icu-3"),
    );
    brute.src_ip = Some(ip("10.20.5.66"));
    brute.dst_ip = Some(ip("10.20.0.13"));
    brute.dst_port = Some(23);
    brute.taxonomy = Taxonomy {
        owasp_iot: Some("I1".into()),
        enisa: Some("Brute force".into()),
        attack: Some("T1110".into()),
    };
    brute.evidence = vec![
        "212 failed logins in 60 s".into(),
        "user names tried: admin, root, service".into(),
    ];
    brute.count = 212;
    let mut clear = alert(
        600,
        "net.cleartext_dicom",
        "Cleartext DICOM with patient data",
        Category::CleartextProtocol,
        Severity::Low,
        Some("pacs-1"),
    );
    clear.dst_port = Some(104);
    let mut shell = alert(
        120,
        "proc.reverse_shell",
        "Reverse shell from the PACS host",
        Category::ReverseShell,
        Severity::Critical,
        Some("pacs-1"),
    );
    shell.pid = Some(4242);
    shell.comm = Some("bash".into());
    shell.taxonomy.attack = Some("T1059.004".into());
    shell.evidence = vec!["bash stdin/stdout bound to 203.0.113.9:4444".into()];
    let anomaly = alert(
        30,
        "ml.anomaly",
        "Unusual connection pattern",
        Category::Anomaly,
        Severity::Info,
        None,
    );
    [scan, brute, clear, shell, anomaly]
        .into_iter()
        .enumerate()
        .map(|(i, alert)| Stored {
            seq: i as u64 + 1,
            acknowledged: (i == 0).then_some(Ack::at(NOW)),
            alert,
        })
        .collect()
}

pub fn indicators() -> Vec<Indicator> {
    vec![
        Indicator {
            id: "ind-1".into(),
            kind: "ipv4".into(),
            value: "203.0.113.9".into(),
            category: Category::ReverseShell,
            confidence: 0.8,
            sources: vec!["local".into(), "st-mary".into()],
            first_seen: NOW,
            last_seen: NOW,
            sightings: 3,
            device_model: Some("Archive 9".into()),
            origin: crate::IndicatorOrigin::Mesh,
            tlp: Some("TLP:GREEN".into()),
        },
        Indicator {
            id: "ind-2".into(),
            kind: "sha256".into(),
            value: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            category: Category::Cryptomining,
            confidence: 0.6,
            sources: vec!["city-general".into()],
            first_seen: NOW,
            last_seen: NOW,
            sightings: 0,
            device_model: None,
            origin: crate::IndicatorOrigin::Import,
            tlp: Some("TLP:AMBER".into()),
        },
    ]
}

pub fn peers() -> Vec<Peer> {
    vec![
        Peer {
            id: "12D3KooWSt".into(),
            name: Some("st-mary".into()),
            address: Some("/ip4/127.0.0.1/tcp/4001".into()),
            trust: 0.9,
            connected: true,
            last_seen: Some(NOW),
            indicators: 41,
        },
        Peer {
            id: "12D3KooWCg".into(),
            name: Some("city-general".into()),
            address: None,
            trust: 0.4,
            connected: false,
            last_seen: None,
            indicators: 7,
        },
    ]
}

pub fn blocks() -> Blocks {
    Blocks {
        active: vec![Block {
            addr: ip("10.20.5.66"),
            reason: "telnet brute force".into(),
            origin: Origin::Policy,
            since: NOW,
            expires: Some(Timestamp::from_nanos(NOW.as_nanos() + 3_600_000_000_000)),
            alert: Some(2),
        }],
        pending: vec![Pending {
            id: "p-1".into(),
            addr: ip("203.0.113.9"),
            reason: "reverse shell endpoint".into(),
            category: Category::ReverseShell,
            severity: Severity::Critical,
            confidence: 0.95,
            requested: NOW,
            alert: Some(4),
        }],
    }
}

/// Where the fixture hospital ranks among its peers when the mesh is there.
pub const PEER_PERCENTILE: f64 = 0.83;

/// Which optional parts the in-memory agent has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Only what the agent has today: no mesh, no responder (their defaults say NotBuilt).
    Core,
    /// Mesh and responder with fixture data.
    All,
}

/// An agent held in memory: the fixture's state, mutable through the actions, with a live
/// channel tests can publish on.
pub struct Memory {
    parts: Parts,
    pub alerts: Mutex<Vec<Stored>>,
    pub blocks: Mutex<Blocks>,
    pub live: broadcast::Sender<Live>,
}

impl Memory {
    /// `capacity` bounds the live channel (small values let tests make subscribers lag).
    pub fn new(parts: Parts, capacity: usize) -> Self {
        Self {
            parts,
            alerts: Mutex::new(alerts()),
            blocks: Mutex::new(blocks()),
            live: broadcast::channel(capacity).0,
        }
    }

    /// Stores an alert and publishes it, as the agent's pipeline would.
    pub fn push(&self, alert: Alert) -> Stored {
        let mut v = self.alerts.lock().expect("alerts");
        let stored = Stored {
            seq: v.last().map_or(1, |s| s.seq + 1),
            acknowledged: None,
            alert,
        };
        v.push(stored.clone());
        let _ = self.live.send(Live::Alert(stored.clone()));
        stored
    }

    fn full(&self) -> bool {
        self.parts == Parts::All
    }
}

impl Backend for Memory {
    async fn status(&self) -> Result<Status, BackendError> {
        let mut s = status();
        s.pipeline.alerts = self.alerts.lock().expect("alerts").len() as u64;
        Ok(s)
    }

    async fn devices(&self) -> Result<Vec<Device>, BackendError> {
        Ok(devices())
    }

    async fn device(&self, id: &str) -> Result<Report, BackendError> {
        report(id).ok_or_else(|| BackendError::NotFound {
            what: format!("device `{id}`"),
        })
    }

    async fn rama(&self) -> Result<Rama, BackendError> {
        let mut r = rama();
        if self.full() {
            r.peer_percentile = Some(PEER_PERCENTILE);
        }
        Ok(r)
    }

    async fn alerts(&self, q: AlertQuery) -> Result<Vec<Stored>, BackendError> {
        let v = self.alerts.lock().expect("alerts");
        Ok(v.iter()
            .rev()
            .filter(|s| q.after.is_none_or(|a| s.seq > a))
            .filter(|s| q.before.is_none_or(|b| s.seq < b))
            .filter(|s| !q.unacknowledged || s.acknowledged.is_none())
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn acknowledge(&self, seq: u64, by: &Caller) -> Result<Stored, BackendError> {
        let mut v = self.alerts.lock().expect("alerts");
        let s = v
            .iter_mut()
            .find(|s| s.seq == seq)
            .ok_or_else(|| BackendError::NotFound {
                what: format!("alert {seq}"),
            })?;
        s.acknowledged.get_or_insert(Ack {
            by: by.to_string(),
            ..Ack::at(NOW)
        });
        Ok(s.clone())
    }

    fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    async fn indicators(&self) -> Result<Availability<Vec<Indicator>>, BackendError> {
        Ok(if self.full() {
            Availability::Available(indicators())
        } else {
            Availability::not_built(crate::backend::MESH_NOT_BUILT)
        })
    }

    async fn peers(&self) -> Result<Availability<Vec<Peer>>, BackendError> {
        Ok(if self.full() {
            Availability::Available(peers())
        } else {
            Availability::not_built(crate::backend::MESH_NOT_BUILT)
        })
    }

    async fn blocks(&self) -> Result<Availability<Blocks>, BackendError> {
        Ok(if self.full() {
            Availability::Available(self.blocks.lock().expect("blocks").clone())
        } else {
            Availability::not_built(crate::backend::RESPONDER_NOT_BUILT)
        })
    }

    async fn block(&self, r: BlockRequest, _by: &Caller) -> Result<Block, BackendError> {
        self.responder()?;
        let protected: BTreeMap<IpAddr, &str> = SPECS
            .iter()
            .filter(|s| s.criticality == Criticality::LifeSustaining)
            .map(|s| (ip(s.ip), s.id))
            .collect();
        if let Some(id) = protected.get(&r.addr) {
            return Err(BackendError::Refused(format!(
                "{} is device `{id}`, which is protected",
                r.addr
            )));
        }
        let b = Block {
            addr: r.addr,
            reason: r.reason.unwrap_or_else(|| "operator".into()),
            origin: Origin::Operator,
            since: NOW,
            expires: r
                .ttl_secs
                .map(|t| Timestamp::from_nanos(NOW.as_nanos() + t * 1_000_000_000)),
            alert: None,
        };
        self.blocks.lock().expect("blocks").active.push(b.clone());
        Ok(b)
    }

    async fn unblock(&self, addr: IpAddr, _by: &Caller) -> Result<Block, BackendError> {
        self.responder()?;
        let mut b = self.blocks.lock().expect("blocks");
        let i = b
            .active
            .iter()
            .position(|x| x.addr == addr)
            .ok_or_else(|| BackendError::NotFound {
                what: format!("block of {addr}"),
            })?;
        Ok(b.active.remove(i))
    }

    async fn approve(&self, id: &str, _by: &Caller) -> Result<Block, BackendError> {
        self.responder()?;
        let mut b = self.blocks.lock().expect("blocks");
        let p = take_pending(&mut b, id)?;
        let block = Block {
            addr: p.addr,
            reason: p.reason,
            origin: Origin::Approved,
            since: NOW,
            expires: None,
            alert: p.alert,
        };
        b.active.push(block.clone());
        Ok(block)
    }

    async fn deny(&self, id: &str, _by: &Caller) -> Result<Pending, BackendError> {
        self.responder()?;
        take_pending(&mut self.blocks.lock().expect("blocks"), id)
    }
}

impl Memory {
    fn responder(&self) -> Result<(), BackendError> {
        if self.full() {
            Ok(())
        } else {
            Err(BackendError::NotBuilt {
                what: crate::backend::RESPONDER_NOT_BUILT.into(),
            })
        }
    }
}

fn take_pending(b: &mut Blocks, id: &str) -> Result<Pending, BackendError> {
    let i = b
        .pending
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| BackendError::NotFound {
            what: format!("pending action `{id}`"),
        })?;
    Ok(b.pending.remove(i))
}
