//! The packet sensor's ABI: the XDP program's map keys and values and the records it writes
//! into its own ring buffer.
//!
//! Addresses are stored as 16 bytes in both families (IPv4 in the first four, the rest zero)
//! with the family alongside, so one flow key and one record layout serve IPv4 and IPv6.

/// Bytes of payload the kernel hands to userspace for protocol recognition: enough for a
/// DICOM A-ASSOCIATE-RQ's AE titles, a TLS ClientHello's versions and first cipher suites, an
/// HL7 MSH segment's applications, an FTP/HTTP request line.
pub const SAMPLE_LEN: usize = 256;
/// Bytes of a block entry's reason text.
pub const REASON_LEN: usize = 64;

pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flag bits, as on the wire.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// The 5-tuple of a flow, as seen on the wire (direction matters: a reply is its own flow).
/// For ICMP, `sport` holds the type and `dport` the code. Eight-byte aligned so the kernel
/// builds and compares it in words (the layout is the same as unaligned).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Ports in host byte order.
    pub sport: u16,
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    pub _pad: [u8; 2],
}

/// One CPU's share of a flow's statistics; the flow table is per-CPU so no update is lost,
/// and userspace adds the shares up.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    /// Boot-clock nanoseconds of the first and last packet this CPU saw, at the kernel
    /// tick's resolution (a few ms): the coarse clock costs a load where a precise one
    /// costs tens of ns per packet.
    pub first_ns: u64,
    pub last_ns: u64,
    pub packets: u64,
    /// Bytes on the wire, link-layer header included.
    pub bytes: u64,
    /// The block tables' generation the cached verdict was decided at.
    pub generation: u64,
    /// When the block behind a cached drop verdict expires (boot ns; 0: never).
    pub block_until: u64,
    /// Every TCP flag seen, OR-ed.
    pub tcp_flags: u8,
    /// Payload samples of this flow sent so far (attempts: a full ring counts too).
    pub sampled: u8,
    /// Cached verdict: 1 when this flow's packets are dropped.
    pub blocked: u8,
    pub _pad: [u8; 5],
    /// The device counters this flow's packets add to, by index in `DEVICE_STATS`
    /// ([`NO_DEVICE`]: none), in [`DeviceSide`] order: chosen once when the flow starts, so
    /// the per-packet cost is four array slots, not four hash lookups.
    pub devices: [u32; 4],
}

/// A flow with no device slot on that side (the device table was full, or a group MAC).
pub const NO_DEVICE: u32 = u32::MAX;

/// Which of a flow's devices a slot in [`FlowStats::devices`] stands for.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSide {
    /// The source address: its packets count as sent (out).
    SrcIp = 0,
    /// The destination address: received (in).
    DstIp = 1,
    SrcMac = 2,
    DstMac = 3,
}

/// What a device key is.
pub const DEVICE_V4: u8 = 4;
pub const DEVICE_V6: u8 = 6;
pub const DEVICE_MAC: u8 = 1;

/// A device as the kernel counts it: an IPv4 address (first four bytes), an IPv6 address,
/// or a MAC (first six bytes), by `kind`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeviceKey {
    pub addr: [u8; 16],
    /// `DEVICE_*`.
    pub kind: u8,
    pub _pad: [u8; 7],
}

/// One CPU's share of a device's traffic: sent (out) and received (in), link-layer bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

/// Every counter of one CPU, in one map slot: one lookup per packet serves them all.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    pub values: [u64; Counter::COUNT as usize],
}

/// A block: why, by whom, until when. The same value type serves the IPv4, IPv6 and MAC
/// tables.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockEntry {
    /// `CLOCK_BOOTTIME` nanoseconds after which the block no longer applies; 0 = never.
    pub expires_boot_ns: u64,
    /// Unix seconds when the block was made.
    pub created_unix: u64,
    /// One of the `ORIGIN_*` codes.
    pub origin: u8,
    pub _pad: [u8; 7],
    /// UTF-8, NUL-padded.
    pub reason: [u8; REASON_LEN],
}

/// A detection rule of this agent made the block.
pub const ORIGIN_RULE: u8 = 1;
/// An operator ran `heir block`.
pub const ORIGIN_OPERATOR: u8 = 2;
/// An indicator shared by another hospital over the mesh.
pub const ORIGIN_MESH: u8 = 3;

/// Key of the MAC tables: the address and two zero bytes, for alignment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MacKey {
    pub addr: [u8; 6],
    pub _pad: [u8; 2],
}

/// LPM trie key data for IPv4 (network byte order); the prefix length precedes it.
pub type V4 = [u8; 4];
/// LPM trie key data for IPv6.
pub type V6 = [u8; 16];

/// Per-CPU packet counters, by index in the `XDP_COUNTERS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Packets = 0,
    Bytes = 1,
    Passed = 2,
    Dropped = 3,
    /// Frames cut short inside a header they announce, or with impossible header fields.
    Malformed = 4,
    /// Neither IPv4 nor IPv6 (ARP, LLDP, ...).
    NonIp = 5,
    Vlan = 6,
    Ipv4 = 7,
    Ipv6 = 8,
    Tcp = 9,
    Udp = 10,
    Icmp = 11,
    /// IP fragments after the first: no transport header to read.
    Fragment = 12,
    NewFlows = 13,
    /// A block matched a protected device and was overridden.
    ProtectedPass = 14,
    /// Records written to / lost on the packet ring buffer.
    Emitted = 15,
    Lost = 16,
    /// Addresses not given a device counter: the device table was full.
    DevicesFull = 17,
}

impl Counter {
    pub const COUNT: u32 = 18;

    pub const ALL: [Counter; 18] = [
        Counter::Packets,
        Counter::Bytes,
        Counter::Passed,
        Counter::Dropped,
        Counter::Malformed,
        Counter::NonIp,
        Counter::Vlan,
        Counter::Ipv4,
        Counter::Ipv6,
        Counter::Tcp,
        Counter::Udp,
        Counter::Icmp,
        Counter::Fragment,
        Counter::NewFlows,
        Counter::ProtectedPass,
        Counter::Emitted,
        Counter::Lost,
        Counter::DevicesFull,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Counter::Packets => "packets",
            Counter::Bytes => "bytes",
            Counter::Passed => "passed",
            Counter::Dropped => "dropped",
            Counter::Malformed => "malformed",
            Counter::NonIp => "non_ip",
            Counter::Vlan => "vlan",
            Counter::Ipv4 => "ipv4",
            Counter::Ipv6 => "ipv6",
            Counter::Tcp => "tcp",
            Counter::Udp => "udp",
            Counter::Icmp => "icmp",
            Counter::Fragment => "fragment",
            Counter::NewFlows => "new_flows",
            Counter::ProtectedPass => "protected_pass",
            Counter::Emitted => "emitted",
            Counter::Lost => "lost",
            Counter::DevicesFull => "devices_full",
        }
    }
}

/// Which packet record follows. Distinct from the syscall [`crate::Kind`]s: the packet sensor
/// has its own ring buffer.
pub const RECORD_FLOW: u16 = 1;
pub const RECORD_SAMPLE: u16 = 2;
pub const RECORD_DROP: u16 = 3;

/// The first bytes of every packet record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketHeader {
    /// `RECORD_*`.
    pub record: u16,
    pub _pad: u16,
    /// Interface the packet arrived on.
    pub ifindex: u32,
    pub ts_boot_ns: u64,
    pub key: FlowKey,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// 802.1Q VLAN id, 0 when untagged.
    pub vlan: u16,
    /// `TCP_*` flags of this packet.
    pub tcp_flags: u8,
    pub _pad2: u8,
    /// Length of the frame.
    pub wire_len: u32,
    pub _pad3: u32,
}

/// A flow's first packet, or a packet dropped by a block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowRecord {
    pub header: PacketHeader,
}

/// The first payload of a flow, for protocol recognition. `len` bytes of `data` are valid;
/// the rest is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SampleRecord {
    pub header: PacketHeader,
    /// Bytes of payload in the packet.
    pub payload_len: u32,
    /// Bytes copied into `data`.
    pub len: u32,
    pub data: [u8; SAMPLE_LEN],
}

/// Load-time configuration of the XDP program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpConfig {
    /// `XDP_*` bits.
    pub flags: u32,
    /// Ring-buffer fill level (bytes) at which a submit wakes the reader.
    pub wakeup_bytes: u32,
    /// Length of the per-source scan window.
    pub scan_window_ns: u64,
    /// Possible CPUs: CPU `c` gives device slots `c`, `c + cpus`, ...
    pub cpus: u32,
    pub _pad: u32,
}

/// Bits of the per-source destination-port sketch.
pub const SCAN_PORT_BITS: usize = 1024;
/// Bits of the per-source destination-host sketch.
pub const SCAN_HOST_BITS: usize = 512;

/// Key of the per-source scan table: an address as in [`FlowKey`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub addr: [u8; 16],
    pub family: u8,
    pub _pad: [u8; 7],
}

/// One CPU's share of what a source did in the current window: flows it opened, bare SYNs
/// and how many of those completed their handshake, and two bitmaps (hashed destination
/// ports and hosts) from which userspace estimates how many distinct ones it touched.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ScanState {
    pub window_start_ns: u64,
    pub flows: u32,
    pub syns: u32,
    pub completed: u32,
    pub _pad: u32,
    pub ports: [u64; SCAN_PORT_BITS / 64],
    pub hosts: [u64; SCAN_HOST_BITS / 64],
}

/// Send flow and sample records to userspace.
pub const XDP_EVENTS: u32 = 1;
/// Apply the blocklists (off: count only, never drop).
pub const XDP_ENFORCE: u32 = 2;
/// Count traffic per device (about 7 ns on each packet of an established flow).
pub const XDP_DEVICES: u32 = 4;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: #[repr(C)] integers and byte arrays with explicit padding: every bit pattern is
    // valid.
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for FlowStats {}
    unsafe impl aya::Pod for BlockEntry {}
    unsafe impl aya::Pod for MacKey {}
    unsafe impl aya::Pod for XdpConfig {}
    unsafe impl aya::Pod for SourceKey {}
    unsafe impl aya::Pod for ScanState {}
    unsafe impl aya::Pod for DeviceKey {}
    unsafe impl aya::Pod for DeviceStats {}
    unsafe impl aya::Pod for Counters {}
}
