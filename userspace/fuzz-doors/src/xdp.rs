//! The XDP program itself as a door: any frame a NIC can hand over, run in the kernel with
//! `BPF_PROG_TEST_RUN`.
//!
//! The program is the first code that touches a hostile network's bytes, and it runs where a
//! bad read is a kernel matter. The verifier proves it memory-safe; what it cannot prove is
//! what the program sends up. This door checks that for every frame: the program passes it
//! (nothing is blocked here), counts it once, and every payload sample it sends to userspace
//! holds only bytes of this frame, zeros after them, and never what must stay in the kernel
//! (HL7 patient segments, HTTP Basic credentials, an FTP password).
//!
//! The door needs root and the agent's embedded eBPF object. It loads the program once per
//! process, with its tables pinned in a bpffs directory of its own that is removed at exit.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use heir_abi::packet::{
    Counter, PacketHeader, RECORD_DROP, RECORD_FLOW, RECORD_SAMPLE, SAMPLE_LEN, SampleRecord,
};
use heir_abi::ports;
use heir_agent::sensor::reader::Reader;
use heir_agent::sensor::xdp::{Options, Packets};
use heir_model::BootClock;

const XDP_PASS: u32 = 2;
/// Frames the kernel refuses to test-run: shorter than an Ethernet header, or longer than
/// one page leaves for packet data (the program does not take multi-buffer frames).
const ETH_HLEN: usize = 14;
const MAX_LINEAR: usize = 4096 - 256 - 320;

struct Kernel {
    // Declared first so it is dropped first: the reader's fd is registered with it.
    reader: Reader,
    packets: Packets,
    _rt: tokio::runtime::Runtime,
}

static PIN_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_pin_dir() {
    if let Some(dir) = PIN_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn kernel() -> &'static Mutex<Kernel> {
    static KERNEL: OnceLock<Mutex<Kernel>> = OnceLock::new();
    KERNEL.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        assert!(
            unsafe { libc::geteuid() } == 0,
            "NOT RUN: the xdp_frame door loads the XDP program and needs root (CI runs as root)"
        );
        assert!(
            Packets::has_object(),
            "NOT RUN: heir was built without its eBPF programs (AYA_BUILD_SKIP?); run `cargo xtask setup`"
        );
        let dir = PIN_DIR.get_or_init(|| {
            PathBuf::from(format!("/sys/fs/bpf/heir-fuzz-{}", std::process::id()))
        });
        // SAFETY: registers a plain function with no preconditions, run once at exit.
        unsafe { libc::atexit(remove_pin_dir) };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the ring buffer's fd");
        let _in_runtime = rt.enter();
        let mut packets = Packets::load(&Options {
            pin_dir: dir.clone(),
            flow_entries: 4096,
            device_entries: 1024,
            ring_bytes: 1 << 20,
            ..Options::default()
        })
        .unwrap_or_else(|e| panic!("loading the XDP program: {e}"));
        let reader = packets.reader().expect("the packet ring buffer");
        Mutex::new(Kernel {
            reader,
            packets,
            _rt: rt,
        })
    })
}

/// One frame through the XDP program, and what it sent up checked.
pub fn xdp_frame(frame: &[u8]) {
    let mut k = kernel().lock().unwrap_or_else(|e| e.into_inner());
    // Whatever an earlier input left (a panic between run and drain) is not this frame's.
    while k.reader.drain(|_| {}) > 0 {}
    let before = k.packets.counters().expect("the XDP counters");
    let verdict = match k.packets.test_run(frame, 1) {
        Ok((verdict, _)) => verdict,
        Err(e) => {
            assert!(
                frame.len() < ETH_HLEN || frame.len() > MAX_LINEAR,
                "the kernel refused a {}-byte frame: {e}",
                frame.len()
            );
            return;
        }
    };
    assert!(
        frame.len() >= ETH_HLEN,
        "the kernel ran a {}-byte frame",
        frame.len()
    );
    assert_eq!(
        verdict, XDP_PASS,
        "a frame was not passed with no block in place"
    );
    let after = k.packets.counters().expect("the XDP counters");
    assert_eq!(
        after.get(Counter::Packets) - before.get(Counter::Packets),
        1,
        "one frame, one packet counted"
    );
    let mut records = Vec::new();
    while k.reader.drain(|r| records.push(r.to_vec())) > 0 {}
    let mut decoder = heir_packet::Decoder::new(BootClock::now());
    let mut events = Vec::new();
    for r in &records {
        check_record(frame, r);
        decoder
            .decode(r, &mut events)
            .unwrap_or_else(|e| panic!("a kernel record does not decode: {e}"));
    }
}

fn check_record(frame: &[u8], r: &[u8]) {
    assert!(
        r.len() >= size_of::<PacketHeader>(),
        "a {}-byte record",
        r.len()
    );
    // SAFETY: at least a header's bytes; PacketHeader is plain data, read unaligned.
    let h: PacketHeader = unsafe { std::ptr::read_unaligned(r.as_ptr().cast()) };
    assert_eq!(h.wire_len as usize, frame.len(), "wire length of {h:?}");
    match h.record {
        RECORD_FLOW | RECORD_DROP => {}
        RECORD_SAMPLE => {
            assert!(
                r.len() >= size_of::<SampleRecord>(),
                "a short sample record"
            );
            // SAFETY: as above, a whole SampleRecord's bytes.
            let s: SampleRecord = unsafe { std::ptr::read_unaligned(r.as_ptr().cast()) };
            check_sample(frame, &s);
        }
        other => panic!("record kind {other} from the XDP program"),
    }
}

fn check_sample(frame: &[u8], s: &SampleRecord) {
    let len = s.len as usize;
    assert!(
        len <= SAMPLE_LEN && len as u32 <= s.payload_len,
        "sample of {len} bytes, payload {}",
        s.payload_len
    );
    assert!(
        (s.payload_len as usize) <= frame.len(),
        "payload longer than the frame"
    );
    let (data, rest) = s.data.split_at(len);
    assert!(
        rest.iter().all(|b| *b == 0),
        "bytes after the sample's length are not zero: {:02x?}",
        &s.data[..]
    );
    assert!(
        len == 0 || frame.windows(len).any(|w| w == data),
        "the sample holds bytes that are not this frame's: {data:02x?}"
    );
    let (sport, dport) = (s.header.key.sport, s.header.key.dport);
    if sport == ports::MLLP || dport == ports::MLLP {
        assert!(
            !data.contains(&b'\r'),
            "an HL7 sample goes past the MSH segment: {data:02x?}"
        );
    }
    if ports::is_http(dport) {
        let lower = data.to_ascii_lowercase();
        if let Some(i) = lower.windows(6).position(|w| w == b"basic ") {
            assert_eq!(i + 6, len, "an HTTP sample goes past `Basic `: {data:02x?}");
        }
    }
    if (sport == ports::FTP || dport == ports::FTP)
        && data.len() >= 4
        && data[..4].eq_ignore_ascii_case(b"pass")
    {
        assert_eq!(len, 4, "an FTP sample carries the password: {data:02x?}");
    }
}
