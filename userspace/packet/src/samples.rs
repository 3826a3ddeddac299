//! Payloads as real clients send them, for the tests and benchmarks of this crate and of the
//! packet sensor (`heir bench xdp` puts them in crafted frames).

/// A DICOM A-ASSOCIATE-RQ's first bytes: PDU type 1, calling and called AE titles.
pub fn dicom_associate() -> Vec<u8> {
    let mut p = vec![0x01, 0x00, 0, 0, 0, 0xcd, 0x00, 0x01, 0x00, 0x00];
    p.extend_from_slice(b"PACS            ");
    p.extend_from_slice(b"MODALITY01      ");
    p.extend_from_slice(&[0; 32]);
    p.extend_from_slice(&[0x10, 0x00, 0x00, 0x15]);
    p.extend_from_slice(b"1.2.840.10008.3.1.1.1");
    p
}

/// A TLS 1.0 ClientHello record with a few cipher suites.
pub fn tls_client_hello() -> Vec<u8> {
    let suites: [u16; 4] = [0x002f, 0x0035, 0x000a, 0xc013];
    let mut body = vec![0x03, 0x01];
    body.extend_from_slice(&[0x42; 32]);
    body.push(0);
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut hs = vec![0x01, 0, 0, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}
