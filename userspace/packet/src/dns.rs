//! DNS messages (RFC 1035), as far as known-indicator matching needs them: the name asked
//! for and the addresses an answer gave. A sample may end anywhere; what was read is used,
//! and a message that is not DNS at all (a wrong count, a label past the end) is nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heir_model::event::Observation;

/// Compression pointers followed per name: RFC 1035 names have at most 127 labels, and a
/// loop of pointers must end.
const MAX_JUMPS: usize = 16;
/// Answers read from one response.
const MAX_ANSWERS: usize = 16;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A query or response carrying at least one question.
pub fn message(m: &[u8]) -> Option<Observation> {
    if m.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([m[2], m[3]]);
    let opcode = (flags >> 11) & 0xf;
    let qdcount = u16::from_be_bytes([m[4], m[5]]);
    let ancount = u16::from_be_bytes([m[6], m[7]]);
    // Standard queries with the one question every resolver sends.
    if opcode != 0 || qdcount != 1 {
        return None;
    }
    let response = flags & 0x8000 != 0;
    let (query, mut at) = name(m, 12)?;
    if query.is_empty() {
        return None;
    }
    at = at.checked_add(4)?; // QTYPE, QCLASS
    if at > m.len() {
        return None;
    }
    let mut answers = Vec::new();
    if response {
        for _ in 0..ancount.min(MAX_ANSWERS as u16) {
            let Some((_, after)) = name(m, at) else { break };
            let Some(rr) = m.get(after..after + 10) else {
                break;
            };
            let rtype = u16::from_be_bytes([rr[0], rr[1]]);
            let class = u16::from_be_bytes([rr[2], rr[3]]);
            let len = u16::from_be_bytes([rr[8], rr[9]]) as usize;
            let data_at = after + 10;
            let Some(data) = m.get(data_at..data_at + len) else {
                break;
            };
            match (rtype, class, len) {
                (TYPE_A, CLASS_IN, 4) => answers.push(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                ))),
                (TYPE_AAAA, CLASS_IN, 16) => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(data);
                    answers.push(IpAddr::V6(Ipv6Addr::from(b)));
                }
                _ => {}
            }
            at = data_at + len;
        }
    }
    Some(Observation::Dns {
        query,
        response,
        answers,
    })
}

/// The name at `at`, lowercased and dotted, and where the data after it begins.
fn name(m: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *m.get(at)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Some((out, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = m.get(at + 1..at + 1 + len)?;
                if !label
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
                {
                    return None;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.extend(label.iter().map(|&c| c.to_ascii_lowercase() as char));
                if out.len() > 253 {
                    return None;
                }
                at += 1 + len;
            }
            0xc0 => {
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return None;
                }
                let target = ((len & 0x3f) << 8) | *m.get(at + 1)? as usize;
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` as dig builds it (id, RD, one question, type A).
    pub(crate) fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn a_query_names_what_it_asks_for() {
        assert_eq!(
            message(&query("C2.Example.TEST")),
            Some(Observation::Dns {
                query: "c2.example.test".into(),
                response: false,
                answers: vec![],
            })
        );
    }

    #[test]
    fn an_answer_gives_its_addresses_through_compressed_names() {
        let mut m = query("pacs.example.org");
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 2;
        // Two answers, each naming the question by a pointer to offset 12.
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 9]);
        m.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        m.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        let Some(Observation::Dns {
            query,
            response,
            answers,
        }) = message(&m)
        else {
            panic!("not DNS");
        };
        assert_eq!(query, "pacs.example.org");
        assert!(response);
        assert_eq!(
            answers,
            vec![
                "203.0.113.9".parse::<IpAddr>().unwrap(),
                "2001:db8::9".parse().unwrap()
            ]
        );
    }

    #[test]
    fn loops_truncations_and_other_protocols_are_nothing() {
        // A pointer to itself.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12];
        assert_eq!(message(&m), None);
        m.truncate(13);
        assert_eq!(message(&m), None);
        assert_eq!(message(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        let q = query("example.org");
        for n in 0..q.len() {
            assert_ne!(
                message(&q[..n]),
                message(&q),
                "a truncated query is not the whole one"
            );
        }
    }
}
