//! The device inventory: devices discovered passively, merged with the operator's registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use heir_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fact::{DeviceFact, Fact, Protocol, Service, TlsVersion, Transport};
use crate::oui;
use crate::registry::{Class, Criticality, Entry, Registry};
use heir_model::mac::MacAddr;

/// A device id: the registry key for registered devices, `mac:…` or `ip:…` for discovered ones.
pub type DeviceId = String;

/// A service with the last time it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub service: Service,
    pub last_seen: Timestamp,
}

/// Everything heir knows about one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub ip: Option<IpAddr>,
    pub mac: Option<MacAddr>,
    /// From the registry when stated, else from the MAC OUI.
    pub manufacturer: Option<String>,
    /// Keyed by (port, transport); serialised as a list.
    #[serde(with = "service_list")]
    pub services: BTreeMap<(u16, Transport), ServiceRecord>,
    /// Negotiated TLS version per port (the oldest seen: an attacker can force it).
    pub tls: BTreeMap<u16, TlsVersion>,
    /// Ports where a vendor default password was accepted.
    pub default_credentials: BTreeMap<u16, Protocol>,
    pub ae_titles: BTreeSet<String>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// The operator's entry, when the device is registered.
    pub registered: Option<Entry>,
}

impl Device {
    fn new(id: DeviceId) -> Self {
        Self {
            id,
            ip: None,
            mac: None,
            manufacturer: None,
            services: BTreeMap::new(),
            tls: BTreeMap::new(),
            default_credentials: BTreeMap::new(),
            ae_titles: BTreeSet::new(),
            first_seen: None,
            last_seen: None,
            registered: None,
        }
    }

    pub fn name(&self) -> &str {
        self.registered.as_ref().map_or(&self.id, |e| &e.name)
    }

    pub fn class(&self) -> Class {
        self.registered.as_ref().map_or(Class::Other, |e| e.class)
    }

    /// Unregistered devices count as `moderate`: heir cannot know they are harmless.
    pub fn criticality(&self) -> Criticality {
        self.registered
            .as_ref()
            .map_or(Criticality::Moderate, Entry::criticality)
    }

    pub fn model(&self) -> Option<&str> {
        self.registered.as_ref()?.model.as_deref()
    }

    pub fn firmware(&self) -> Option<&str> {
        self.registered.as_ref()?.firmware.as_deref()
    }

    pub fn is_protected(&self) -> bool {
        self.registered.as_ref().is_some_and(|e| e.protected)
    }

    pub fn is_segmented(&self) -> bool {
        self.registered.as_ref().is_some_and(|e| e.segmented)
    }

    pub fn is_mitigated(&self, vuln: &str) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|e| e.mitigated.iter().any(|m| m.eq_ignore_ascii_case(vuln)))
    }
}

mod service_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<(u16, Transport), ServiceRecord>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(u16, Transport), ServiceRecord>, D::Error> {
        let v = Vec::<ServiceRecord>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|r| ((r.service.port, r.service.transport), r))
            .collect())
    }
}

/// What an observation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub device: DeviceId,
    /// The device was not known before.
    pub new: bool,
    /// Services, TLS or credential findings changed, so its exposure must be rescored.
    pub exposure_changed: bool,
}

/// All devices, indexed by address.
#[derive(Debug, Clone)]
pub struct Inventory {
    devices: HashMap<DeviceId, Device>,
    by_ip: HashMap<IpAddr, DeviceId>,
    by_mac: HashMap<MacAddr, DeviceId>,
    oui: oui::Table,
}

impl Inventory {
    pub fn new(oui: oui::Table) -> Self {
        Self {
            devices: HashMap::new(),
            by_ip: HashMap::new(),
            by_mac: HashMap::new(),
            oui,
        }
    }

    /// An inventory holding `devices` as previously stored (see [`crate::engine::Snapshot`]).
    pub fn restore(oui: oui::Table, devices: Vec<Device>) -> Self {
        let mut inv = Self::new(oui);
        for d in devices {
            if let Some(ip) = d.ip {
                inv.by_ip.insert(ip, d.id.clone());
            }
            if let Some(mac) = d.mac {
                inv.by_mac.insert(mac, d.id.clone());
            }
            inv.devices.insert(d.id.clone(), d);
        }
        inv
    }

    pub fn oui_source(&self) -> &oui::Source {
        self.oui.source()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Devices sorted by id, for stable listings.
    pub fn sorted(&self) -> Vec<&Device> {
        let mut v: Vec<_> = self.devices.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Device> {
        self.by_ip.get(&ip).and_then(|id| self.devices.get(id))
    }

    pub fn by_mac(&self, mac: MacAddr) -> Option<&Device> {
        self.by_mac.get(&mac).and_then(|id| self.devices.get(id))
    }

    /// Folds one sensor observation into the device it is about, creating the device if new.
    pub fn observe(&mut self, o: &DeviceFact) -> Outcome {
        let found = o
            .mac
            .and_then(|m| self.by_mac.get(&m))
            .or_else(|| self.by_ip.get(&o.ip))
            .cloned();
        let new = found.is_none();
        let id = found.unwrap_or_else(|| match o.mac {
            Some(m) => format!("mac:{m}"),
            None => format!("ip:{}", o.ip),
        });
        let dev = self
            .devices
            .entry(id.clone())
            .or_insert_with(|| Device::new(id.clone()));
        Self::bind(
            &mut self.by_ip,
            &mut self.by_mac,
            &self.oui,
            dev,
            Some(o.ip),
            o.mac,
        );
        dev.first_seen = Some(dev.first_seen.map_or(o.ts, |f| f.min(o.ts)));
        dev.last_seen = Some(dev.last_seen.map_or(o.ts, |l| l.max(o.ts)));
        let exposure_changed = match &o.seen {
            Fact::Presence => false,
            Fact::Service(s) => {
                let key = (s.port, s.transport);
                let changed = dev.services.get(&key).is_none_or(|r| r.service != *s);
                let last = dev
                    .services
                    .get(&key)
                    .map_or(o.ts, |r| r.last_seen.max(o.ts));
                dev.services.insert(
                    key,
                    ServiceRecord {
                        service: *s,
                        last_seen: last,
                    },
                );
                changed
            }
            Fact::ServiceClosed { port, transport } => {
                let gone = dev.services.remove(&(*port, *transport)).is_some();
                let tls = *transport == Transport::Tcp
                    && !dev.services.contains_key(&(*port, Transport::Tcp))
                    && dev.tls.remove(port).is_some();
                let creds = dev.default_credentials.remove(port).is_some();
                gone || tls || creds
            }
            Fact::DicomAeTitle { title } => {
                dev.ae_titles.insert(title.clone());
                false
            }
            Fact::Tls { port, version } => {
                let old = dev.tls.get(port).copied();
                let v = old.map_or(*version, |o| o.min(*version));
                dev.tls.insert(*port, v);
                old != Some(v)
            }
            Fact::DefaultCredentials { port, protocol } => {
                dev.default_credentials.insert(*port, *protocol) != Some(*protocol)
            }
        };
        Outcome {
            device: id,
            new,
            exposure_changed,
        }
    }

    /// An operator fixed a finding (changed the default password, disabled a service): forget it.
    pub fn clear_default_credentials(&mut self, id: &str, port: u16) -> bool {
        self.devices
            .get_mut(id)
            .is_some_and(|d| d.default_credentials.remove(&port).is_some())
    }

    /// Forgets services not seen since `cutoff`; returns the devices whose exposure changed.
    pub fn expire_services(&mut self, cutoff: Timestamp) -> Vec<DeviceId> {
        let mut changed = Vec::new();
        for d in self.devices.values_mut() {
            let before = d.services.len();
            d.services.retain(|_, r| r.last_seen >= cutoff);
            if d.services.len() != before {
                changed.push(d.id.clone());
            }
        }
        changed
    }

    /// Applies (or re-applies) the operator registry. Discovered devices matching an entry by
    /// MAC or IP take the entry's id and keep what sensors saw; devices dropped from the
    /// registry stay, unregistered. Returns `(old id, new id)` for every device renamed.
    pub fn apply_registry(&mut self, reg: &Registry) -> Vec<(DeviceId, DeviceId)> {
        let mut renamed = Vec::new();
        for d in self.devices.values_mut() {
            if d.registered.take().is_some() && d.mac.is_some() {
                d.manufacturer = d
                    .mac
                    .and_then(|m| self.oui.manufacturer(m))
                    .map(str::to_owned);
            }
        }
        for (id, entry) in &reg.devices {
            let existing = entry
                .mac
                .and_then(|m| self.by_mac.get(&m))
                .or_else(|| entry.ip.and_then(|ip| self.by_ip.get(&ip)))
                .cloned();
            let mut dev = match existing {
                Some(old) if old != *id => {
                    let mut d = self.devices.remove(&old).expect("index points at a device");
                    renamed.push((old, id.clone()));
                    d.id = id.clone();
                    d
                }
                Some(_) => self.devices.remove(id).expect("index points at a device"),
                None => self
                    .devices
                    .remove(id)
                    .unwrap_or_else(|| Device::new(id.clone())),
            };
            // Merge, keeping the registry's addresses authoritative.
            self.by_ip.retain(|_, v| v != id);
            self.by_mac.retain(|_, v| v != id);
            if let Some(ip) = entry.ip {
                dev.ip = Some(ip);
            }
            if let Some(mac) = entry.mac {
                dev.mac = Some(mac);
            }
            if let Some(ip) = dev.ip {
                self.by_ip.insert(ip, id.clone());
            }
            if let Some(mac) = dev.mac {
                self.by_mac.insert(mac, id.clone());
            }
            dev.manufacturer = entry.manufacturer.clone().or_else(|| {
                dev.mac
                    .and_then(|m| self.oui.manufacturer(m))
                    .map(str::to_owned)
            });
            dev.registered = Some(entry.clone());
            self.devices.insert(id.clone(), dev);
        }
        // Indices of renamed devices may still point at old ids.
        let devices = &self.devices;
        self.by_ip.retain(|_, v| devices.contains_key(v));
        self.by_mac.retain(|_, v| devices.contains_key(v));
        renamed
    }

    fn bind(
        by_ip: &mut HashMap<IpAddr, DeviceId>,
        by_mac: &mut HashMap<MacAddr, DeviceId>,
        oui: &oui::Table,
        dev: &mut Device,
        ip: Option<IpAddr>,
        mac: Option<MacAddr>,
    ) {
        if let Some(ip) = ip
            && dev.ip != Some(ip)
        {
            if let Some(old) = dev.ip
                && by_ip.get(&old) == Some(&dev.id)
            {
                by_ip.remove(&old);
            }
            dev.ip = Some(ip);
            by_ip.insert(ip, dev.id.clone());
        }
        if let Some(mac) = mac
            && dev.mac.is_none()
        {
            dev.mac = Some(mac);
            by_mac.insert(mac, dev.id.clone());
            let registered_name = dev.registered.as_ref().and_then(|e| e.manufacturer.clone());
            dev.manufacturer = registered_name.or_else(|| oui.manufacturer(mac).map(str::to_owned));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn obs(ip: &str, mac: Option<&str>, seen: Fact, t: u64) -> DeviceFact {
        DeviceFact {
            ts: Timestamp::from_secs(t),
            ip: ip.parse().unwrap(),
            mac: mac.map(|m| m.parse().unwrap()),
            seen,
        }
    }

    #[test]
    fn discovers_merges_with_registry_and_follows_dhcp_moves() {
        let mut inv = Inventory::new(oui::Table::curated());
        let telnet = Fact::Service(Service::new(23, Transport::Tcp, Protocol::Telnet));
        let o = inv.observe(&obs(
            "10.0.0.5",
            Some("58:46:e1:00:00:05"),
            telnet.clone(),
            10,
        ));
        assert!(o.new && o.exposure_changed);
        assert_eq!(o.device, "mac:58:46:e1:00:00:05");
        let again = inv.observe(&obs("10.0.0.5", None, telnet, 20));
        assert!(!again.new && !again.exposure_changed);
        let d = inv.get(&o.device).unwrap();
        assert_eq!(d.manufacturer.as_deref(), Some("Baxter International Inc"));
        assert_eq!(
            d.services[&(23, Transport::Tcp)].last_seen,
            Timestamp::from_secs(20)
        );
        assert_eq!(
            (d.first_seen, d.last_seen),
            (
                Some(Timestamp::from_secs(10)),
                Some(Timestamp::from_secs(20))
            )
        );

        let reg = Registry::parse(
            "[device.pump-1]\nname = \"Pump 1\"\nclass = \"infusion_pump\"\nmac = \"58:46:e1:00:00:05\"\n",
            Path::new("devices.toml"),
        )
        .unwrap();
        let renamed = inv.apply_registry(&reg);
        assert_eq!(
            renamed,
            vec![("mac:58:46:e1:00:00:05".to_owned(), "pump-1".to_owned())]
        );
        let d = inv.get("pump-1").unwrap();
        assert_eq!(d.criticality(), Criticality::LifeSustaining);
        assert_eq!(d.services.len(), 1, "sensor findings survive the merge");
        assert!(inv.get("mac:58:46:e1:00:00:05").is_none());

        // DHCP gives the pump a new address: still the same device.
        let o = inv.observe(&obs(
            "10.0.0.9",
            Some("58:46:e1:00:00:05"),
            Fact::Presence,
            30,
        ));
        assert_eq!(o.device, "pump-1");
        assert_eq!(inv.by_ip("10.0.0.9".parse().unwrap()).unwrap().id, "pump-1");
        assert!(inv.by_ip("10.0.0.5".parse().unwrap()).is_none());
        assert_eq!(inv.len(), 1);
    }

    #[test]
    fn tls_keeps_the_oldest_version_and_closing_a_port_clears_its_findings() {
        let mut inv = Inventory::new(oui::Table::curated());
        let https = Fact::Service(Service::new(443, Transport::Tcp, Protocol::Https));
        inv.observe(&obs("10.0.0.7", None, https, 1));
        let o = inv.observe(&obs(
            "10.0.0.7",
            None,
            Fact::Tls {
                port: 443,
                version: TlsVersion::Tls10,
            },
            2,
        ));
        assert!(o.exposure_changed);
        let o = inv.observe(&obs(
            "10.0.0.7",
            None,
            Fact::Tls {
                port: 443,
                version: TlsVersion::Tls13,
            },
            3,
        ));
        assert!(!o.exposure_changed);
        assert_eq!(inv.get("ip:10.0.0.7").unwrap().tls[&443], TlsVersion::Tls10);
        let o = inv.observe(&obs(
            "10.0.0.7",
            None,
            Fact::ServiceClosed {
                port: 443,
                transport: Transport::Tcp,
            },
            4,
        ));
        assert!(o.exposure_changed);
        let d = inv.get("ip:10.0.0.7").unwrap();
        assert!(d.services.is_empty() && d.tls.is_empty());
    }

    #[test]
    fn stale_services_expire() {
        let mut inv = Inventory::new(oui::Table::curated());
        let ftp = Fact::Service(Service::new(21, Transport::Tcp, Protocol::Ftp));
        inv.observe(&obs("10.0.0.8", None, ftp, 100));
        assert!(inv.expire_services(Timestamp::from_secs(50)).is_empty());
        assert_eq!(
            inv.expire_services(Timestamp::from_secs(101)),
            vec!["ip:10.0.0.8".to_owned()]
        );
        assert!(inv.get("ip:10.0.0.8").unwrap().services.is_empty());
    }
}
