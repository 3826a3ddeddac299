//! Ethernet frames built from parts, for `BPF_PROG_TEST_RUN` tests and benchmarks of the
//! packet sensor. Lengths and header fields are consistent, so the XDP program parses them
//! as a NIC would hand them over; checksums are left zero (the program does not check them).

use std::net::IpAddr;

/// What goes above IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Icmp {
        ty: u8,
        code: u8,
    },
}

/// A frame to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// 802.1Q tag, if any.
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub l4: L4,
}

impl Frame {
    pub fn new(src: IpAddr, dst: IpAddr, l4: L4) -> Frame {
        Frame {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            vlan: None,
            src,
            dst,
            l4,
        }
    }

    pub fn tcp(
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Frame {
        Frame::new(
            src,
            dst,
            L4::Tcp {
                sport,
                dport,
                flags,
                payload: payload.to_vec(),
            },
        )
    }

    pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Frame {
        Frame::new(
            src,
            dst,
            L4::Udp {
                sport,
                dport,
                payload: payload.to_vec(),
            },
        )
    }

    pub fn bytes(&self) -> Vec<u8> {
        let (proto, l4) = match &self.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
                payload,
            } => {
                let mut t = Vec::with_capacity(20 + payload.len());
                t.extend_from_slice(&sport.to_be_bytes());
                t.extend_from_slice(&dport.to_be_bytes());
                t.extend_from_slice(&1u32.to_be_bytes()); // seq
                t.extend_from_slice(&0u32.to_be_bytes()); // ack
                t.push(5 << 4);
                t.push(*flags);
                t.extend_from_slice(&64240u16.to_be_bytes());
                t.extend_from_slice(&[0, 0, 0, 0]);
                t.extend_from_slice(payload);
                (6u8, t)
            }
            L4::Udp {
                sport,
                dport,
                payload,
            } => {
                let mut u = Vec::with_capacity(8 + payload.len());
                u.extend_from_slice(&sport.to_be_bytes());
                u.extend_from_slice(&dport.to_be_bytes());
                u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                u.extend_from_slice(&[0, 0]);
                u.extend_from_slice(payload);
                (17, u)
            }
            L4::Icmp { ty, code } => {
                let icmp6 = self.src.is_ipv6();
                (
                    if icmp6 { 58 } else { 1 },
                    vec![*ty, *code, 0, 0, 0, 1, 0, 1],
                )
            }
        };
        let mut f = Vec::with_capacity(64 + l4.len());
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(v) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
        }
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                f.push(0x45);
                f.push(0);
                f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 1, 0x40, 0]); // id, DF
                f.push(64);
                f.push(proto);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            (s, d) => {
                let to16 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a.octets(),
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                };
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.push(proto);
                f.push(64);
                f.extend_from_slice(&to16(s));
                f.extend_from_slice(&to16(d));
            }
        }
        f.extend_from_slice(&l4);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_consistent() {
        let f = Frame::tcp(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            40000,
            104,
            0x18,
            b"hello",
        )
        .bytes();
        assert_eq!(f.len(), 14 + 20 + 20 + 5);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, f.len() - 14);
        let mut v = Frame::udp(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            1,
            2,
            b"abc",
        );
        v.vlan = Some(7);
        let b = v.bytes();
        assert_eq!(b.len(), 18 + 40 + 8 + 3);
        assert_eq!(&b[12..14], &[0x81, 0x00]);
        assert_eq!(u16::from_be_bytes([b[22], b[23]]), 11);
    }
}
