//! A real partition: three nodes, each in its own network namespace, joined by a bridge in a
//! fourth; one node's link is taken down and brought back up. Needs root (as the project's
//! tests do) and iproute2. Namespaces are named after this process and deleted on drop.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::*;
use heir_mesh::indicator::Item;
use heir_mesh::node::{self, Client, Config, Event, Setup};
use heir_testkit::ip;
use libp2p::Multiaddr;
use tokio::sync::mpsc;

/// A network namespace, deleted (with its links) when dropped.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Destroys the TCP sockets in namespace `ns` (towards `dst`, or all).
fn ss_kill(ns: &str, dst: Option<&str>) {
    let mut args = vec!["netns", "exec", ns, "ss", "-K", "-t"];
    if let Some(d) = dst {
        args.extend(["dst", d]);
    }
    let out = Command::new("ip").args(&args).output().expect("ss runs");
    assert!(
        out.status.success(),
        "ss -K in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a node on its own thread inside namespace `ns`, so its sockets live there.
fn spawn_in(
    ns: &str,
    setup: Setup,
    config: Config,
) -> (Client, mpsc::Receiver<Event>, std::thread::JoinHandle<()>) {
    let path = format!("/var/run/netns/{ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("node-{ns}"))
        .spawn(move || {
            let f = File::open(&path).expect("namespace file");
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (client, event_loop, events) = node::new(setup, config).expect("node starts");
                tx.send((client, events)).unwrap();
                event_loop.run().await;
            });
        })
        .unwrap();
    let (client, events) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node started");
    (client, events, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_partition_heals_by_reconnection_and_backfill() {
    let tag = std::process::id() % 100_000;
    let bridge = Netns::new(format!("hm{tag}br"));
    ip(&["-n", &bridge.0, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &bridge.0, "link", "set", "br0", "up"]);
    let mut spaces = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3 {
        let ns = Netns::new(format!("hm{tag}n{i}"));
        let (host, node) = (format!("hm{tag}h{i}"), format!("hm{tag}e{i}"));
        ip(&[
            "-n", &bridge.0, "link", "add", &host, "type", "veth", "peer", "name", &node, "netns",
            &ns.0,
        ]);
        ip(&["-n", &bridge.0, "link", "set", &host, "master", "br0", "up"]);
        let addr = format!("10.213.0.{}", i + 1);
        ip(&[
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &node,
        ]);
        ip(&["-n", &ns.0, "link", "set", &node, "up"]);
        spaces.push(ns);
        addrs.push(addr);
    }

    let consortium = Consortium::new();
    let mut clients = Vec::new();
    let mut threads = Vec::new();
    let mut seeds: Vec<Multiaddr> = Vec::new();
    for i in 0..3 {
        let (setup, _) = consortium.member(&format!("H-{i}"));
        let peer = setup.identity.peer_id();
        let cfg = Config {
            listen: vec![format!("/ip4/{}/tcp/4717", addrs[i]).parse().unwrap()],
            bootstrap: seeds.clone(),
            heartbeat: Duration::from_millis(100),
            duplicate_cache: Duration::from_secs(1),
            ping_interval: Duration::from_millis(300),
            redial_interval: Duration::from_millis(500),
            ..Config::default()
        };
        let (client, _events, handle) = spawn_in(&spaces[i].0, setup, cfg);
        seeds.push(
            format!("/ip4/{}/tcp/4717/p2p/{peer}", addrs[i])
                .parse()
                .unwrap(),
        );
        clients.push(client);
        threads.push(handle);
    }
    let meshed = wait_for(Duration::from_secs(20), || async {
        for c in &clients {
            if c.status().await.ok()?.mesh_peers == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(meshed.is_some(), "mesh did not form across namespaces");

    // Cut node 2's cable. TCP would notice only after minutes of retransmissions, so the
    // connections across the cut are reset as their timeouts would eventually do.
    ip(&[
        "-n",
        &bridge.0,
        "link",
        "set",
        &format!("hm{tag}h2"),
        "down",
    ]);
    ss_kill(&spaces[2].0, None);
    ss_kill(&spaces[0].0, Some(&addrs[2]));
    ss_kill(&spaces[1].0, Some(&addrs[2]));
    let cut = wait_for(Duration::from_secs(10), || async {
        (clients[2].status().await.ok()?.connected == 0).then_some(())
    })
    .await;
    assert!(cut.is_some(), "dead connections were not noticed");
    let ind = indicator(90);
    clients[0]
        .publish(Item::Indicator(ind.clone()), None)
        .await
        .unwrap();
    let spread = wait_for(Duration::from_secs(10), || async {
        clients[1].indicator(ind.id).await.ok()?.map(|_| ())
    })
    .await;
    assert!(spread.is_some(), "node 1 did not receive it");
    // No canary can cross the cut: node 2 has no connection and its link is down, so nothing
    // can be in flight to it.
    assert_eq!(clients[2].status().await.unwrap().connected, 0);
    assert!(
        clients[2].indicator(ind.id).await.unwrap().is_none(),
        "partitioned node must not have it"
    );

    // Plug it back: the node redials its bootstrap peers and backfills.
    ip(&["-n", &bridge.0, "link", "set", &format!("hm{tag}h2"), "up"]);
    let healed = wait_for(Duration::from_secs(20), || async {
        clients[2].indicator(ind.id).await.ok()?.map(|_| ())
    })
    .await;
    assert!(
        healed.is_some(),
        "node did not catch up after the link came back"
    );
    assert!(clients[2].status().await.unwrap().backfilled >= 1);

    for c in &clients {
        c.shutdown().await.unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    drop(spaces);
    drop(bridge);
}
