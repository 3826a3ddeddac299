//! Packet-sensor records → [`PacketEvent`]s: flow starts and drops as they are, payload
//! samples through protocol recognition (a sample nothing recognises yields no event, and
//! its bytes go no further).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heir_abi::packet::{
    FAMILY_V4, FAMILY_V6, FlowKey, FlowRecord, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
    PacketHeader, RECORD_DROP, RECORD_FLOW, RECORD_SAMPLE, SAMPLE_LEN, SampleRecord,
};
use heir_model::packet::{FlowEvent, FlowId, PacketEvent, ProtocolEvent, Seen, Transport};

use super::{BootClock, Error, read};
use crate::recognize::recognize;

/// Decodes one packet record; `Ok(None)` for a sample no protocol was recognised in.
pub fn decode(bytes: &[u8], clock: &BootClock) -> Result<Option<PacketEvent>, Error> {
    if bytes.len() < size_of::<PacketHeader>() {
        return Err(Error::Short(bytes.len()));
    }
    let h: PacketHeader = read(bytes);
    let want = match h.record {
        RECORD_FLOW | RECORD_DROP => size_of::<FlowRecord>(),
        RECORD_SAMPLE => size_of::<SampleRecord>(),
        other => return Err(Error::UnknownKind(other)),
    };
    if bytes.len() != want {
        return Err(Error::Length {
            kind: "packet",
            got: bytes.len(),
            want,
        });
    }
    let flow = flow_id(&h.key).ok_or(Error::UnknownOp {
        kind: "packet",
        code: u64::from(h.key.family),
    })?;
    let seen = Seen {
        ts: clock.wall(h.ts_boot_ns),
        ifindex: h.ifindex,
        src_mac: mac(h.src_mac),
        dst_mac: mac(h.dst_mac),
        vlan: (h.vlan != 0).then_some(h.vlan),
    };
    if h.record != RECORD_SAMPLE {
        return Ok(Some(PacketEvent::Flow(FlowEvent {
            seen,
            flow,
            tcp_flags: h.tcp_flags,
            bytes: h.wire_len,
            dropped: h.record == RECORD_DROP,
        })));
    }
    let s: SampleRecord = read(bytes);
    let data = &s.data[..(s.len as usize).min(SAMPLE_LEN)];
    Ok(
        recognize(flow.transport, flow.sport, flow.dport, data).map(|(protocol, risks)| {
            PacketEvent::Protocol(ProtocolEvent {
                seen,
                flow,
                protocol,
                risks,
            })
        }),
    )
}

/// A payload sample as the kernel sent it, before recognition.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub flow: FlowId,
    pub ts_boot_ns: u64,
    pub payload: &'a [u8],
}

/// The flow and payload of a sample record; `None` for other (or malformed) records.
pub fn sample(bytes: &[u8]) -> Option<Sample<'_>> {
    if bytes.len() != size_of::<SampleRecord>() {
        return None;
    }
    let h: PacketHeader = read(bytes);
    if h.record != RECORD_SAMPLE {
        return None;
    }
    let len: u32 = read(&bytes[std::mem::offset_of!(SampleRecord, len)..]);
    let data = std::mem::offset_of!(SampleRecord, data);
    Some(Sample {
        flow: flow_id(&h.key)?,
        ts_boot_ns: h.ts_boot_ns,
        payload: &bytes[data..data + (len as usize).min(SAMPLE_LEN)],
    })
}

fn flow_id(k: &FlowKey) -> Option<FlowId> {
    let (src, dst) = match k.family {
        FAMILY_V4 => (
            IpAddr::V4(Ipv4Addr::new(k.src[0], k.src[1], k.src[2], k.src[3])),
            IpAddr::V4(Ipv4Addr::new(k.dst[0], k.dst[1], k.dst[2], k.dst[3])),
        ),
        FAMILY_V6 => (
            IpAddr::V6(Ipv6Addr::from(k.src)),
            IpAddr::V6(Ipv6Addr::from(k.dst)),
        ),
        _ => return None,
    };
    Some(FlowId {
        src,
        dst,
        sport: k.sport,
        dport: k.dport,
        transport: match k.proto {
            PROTO_TCP => Transport::Tcp,
            PROTO_UDP => Transport::Udp,
            PROTO_ICMP | PROTO_ICMPV6 => Transport::Icmp,
            other => Transport::Other(other),
        },
    })
}

fn mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::packet::{Protocol, Risk};

    fn as_bytes<T>(t: &T) -> Vec<u8> {
        // SAFETY: plain #[repr(C)] records with explicit padding.
        unsafe { std::slice::from_raw_parts((t as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn header(record: u16) -> PacketHeader {
        let mut key = FlowKey {
            sport: 40000,
            dport: 2575,
            proto: PROTO_TCP,
            family: FAMILY_V4,
            ..FlowKey::default()
        };
        key.src[..4].copy_from_slice(&[10, 0, 0, 7]);
        key.dst[..4].copy_from_slice(&[10, 0, 0, 9]);
        PacketHeader {
            record,
            ifindex: 3,
            ts_boot_ns: 1_000,
            key,
            src_mac: [2, 0, 0, 0, 0, 7],
            vlan: 12,
            tcp_flags: 0x02,
            wire_len: 74,
            ..PacketHeader::default()
        }
    }

    #[test]
    fn flows_and_drops() {
        let clock = BootClock::with_offset(0);
        let rec = FlowRecord {
            header: header(RECORD_DROP),
        };
        let Some(PacketEvent::Flow(f)) = decode(&as_bytes(&rec), &clock).unwrap() else {
            panic!()
        };
        assert!(f.dropped);
        assert_eq!(f.flow.src, "10.0.0.7".parse::<IpAddr>().unwrap());
        assert_eq!((f.flow.sport, f.flow.dport), (40000, 2575));
        assert_eq!(f.seen.vlan, Some(12));
        assert_eq!(f.seen.src_mac, "02:00:00:00:00:07");
        assert_eq!(f.bytes, 74);
    }

    #[test]
    fn samples_are_recognised_or_dropped() {
        let clock = BootClock::with_offset(0);
        let mut rec = SampleRecord {
            header: header(RECORD_SAMPLE),
            payload_len: 0,
            len: 0,
            data: [0; SAMPLE_LEN],
        };
        let msg = b"\x0bMSH|^~\\&|LAB|H|EHR|H";
        rec.data[..msg.len()].copy_from_slice(msg);
        rec.len = msg.len() as u32;
        rec.payload_len = 500;
        let Some(PacketEvent::Protocol(p)) = decode(&as_bytes(&rec), &clock).unwrap() else {
            panic!()
        };
        assert_eq!(
            p.protocol,
            Protocol::Hl7 {
                sending_app: "LAB".into(),
                receiving_app: "EHR".into()
            }
        );
        assert_eq!(p.risks, vec![Risk::CleartextMedical]);
        let raw = as_bytes(&rec);
        let s = sample(&raw).expect("a sample record");
        assert_eq!(
            (s.payload, s.ts_boot_ns, s.flow.dport),
            (&msg[..], 1_000, 2575)
        );
        rec.len = 9999;
        assert_eq!(sample(&as_bytes(&rec)).unwrap().payload.len(), SAMPLE_LEN);
        assert!(
            sample(&as_bytes(&FlowRecord {
                header: header(RECORD_FLOW)
            }))
            .is_none()
        );
        assert!(sample(&raw[..40]).is_none());
        rec.len = msg.len() as u32;
        rec.header.key.dport = 5555;
        rec.data = [0x42; SAMPLE_LEN];
        assert_eq!(decode(&as_bytes(&rec), &clock).unwrap(), None);
    }

    #[test]
    fn bad_records_are_errors() {
        let clock = BootClock::with_offset(0);
        assert!(matches!(decode(&[0; 8], &clock), Err(Error::Short(8))));
        let rec = FlowRecord { header: header(99) };
        assert!(matches!(
            decode(&as_bytes(&rec), &clock),
            Err(Error::UnknownKind(99))
        ));
        let rec = FlowRecord {
            header: header(RECORD_SAMPLE),
        };
        assert!(matches!(
            decode(&as_bytes(&rec), &clock),
            Err(Error::Length { .. })
        ));
        let mut rec = FlowRecord {
            header: header(RECORD_FLOW),
        };
        rec.header.key.family = 9;
        assert!(decode(&as_bytes(&rec), &clock).is_err());
    }
}
