//! Packet-sensor records → [`Event`]s.
//!
//! A record is read once. A flow's first packet becomes an [`EventKind::Flow`]; a server's
//! SYN-ACK an [`EventKind::Service`]; a dropped packet an [`EventKind::Dropped`]; a payload
//! sample goes through protocol recognition ([`crate::recognize`]) and the FTP login tracker
//! ([`crate::logins`]), and a sample neither understands yields nothing (its bytes go no
//! further). Nothing here trusts the bytes: the record kind must be known and the length must
//! match its layout exactly; arbitrary bytes give an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heir_abi::packet::{
    FAMILY_V4, FAMILY_V6, FlowRecord, PacketHeader, RECORD_DROP, RECORD_FLOW, RECORD_SAMPLE,
    SAMPLE_LEN, SampleRecord, TCP_ACK, TCP_SYN,
};
use heir_model::event::{Link, Observation, TcpFlags, Transport};
use heir_model::{BootClock, Event, EventKind, MacAddr, Process, Timestamp};

use crate::logins::{Login, Tracker};
use crate::recognize::recognize;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("packet record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown packet record kind {0}")]
    UnknownKind(u16),
    #[error("packet record has {got} bytes, expected {want}")]
    Length { got: usize, want: usize },
    #[error("packet record carries an unknown address family {0}")]
    UnknownFamily(u8),
}

/// Turns the packet sensor's records into events. It keeps the state that spans records:
/// the FTP logins in progress.
#[derive(Debug)]
pub struct Decoder {
    clock: BootClock,
    logins: Tracker,
}

impl Decoder {
    pub fn new(clock: BootClock) -> Self {
        Decoder {
            clock,
            logins: Tracker::default(),
        }
    }

    /// Decodes one record and appends what it says to `out` (nothing, for a sample nothing
    /// was recognised in).
    pub fn decode(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), Error> {
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
                got: bytes.len(),
                want,
            });
        }
        let k = &h.key;
        let (Some(src), Some(dst)) = (addr(k.family, &k.src), addr(k.family, &k.dst)) else {
            return Err(Error::UnknownFamily(k.family));
        };
        let (src_port, dst_port) = (k.sport, k.dport);
        let transport = Transport::from_ip_proto(k.proto);
        let ts = self.clock.wall(h.ts_boot_ns);
        let link = Some(Link {
            ifindex: h.ifindex,
            src_mac: MacAddr(h.src_mac),
            dst_mac: MacAddr(h.dst_mac),
            vlan: (h.vlan != 0).then_some(h.vlan),
        });
        let flags = h.tcp_flags;
        let tcp = transport == Transport::Tcp;
        let kind = match h.record {
            RECORD_DROP => EventKind::Dropped {
                src,
                src_port,
                dst,
                dst_port,
                transport,
                tcp_flags: TcpFlags(flags),
                bytes: h.wire_len,
                link,
            },
            RECORD_FLOW if tcp && flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK => {
                EventKind::Service {
                    src,
                    src_port,
                    dst,
                    dst_port,
                    transport,
                    link,
                }
            }
            // The kernel reports a flow's first packet, not a running summary: one packet
            // and its bytes out, its TCP flags, and a SYN nobody has answered yet. That is
            // what the scan and flood detectors count, one flow at a time; the flow sweeper
            // ([`crate::flows`]) reports both directions later with their totals.
            RECORD_FLOW => EventKind::Flow {
                src,
                src_port,
                dst,
                dst_port,
                transport,
                packets_out: 1,
                bytes_out: u64::from(h.wire_len),
                packets_in: 0,
                bytes_in: 0,
                flags_out: TcpFlags(flags),
                flags_in: TcpFlags(0),
                syn_unanswered: u32::from(tcp && flags & (TCP_SYN | TCP_ACK) == TCP_SYN),
                established: false,
                icmp_unreachable: false,
                first_seen: ts,
                last_seen: ts,
                link,
            },
            _ => {
                let len: u32 = read(&bytes[std::mem::offset_of!(SampleRecord, len)..]);
                let at = std::mem::offset_of!(SampleRecord, data);
                let payload = &bytes[at..at + (len as usize).min(SAMPLE_LEN)];
                let protocol = |observation| packet(ts, src, src_port, dst, dst_port, observation);
                if let Some(o) = recognize(transport, src_port, dst_port, payload) {
                    out.push(protocol(o));
                }
                if let Some(l) = self.logins.sample(src, src_port, dst, dst_port, payload) {
                    out.push(protocol(login(l)));
                }
                return Ok(());
            }
        };
        out.push(Event {
            ts,
            process: Process::default(),
            kind,
        });
        Ok(())
    }

    /// FTP connections whose login is being followed.
    pub fn logins_tracked(&self) -> usize {
        self.logins.len()
    }
}

/// An FTP login attempt or refusal as the detectors read it. Cleartext exposure is reported
/// by the recogniser's event for the same sample, so it is not repeated here.
fn login(l: Login) -> Observation {
    Observation::Ftp {
        user: l.user,
        cleartext_credentials: false,
        outcome: l.outcome,
    }
}

/// Packets have no process: `process` is empty.
fn packet(
    ts: Timestamp,
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    observation: Observation,
) -> Event {
    Event {
        ts,
        process: Process::default(),
        kind: EventKind::Protocol {
            src,
            src_port,
            dst,
            dst_port,
            observation,
        },
    }
}

/// The address in a flow key's 16 bytes: the first 4 for IPv4.
pub fn addr(family: u8, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        FAMILY_V4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        FAMILY_V6 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
        _ => None,
    }
}

/// Reads a `T` from the start of `bytes`; the caller has checked the length.
fn read<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: length checked above; T is a plain #[repr(C)] record valid for any bit pattern;
    // read_unaligned copes with any alignment of the source.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

/// The bytes of a record as the kernel writes them, for tests and benchmarks.
pub fn as_bytes<T: Copy>(t: &T) -> Vec<u8> {
    // SAFETY: `T` is one of the plain #[repr(C)] records of `heir_abi::packet`, with explicit
    // padding, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((t as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_abi::packet::{FlowKey, PROTO_TCP};
    use proptest::prelude::*;

    fn header(record: u16, flags: u8) -> PacketHeader {
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
            tcp_flags: flags,
            wire_len: 74,
            ..PacketHeader::default()
        }
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        Decoder::new(BootClock::with_offset(0)).decode(bytes, &mut out)?;
        Ok(out)
    }

    fn flow(record: u16, flags: u8) -> Vec<u8> {
        as_bytes(&FlowRecord {
            header: header(record, flags),
        })
    }

    #[test]
    fn flows_answers_and_drops() {
        let e = decode(&flow(RECORD_DROP, TCP_SYN)).unwrap();
        let [
            Event {
                kind:
                    EventKind::Dropped {
                        src,
                        src_port,
                        dst_port,
                        bytes,
                        link: Some(link),
                        ..
                    },
                ..
            },
        ] = &e[..]
        else {
            panic!("{e:?}")
        };
        assert_eq!(*src, "10.0.0.7".parse::<IpAddr>().unwrap());
        assert_eq!((*src_port, *dst_port, *bytes), (40000, 2575, 74));
        assert_eq!(link.vlan, Some(12));
        assert_eq!(link.src_mac.to_string(), "02:00:00:00:00:07");

        let e = decode(&flow(RECORD_FLOW, TCP_SYN)).unwrap();
        assert!(
            matches!(
                &e[..],
                [Event {
                    kind: EventKind::Flow {
                        syn_unanswered: 1,
                        packets_out: 1,
                        bytes_out: 74,
                        link: Some(_),
                        ..
                    },
                    ..
                }]
            ),
            "{e:?}"
        );
        // A SYN-ACK answers a flow, it is not one.
        let e = decode(&flow(RECORD_FLOW, TCP_SYN | TCP_ACK)).unwrap();
        assert!(
            matches!(
                &e[..],
                [Event {
                    kind: EventKind::Service {
                        src_port: 40000,
                        ..
                    },
                    ..
                }]
            ),
            "{e:?}"
        );
    }

    fn sample(payload: &[u8], dport: u16) -> SampleRecord {
        let mut rec = SampleRecord {
            header: header(RECORD_SAMPLE, 0x18),
            payload_len: 500,
            len: payload.len() as u32,
            data: [0; SAMPLE_LEN],
        };
        rec.data[..payload.len()].copy_from_slice(payload);
        rec.header.key.dport = dport;
        rec
    }

    #[test]
    fn samples_are_recognised_or_dropped() {
        let msg = b"\x0bMSH|^~\\&|LAB|H|EHR|H";
        let e = decode(&as_bytes(&sample(msg, 2575))).unwrap();
        let [
            Event {
                kind:
                    EventKind::Protocol {
                        dst_port: 2575,
                        observation,
                        ..
                    },
                ..
            },
        ] = &e[..]
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            *observation,
            Observation::Hl7Mllp {
                sending_application: "LAB".into(),
                receiving_application: "EHR".into()
            }
        );
        // A length past the buffer is cut to the buffer.
        let mut rec = sample(msg, 2575);
        rec.len = 9999;
        assert_eq!(decode(&as_bytes(&rec)).unwrap().len(), 1);
        let mut rec = sample(msg, 5555);
        rec.data = [0x42; SAMPLE_LEN];
        assert_eq!(decode(&as_bytes(&rec)).unwrap(), vec![]);
    }

    #[test]
    fn ftp_samples_are_read_once_for_both_protocol_and_login() {
        let mut d = Decoder::new(BootClock::with_offset(0));
        let mut out = Vec::new();
        for p in [&b"USER admin\r\n"[..], b"PASS", b"USER admin\r\n"] {
            d.decode(&as_bytes(&sample(p, 21)), &mut out).unwrap();
        }
        let ftp: Vec<_> = out
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Protocol {
                    observation:
                        Observation::Ftp {
                            user,
                            cleartext_credentials,
                            outcome,
                        },
                    ..
                } => Some((user.as_deref(), *cleartext_credentials, *outcome)),
                _ => None,
            })
            .collect();
        use heir_model::event::LoginOutcome::Failure;
        assert_eq!(
            ftp,
            vec![
                (None, false, None),
                (None, true, None),
                (Some("admin"), false, None),
                (None, false, None),
                (Some("admin"), false, Some(Failure)),
            ]
        );
        assert_eq!(d.logins_tracked(), 1);
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(decode(&[0; 8]), Err(Error::Short(8)));
        assert_eq!(decode(&flow(99, 0)), Err(Error::UnknownKind(99)));
        assert!(matches!(
            decode(&flow(RECORD_SAMPLE, 0)),
            Err(Error::Length { .. })
        ));
        let mut rec = FlowRecord {
            header: header(RECORD_FLOW, 0),
        };
        rec.header.key.family = 9;
        assert_eq!(decode(&as_bytes(&rec)), Err(Error::UnknownFamily(9)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&b);
        }

        #[test]
        fn arbitrary_samples_never_panic(
            p in proptest::collection::vec(any::<u8>(), 0..SAMPLE_LEN),
            dport in any::<u16>(),
            len in any::<u32>(),
        ) {
            let mut rec = sample(&p, dport);
            rec.len = len;
            let _ = decode(&as_bytes(&rec));
        }
    }
}
