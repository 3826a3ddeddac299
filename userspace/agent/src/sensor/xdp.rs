//! The packet sensor: loads heir's XDP program, attaches it to the interfaces that face
//! device networks (driver mode where the driver supports it, generic mode otherwise), and
//! reads its counters, flow table and ring buffer.

use heir_packet::FlowCounters;
use heir_packet::record::addr;
use std::path::PathBuf;
use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, PerCpuHashMap},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use std::net::IpAddr;

use heir_abi::packet::{
    Counter, Counters, DEVICE_MAC, DEVICE_V4, DEVICE_V6, DeviceKey, DeviceStats, FAMILY_V4,
    FAMILY_V6, FlowKey, FlowStats, SCAN_HOST_BITS, SCAN_PORT_BITS, ScanState, SourceKey,
    XDP_DEVICES, XDP_ENFORCE, XDP_EVENTS, XdpConfig,
};
use heir_api::Chain;

use super::{Error, Reader, fs};

/// The XDP object, built by build.rs. Empty when built with `AYA_BUILD_SKIP=1`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/heir-xdp"));

const PROGRAM: &str = "heir_xdp";
/// An empty program in the same object: the test harness's own cost, for `heir bench xdp`.
const FLOOR: &str = "heir_xdp_floor";

/// Where the block and protect tables are pinned unless configured otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/heir";

/// How the packet sensor loads. Every field has a working default.
#[derive(Debug, Clone)]
pub struct Options {
    /// bpffs directory of the pinned block and protect tables.
    pub pin_dir: PathBuf,
    /// Flows the LRU table holds (per CPU).
    pub flow_entries: u32,
    /// Devices (IPv4, IPv6 and MAC addresses together) given traffic counters; addresses
    /// seen after that are counted in `devices_full`. Costs 32 bytes per device per CPU.
    pub device_entries: u32,
    /// Bytes of the packet ring buffer (a power of two).
    pub ring_bytes: u32,
    /// Send flow and sample records to userspace.
    pub events: bool,
    /// Drop blocked traffic (off: the tables are consulted by nobody).
    pub enforce: bool,
    /// Count traffic per device (about 7 ns on each packet of an established flow).
    pub devices: bool,
    /// Window of the per-source scan counters.
    pub scan_window: Duration,
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            flow_entries: 262_144,
            device_entries: 16_384,
            ring_bytes: 4 * 1024 * 1024,
            events: true,
            enforce: true,
            devices: true,
            scan_window: Duration::from_secs(60),
            poll: Duration::from_millis(10),
        }
    }
}

/// How the program ended up attached to an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In the driver, before any socket buffer is allocated.
    Driver,
    /// In the generic (SKB) path: works on any interface, at a higher cost per packet.
    Generic,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Driver => "driver",
            Mode::Generic => "generic",
        })
    }
}

/// One interface the program is attached to.
#[derive(Debug)]
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: Mode,
    link: XdpLinkId,
}

/// The loaded XDP program and its maps.
pub struct Packets {
    ebpf: Ebpf,
    /// Possible CPUs: per-CPU values come in this many shares.
    cpus: usize,
    scan_window_ns: u64,
    pub attached: Vec<Attachment>,
    /// Interfaces asked for, attached or not (yet). [`Packets::reattach`] is also the
    /// periodic upkeep that keeps the kernel's clock offset current.
    wanted: Vec<String>,
    poll: Duration,
}

/// Why attaching to an interface failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("no interface named `{0}`")]
    NoInterface(String),
    #[error(
        "attaching XDP to `{iface}` failed in driver mode ({driver}) and in generic mode ({generic})"
    )]
    Refused {
        iface: String,
        driver: String,
        generic: String,
    },
}

/// Packet counters summed over CPUs, by [`Counter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketCounters {
    values: [u64; Counter::COUNT as usize],
}

impl PacketCounters {
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize]
    }
}

/// What one source did in its current scan window, over all CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scan {
    /// Flows it opened.
    pub flows: u32,
    /// Bare SYNs it sent, and how many of those completed their handshake.
    pub syns: u32,
    pub completed: u32,
    /// Estimated distinct destination ports and hosts (linear counting on the sketches;
    /// exact while small, within a few percent up to several hundred).
    pub ports: f64,
    pub hosts: f64,
}

impl Scan {
    /// SYNs that never completed: the half-open connections of a SYN scan or flood.
    pub fn half_open(&self) -> u32 {
        self.syns.saturating_sub(self.completed)
    }
}

/// Linear counting: the distinct items a bitmap of `bits` bits with `set` bits set saw.
fn distinct(set: u32, bits: usize) -> f64 {
    let m = bits as f64;
    let zeros = m - f64::from(set);
    if zeros < 1.0 {
        m * m.ln()
    } else {
        -m * (zeros / m).ln()
    }
}

impl Packets {
    /// True when the binary carries the XDP object.
    pub fn has_object() -> bool {
        !OBJECT.is_empty()
    }

    /// Loads the program and creates (or reopens) the pinned tables; attaches nothing.
    pub fn load(options: &Options) -> Result<Packets, Error> {
        if !Self::has_object() {
            return Err(Error::NoObject);
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::NotRoot);
        }
        if !options.ring_bytes.is_power_of_two() || options.ring_bytes < 4096 {
            return Err(Error::RingSize(options.ring_bytes));
        }
        fs::raise_memlock();
        fs::ensure_mounted()?;
        std::fs::create_dir_all(&options.pin_dir)?;
        let config = XdpConfig {
            flags: (if options.events { XDP_EVENTS } else { 0 })
                | (if options.enforce { XDP_ENFORCE } else { 0 })
                | (if options.devices { XDP_DEVICES } else { 0 }),
            wakeup_bytes: (options.ring_bytes / 4).max(4096),
            scan_window_ns: options.scan_window.as_nanos().min(u128::from(u64::MAX)) as u64,
            cpus: aya::util::nr_cpus().map_err(|(_, e)| e)? as u32,
            _pad: 0,
        };
        let devices = options.device_entries.max(config.cpus);
        let mut ebpf = EbpfLoader::new()
            .override_global("XDP_CONFIG", &config, true)
            .map_max_entries("PACKETS", options.ring_bytes)
            .map_max_entries("FLOWS", options.flow_entries.max(1024))
            .map_max_entries("DEVICE_SLOTS", devices)
            .map_max_entries("DEVICE_STATS", devices)
            .default_map_pin_directory(&options.pin_dir)
            .load(OBJECT)?;
        program(&mut ebpf)
            .ok_or(Error::NoMap(PROGRAM))?
            .load()
            .map_err(|e| Error::NothingAttached(format!("{PROGRAM}: load: {}", Chain(&e))))?;
        let mut packets = Packets {
            ebpf,
            cpus: config.cpus as usize,
            scan_window_ns: config.scan_window_ns,
            attached: Vec::new(),
            wanted: Vec::new(),
            poll: options.poll,
        };
        packets.sync_clock()?;
        Ok(packets)
    }

    /// Tells the program how far the boot clock is ahead of the coarse monotonic one it
    /// reads per packet (the time spent suspended). Done at load and by
    /// [`Packets::reattach`], so flow times stay in the boot clock across a suspend.
    pub fn sync_clock(&mut self) -> Result<(), Error> {
        let name = "CLOCK_OFFSET";
        let map = self.ebpf.map_mut(name).ok_or(Error::NoMap(name))?;
        let mut arr: Array<&mut MapData, u64> =
            Array::try_from(map).map_err(|source| Error::Map { name, source })?;
        let offset = clock_ns(libc::CLOCK_BOOTTIME).saturating_sub(clock_ns(libc::CLOCK_MONOTONIC));
        arr.set(0, offset, 0)
            .map_err(|source| Error::Map { name, source })
    }

    /// Attaches to `iface` in driver mode, or in generic mode when the driver has no XDP
    /// support; returns the mode used. The interface is remembered either way, so
    /// [`Packets::reattach`] attaches it when it appears.
    pub fn attach(&mut self, iface: &str) -> Result<Mode, AttachError> {
        if !self.wanted.iter().any(|w| w == iface) {
            self.wanted.push(iface.to_owned());
        }
        self.attach_now(iface)
    }

    fn attach_now(&mut self, iface: &str) -> Result<Mode, AttachError> {
        let ifindex = ifindex(iface).ok_or_else(|| AttachError::NoInterface(iface.into()))?;
        let prog = program(&mut self.ebpf).expect("loaded in Packets::load");
        let (link, mode) = match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => (link, Mode::Driver),
            Err(driver) => match prog.attach_to_if_index(ifindex, XdpMode::Skb) {
                Ok(link) => (link, Mode::Generic),
                Err(generic) => {
                    return Err(AttachError::Refused {
                        iface: iface.into(),
                        driver: Chain(&driver).to_string(),
                        generic: Chain(&generic).to_string(),
                    });
                }
            },
        };
        self.attached.push(Attachment {
            iface: iface.into(),
            ifindex,
            mode,
            link,
        });
        Ok(mode)
    }

    /// Attaches to wanted interfaces that appeared, or that disappeared and came back under
    /// a new index. Returns what it tried, with the outcome.
    pub fn reattach(&mut self) -> Vec<(String, Result<Mode, AttachError>)> {
        if let Err(e) = self.sync_clock() {
            tracing::warn!("packet sensor clock: {}", Chain(&e));
        }
        let mut out = Vec::new();
        for iface in self.wanted.clone() {
            let now = ifindex(&iface);
            let pos = self.attached.iter().position(|a| a.iface == iface);
            match (pos, now) {
                (Some(i), Some(idx)) if self.attached[i].ifindex == idx => continue,
                (Some(i), _) => {
                    let a = self.attached.remove(i);
                    if let Some(prog) = program(&mut self.ebpf) {
                        // The old link died with the interface; this frees our handle.
                        let _ = prog.detach(a.link);
                    }
                }
                (None, _) => {}
            }
            if now.is_some() {
                let r = self.attach_now(&iface);
                out.push((iface, r));
            }
        }
        out
    }

    /// Runs the program once per `repeat` on `frame` with `BPF_PROG_TEST_RUN`; returns the
    /// verdict and the kernel's average time per run.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, Duration), ProgramError> {
        self.run(PROGRAM, frame, repeat)
    }

    /// [`Packets::test_run`] of an empty XDP program: what the harness itself costs. Loads
    /// it on first use.
    pub fn test_run_floor(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), ProgramError> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(FLOOR)
            .expect("in the object")
            .try_into()
            .expect("an XDP program");
        if prog.fd().is_err() {
            prog.load()?;
        }
        self.run(FLOOR, frame, repeat)
    }

    fn run(&self, name: &str, frame: &[u8], repeat: u32) -> Result<(u32, Duration), ProgramError> {
        let prog: &Xdp = self
            .ebpf
            .program(name)
            .expect("loaded")
            .try_into()
            .expect("an XDP program");
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        let r = prog.test_run(opts)?;
        Ok((r.return_value, r.duration))
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<PacketCounters, Error> {
        let name = "XDP_COUNTERS";
        let map = self.ebpf.map(name).ok_or(Error::NoMap(name))?;
        let arr: PerCpuArray<&MapData, Counters> =
            PerCpuArray::try_from(map).map_err(|source| Error::Map { name, source })?;
        let mut out = PacketCounters::default();
        for cpu in arr
            .get(&0, 0)
            .map_err(|source| Error::Map { name, source })?
            .iter()
        {
            for (o, v) in out.values.iter_mut().zip(cpu.values) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// Every device's traffic (packets and bytes in and out, summed over CPUs), keyed by
    /// IPv4 address, IPv6 address and MAC: the same packet counts for its source and
    /// destination address and MAC.
    pub fn devices(&self) -> Result<Vec<(Device, Traffic)>, Error> {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = |name: &'static str| -> Result<_, Error> {
            match self.ebpf.map(name) {
                Some(aya::maps::Map::HashMap(data) | aya::maps::Map::PerCpuArray(data)) => {
                    Ok(data.fd().as_fd().as_raw_fd())
                }
                _ => Err(Error::NoMap(name)),
            }
        };
        let mut slots = Vec::new();
        super::batch::plain::<DeviceKey, u32>(fd("DEVICE_SLOTS")?, |k, slot| {
            slots.push((*k, *slot));
            true
        })?;
        let Some(last) = slots.iter().map(|(_, s)| *s as usize).max() else {
            return Ok(Vec::new());
        };
        // Slots are given from 0 up: the array is read only as far as the last one.
        let mut traffic = vec![Traffic::default(); last + 1];
        super::batch::per_cpu::<u32, DeviceStats>(fd("DEVICE_STATS")?, self.cpus, |i, shares| {
            let Some(t) = traffic.get_mut(*i as usize) else {
                return false;
            };
            for s in shares {
                t.packets_in += s.packets_in;
                t.bytes_in += s.bytes_in;
                t.packets_out += s.packets_out;
                t.bytes_out += s.bytes_out;
            }
            true
        })?;
        let mut out: Vec<(Device, Traffic)> = slots
            .iter()
            .filter_map(|(k, slot)| Some((Device::from_key(k)?, traffic[*slot as usize])))
            .collect();
        out.sort_by_key(|(d, _)| *d);
        Ok(out)
    }

    /// The flow table, summed over CPUs: read in batches of thousands of flows per system
    /// call (a key-by-key walk where the kernel has no batch reads).
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowCounters)>, Error> {
        use std::os::fd::{AsFd, AsRawFd};
        let name = "FLOWS";
        let Some(aya::maps::Map::PerCpuLruHashMap(data)) = self.ebpf.map(name) else {
            return Err(Error::NoMap(name));
        };
        let fd = data.fd().as_fd().as_raw_fd();
        let mut out = Vec::new();
        match super::batch::per_cpu::<FlowKey, FlowStats>(fd, self.cpus, |k, shares| {
            out.push((*k, sum(shares.iter())));
            true
        }) {
            Ok(()) => Ok(out),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && out.is_empty() => self.flows_walk(),
            Err(e) => Err(e.into()),
        }
    }

    /// The flow table read key by key (two system calls per flow): the fallback of
    /// [`Packets::flows`], and its comparison in `heir bench xdp`.
    pub fn flows_walk(&self) -> Result<Vec<(FlowKey, FlowCounters)>, Error> {
        let name = "FLOWS";
        let map = self.ebpf.map(name).ok_or(Error::NoMap(name))?;
        let table: PerCpuHashMap<&MapData, FlowKey, FlowStats> =
            PerCpuHashMap::try_from(map).map_err(|source| Error::Map { name, source })?;
        let mut out = Vec::new();
        for item in table.iter() {
            let (k, shares) = item.map_err(|source| Error::Map { name, source })?;
            out.push((k, sum(shares.iter())));
        }
        Ok(out)
    }

    /// Every source's scan counters for its current window (shares of other CPUs that are
    /// from an older window are left out).
    pub fn scans(&self) -> Result<Vec<(IpAddr, Scan)>, Error> {
        let name = "SCANS";
        let map = self.ebpf.map(name).ok_or(Error::NoMap(name))?;
        let table: PerCpuHashMap<&MapData, SourceKey, ScanState> =
            PerCpuHashMap::try_from(map).map_err(|source| Error::Map { name, source })?;
        let mut out = Vec::new();
        for item in table.iter() {
            let (k, shares) = item.map_err(|source| Error::Map { name, source })?;
            let Some(ip) = addr(k.family, &k.addr) else {
                continue;
            };
            let latest = shares.iter().map(|s| s.window_start_ns).max().unwrap_or(0);
            let mut scan = Scan::default();
            let mut ports = [0u64; SCAN_PORT_BITS / 64];
            let mut hosts = [0u64; SCAN_HOST_BITS / 64];
            for s in shares.iter().filter(|s| {
                s.window_start_ns > 0 && latest - s.window_start_ns <= self.scan_window_ns
            }) {
                scan.flows += s.flows;
                scan.syns += s.syns;
                scan.completed += s.completed;
                ports.iter_mut().zip(s.ports).for_each(|(a, b)| *a |= b);
                hosts.iter_mut().zip(s.hosts).for_each(|(a, b)| *a |= b);
            }
            scan.ports = distinct(ports.iter().map(|w| w.count_ones()).sum(), SCAN_PORT_BITS);
            scan.hosts = distinct(hosts.iter().map(|w| w.count_ones()).sum(), SCAN_HOST_BITS);
            out.push((ip, scan));
        }
        Ok(out)
    }

    /// One flow, summed over CPUs.
    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowCounters>, Error> {
        let name = "FLOWS";
        let map = self.ebpf.map(name).ok_or(Error::NoMap(name))?;
        let table: PerCpuHashMap<&MapData, FlowKey, FlowStats> =
            PerCpuHashMap::try_from(map).map_err(|source| Error::Map { name, source })?;
        match table.get(key, 0) {
            Ok(shares) => Ok(Some(sum(shares.iter()))),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(Error::Map { name, source }),
        }
    }

    /// Bytes of kernel memory the flow table is charged for (its `memlock` in fdinfo).
    pub fn flow_table_bytes(&self) -> Option<u64> {
        use std::os::fd::{AsFd, AsRawFd};
        let Some(aya::maps::Map::PerCpuLruHashMap(data)) = self.ebpf.map("FLOWS") else {
            return None;
        };
        let fd = data.fd().as_fd().as_raw_fd();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The packet ring buffer's reader. Can be taken once.
    pub fn reader(&mut self) -> Result<Reader, Error> {
        let map = self
            .ebpf
            .take_map("PACKETS")
            .ok_or(Error::NoMap("PACKETS"))?;
        Reader::new(map, self.poll)
    }
}

/// A device the kernel counts traffic for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    Ip(IpAddr),
    Mac([u8; 6]),
}

impl Device {
    fn from_key(k: &DeviceKey) -> Option<Device> {
        match k.kind {
            DEVICE_V4 => addr(FAMILY_V4, &k.addr).map(Device::Ip),
            DEVICE_V6 => addr(FAMILY_V6, &k.addr).map(Device::Ip),
            DEVICE_MAC => {
                let a = k.addr;
                Some(Device::Mac([a[0], a[1], a[2], a[3], a[4], a[5]]))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Ip(ip) => ip.fmt(f),
            Device::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// A device's traffic through the sensor: in is what was sent to it, out what it sent;
/// bytes are frame lengths. Dropped packets count too: they reached the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn program(ebpf: &mut Ebpf) -> Option<&mut Xdp> {
    ebpf.program_mut(PROGRAM)?.try_into().ok()
}

fn sum<'a>(shares: impl Iterator<Item = &'a FlowStats>) -> FlowCounters {
    let mut f = FlowCounters::default();
    for s in shares.filter(|s| s.packets > 0) {
        f.first_ns = if f.first_ns == 0 {
            s.first_ns
        } else {
            f.first_ns.min(s.first_ns)
        };
        f.last_ns = f.last_ns.max(s.last_ns);
        f.packets += s.packets;
        f.bytes += s.bytes;
        f.tcp_flags |= s.tcp_flags;
    }
    f
}

/// The interface's index, or `None` when there is no such interface.
pub fn ifindex(iface: &str) -> Option<u32> {
    let name = std::ffi::CString::new(iface).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_counting_is_close() {
        assert_eq!(distinct(0, 1024), 0.0);
        // 200 items hashed into 1024 bits leave about 1024 * e^(-200/1024) zeros.
        let set = 1024.0 - 1024.0 * (-200.0f64 / 1024.0).exp();
        let est = distinct(set.round() as u32, 1024);
        assert!((est - 200.0).abs() < 5.0, "{est}");
        assert!(distinct(1024, 1024) > 1024.0);
    }
}
