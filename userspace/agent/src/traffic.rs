//! Per-device traffic as the sysadmin sees it: the packet sensor's kernel counters (packets
//! and bytes in and out by IPv4 address, IPv6 address and MAC), read periodically by the
//! agent and served as Prometheus metrics.
//!
//! The kernel keeps the counters exact; reading them is a few batched system calls, so the
//! agent reads them on a timer rather than on every scrape, and a scrape never touches the
//! kernel.

use std::sync::Mutex;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;

use crate::sensor::xdp::{Device, Packets, Traffic};

/// How often the agent reads the counters: Prometheus' default scrape interval.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// The last read of the counters.
#[derive(Default)]
pub struct Snapshot(Mutex<Vec<(Device, Traffic)>>);

impl Snapshot {
    /// Reads the kernel's counters into the snapshot.
    pub fn refresh(&self, packets: &Packets) -> Result<(), crate::sensor::Error> {
        let devices = packets.devices()?;
        *self.0.lock().expect("traffic lock") = devices;
        Ok(())
    }

    pub fn set(&self, devices: Vec<(Device, Traffic)>) {
        *self.0.lock().expect("traffic lock") = devices;
    }

    pub fn get(&self) -> Vec<(Device, Traffic)> {
        self.0.lock().expect("traffic lock").clone()
    }

    /// Encodes the metrics; nothing when no packet sensor runs (or it saw nothing yet).
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let devices = self.0.lock().expect("traffic lock");
        if devices.is_empty() {
            return Ok(());
        }
        for (name, help, pick) in [
            (
                "heir_device_packets",
                "Packets through the gateway sensor by device (IPv4, IPv6 or MAC); in: sent to it, out: sent by it.",
                0,
            ),
            (
                "heir_device_bytes",
                "Frame bytes through the gateway sensor by device (IPv4, IPv6 or MAC); in: sent to it, out: sent by it.",
                1,
            ),
        ] {
            let samples = devices.iter().flat_map(|(d, t)| {
                let kind = match d {
                    Device::Ip(std::net::IpAddr::V4(_)) => "ipv4",
                    Device::Ip(std::net::IpAddr::V6(_)) => "ipv6",
                    Device::Mac(_) => "mac",
                };
                let (i, o) = if pick == 0 {
                    (t.packets_in, t.packets_out)
                } else {
                    (t.bytes_in, t.bytes_out)
                };
                let device = d.to_string();
                [("in", i), ("out", o)].map(|(dir, v)| {
                    (
                        [
                            ("device", device.clone()),
                            ("kind", kind.to_owned()),
                            ("direction", dir.to_owned()),
                        ],
                        ConstCounter::new(v),
                    )
                })
            });
            crate::metrics::family(encoder, name, help, samples)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Only(std::sync::Arc<Snapshot>);

    impl prometheus_client::collector::Collector for Only {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            self.0.encode(&mut encoder)
        }
    }

    fn render(s: &std::sync::Arc<Snapshot>) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Only(s.clone())));
        crate::metrics::render(&registry)
    }

    #[test]
    fn renders_every_device_both_ways() {
        let s = std::sync::Arc::new(Snapshot::default());
        let out = render(&s);
        assert!(out.is_empty(), "no sensor, no metrics: {out}");
        s.set(vec![
            (
                Device::Ip("10.0.0.5".parse().unwrap()),
                Traffic {
                    packets_in: 3,
                    bytes_in: 180,
                    packets_out: 4,
                    bytes_out: 260,
                },
            ),
            (
                Device::Ip("fd00::5".parse().unwrap()),
                Traffic {
                    packets_in: 1,
                    ..Traffic::default()
                },
            ),
            (
                Device::Mac([2, 0, 0, 0, 0, 0xab]),
                Traffic {
                    bytes_out: 7,
                    ..Traffic::default()
                },
            ),
        ]);
        let out = render(&s);
        for line in [
            "# TYPE heir_device_packets_total counter",
            "heir_device_packets_total{device=\"10.0.0.5\",kind=\"ipv4\",direction=\"in\"} 3",
            "heir_device_packets_total{device=\"10.0.0.5\",kind=\"ipv4\",direction=\"out\"} 4",
            "heir_device_bytes_total{device=\"10.0.0.5\",kind=\"ipv4\",direction=\"out\"} 260",
            "heir_device_packets_total{device=\"fd00::5\",kind=\"ipv6\",direction=\"in\"} 1",
            "heir_device_bytes_total{device=\"02:00:00:00:00:ab\",kind=\"mac\",direction=\"out\"} 7",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing `{line}` in:\n{out}"
            );
        }
        assert_eq!(out.lines().filter(|l| !l.starts_with('#')).count(), 12);
    }
}
