//! heir's packet sensor: one XDP program for the interfaces that face device networks.
//!
//! It parses Ethernet (with up to two 802.1Q/802.1ad tags), IPv4, IPv6 (with the common
//! extension headers), TCP, UDP and ICMP, checking every access against the frame's end;
//! a frame that ends inside a header it announces passes untouched and is counted as
//! malformed. It keeps per-CPU flow statistics in an LRU table, hands each flow's first
//! packet and first payload sample to userspace through its own ring buffer, and drops
//! traffic from or to blocked addresses unless they belong to a protected device.
//!
//! This is a separate object from the syscall probes: it is attached per interface, its
//! block and protect tables are pinned in bpffs so blocks outlive the agent, and it is
//! loaded on its own for `BPF_PROG_TEST_RUN` tests and benchmarks.
#![no_std]
#![no_main]
// Map keys and values go to the kernel helpers by pointer: passing them by value, as this lint
// suggests, would copy them onto the 512-byte BPF stack first.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::{
    bindings::{BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, xdp_action},
    helpers::{
        bpf_get_smp_processor_id, bpf_ktime_get_boot_ns, bpf_ktime_get_coarse_ns,
        bpf_xdp_load_bytes,
    },
    macros::{map, xdp},
    maps::{Array, HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, RingBuf, lpm_trie::Key},
    programs::XdpContext,
};
use heir_abi::packet::{
    BlockEntry, Counter, Counters, DEVICE_MAC, DEVICE_V4, DEVICE_V6, DeviceKey, DeviceSide,
    DeviceStats, FAMILY_V4, FAMILY_V6, FlowKey, FlowRecord, FlowStats, MacKey, NO_DEVICE,
    PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, PacketHeader, RECORD_DROP, RECORD_FLOW,
    RECORD_SAMPLE, SAMPLE_LEN, SampleRecord, ScanState, SourceKey, TCP_ACK, TCP_RST, TCP_SYN, V4,
    V6, XDP_DEVICES, XDP_ENFORCE, XDP_EVENTS, XdpConfig,
};
use heir_abi::ports;

/// Set by the agent at load time; read-only for the verifier.
#[unsafe(no_mangle)]
static XDP_CONFIG: XdpConfig = XdpConfig {
    flags: XDP_EVENTS | XDP_ENFORCE | XDP_DEVICES,
    wakeup_bytes: 64 * 1024,
    scan_window_ns: 60_000_000_000,
    cpus: 1,
    _pad: 0,
};

/// Every counter of this CPU in one slot: the packet path looks it up once.
#[map]
static XDP_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);
/// Per-CPU, so concurrent packets of one flow on several CPUs never lose an update. The
/// agent sizes it at load time.
#[map]
static FLOWS: LruPerCpuHashMap<FlowKey, FlowStats> = LruPerCpuHashMap::with_max_entries(65536, 0);
/// What each source did in the current window, per CPU; updated on new flows and completed
/// handshakes only, so the established-flow path never touches it.
#[map]
static SCANS: LruPerCpuHashMap<SourceKey, ScanState> = LruPerCpuHashMap::with_max_entries(65536, 0);
#[map]
static FLOW_SCRATCH: PerCpuArray<FlowStats> = PerCpuArray::with_max_entries(1, 0);
#[map]
static SCAN_SCRATCH: PerCpuArray<ScanState> = PerCpuArray::with_max_entries(1, 0);
#[map]
static PACKETS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);
/// Which slot of `DEVICE_STATS` counts each device (IPv4, IPv6 or MAC). Filled on new flows
/// only; a slot once given is never reused, so its counters never mix two devices.
#[map]
static DEVICE_SLOTS: HashMap<DeviceKey, u32> = HashMap::with_max_entries(16384, 0);
/// Per-device packets and bytes in and out, per CPU: flows keep their devices' slots, so a
/// packet adds to them through array lookups the verifier inlines.
#[map]
static DEVICE_STATS: PerCpuArray<DeviceStats> = PerCpuArray::with_max_entries(16384, 0);
/// Slots this CPU has given: CPU `c` gives slots `c`, `c + cpus`, `c + 2 cpus`... so no
/// two CPUs ever give the same one, without atomics.
#[map]
static DEVICE_NEXT: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);
/// Boot clock minus the coarse monotonic clock (they differ by the time spent suspended),
/// kept by the agent: flow times are the coarse clock plus this.
#[map]
static CLOCK_OFFSET: Array<u64> = Array::with_max_entries(1, 0);

// Pinned by name: blocks survive agent restarts and end only by `heir unblock` or expiry.
#[map]
static BLOCK_V4: LpmTrie<V4, BlockEntry> = LpmTrie::pinned(65536, 0);
#[map]
static BLOCK_V6: LpmTrie<V6, BlockEntry> = LpmTrie::pinned(65536, 0);
#[map]
static BLOCK_MAC: HashMap<MacKey, BlockEntry> = HashMap::pinned(65536, 0);
#[map]
static PROTECT_V4: LpmTrie<V4, u32> = LpmTrie::pinned(16384, 0);
#[map]
static PROTECT_V6: LpmTrie<V6, u32> = LpmTrie::pinned(16384, 0);
#[map]
static PROTECT_MAC: HashMap<MacKey, u32> = HashMap::pinned(16384, 0);
/// Bumped by userspace on every change to the tables above: flows re-decide their cached
/// verdict when it moves.
#[map]
static BLOCK_GEN: Array<u64> = Array::pinned(1, 0);

const ETH_LEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

macro_rules! config {
    ($field:ident) => {
        // SAFETY: a volatile read of a plain static, so the loader's value is what runs.
        unsafe { core::ptr::read_volatile(&XDP_CONFIG.$field) }
    };
}

/// This CPU's counters, looked up once per packet and handed down. A raw pointer: the rare
/// paths that do not carry it look the slot up again.
#[derive(Clone, Copy)]
struct Counts(*mut Counters);

impl Counts {
    #[inline(always)]
    fn get() -> Option<Counts> {
        XDP_COUNTERS.get_ptr_mut(0).map(Counts)
    }

    #[inline(always)]
    fn add(self, c: Counter, n: u64) {
        // SAFETY: this CPU's slot; XDP runs with preemption disabled on this CPU.
        unsafe { (*self.0).values[c as usize] += n };
    }

    #[inline(always)]
    fn bump(self, c: Counter) {
        self.add(c, 1);
    }
}

/// For the rare paths that do not carry the counters along.
#[inline(always)]
fn count(c: Counter) {
    if let Some(v) = Counts::get() {
        v.bump(c);
    }
}

/// Precise boot-clock time: for records and block expiry, off the established-flow path.
#[inline(always)]
fn boot_ns() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_boot_ns() }
}

/// Boot-clock time at the kernel tick's resolution: what flows and scan windows keep.
#[inline(always)]
fn coarse_ns() -> u64 {
    // SAFETY: helper without preconditions.
    let mono = unsafe { bpf_ktime_get_coarse_ns() };
    mono + CLOCK_OFFSET.get(0).copied().unwrap_or(0)
}

/// The byte at `off`, if the frame has it.
#[inline(always)]
fn byte(ctx: &XdpContext, off: usize) -> Option<u8> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + off + 1 > end {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { *((start + off) as *const u8) })
}

/// A pointer to `n` bytes at `off`, if the frame has them. Reads go through this very
/// pointer so the verifier sees the check that covers them.
#[inline(always)]
fn span(ctx: &XdpContext, off: usize, n: usize) -> Option<*const u8> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + off + n > end {
        return None;
    }
    Some((start + off) as *const u8)
}

/// `N` bytes at `i` in a span; only within the length [`span`] checked.
#[inline(always)]
fn at<const N: usize>(p: *const u8, i: usize) -> [u8; N] {
    // SAFETY: callers stay inside the span; byte arrays have no alignment.
    unsafe { core::ptr::read_unaligned(p.add(i) as *const [u8; N]) }
}

/// `N` bytes at `off`, if the frame has them.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + off + N > end {
        return None;
    }
    // SAFETY: bounds checked against data_end just above; byte arrays have no alignment.
    Some(unsafe { core::ptr::read_unaligned((start + off) as *const [u8; N]) })
}

/// What the parser learnt about a frame: only what the established-flow path needs. The
/// MAC addresses are read again from the frame on the paths that want them.
struct Parsed {
    key: FlowKey,
    vlan: u16,
    tcp_flags: u8,
    /// Offset and length of the transport payload; length 0 when there is none.
    payload_off: usize,
    payload_len: usize,
}

impl Parsed {
    /// All zero, in place, field by field: the compiler would otherwise zero it with a call
    /// to a byte-wise `memset` subprogram, the most expensive part of the parse. Volatile
    /// stores keep it from merging them back into one.
    #[inline(always)]
    fn zeroed(p: &mut core::mem::MaybeUninit<Parsed>) -> &mut Parsed {
        let pp = p.as_mut_ptr();
        // SAFETY: every field is written before the reference is made; FlowKey is 8-byte
        // aligned and a whole number of words, and all-zero is a valid value of each field.
        unsafe {
            let w = core::ptr::addr_of_mut!((*pp).key).cast::<u64>();
            for i in 0..size_of::<FlowKey>() / 8 {
                core::ptr::write_volatile(w.add(i), 0);
            }
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*pp).vlan), 0);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*pp).tcp_flags), 0);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*pp).payload_off), 0);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*pp).payload_len), 0);
            p.assume_init_mut()
        }
    }
}

/// 16 bytes at `i` of a span into `dst`, byte by byte (no `memcpy` call).
#[inline(always)]
fn copy16(dst: &mut [u8; 16], p: *const u8, i: usize) {
    for (j, d) in dst.iter_mut().enumerate() {
        // SAFETY: callers stay inside the span; volatile keeps this a copy in place.
        unsafe { core::ptr::write_volatile(d, *p.add(i + j)) };
    }
}

/// The frame's MAC addresses, source then destination.
#[inline(always)]
fn macs(ctx: &XdpContext) -> ([u8; 6], [u8; 6]) {
    match bytes::<12>(ctx, 0) {
        Some(e) => (
            [e[6], e[7], e[8], e[9], e[10], e[11]],
            [e[0], e[1], e[2], e[3], e[4], e[5]],
        ),
        None => ([0; 6], [0; 6]),
    }
}

/// The cost of the harness alone (`heir bench xdp` subtracts nothing, it shows this beside
/// the real paths). Never attached.
#[xdp]
pub fn heir_xdp_floor(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn heir_xdp(ctx: XdpContext) -> u32 {
    let Some(c) = Counts::get() else {
        return xdp_action::XDP_PASS;
    };
    let len = (ctx.data_end() - ctx.data()) as u64;
    c.bump(Counter::Packets);
    c.add(Counter::Bytes, len);
    let mut p = core::mem::MaybeUninit::<Parsed>::uninit();
    let p = Parsed::zeroed(&mut p);
    if !parse(&ctx, c, p) {
        c.bump(Counter::Passed);
        return xdp_action::XDP_PASS;
    }
    let verdict = track(&ctx, c, p, len);
    if verdict == xdp_action::XDP_DROP {
        c.bump(Counter::Dropped);
    } else {
        c.bump(Counter::Passed);
    }
    verdict
}

/// Parses the frame into `p`; false when it is not an IP packet we track (or a malformed
/// one, already counted).
#[inline(always)]
fn parse(ctx: &XdpContext, c: Counts, p: &mut Parsed) -> bool {
    let Some(eth) = bytes::<2>(ctx, 12) else {
        c.bump(Counter::Malformed);
        return false;
    };
    let mut ethertype = u16::from_be_bytes(eth);
    let mut off = ETH_LEN;
    // Up to two tags: 802.1ad outer, 802.1Q inner.
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = bytes::<4>(ctx, off) else {
            c.bump(Counter::Malformed);
            return false;
        };
        if p.vlan == 0 {
            c.bump(Counter::Vlan);
        }
        p.vlan = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        off += 4;
    }
    let frame_end = ctx.data_end() - ctx.data();
    let (proto, l4, ip_end, first_fragment) = match ethertype {
        ETH_P_IP => {
            let Some(ip) = span(ctx, off, 20) else {
                c.bump(Counter::Malformed);
                return false;
            };
            let vhl = at::<1>(ip, 0)[0];
            let ihl = (vhl & 0x0f) as usize * 4;
            let total = u16::from_be_bytes(at::<2>(ip, 2)) as usize;
            if vhl >> 4 != 4 || ihl < 20 || total < ihl {
                c.bump(Counter::Malformed);
                return false;
            }
            c.bump(Counter::Ipv4);
            p.key.family = FAMILY_V4;
            let src = at::<4>(ip, 12);
            let dst = at::<4>(ip, 16);
            p.key.src[..4].copy_from_slice(&src);
            p.key.dst[..4].copy_from_slice(&dst);
            let frag = u16::from_be_bytes(at::<2>(ip, 6)) & 0x1fff;
            (at::<1>(ip, 9)[0], off + ihl, off + total, frag == 0)
        }
        ETH_P_IPV6 => {
            let Some(ip) = span(ctx, off, 40) else {
                c.bump(Counter::Malformed);
                return false;
            };
            if at::<1>(ip, 0)[0] >> 4 != 6 {
                c.bump(Counter::Malformed);
                return false;
            }
            c.bump(Counter::Ipv6);
            p.key.family = FAMILY_V6;
            copy16(&mut p.key.src, ip, 8);
            copy16(&mut p.key.dst, ip, 24);
            let payload = u16::from_be_bytes(at::<2>(ip, 4)) as usize;
            let mut next = at::<1>(ip, 6)[0];
            let mut l4 = off + 40;
            let mut first = true;
            // Hop-by-hop, routing, destination options, fragment: the usual few.
            for _ in 0..3 {
                match next {
                    0 | 43 | 60 => {
                        let Some(h) = bytes::<2>(ctx, l4) else {
                            c.bump(Counter::Malformed);
                            return false;
                        };
                        next = h[0];
                        l4 += (h[1] as usize + 1) * 8;
                    }
                    44 => {
                        let Some(h) = bytes::<4>(ctx, l4) else {
                            c.bump(Counter::Malformed);
                            return false;
                        };
                        next = h[0];
                        first = u16::from_be_bytes([h[2], h[3]]) >> 3 == 0;
                        l4 += 8;
                    }
                    _ => break,
                }
            }
            (next, l4, off + 40 + payload, first)
        }
        _ => {
            c.bump(Counter::NonIp);
            return false;
        }
    };
    p.key.proto = proto;
    let ip_end = if ip_end < frame_end {
        ip_end
    } else {
        frame_end
    };
    if !first_fragment {
        c.bump(Counter::Fragment);
        return true;
    }
    let payload_off = match proto {
        PROTO_TCP => {
            let Some(t) = span(ctx, l4, 20) else {
                c.bump(Counter::Malformed);
                return false;
            };
            let doff = (at::<1>(t, 12)[0] >> 4) as usize * 4;
            if doff < 20 {
                c.bump(Counter::Malformed);
                return false;
            }
            c.bump(Counter::Tcp);
            p.key.sport = u16::from_be_bytes(at::<2>(t, 0));
            p.key.dport = u16::from_be_bytes(at::<2>(t, 2));
            p.tcp_flags = at::<1>(t, 13)[0];
            l4 + doff
        }
        PROTO_UDP => {
            let Some(u) = span(ctx, l4, 8) else {
                c.bump(Counter::Malformed);
                return false;
            };
            c.bump(Counter::Udp);
            p.key.sport = u16::from_be_bytes(at::<2>(u, 0));
            p.key.dport = u16::from_be_bytes(at::<2>(u, 2));
            l4 + 8
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let (Some(ty), Some(code)) = (byte(ctx, l4), byte(ctx, l4 + 1)) else {
                c.bump(Counter::Malformed);
                return false;
            };
            c.bump(Counter::Icmp);
            p.key.sport = ty as u16;
            p.key.dport = code as u16;
            return true;
        }
        _ => return true,
    };
    if payload_off < ip_end {
        p.payload_off = payload_off;
        p.payload_len = ip_end - payload_off;
    }
    true
}

/// Adds a packet to the devices of its flow. Each slot is an array lookup the verifier
/// inlines; a slot of [`NO_DEVICE`] is out of range and finds nothing.
#[inline(always)]
fn account(devices: &[u32; 4], len: u64) {
    for (i, slot) in devices.iter().enumerate() {
        if let Some(d) = DEVICE_STATS.get_ptr_mut(*slot) {
            // SAFETY: this CPU's share of the slot; XDP does not preempt itself.
            let d = unsafe { &mut *d };
            if i % 2 == 0 {
                d.packets_out += 1;
                d.bytes_out += len;
            } else {
                d.packets_in += 1;
                d.bytes_in += len;
            }
        }
    }
}

/// The slot counting `key`, given on first sight. `NO_DEVICE` when the table is full.
#[inline(always)]
fn slot(key: &DeviceKey) -> u32 {
    // SAFETY: plain data, read and not kept.
    if let Some(s) = unsafe { DEVICE_SLOTS.get(key) } {
        return *s;
    }
    let Some(next) = DEVICE_NEXT.get_ptr_mut(0) else {
        return NO_DEVICE;
    };
    // SAFETY: this CPU's counter; XDP does not preempt itself.
    let next = unsafe { &mut *next };
    // SAFETY: helper without preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let s = (*next).wrapping_mul(config!(cpus)).wrapping_add(cpu);
    if DEVICE_STATS.get(s).is_none() {
        count(Counter::DevicesFull);
        return NO_DEVICE;
    }
    *next += 1;
    if DEVICE_SLOTS.insert(key, &s, BPF_NOEXIST as u64).is_ok() {
        return s;
    }
    // Another CPU gave this device a slot first (the one taken here stays unused), or the
    // index is full.
    // SAFETY: as above.
    match unsafe { DEVICE_SLOTS.get(key) } {
        Some(s) => *s,
        None => {
            count(Counter::DevicesFull);
            NO_DEVICE
        }
    }
}

/// The four device slots of a new flow. A function of its own (a BPF subprogram), so its
/// keys do not crowd the main program's stack.
#[inline(never)]
fn device_slots(key: &FlowKey, src_mac: &[u8; 6], dst_mac: &[u8; 6], out: &mut [u32; 4]) {
    let kind = if key.family == FAMILY_V4 {
        DEVICE_V4
    } else {
        DEVICE_V6
    };
    let mut k = DeviceKey {
        addr: key.src,
        kind,
        _pad: [0; 7],
    };
    out[DeviceSide::SrcIp as usize] = slot(&k);
    k.addr = key.dst;
    out[DeviceSide::DstIp as usize] = slot(&k);
    k.kind = DEVICE_MAC;
    k.addr = [0; 16];
    // Group addresses (broadcast, multicast) are no device.
    out[DeviceSide::SrcMac as usize] = if src_mac[0] & 1 == 0 {
        k.addr[..6].copy_from_slice(src_mac);
        slot(&k)
    } else {
        NO_DEVICE
    };
    out[DeviceSide::DstMac as usize] = if dst_mac[0] & 1 == 0 {
        k.addr[..6].copy_from_slice(dst_mac);
        slot(&k)
    } else {
        NO_DEVICE
    };
}

/// Updates the flow table, emits records and decides the verdict.
#[inline(always)]
fn track(ctx: &XdpContext, c: Counts, p: &Parsed, len: u64) -> u32 {
    let now = coarse_ns();
    let enforce = config!(flags) & XDP_ENFORCE != 0;
    let devices = config!(flags) & XDP_DEVICES != 0;
    let mut new_flow = false;
    let mut sample = false;
    // The precise clock, read at most once and only where a record or an expiry needs it.
    let mut ts = 0;
    let blocked;
    match FLOWS.get_ptr_mut(&p.key) {
        Some(s) => {
            // SAFETY: this CPU's share of the entry; XDP does not preempt itself.
            let s = unsafe { &mut *s };
            if s.packets == 0 {
                // The flow began on another CPU: this CPU's share of the entry is zeroed,
                // so it learns the flow's start and its device slots now (slot 0 is some
                // device's, not "none").
                s.first_ns = now;
                if devices {
                    let (src_mac, dst_mac) = macs(ctx);
                    device_slots(&p.key, &src_mac, &dst_mac, &mut s.devices);
                }
            }
            s.last_ns = now;
            s.packets += 1;
            s.bytes += len;
            if devices {
                account(&s.devices, len);
            }
            if s.tcp_flags == TCP_SYN && p.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_ACK {
                handshake_completed(p, now);
            }
            s.tcp_flags |= p.tcp_flags;
            if p.payload_len > 0 && s.sampled < samples(&p.key) {
                s.sampled += 1;
                sample = true;
            }
            blocked = if enforce {
                // The verdict is cached in the flow until the tables change (the
                // generation) or the block that decided it expires.
                let generation = BLOCK_GEN.get(0).copied().unwrap_or(0);
                let same = s.generation == generation;
                if same && s.blocked == 0 {
                    false
                } else if same && s.block_until == 0 {
                    true
                } else {
                    ts = boot_ns();
                    if same && ts < s.block_until {
                        true
                    } else {
                        let v = verdict(ctx, p, ts);
                        s.generation = generation;
                        s.blocked = v.is_some() as u8;
                        s.block_until = v.unwrap_or(0);
                        v.is_some()
                    }
                }
            } else {
                false
            };
        }
        None => {
            new_flow = true;
            sample = p.payload_len > 0;
            let generation = BLOCK_GEN.get(0).copied().unwrap_or(0);
            ts = boot_ns();
            let v = if enforce { verdict(ctx, p, ts) } else { None };
            blocked = v.is_some();
            // Built in a per-CPU scratch slot: the stack is too small to spare for it.
            if let Some(s) = FLOW_SCRATCH.get_ptr_mut(0) {
                // SAFETY: this CPU's scratch slot, used only here.
                let s = unsafe { &mut *s };
                s.first_ns = now;
                s.last_ns = now;
                s.packets = 1;
                s.bytes = len;
                s.generation = generation;
                s.block_until = v.unwrap_or(0);
                s.tcp_flags = p.tcp_flags;
                s.sampled = sample as u8;
                s.blocked = blocked as u8;
                s._pad = [0; 5];
                if devices {
                    let (src_mac, dst_mac) = macs(ctx);
                    device_slots(&p.key, &src_mac, &dst_mac, &mut s.devices);
                    account(&s.devices, len);
                } else {
                    s.devices = [NO_DEVICE; 4];
                }
                let _ = FLOWS.insert(&p.key, s, 0);
            }
            c.bump(Counter::NewFlows);
            scan_new_flow(p, now);
        }
    }
    if config!(flags) & XDP_EVENTS != 0 && (new_flow || sample) {
        if ts == 0 {
            ts = boot_ns();
        }
        if new_flow {
            emit_flow(
                ctx,
                p,
                ts,
                len,
                if blocked { RECORD_DROP } else { RECORD_FLOW },
            );
        }
        if sample && !blocked {
            emit_sample(ctx, p, ts, len);
        }
    }
    if blocked {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

#[inline(always)]
fn source_key(p: &Parsed) -> SourceKey {
    SourceKey {
        addr: p.key.src,
        family: p.key.family,
        _pad: [0; 7],
    }
}

/// This source's window, opened or rolled over as needed.
#[inline(always)]
fn scan_state(p: &Parsed, now: u64) -> Option<&'static mut ScanState> {
    let key = source_key(p);
    let ptr = match SCANS.get_ptr_mut(&key) {
        Some(s) => s,
        None => {
            let z = SCAN_SCRATCH.get_ptr_mut(0)?;
            // SAFETY: this CPU's scratch slot; zeroed, then copied into the table.
            unsafe {
                core::ptr::write_bytes(z, 0, 1);
                (*z).window_start_ns = now;
                SCANS.insert(&key, &*z, 0).ok()?;
            }
            SCANS.get_ptr_mut(&key)?
        }
    };
    // SAFETY: this CPU's share of the entry.
    let st = unsafe { &mut *ptr };
    if now.wrapping_sub(st.window_start_ns) > config!(scan_window_ns) {
        // SAFETY: as above; the whole state restarts with the window.
        unsafe { core::ptr::write_bytes(ptr, 0, 1) };
        st.window_start_ns = now;
    }
    Some(st)
}

/// Counts a new flow against its source: one more flow, a bare SYN, and the destination
/// port and host marked in the sketches. A function of its own (a BPF subprogram), so its
/// locals do not crowd the main program's 512-byte stack.
#[inline(never)]
fn scan_new_flow(p: &Parsed, now: u64) {
    let Some(st) = scan_state(p, now) else {
        return;
    };
    st.flows += 1;
    if p.key.proto == PROTO_TCP && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
        st.syns += 1;
    }
    let port = (mix(u32::from(p.key.dport)) >> 22) as usize; // 10 bits
    st.ports[(port >> 6) & 15] |= 1 << (port & 63);
    let d = &p.key.dst;
    let mut h = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]);
    h ^= u32::from_ne_bytes([d[4], d[5], d[6], d[7]]);
    h ^= u32::from_ne_bytes([d[8], d[9], d[10], d[11]]);
    h ^= u32::from_ne_bytes([d[12], d[13], d[14], d[15]]);
    let host = (mix(h) >> 23) as usize; // 9 bits
    st.hosts[(host >> 6) & 7] |= 1 << (host & 63);
}

/// MurmurHash3's finaliser: spreads neighbouring ports and addresses like random ones,
/// which the linear-counting estimate in userspace assumes.
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// The client's ACK completing a handshake its SYN opened.
#[inline(never)]
fn handshake_completed(p: &Parsed, now: u64) {
    if let Some(st) = scan_state(p, now) {
        st.completed += 1;
    }
}

/// Payload samples a flow sends up: the first, and for FTP and HTTP a few more, so `USER`
/// and `PASS` (which come in separate packets, the password cut below) are both seen.
/// Telnet gets one: it is recognised by its port, and its later client packets are the
/// typed user name and password, which must not leave the kernel.
#[inline(always)]
fn samples(key: &FlowKey) -> u8 {
    if key.dport == ports::FTP || ports::is_http(key.dport) {
        4
    } else {
        1
    }
}

#[inline(always)]
fn live(e: &BlockEntry, now: u64) -> bool {
    e.expires_boot_ns == 0 || now < e.expires_boot_ns
}

/// Whether the source or destination is blocked and not protected: `Some(until)` with the
/// earliest expiry of the blocks that apply (0: none expires), `None` when nothing does. A
/// protected device's traffic is never dropped for a block on its own address, whatever
/// prefix covers it. MAC blocks apply to sources only: on routed networks the destination
/// MAC of a frame towards a blocked device is the router's.
#[inline(always)]
fn verdict(ctx: &XdpContext, p: &Parsed, now: u64) -> Option<u64> {
    let src = MacKey::new(macs(ctx).0);
    let mut until = None;
    // SAFETY: the values are plain data, read and not kept.
    if let Some(e) = unsafe { BLOCK_MAC.get(&src) }
        && live(e, now)
    {
        if unsafe { PROTECT_MAC.get(&src) }.is_none() {
            until = join(until, e.expires_boot_ns);
        } else {
            count(Counter::ProtectedPass);
        }
    }
    let (a, b) = if p.key.family == FAMILY_V4 {
        (v4(&p.key.src, now), v4(&p.key.dst, now))
    } else {
        (v6(&p.key.src, now), v6(&p.key.dst, now))
    };
    if let Some(x) = a {
        until = join(until, x);
    }
    if let Some(x) = b {
        until = join(until, x);
    }
    until
}

/// The earlier of two expiries, 0 meaning never.
#[inline(always)]
fn join(until: Option<u64>, expires: u64) -> Option<u64> {
    Some(match until {
        None => expires,
        Some(0) => expires,
        Some(u) if expires == 0 || u < expires => u,
        Some(_) => expires,
    })
}

#[inline(always)]
fn v4(addr: &[u8; 16], now: u64) -> Option<u64> {
    let a: V4 = [addr[0], addr[1], addr[2], addr[3]];
    let key = Key::new(32, a);
    match BLOCK_V4.get(&key) {
        Some(e) if live(e, now) => {
            if PROTECT_V4.get(&key).is_some() {
                count(Counter::ProtectedPass);
                None
            } else {
                Some(e.expires_boot_ns)
            }
        }
        _ => None,
    }
}

#[inline(always)]
fn v6(addr: &[u8; 16], now: u64) -> Option<u64> {
    let key = Key::new(128, *addr);
    match BLOCK_V6.get(&key) {
        Some(e) if live(e, now) => {
            if PROTECT_V6.get(&key).is_some() {
                count(Counter::ProtectedPass);
                None
            } else {
                Some(e.expires_boot_ns)
            }
        }
        _ => None,
    }
}

#[inline(always)]
fn wakeup_flags() -> u64 {
    let pending = PACKETS.query(BPF_RB_AVAIL_DATA as u64);
    (if pending >= u64::from(config!(wakeup_bytes)) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }) as u64
}

#[inline(always)]
fn fill(h: &mut PacketHeader, ctx: &XdpContext, p: &Parsed, now: u64, len: u64, record: u16) {
    h.record = record;
    h._pad = 0;
    h.ifindex = ctx.ingress_ifindex() as u32;
    h.ts_boot_ns = now;
    h.key = p.key;
    (h.src_mac, h.dst_mac) = macs(ctx);
    h.vlan = p.vlan;
    h.tcp_flags = p.tcp_flags;
    h._pad2 = 0;
    h.wire_len = len as u32;
    h._pad3 = 0;
}

#[inline(always)]
fn emit_flow(ctx: &XdpContext, p: &Parsed, now: u64, len: u64, record: u16) {
    let Some(mut entry) = PACKETS.reserve::<FlowRecord>(0) else {
        count(Counter::Lost);
        return;
    };
    // SAFETY: the reservation is sized for a FlowRecord; every field is written below.
    let r = unsafe { &mut *entry.as_mut_ptr() };
    fill(&mut r.header, ctx, p, now, len, record);
    entry.submit(wakeup_flags());
    count(Counter::Emitted);
}

/// A subprogram of its own: the verifier checks its bounded loops once per call, not once
/// per path through the parser.
#[inline(never)]
fn emit_sample(ctx: &XdpContext, p: &Parsed, now: u64, len: u64) {
    let Some(mut entry) = PACKETS.reserve::<SampleRecord>(0) else {
        count(Counter::Lost);
        return;
    };
    // SAFETY: the reservation is sized for a SampleRecord; every field is written below.
    let r = unsafe { &mut *entry.as_mut_ptr() };
    fill(&mut r.header, ctx, p, now, len, RECORD_SAMPLE);
    r.payload_len = p.payload_len as u32;
    let data = r.data.as_mut_ptr();
    // SAFETY: `data` is SAMPLE_LEN bytes inside the reservation. The reservation is not
    // zeroed, and a constant-size memset is straight-line code for the verifier.
    unsafe { core::ptr::write_bytes(data, 0, SAMPLE_LEN) };
    let mut n = p.payload_len;
    if n > SAMPLE_LEN {
        n = SAMPLE_LEN;
    }
    if n == 0 || !load(ctx, p.payload_off, data, n) {
        n = 0;
    }
    let (sport, dport) = (p.key.sport, p.key.dport);
    if n > 0 && (sport == ports::MLLP || dport == ports::MLLP) {
        // Only the MSH segment may leave the kernel: the patient segments follow its '\r'.
        let mut i = 0;
        while i < SAMPLE_LEN {
            if i >= n || r.data[i] == b'\r' {
                break;
            }
            i += 1;
        }
        if i < n {
            // SAFETY: as above.
            unsafe { core::ptr::write_bytes(data, 0, SAMPLE_LEN) };
            n = if i > 0 && load(ctx, p.payload_off, data, i) {
                i
            } else {
                0
            };
        }
    } else if n >= 6 && ports::is_http(dport) {
        // Recognition needs to know Basic authentication went in cleartext, never the
        // encoded user name and password: the sample ends with `Basic `.
        let mut i = 0;
        while i + 6 <= SAMPLE_LEN {
            if r.data[i + 5] == b' '
                && r.data[i] | 0x20 == b'b'
                && r.data[i + 1] | 0x20 == b'a'
                && r.data[i + 2] | 0x20 == b's'
                && r.data[i + 3] | 0x20 == b'i'
                && r.data[i + 4] | 0x20 == b'c'
            {
                break;
            }
            i += 1;
        }
        if i + 6 <= n {
            // SAFETY: as above.
            unsafe { core::ptr::write_bytes(data, 0, SAMPLE_LEN) };
            n = if load(ctx, p.payload_off, data, i + 6) {
                i + 6
            } else {
                0
            };
        }
    } else if n >= 4
        && (sport == ports::FTP || dport == ports::FTP)
        && r.data[0] | 0x20 == b'p'
        && r.data[1] | 0x20 == b'a'
        && r.data[2] | 0x20 == b's'
        && r.data[3] | 0x20 == b's'
    {
        // The command is what recognition needs; the password never leaves the kernel.
        // SAFETY: bytes 4..SAMPLE_LEN of `data`.
        unsafe { core::ptr::write_bytes(data.add(4), 0, SAMPLE_LEN - 4) };
        n = 4;
    }
    r.len = n as u32;
    entry.submit(wakeup_flags());
    count(Counter::Emitted);
}

/// Copies `n` (1..=SAMPLE_LEN) payload bytes at `off` into `dst`.
#[inline(always)]
fn load(ctx: &XdpContext, off: usize, dst: *mut u8, n: usize) -> bool {
    let n = (n as u32).clamp(1, SAMPLE_LEN as u32);
    // SAFETY: the helper checks offset and length against the frame; `dst` has SAMPLE_LEN
    // bytes and `n` is at most that.
    unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, dst.cast(), n) == 0 }
}

trait MacKeyExt {
    fn new(addr: [u8; 6]) -> Self;
}

impl MacKeyExt for MacKey {
    #[inline(always)]
    fn new(addr: [u8; 6]) -> Self {
        MacKey { addr, _pad: [0; 2] }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic; this handler exists only to satisfy no_std.
    loop {}
}
