//! Prometheus metrics on an optional TCP port: events per second, lost events, alerts by
//! category, devices by RAMA band, mesh peers, and each device's traffic through the packet
//! sensor.
//!
//! Rendered by hand in the text exposition format from the same status snapshot the API
//! serves, so the two never disagree.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use heir_model::Category;

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

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub fn render(src: &Sources) -> String {
    let mut out = String::new();
    let status = src.status.lock().map(|s| s.clone()).ok();
    if let Some(s) = &status {
        let _ = writeln!(
            out,
            "# HELP heir_events_per_second Kernel events emitted per second, last interval."
        );
        let _ = writeln!(out, "# TYPE heir_events_per_second gauge");
        let _ = writeln!(out, "heir_events_per_second {}", s.events_per_sec);
        for (name, help, pick) in [
            ("heir_events_total", "Kernel events emitted, by kind.", 0),
            (
                "heir_events_lost_total",
                "Kernel events lost because the ring buffer was full, by kind.",
                1,
            ),
            (
                "heir_events_filtered_total",
                "Kernel events dropped on purpose by in-kernel filters, by kind.",
                2,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for c in &s.sensors {
                let v = [c.emitted, c.lost, c.filtered][pick];
                let _ = writeln!(out, "{name}{{kind=\"{}\"}} {v}", label(&c.kind));
            }
        }
        let _ = writeln!(
            out,
            "# HELP heir_pipeline_dropped_total Events a full userspace queue turned away."
        );
        let _ = writeln!(out, "# TYPE heir_pipeline_dropped_total counter");
        let _ = writeln!(out, "heir_pipeline_dropped_total {}", s.pipeline.dropped);
        let _ = writeln!(
            out,
            "# HELP heir_probes_failed Probes that could not be attached."
        );
        let _ = writeln!(out, "# TYPE heir_probes_failed gauge");
        let _ = writeln!(out, "heir_probes_failed {}", s.probes.failed.len());
    }
    let _ = writeln!(
        out,
        "# HELP heir_alerts_total Alerts raised since start, by category."
    );
    let _ = writeln!(out, "# TYPE heir_alerts_total counter");
    for (i, c) in Category::ALL.iter().enumerate() {
        let v = src.alerts.0[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "heir_alerts_total{{category=\"{}\"}} {v}", c.slug());
    }
    if let Ok(r) = src.risk.lock() {
        let h = r.rama.hospital();
        let _ = writeln!(
            out,
            "# HELP heir_devices Devices in the inventory, by RAMA band."
        );
        let _ = writeln!(out, "# TYPE heir_devices gauge");
        for (band, n) in ["low", "medium", "high", "critical"].iter().zip(h.bands) {
            let _ = writeln!(out, "heir_devices{{band=\"{band}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP heir_hospital_rama The hospital's RAMA score (0-100)."
        );
        let _ = writeln!(out, "# TYPE heir_hospital_rama gauge");
        let _ = writeln!(out, "heir_hospital_rama {}", h.value);
    }
    let _ = writeln!(
        out,
        "# HELP heir_mesh_peers Peers of this node's mesh node."
    );
    let _ = writeln!(out, "# TYPE heir_mesh_peers gauge");
    let _ = writeln!(
        out,
        "heir_mesh_peers {}",
        src.mesh_peers.load(Ordering::Relaxed)
    );
    src.traffic.render(&mut out);
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
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let src = src.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    render(&src),
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
