//! Prometheus metrics on an optional TCP port: events per second, lost events, alerts by
//! category, devices by RAMA band, mesh peers, sinks' drops, and each device's traffic through
//! the packet sensor.
//!
//! Encoded by `prometheus-client` in the Prometheus text format (0.0.4), at scrape time, from
//! the same status snapshot the API serves, so the two never disagree. The library appends
//! `_total` to counter names: the counter families below are named without it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use heir_model::Category;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::api::SharedStatus;
use crate::rama_state::RamaState;

/// Alerts raised since start, by category (indexed like [`Category::ALL`]).
#[derive(Default)]
pub struct AlertCounts([AtomicU64; Category::ALL.len()]);

impl AlertCounts {
    pub fn count(&self, c: Category) {
        if let Some(i) = Category::ALL.iter().position(|x| *x == c) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Sources {
    pub status: SharedStatus,
    pub risk: Arc<Mutex<RamaState>>,
    pub alerts: Arc<AlertCounts>,
    pub mesh_peers: Arc<AtomicU64>,
    /// Per-device traffic, when a packet sensor runs.
    pub traffic: Arc<crate::traffic::Snapshot>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// Writes a metric without labels.
pub(crate) fn single<M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, M::TYPE)?)
}

/// Writes one metric family: its descriptor, then one sample per label set.
pub(crate) fn family<L: EncodeLabelSet, M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, M)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, m) in samples {
        m.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// What a scrape reads: every metric, from the sources at that moment.
#[derive(Debug)]
struct Scrape(Arc<Sources>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let src = &self.0;
        let e = &mut encoder;
        let status = src.status.lock().map(|s| s.clone()).ok();
        if let Some(s) = &status {
            single(
                e,
                "heir_events_per_second",
                "Kernel events emitted per second, last interval.",
                ConstGauge::new(s.events_per_sec),
            )?;
            for (name, help, pick) in [
                ("heir_events", "Kernel events emitted, by kind.", 0),
                (
                    "heir_events_lost",
                    "Kernel events lost because the ring buffer was full, by kind.",
                    1,
                ),
                (
                    "heir_events_filtered",
                    "Kernel events dropped on purpose by in-kernel filters, by kind.",
                    2,
                ),
            ] {
                family(
                    e,
                    name,
                    help,
                    s.sensors.iter().map(|c| {
                        let v = [c.emitted, c.lost, c.filtered][pick];
                        ([("kind", c.kind.as_str())], ConstCounter::new(v))
                    }),
                )?;
            }
            single(
                e,
                "heir_pipeline_records",
                "Kernel records the agent read from the ring buffer.",
                ConstCounter::new(s.pipeline.records),
            )?;
            single(
                e,
                "heir_pipeline_undecodable",
                "Kernel records read but not decodable, and so dropped.",
                ConstCounter::new(s.pipeline.decode_errors),
            )?;
            single(
                e,
                "heir_pipeline_dropped",
                "Events a full userspace queue turned away.",
                ConstCounter::new(s.pipeline.dropped),
            )?;
            family(
                e,
                "heir_sink_dropped",
                "Items a sink or other pipeline component lost, by component and reason.",
                s.sinks.iter().map(|d| {
                    (
                        [
                            ("component", d.component.as_str()),
                            ("reason", d.reason.as_str()),
                        ],
                        ConstCounter::new(d.dropped),
                    )
                }),
            )?;
            single(
                e,
                "heir_probes_failed",
                "Probes that could not be attached.",
                ConstGauge::new(s.probes.failed.len() as u64),
            )?;
        }
        family(
            e,
            "heir_alerts",
            "Alerts raised since start, by category.",
            Category::ALL.iter().enumerate().map(|(i, c)| {
                let v = src.alerts.0[i].load(Ordering::Relaxed);
                ([("category", c.slug())], ConstCounter::new(v))
            }),
        )?;
        if let Ok(r) = src.risk.lock() {
            let h = r.rama.hospital();
            family(
                e,
                "heir_devices",
                "Devices in the inventory, by RAMA band.",
                ["low", "medium", "high", "critical"]
                    .into_iter()
                    .zip(h.bands)
                    .map(|(band, n)| ([("band", band)], ConstGauge::new(n as u64))),
            )?;
            single(
                e,
                "heir_hospital_rama",
                "The hospital's RAMA score (0-100).",
                ConstGauge::new(h.value),
            )?;
        }
        single(
            e,
            "heir_mesh_peers",
            "Peers of this node's mesh node.",
            ConstGauge::new(src.mesh_peers.load(Ordering::Relaxed)),
        )?;
        src.traffic.encode(e)
    }
}

/// The registry a server encodes on each scrape.
pub fn registry(src: Arc<Sources>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(src)));
    registry
}

/// The exposition text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// Serves `/metrics` on `addr` until `shutdown` resolves; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    src: Arc<Sources>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let registry = Arc::new(registry(src));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        prometheus_text::CONTENT_TYPE,
                    )],
                    render(&registry),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("metrics server: {e}");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &std::path::Path) -> Arc<Sources> {
        let mut status = heir_api::fixture::status();
        status.sinks.push(heir_api::SinkDrops {
            component: "syslog".into(),
            reason: "queue_full".into(),
            dropped: 7,
        });
        let alerts = Arc::new(AlertCounts::default());
        alerts.count(Category::CredentialAccess);
        Arc::new(Sources {
            status: Arc::new(Mutex::new(status)),
            risk: Arc::new(Mutex::new(RamaState::open(dir, None).unwrap())),
            alerts,
            mesh_peers: Arc::new(AtomicU64::new(3)),
            traffic: Arc::new(crate::traffic::Snapshot::default()),
        })
    }

    /// The names, labels and types scrapers and dashboards rely on, byte for byte.
    #[test]
    fn exposition_keeps_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let out = render(&registry(sources(dir.path())));
        for line in [
            "# TYPE heir_events_per_second gauge",
            "# HELP heir_events_total Kernel events emitted, by kind.",
            "# TYPE heir_events_total counter",
            "heir_events_total{kind=\"exec\"} ",
            "# TYPE heir_events_lost_total counter",
            "heir_events_lost_total{kind=\"open\"} ",
            "# TYPE heir_events_filtered_total counter",
            "heir_events_filtered_total{kind=\"connect\"} ",
            "# TYPE heir_pipeline_dropped_total counter",
            "heir_pipeline_dropped_total ",
            "# TYPE heir_sink_dropped_total counter",
            "heir_sink_dropped_total{component=\"syslog\",reason=\"queue_full\"} 7",
            "# TYPE heir_probes_failed gauge",
            "heir_probes_failed ",
            "# TYPE heir_alerts_total counter",
            "heir_alerts_total{category=\"credential_access\"} 1",
            "heir_alerts_total{category=\"port_scan\"} 0",
            "# TYPE heir_devices gauge",
            "heir_devices{band=\"low\"} 0",
            "heir_devices{band=\"critical\"} 0",
            "# TYPE heir_hospital_rama gauge",
            "heir_hospital_rama ",
            "# TYPE heir_mesh_peers gauge",
            "heir_mesh_peers 3",
        ] {
            assert!(
                out.lines().any(|l| l.starts_with(line)),
                "missing `{line}` in:\n{out}"
            );
        }
        assert!(
            !out.contains("# EOF"),
            "Prometheus text format, not OpenMetrics:\n{out}"
        );
    }

    #[tokio::test]
    async fn serves_the_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            sources(dir.path()),
            std::future::pending(),
        )
        .await
        .unwrap();
        let body = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            body
        })
        .await
        .unwrap();
        task.abort();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(
            body.to_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{body}"
        );
        assert!(body.contains("\nheir_mesh_peers 3\n"), "{body}");
    }
}
