//! The doors through which untrusted bytes enter heir, one function each.
//!
//! Each function takes arbitrary bytes, hands them to the real library entry point the agent
//! uses for that input, and asserts the invariants that are cheap to check (never a panic;
//! where a format round-trips, re-encoding and re-parsing gives the same value). The libFuzzer
//! targets in `fuzz/fuzz_targets/` call these functions, and the corpus replay test
//! (`tests/tests/fuzz_corpus.rs`) feeds every committed corpus file to them, so an input that
//! once crashed stays fixed in the default test run.
//!
//! [`DOORS`] names each door after its fuzz target and its corpus directory
//! `fuzz/corpus/<name>/`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

mod xdp;
pub use xdp::xdp_frame;

use heir_model::{BootClock, Clock, Event, ManualClock, Timestamp};

/// A door's entry function: any bytes, never a panic.
pub type Door = fn(&[u8]);

/// Every door: its fuzz target and corpus directory name, and its entry function.
pub const DOORS: &[(&str, Door)] = &[
    ("syscall_record", syscall_record),
    ("packet_record", packet_record),
    ("protocol_sample", protocol_sample),
    ("mesh_envelope", mesh_envelope),
    ("mesh_backfill", mesh_backfill),
    ("mesh_invite", mesh_invite),
    ("stix_misp_import", stix_misp_import),
    ("knowledge_import", knowledge_import),
    ("sbom_import", sbom_import),
    ("mds2_import", mds2_import),
    ("osv_import", osv_import),
    ("nvd_import", nvd_import),
    ("kev_import", kev_import),
    ("csaf_import", csaf_import),
    ("rules_yaml", rules_yaml),
    ("rule_condition", rule_condition),
    ("config_toml", config_toml),
    ("registry_toml", registry_toml),
    ("replay_jsonl", replay_jsonl),
    ("detect_state", detect_state),
    ("rama_state", rama_state),
    ("oui_csv", oui_csv),
    ("api_request", api_request),
    ("xdp_frame", xdp_frame),
];

/// The fixed instant the doors' clocks stand at (2026-01-01T00:00:00Z).
pub const NOW_SECS: u64 = 1_767_225_600;

const FILE: &str = "fuzz-input";

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Kernel syscall records from the ring buffer: `heir_agent::decode::decode`.
pub fn syscall_record(data: &[u8]) {
    let clock = BootClock::with_offset(i128::from(NOW_SECS) * 1_000_000_000);
    if let Ok(ev) = heir_agent::decode::decode(data, &clock) {
        // What the decoder produced is what `heir monitor --json` writes and `heir replay`
        // reads back.
        let json = serde_json::to_string(&ev).expect("decoded events serialise");
        let back: Event = serde_json::from_str(&json).expect("decoded events parse back");
        assert_eq!(
            serde_json::to_value(&back).expect("event serialises"),
            serde_json::to_value(&ev).expect("event serialises"),
            "event JSON round trip"
        );
    }
}

/// Packet-sensor records (flows, drops, payload samples) as the XDP ring buffer delivers them,
/// one after another through one [`heir_packet::Decoder`] so the FTP login tracker sees a
/// sequence: `heir_packet::Decoder::decode`. Each record's length follows from its kind, as in
/// the ring buffer; a trailing short record is decoded as it is (and refused).
pub fn packet_record(data: &[u8]) {
    use heir_abi::packet::{FlowRecord, RECORD_DROP, RECORD_FLOW, RECORD_SAMPLE, SampleRecord};
    let mut decoder =
        heir_packet::Decoder::new(BootClock::with_offset(i128::from(NOW_SECS) * 1_000_000_000));
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let kind = match rest {
            [a, b, ..] => u16::from_ne_bytes([*a, *b]),
            _ => 0,
        };
        let len = match kind {
            RECORD_FLOW | RECORD_DROP => size_of::<FlowRecord>(),
            RECORD_SAMPLE => size_of::<SampleRecord>(),
            _ => rest.len(),
        }
        .min(rest.len());
        let (record, tail) = rest.split_at(len);
        let before = out.len();
        if decoder.decode(record, &mut out).is_err() {
            assert_eq!(out.len(), before, "a refused record yields no event");
        }
        rest = tail;
    }
    for ev in &out {
        serde_json::to_string(ev).expect("packet events serialise");
    }
}

/// A flow's first payload through protocol recognition and the FTP login tracker:
/// `heir_packet::recognize::recognize` and `heir_packet::logins::Tracker::sample`. The first
/// four bytes are the source and destination ports; the rest is the payload, cut at
/// `SAMPLE_LEN` as the kernel cuts it.
pub fn protocol_sample(data: &[u8]) {
    use heir_abi::packet::SAMPLE_LEN;
    use heir_model::event::Transport;
    let [s0, s1, d0, d1, payload @ ..] = data else {
        return;
    };
    let (sport, dport) = (
        u16::from_be_bytes([*s0, *s1]),
        u16::from_be_bytes([*d0, *d1]),
    );
    let payload = &payload[..payload.len().min(SAMPLE_LEN)];
    if let Some(o) = heir_packet::recognize::recognize(Transport::Tcp, sport, dport, payload) {
        serde_json::to_string(&o).expect("observations serialise");
    }
    assert!(heir_packet::recognize::recognize(Transport::Udp, sport, dport, payload).is_none());
    let mut logins = heir_packet::logins::Tracker::new(16);
    let (a, b) = (
        std::net::IpAddr::from([10, 0, 0, 1]),
        std::net::IpAddr::from([10, 0, 0, 2]),
    );
    // The same payload read as the client's and as the server's line, a few times over.
    for _ in 0..3 {
        let _ = logins.sample(a, sport, b, dport, payload);
        let _ = logins.sample(b, dport, a, sport, payload);
    }
}

/// The consortium every mesh door's validator belongs to; the seed envelopes are signed by
/// members it issued credentials to.
pub fn consortium() -> heir_mesh::membership::ConsortiumKey {
    heir_mesh::membership::ConsortiumKey::from_bytes(&[7; 32])
}

fn validator() -> heir_mesh::validate::Validator {
    let ck = consortium();
    heir_mesh::validate::Validator::new(
        ck.public(),
        heir_mesh::membership::Revocations::empty(ck.public()),
        &heir_mesh::trust::Config::default(),
        Arc::new(heir_mesh::ManualClock::new(Timestamp::from_secs(NOW_SECS))),
    )
}

/// One gossip message: `heir_mesh::wire::Envelope::decode`, then the whole of
/// `heir_mesh::validate::Validator::validate` as a backfilled and as a stored message.
pub fn mesh_envelope(data: &[u8]) {
    use heir_mesh::wire::{Body, Envelope};
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let again = Envelope::decode(&env.encode()).expect("a decoded envelope re-encodes");
    assert_eq!(again, env, "envelope round trip");
    let _ = env.verify_signature();
    if let Body::Clear(item) = &env.body {
        let _ = item.check();
    }
    let keys = heir_mesh::group::Keyring::default();
    let mut v = validator();
    let from = heir_mesh::Identity::from_secrets(&[1; 32], &[2; 32]).peer_id();
    for origin in [
        heir_mesh::validate::Origin::Backfill { from },
        heir_mesh::validate::Origin::Store,
    ] {
        let _ = v.validate(data, origin, &keys);
    }
}

/// A backfill exchange as the request-response protocol carries it (CBOR, as libp2p's codec
/// reads it): the first byte says request or response; a response's envelopes each go
/// through [`mesh_envelope`].
pub fn mesh_backfill(data: &[u8]) {
    use heir_mesh::node::{BackfillRequest, BackfillResponse};
    let [which, body @ ..] = data else {
        return;
    };
    if which & 1 == 0 {
        if let Ok(r) = cbor4ii::serde::from_slice::<BackfillRequest>(body) {
            let _ = r.credential.verify_signature(&consortium().public());
            let _ = r.credential.peer_id();
            let bytes = cbor4ii::serde::to_vec(Vec::new(), &r).expect("requests encode");
            cbor4ii::serde::from_slice::<BackfillRequest>(&bytes).expect("requests parse back");
        }
    } else if let Ok(BackfillResponse::Envelopes(list)) =
        cbor4ii::serde::from_slice::<BackfillResponse>(body)
    {
        for e in &list {
            mesh_envelope(e);
        }
    }
}

/// The text tokens copied between hospitals to join a consortium: join requests and invites
/// (`heir_mesh::membership::{JoinRequest, Invite}::decode`).
pub fn mesh_invite(data: &[u8]) {
    use heir_mesh::membership::{Invite, JoinRequest};
    let Some(s) = text(data) else { return };
    if let Ok(j) = JoinRequest::decode(s) {
        assert_eq!(JoinRequest::decode(&j.encode()).ok().as_ref(), Some(&j));
        let _ = j.peer_id();
    }
    if let Ok(i) = Invite::decode(s) {
        let again = Invite::decode(&i.encode()).expect("a decoded invite re-encodes");
        assert_eq!(again.encode(), i.encode(), "invite round trip");
    }
}

/// `heir import FILE`: a STIX 2.1 bundle or MISP event (`heir_mesh::exchange::import`).
pub fn stix_misp_import(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(items) = heir_mesh::exchange::import(s) {
        for i in &items {
            let _ = i.check();
        }
    }
}

fn rama() -> heir_rama::Rama<ManualClock> {
    heir_rama::Rama::new(
        ManualClock::new(Timestamp::from_secs(NOW_SECS)),
        heir_rama::oui::Table::curated(),
    )
}

/// `heir vuln import FILE`, format recognised by content (CycloneDX, MDS2, OSV, NVD, KEV):
/// `heir_rama::Knowledge::import_bytes`, then a score for a device that may match.
pub fn knowledge_import(data: &[u8]) {
    let mut k = heir_rama::Knowledge::default();
    if k.import_bytes(Path::new(FILE), data).is_ok() {
        let mut r = rama();
        r.set_knowledge(k);
        r.recompute_all();
        let _ = r.listing();
    }
}

/// CycloneDX SBOMs: `heir_rama::import::sbom::parse`.
pub fn sbom_import(data: &[u8]) {
    let _ = heir_rama::import::sbom::parse(Path::new(FILE), data);
}

/// MDS2 CSV exports: `heir_rama::import::mds2::parse`.
pub fn mds2_import(data: &[u8]) {
    let _ = heir_rama::import::mds2::parse(Path::new(FILE), data);
}

/// OSV records: `heir_rama::import::osv::parse`.
pub fn osv_import(data: &[u8]) {
    let _ = heir_rama::import::osv::parse(Path::new(FILE), data);
}

/// NVD CVE API 2.0 pages: `heir_rama::import::nvd::parse`.
pub fn nvd_import(data: &[u8]) {
    let _ = heir_rama::import::nvd::parse(Path::new(FILE), data);
}

/// CISA KEV CSV: `heir_rama::import::kev::parse`.
pub fn kev_import(data: &[u8]) {
    let _ = heir_rama::import::kev::parse(Path::new(FILE), data);
}

/// The registry the CSAF door scores: real products from real ICSMA advisories, at affected
/// and at fixed versions, so an advisory that parses also runs the version-range matching.
const CSAF_FLEET: &str = include_str!("../../rama/tests/fixtures/icsma-devices.toml");

/// CSAF 2.0 advisories (`heir vuln import` of an ICSMA or vendor advisory):
/// `heir_rama::Knowledge::import_as` with the CSAF format, then RAMA scoring of a fleet that
/// names real advisories' products.
pub fn csaf_import(data: &[u8]) {
    let mut k = heir_rama::Knowledge::default();
    let imported = k.import_as(heir_rama::import::Format::Csaf, Path::new(FILE), data);
    if imported.is_ok() {
        let mut r = rama();
        let fleet = heir_rama::Registry::parse(CSAF_FLEET, Path::new("icsma-devices.toml"))
            .expect("the CSAF door's fleet parses");
        r.load_registry(&fleet);
        r.set_knowledge(k);
        r.recompute_all();
        let _ = r.listing();
    }
}

/// A rule file: `heir_detect::rules::parse_str`, then its inline test cases
/// (`heir_detect::rules::test_set`), as `heir rules check` and `heir rules test` do.
pub fn rules_yaml(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(set) = heir_detect::rules::parse_str(Path::new("fuzz.yaml"), s) {
        let _ = heir_detect::rules::test_set(&set);
    }
}

/// The rules shipped in `rules/` (built into heir), parsed once.
pub fn shipped_rules() -> &'static heir_detect::rules::RuleSet {
    static SET: OnceLock<heir_detect::rules::RuleSet> = OnceLock::new();
    SET.get_or_init(|| heir_detect::rules::built_in().expect("the built-in rules parse"))
}

/// A rule's `when:` condition: `heir_detect::rules::expr::Expr::compile` for the kinds the
/// first byte picks, then evaluated on every shipped rule's test-case events of those kinds.
pub fn rule_condition(data: &[u8]) {
    use heir_detect::Kind;
    use heir_detect::rules::expr::Expr;
    let [pick, src @ ..] = data else { return };
    let Some(src) = text(src) else { return };
    let mut kinds = vec![Kind::ALL[usize::from(pick & 0x7f) % Kind::COUNT]];
    if pick & 0x80 != 0 {
        kinds.push(Kind::ALL[(usize::from(pick & 0x7f) + 1) % Kind::COUNT]);
    }
    let Ok((expr, _fields)) = Expr::compile(src, &kinds) else {
        return;
    };
    for rule in &shipped_rules().rules {
        for case in &rule.cases {
            for ev in case
                .events
                .iter()
                .filter(|e| kinds.contains(&Kind::of(&e.kind)))
            {
                let _ = expr.eval(ev);
            }
        }
    }
}

/// The agent's configuration file: `heir_agent::Config::parse`.
pub fn config_toml(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(c) = heir_agent::Config::parse(s) {
        let _ = c.rules_sources();
        let _ = c.api_socket();
    }
}

/// The operator's device registry (`devices.toml`): `heir_rama::Registry::parse`, then
/// loaded into a RAMA engine.
pub fn registry_toml(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(reg) = heir_rama::Registry::parse(s, Path::new("devices.toml")) {
        let mut r = rama();
        r.load_registry(&reg);
        let _ = r.listing();
    }
}

/// `heir replay FILE`: JSON lines, each an [`Event`] as `heir monitor --json` writes it,
/// through the detection engine (built-in detectors and the shipped rules) at the events' own
/// time, and the events and alerts through RAMA, as the agent's pipeline does.
pub fn replay_jsonl(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let clock = ManualClock::new(Timestamp::from_secs(NOW_SECS));
    let mut engine =
        heir_detect::Engine::new(&heir_detect::Config::default(), Arc::new(clock.clone()));
    engine.set_rules(shipped_rules().clone());
    let mut rama = heir_rama::Rama::new(clock.clone(), heir_rama::oui::Table::curated());
    let mut alerts = Vec::new();
    for line in s.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(ev) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        let json = serde_json::to_string(&ev).expect("events serialise");
        let back: Event = serde_json::from_str(&json).expect("a written event parses back");
        assert_eq!(
            serde_json::to_value(&back).expect("event serialises"),
            serde_json::to_value(&ev).expect("event serialises"),
            "event JSON round trip"
        );
        clock.set(ev.ts);
        engine.tick_at(ev.ts, &mut alerts);
        engine.process(&ev, &mut alerts);
        rama.observe_event(&ev);
        for a in alerts.drain(..) {
            rama.alert(&a);
        }
    }
    let later = clock.now().as_nanos().saturating_add(3_600_000_000_000);
    engine.tick_at(Timestamp::from_nanos(later), &mut alerts);
    let _ = engine.save_state();
    rama.tick();
    let _ = rama.listing();
}

/// The detectors' saved state (`detect.state` in the data directory):
/// `heir_detect::Engine::restore_state`, then an event stream through the restored engine.
pub fn detect_state(data: &[u8]) {
    let clock = ManualClock::new(Timestamp::from_secs(NOW_SECS));
    let mut engine =
        heir_detect::Engine::new(&heir_detect::Config::default(), Arc::new(clock.clone()));
    if engine.restore_state(data).is_err() {
        return;
    }
    let mut alerts = Vec::new();
    let decode_clock = BootClock::with_offset(i128::from(NOW_SECS) * 1_000_000_000);
    for rec in heir_agent::decode::fixtures::mixed(20) {
        if let Ok(ev) = heir_agent::decode::decode(&rec, &decode_clock) {
            engine.process(&ev, &mut alerts);
        }
    }
    engine.tick_at(Timestamp::from_secs(NOW_SECS + 3600), &mut alerts);
    let _ = engine.save_state();
}

/// The RAMA state file (`rama.json` in the data directory): a [`heir_rama::Snapshot`] as
/// `heir_agent::rama_state::RamaState::open` reads it, restored with `heir_rama::Rama::restore`,
/// scored, ticked and saved again.
pub fn rama_state(data: &[u8]) {
    let Ok(snap) = serde_json::from_slice::<heir_rama::Snapshot>(data) else {
        return;
    };
    let mut r = heir_rama::Rama::restore(
        ManualClock::new(Timestamp::from_secs(NOW_SECS)),
        heir_rama::oui::Table::curated(),
        snap,
    );
    r.recompute_all();
    let _ = r.listing();
    let _ = r.hospital();
    for (id, _) in r.scores() {
        let _ = r.explain(id.as_str());
    }
    r.tick();
    let saved = serde_json::to_vec(&r.snapshot()).expect("snapshots serialise");
    serde_json::from_slice::<heir_rama::Snapshot>(&saved).expect("a saved snapshot reads back");
}

/// The IEEE OUI registry CSV: `heir_rama::oui::Table::parse_ieee`.
pub fn oui_csv(data: &[u8]) {
    if let Ok(t) = heir_rama::oui::Table::parse_ieee(Path::new("oui.csv"), data) {
        let _ = t.manufacturer(heir_rama::MacAddr([0x00, 0x09, 0xfb, 1, 2, 3]));
    }
}

/// A request to the local API (`heir_api::server::router` over the in-memory fixture
/// backend): the first byte picks the method and whether the body is declared JSON, the
/// first line is the path and query, the rest is the body. No request makes the router fail
/// with a server error.
pub fn api_request(data: &[u8]) {
    use axum::body::Body;
    use axum::http::{Method, Request, header};
    use tower::ServiceExt;
    let [pick, rest @ ..] = data else { return };
    let (uri, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let method = match pick & 3 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::DELETE,
        _ => Method::PUT,
    };
    let mut req = Request::builder().method(method).uri(uri);
    if pick & 4 != 0 {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
    }
    RT.with(|rt| {
        rt.block_on(async {
            let backend = Arc::new(heir_api::fixture::Memory::new(
                heir_api::fixture::Parts::All,
                64,
            ));
            let resp = heir_api::server::router(backend)
                .oneshot(req)
                .await
                .expect("the router is infallible");
            let status = resp.status();
            assert!(!status.is_server_error(), "request answered with {status}");
            // Live streams never end; every other body is ready at once.
            let _ = futures::FutureExt::now_or_never(http_body_util::BodyExt::collect(
                resp.into_body(),
            ));
        })
    });
}
