//! Protocol recognition on payload samples: the userspace cost of each packet-sensor sample.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heir_model::event::Transport;
use heir_packet::recognize::recognize;
use heir_packet::samples::{dicom_associate, tls_client_hello};

fn samples(c: &mut Criterion) {
    let hl7 = b"\x0bMSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01|1|P|2.5".to_vec();
    let http = b"GET /admin HTTP/1.1\r\nHost: pump\r\nAuthorization: Basic YTpi\r\n\r\n".to_vec();
    let cases: [(&str, u16, Vec<u8>); 5] = [
        ("dicom", 104, dicom_associate()),
        ("tls", 2762, tls_client_hello()),
        ("hl7", 2575, hl7),
        ("http", 80, http),
        ("unknown", 5555, vec![0x42; 256]),
    ];
    let mut g = c.benchmark_group("recognize");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    for (name, port, payload) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| std::hint::black_box(recognize(Transport::Tcp, 40000, *port, payload)))
        });
    }
    g.finish();
}

criterion_group!(benches, samples);
criterion_main!(benches);
