//! The UI against an in-memory agent holding the test fixture, on a socket in a temporary
//! directory: `cargo run -p heir-tui --example fixture [-- core]`. `core` leaves out the mesh
//! and responder, as in the current agent. A new alert arrives every 3 seconds.

use std::sync::Arc;
use std::time::Duration;

use heir_api::fixture::{self, Memory, Parts};
use heir_api::{Client, Socket};
use heir_model::{Category, Severity};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parts = match std::env::args().nth(1).as_deref() {
        Some("core") => Parts::Core,
        _ => Parts::All,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("api.sock");
    let memory = Arc::new(Memory::new(parts, 256));
    let socket = Socket::bind(&path)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(
            socket.serve(memory.clone(), heir_api::Access::new("heir-admin"), async {
                let _ = stopped.await;
            }),
        );
    let feed = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            n += 1;
            let mut a = fixture::alert(
                0,
                "net.port_scan",
                &format!("Port scan #{n}"),
                Category::PortScan,
                Severity::Medium,
                Some("pacs-1"),
            );
            a.ts = heir_model::Timestamp::now();
            memory.push(a);
        }
    });
    let result = heir_tui::run(Client::new(&path)).await;
    feed.abort();
    let _ = stop.send(());
    let _ = server.await;
    Ok(result?)
}
