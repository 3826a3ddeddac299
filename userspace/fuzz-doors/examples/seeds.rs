//! Writes the generated part of the fuzz seed corpus into `fuzz/corpus/<door>/`: inputs made by
//! the project's own builders (kernel record fixtures, packet sample builders, signed mesh
//! envelopes, STIX/MISP exports, the shipped rules' test-case events, saved engine state) and
//! copies of the real files the project ships or tests with (rule files, the README's
//! configuration, RAMA import fixtures, a slice of the IEEE OUI registry, ICSMA CSAF
//! advisories). Files already there (and inputs found by fuzzing) are left alone.
//!
//! `cargo run -p heir-fuzz-doors --example seeds [-- CORPUS_DIR]`

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use heir_abi::Kind as AbiKind;
use heir_abi::packet::{
    FAMILY_V4, FlowRecord, PacketHeader, RECORD_DROP, RECORD_FLOW, RECORD_SAMPLE, SAMPLE_LEN,
    SampleRecord, TCP_ACK, TCP_SYN,
};
use heir_agent::decode::fixtures;
use heir_fuzz_doors::{NOW_SECS, consortium, shipped_rules};
use heir_mesh::group::GroupKey;
use heir_mesh::indicator::{Indicator, Item, Observable, Product};
use heir_mesh::membership::{Credential, Invite, Terms};
use heir_mesh::node::{BackfillRequest, BackfillResponse};
use heir_mesh::wire::Envelope;
use heir_mesh::{Identity, Tlp};
use heir_model::{BootClock, Category, Event, ManualClock, Severity, Timestamp};

struct Corpus(PathBuf);

impl Corpus {
    fn put(&self, door: &str, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let dir = self.0.join(door);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    fn copy(&self, door: &str, from: &Path) -> Result<()> {
        let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        let name = from.file_name().context("a file name")?.to_string_lossy();
        self.put(door, &name, bytes)
    }
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("fuzz/corpus"), PathBuf::from);
    let c = Corpus(out);
    syscalls(&c)?;
    packets(&c)?;
    mesh(&c)?;
    imports(&c, &root)?;
    rules(&c, &root)?;
    configs(&c, &root)?;
    state(&c)?;
    api(&c)?;
    eprintln!("seeds written to {}", c.0.display());
    Ok(())
}

fn syscalls(c: &Corpus) -> Result<()> {
    let recs = [
        (
            "exec-storescu",
            fixtures::bytes(&fixtures::exec(
                1000,
                "/usr/bin/storescu",
                &["storescu", "-aec", "PACS", "10.0.0.5", "104"],
                0,
            )),
        ),
        (
            "open-dicom",
            fixtures::bytes(&fixtures::path(
                AbiKind::Open,
                1001,
                "/var/lib/dicom/study/1.2.840.113619.dcm",
                0o101,
                3,
            )),
        ),
        (
            "connect-v4",
            fixtures::bytes(&fixtures::connect_v4(1002, [10, 0, 0, 5], 104, 0)),
        ),
        (
            "fork",
            fixtures::bytes(&fixtures::args(AbiKind::Fork, 1003, 0, [1004, 0, 0, 0], 0)),
        ),
        (
            "exit",
            fixtures::bytes(&fixtures::args(AbiKind::Exit, 1004, 0, [0, 0, 0, 0], 0)),
        ),
        (
            "unlink",
            fixtures::bytes(&fixtures::path(AbiKind::Unlink, 1005, "/tmp/x", 0, 0)),
        ),
        (
            "open-shadow",
            fixtures::bytes(&fixtures::path(AbiKind::Open, 1006, "/etc/shadow", 0, 3)),
        ),
    ];
    for (name, r) in recs {
        c.put("syscall_record", name, r)?;
    }
    Ok(())
}

fn header(record: u16, sport: u16, dport: u16, flags: u8) -> PacketHeader {
    let mut h = PacketHeader {
        record,
        ifindex: 2,
        ts_boot_ns: 5_000_000_000,
        src_mac: [0x00, 0x09, 0xfb, 1, 2, 3],
        dst_mac: [0x52, 0x54, 0, 0, 0, 1],
        tcp_flags: flags,
        wire_len: 60,
        ..PacketHeader::default()
    };
    h.key.family = FAMILY_V4;
    h.key.proto = 6;
    h.key.sport = sport;
    h.key.dport = dport;
    h.key.src[..4].copy_from_slice(&[10, 0, 0, 7]);
    h.key.dst[..4].copy_from_slice(&[10, 0, 0, 5]);
    h
}

fn sample(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut data = [0; SAMPLE_LEN];
    let n = payload.len().min(SAMPLE_LEN);
    data[..n].copy_from_slice(&payload[..n]);
    heir_packet::record::as_bytes(&SampleRecord {
        header: header(RECORD_SAMPLE, sport, dport, TCP_ACK),
        payload_len: payload.len() as u32,
        len: n as u32,
        data,
    })
}

/// Payloads as the clients and servers send them, with the ports they use.
fn payloads() -> Vec<(&'static str, u16, u16, Vec<u8>)> {
    use heir_packet::samples::{dicom_associate, tls_client_hello};
    vec![
        ("dicom-associate", 40000, 104, dicom_associate()),
        ("tls-client-hello", 40001, 2762, tls_client_hello()),
        (
            "hl7-mllp",
            40002,
            2575,
            b"\x0bMSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01|1|P|2.5".to_vec(),
        ),
        (
            "http-basic",
            40003,
            80,
            b"GET /admin HTTP/1.1\r\nHost: pump\r\nAuthorization: Basic YTpi\r\n\r\n".to_vec(),
        ),
        ("ssh-banner", 40004, 22, b"SSH-2.0-OpenSSH_7.4\r\n".to_vec()),
        ("ftp-user", 40005, 21, b"USER anonymous\r\n".to_vec()),
        ("ftp-pass", 40005, 21, b"PASS secret\r\n".to_vec()),
        (
            "ftp-refused",
            21,
            40005,
            b"530 Login incorrect.\r\n".to_vec(),
        ),
        (
            "telnet",
            40006,
            23,
            vec![0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20],
        ),
        (
            "mqtt-connect",
            40007,
            1883,
            vec![
                0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04,
                b'p', b'u', b'm', b'p',
            ],
        ),
    ]
}

fn packets(c: &Corpus) -> Result<()> {
    let syn = heir_packet::record::as_bytes(&FlowRecord {
        header: header(RECORD_FLOW, 40000, 104, TCP_SYN),
    });
    let syn_ack = heir_packet::record::as_bytes(&FlowRecord {
        header: header(RECORD_FLOW, 104, 40000, TCP_SYN | TCP_ACK),
    });
    let drop = heir_packet::record::as_bytes(&FlowRecord {
        header: header(RECORD_DROP, 40000, 23, TCP_SYN),
    });
    c.put("packet_record", "flow-syn", &syn)?;
    c.put("packet_record", "flow-syn-ack", &syn_ack)?;
    c.put("packet_record", "drop", &drop)?;
    let mut ftp = Vec::new();
    for (name, sport, dport, p) in payloads() {
        let rec = sample(sport, dport, &p);
        if name.starts_with("ftp") {
            ftp.extend_from_slice(&rec);
        }
        c.put("packet_record", &format!("sample-{name}"), &rec)?;
        let mut s = sport.to_be_bytes().to_vec();
        s.extend_from_slice(&dport.to_be_bytes());
        s.extend_from_slice(&p);
        c.put("protocol_sample", name, s)?;
    }
    c.put("packet_record", "ftp-login-sequence", ftp)?;
    let mut conn = syn;
    conn.extend_from_slice(&syn_ack);
    conn.extend_from_slice(&sample(
        40000,
        104,
        &heir_packet::samples::dicom_associate(),
    ));
    c.put("packet_record", "dicom-connection", conn)?;
    frames(c)
}

/// Whole Ethernet frames, as a NIC hands them to the XDP program: each payload above in a
/// TCP segment over IPv4 and IPv6, a handshake, UDP (DNS), ICMP and a VLAN-tagged frame.
fn frames(c: &Corpus) -> Result<()> {
    use heir_agent::sensor::frames::{Frame, L4};
    use std::net::IpAddr;
    let (dev, peer): (IpAddr, IpAddr) = ([10, 9, 0, 10].into(), [10, 9, 0, 66].into());
    let (dev6, peer6): (IpAddr, IpAddr) = (
        "fd00:9::10".parse().expect("an address"),
        "fd00:9::66".parse().expect("an address"),
    );
    for (name, sport, dport, p) in payloads() {
        let flags = heir_abi::packet::TCP_PSH | TCP_ACK;
        c.put(
            "xdp_frame",
            &format!("v4-{name}"),
            Frame::tcp(peer, dev, sport, dport, flags, &p).bytes(),
        )?;
        c.put(
            "xdp_frame",
            &format!("v6-{name}"),
            Frame::tcp(peer6, dev6, sport, dport, flags, &p).bytes(),
        )?;
    }
    c.put(
        "xdp_frame",
        "v4-syn",
        Frame::tcp(peer, dev, 40100, 104, TCP_SYN, b"").bytes(),
    )?;
    c.put(
        "xdp_frame",
        "v4-syn-ack",
        Frame::tcp(dev, peer, 104, 40100, TCP_SYN | TCP_ACK, b"").bytes(),
    )?;
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04pacs\x04hosp\x00\x00\x01\x00\x01";
    c.put(
        "xdp_frame",
        "v4-dns-query",
        Frame::udp(dev, peer, 53000, 53, query).bytes(),
    )?;
    c.put(
        "xdp_frame",
        "v4-icmp-echo",
        Frame::new(peer, dev, L4::Icmp { ty: 8, code: 0 }).bytes(),
    )?;
    let mut tagged = Frame::tcp(peer, dev, 40101, 2575, TCP_SYN, b"").bytes();
    // An 802.1Q tag (VLAN 20) between the MAC addresses and the EtherType.
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x14]);
    c.put("xdp_frame", "vlan-syn", tagged)?;
    Ok(())
}

fn member(serial: u64) -> (Identity, Credential) {
    let id = Identity::from_secrets(&[serial as u8 + 1; 32], &[serial as u8 + 101; 32]);
    let cred = consortium().issue(
        &id.join_request(),
        Terms {
            hospital: format!("H-{serial}"),
            groups: vec!["icu".into()],
            serial,
            issued: Timestamp::from_secs(0),
            expires: Timestamp::from_secs(NOW_SECS * 2),
        },
    );
    (id, cred)
}

fn indicator(observable: Observable) -> Indicator {
    let mut i = Indicator::new(
        observable,
        Category::C2Beacon,
        Severity::High,
        Timestamp::from_secs(NOW_SECS - 60),
    );
    i.confidence = 85;
    i.valid_until = Some(Timestamp::from_secs(NOW_SECS + 7 * 86_400));
    i.rule = "net.c2_beacon".into();
    i.attack = Some("T1071".into());
    i
}

fn mesh(c: &Corpus) -> Result<()> {
    let (id, cred) = member(1);
    let now = Timestamp::from_secs(NOW_SECS - 30);
    let ip = indicator(Observable::Ip(
        std::net::Ipv4Addr::new(203, 0, 113, 9).into(),
    ));
    let dom = indicator(Observable::Domain("update.evil.example".into()));
    let mut prod = indicator(Observable::Product(Product {
        vendor: "Infusia".into(),
        model: "300".into(),
        firmware: Some("4.2.1".into()),
    }));
    prod.id = heir_mesh::indicator::IndicatorId::derive(&prod.observable, prod.category);
    prod.cves = vec!["CVE-2024-12345".into()];
    let mut amber = ip.clone();
    amber.tlp = Tlp::Amber;
    let key = GroupKey::generate("icu", 1);
    let envelopes = [
        (
            "clear-ip",
            Envelope::clear(&id, &cred, now, Item::Indicator(ip.clone())).encode(),
        ),
        (
            "clear-domain",
            Envelope::clear(&id, &cred, now, Item::Indicator(dom.clone())).encode(),
        ),
        (
            "clear-product",
            Envelope::clear(&id, &cred, now, Item::Indicator(prod.clone())).encode(),
        ),
        (
            "sealed-amber",
            Envelope::sealed(&id, &cred, now, &Item::Indicator(amber), &key).encode(),
        ),
        (
            "revocations",
            Envelope::revocations(
                &id,
                &cred,
                now,
                consortium().revoke(1, [9].into_iter().collect()),
            )
            .encode(),
        ),
        (
            "group-keys",
            Envelope::group_keys(
                &id,
                &cred,
                now,
                vec![key.wrap_for(&id.join_request().agreement)],
            )
            .encode(),
        ),
    ];
    for (name, e) in &envelopes {
        c.put("mesh_envelope", name, e)?;
    }
    let request = BackfillRequest {
        credential: cred.clone(),
        since: Timestamp::from_secs(NOW_SECS - 86_400),
        limit: 2000,
    };
    let mut r = vec![0];
    r.extend(cbor4ii::serde::to_vec(Vec::new(), &request)?);
    c.put("mesh_backfill", "request", r)?;
    let mut r = vec![1];
    let response = BackfillResponse::Envelopes(envelopes.iter().map(|(_, e)| e.clone()).collect());
    r.extend(cbor4ii::serde::to_vec(Vec::new(), &response)?);
    c.put("mesh_backfill", "response-envelopes", r)?;
    let mut r = vec![1];
    r.extend(cbor4ii::serde::to_vec(
        Vec::new(),
        &BackfillResponse::Refused("not a member".into()),
    )?);
    c.put("mesh_backfill", "response-refused", r)?;

    let (joiner, _) = member(2);
    let request = joiner.join_request();
    c.put("mesh_invite", "join-request", request.encode())?;
    let invite = Invite {
        credential: member(2).1,
        consortium: consortium().public(),
        bootstrap: vec!["/ip4/192.0.2.10/tcp/4001".into()],
        group_keys: vec![key.wrap_for(&request.agreement)],
    };
    c.put("mesh_invite", "invite", invite.encode())?;

    let entries: Vec<heir_mesh::knowledge::Entry> = [ip, dom, prod]
        .into_iter()
        .map(|indicator| heir_mesh::knowledge::Entry {
            indicator,
            reports: vec![],
            sightings: 2,
            false_positive: Default::default(),
            withdrawn: false,
            confidence: 0.85,
            first_seen: now,
            last_seen: now,
        })
        .collect();
    c.put(
        "stix_misp_import",
        "bundle.stix.json",
        heir_mesh::exchange::to_stix(&entries, &[], &[], now),
    )?;
    c.put(
        "stix_misp_import",
        "event.misp.json",
        heir_mesh::exchange::to_misp(&entries, &[], now),
    )?;
    Ok(())
}

/// The smallest few ICSMA advisories (real CSAF 2.0 documents) from the directory named by
/// `HEIR_ICSMA_DIR` (none when it is unset).
fn csaf(limit: usize) -> Vec<PathBuf> {
    let Some(dir) = std::env::var_os("HEIR_ICSMA_DIR") else {
        return Vec::new();
    };
    let dir = Path::new(&dir);
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.len(), p)))
        .collect();
    files.sort();
    files.into_iter().take(limit).map(|(_, p)| p).collect()
}

fn imports(c: &Corpus, root: &Path) -> Result<()> {
    let fx = root.join("userspace/rama/tests/fixtures");
    for (door, file) in [
        ("sbom_import", "archivepro.cdx.json"),
        ("sbom_import", "infusia-300.cdx.json"),
        ("mds2_import", "infusia-300.mds2.csv"),
        ("mds2_import", "vitalview-5.mds2.csv"),
        ("osv_import", "osv.json"),
        ("nvd_import", "nvd.json"),
        ("kev_import", "kev.csv"),
    ] {
        c.copy(door, &fx.join(file))?;
        c.copy("knowledge_import", &fx.join(file))?;
    }
    for f in csaf(6) {
        c.copy("knowledge_import", &f)?;
        c.copy("osv_import", &f)?;
        c.copy("nvd_import", &f)?;
        c.copy("stix_misp_import", &f)?;
    }
    // The head of the IEEE registry as Debian's ieee-data ships it.
    if let Ok(text) = std::fs::read_to_string("/usr/share/ieee-data/oui.csv") {
        let head: String = text.lines().take(40).map(|l| format!("{l}\n")).collect();
        c.put("oui_csv", "ieee-oui-head.csv", head)?;
    }
    c.put(
        "oui_csv",
        "minimal.csv",
        "Registry,Assignment,Organization Name,Organization Address\nMA-L,0009FB,Philips Medizin Systeme Boeblingen GmbH,Hewlett-Packard-Strasse 2 Boeblingen  DE 71034 \n",
    )?;
    Ok(())
}

fn rules(c: &Corpus, root: &Path) -> Result<()> {
    for f in [
        "rules/host/execution.yaml",
        "rules/host/system.yaml",
        "rules/network/access.yaml",
        "rules/network/recon.yaml",
    ] {
        c.copy("rules_yaml", &root.join(f))?;
    }
    for rule in &shipped_rules().rules {
        let pick = heir_model::Kind::ALL
            .iter()
            .position(|k| Some(k) == rule.kinds.first())
            .context("a rule kind")? as u8;
        let mut bytes = vec![pick];
        bytes.extend_from_slice(rule.when.as_bytes());
        c.put("rule_condition", &rule.id, bytes)?;
    }
    Ok(())
}

fn configs(c: &Corpus, root: &Path) -> Result<()> {
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let block = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("data_dir"))
        .context("the README's configuration example")?;
    c.put("config_toml", "readme-example.toml", block)?;
    c.put(
        "config_toml",
        "minimal.toml",
        "data_dir = \"/var/lib/heir\"\n",
    )?;
    c.copy(
        "registry_toml",
        &root.join("userspace/rama/tests/fixtures/devices.toml"),
    )?;
    Ok(())
}

/// Events as `heir monitor --json` writes them: the shipped rules' test cases and the decoded
/// kernel and packet fixtures.
fn events() -> Vec<Vec<Event>> {
    let mut streams: Vec<Vec<Event>> = shipped_rules()
        .rules
        .iter()
        .flat_map(|r| r.cases.iter().map(|c| c.events.clone()))
        .collect();
    let clock = BootClock::with_offset(i128::from(NOW_SECS) * 1_000_000_000);
    streams.push(
        fixtures::mixed(20)
            .iter()
            .filter_map(|r| heir_agent::decode::decode(r, &clock).ok())
            .collect(),
    );
    let mut decoder = heir_packet::Decoder::new(clock);
    let mut packet = Vec::new();
    for (_, sport, dport, p) in payloads() {
        let _ = decoder.decode(&sample(sport, dport, &p), &mut packet);
    }
    streams.push(packet);
    streams
}

fn jsonl(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialise") + "\n")
        .collect()
}

fn state(c: &Corpus) -> Result<()> {
    let streams = events();
    for (i, s) in streams.iter().enumerate() {
        c.put("replay_jsonl", &format!("stream-{i:02}.jsonl"), jsonl(s))?;
    }
    let all: Vec<Event> = streams.into_iter().flatten().collect();
    c.put("replay_jsonl", "all.jsonl", jsonl(&all))?;

    // The detectors' and RAMA's state after that recording.
    let clock = ManualClock::new(Timestamp::from_secs(NOW_SECS));
    let mut engine =
        heir_detect::Engine::new(&heir_detect::Config::default(), Arc::new(clock.clone()));
    let mut rama = heir_rama::Rama::new(clock.clone(), heir_rama::oui::Table::curated());
    let registry = heir_rama::Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rama/tests/fixtures/devices.toml"),
    )?;
    rama.load_registry(&registry);
    let mut alerts = Vec::new();
    for ev in &all {
        engine.process(ev, &mut alerts);
        rama.observe_event(ev);
        for a in alerts.drain(..) {
            rama.alert(&a);
        }
    }
    c.put("detect_state", "after-recording", engine.save_state())?;
    c.put(
        "detect_state",
        "fresh",
        heir_detect::Engine::new(&heir_detect::Config::default(), Arc::new(clock.clone()))
            .save_state(),
    )?;
    c.put(
        "rama_state",
        "after-recording.json",
        serde_json::to_vec_pretty(&rama.snapshot())?,
    )?;
    c.put(
        "rama_state",
        "empty.json",
        serde_json::to_vec(
            &heir_rama::Rama::new(clock, heir_rama::oui::Table::curated()).snapshot(),
        )?,
    )?;
    Ok(())
}

fn api(c: &Corpus) -> Result<()> {
    // First byte: method (0 GET, 1 POST) | 4 when the body is declared JSON.
    let requests: [(&str, u8, &str, &str); 13] = [
        ("status", 0, "/v1/status", ""),
        ("devices", 0, "/v1/devices", ""),
        ("device", 0, "/v1/devices/pump-icu-3", ""),
        ("rama", 0, "/v1/rama", ""),
        (
            "alerts",
            0,
            "/v1/alerts?limit=10&after=1&unacknowledged=true",
            "",
        ),
        ("ack", 1, "/v1/alerts/1/ack", ""),
        ("indicators", 0, "/v1/indicators", ""),
        ("peers", 0, "/v1/peers", ""),
        ("audit", 0, "/v1/audit", ""),
        (
            "block",
            5,
            "/v1/block",
            "{\"addr\":\"203.0.113.9\",\"reason\":\"c2\",\"ttl_secs\":600}",
        ),
        ("unblock", 5, "/v1/unblock", "{\"addr\":\"203.0.113.9\"}"),
        ("approve", 5, "/v1/pending/p-1/approve", "{}"),
        ("stream", 0, "/v1/stream?alerts=true&events=true", ""),
    ];
    for (name, pick, path, body) in requests {
        let mut bytes = vec![pick];
        bytes.extend_from_slice(path.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(body.as_bytes());
        c.put("api_request", name, bytes)?;
    }
    Ok(())
}
