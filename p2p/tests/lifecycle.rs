//! A node's life: joining from keystores, restarting from its store, revocation, group key
//! rotation, QUIC, and discovery — real nodes on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use heir_mesh::indicator::Item;
use heir_mesh::keystore::Keystore;
use heir_mesh::node::{Event, Setup};
use heir_mesh::{Invite, Tlp};
use heir_model::Timestamp;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_members_share_and_restart_from_their_store() {
    let tmp = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let admin = Keystore::open(tmp.path().join("a")).unwrap();
    admin.init("H-A", &["icu".into()], 30 * DAY, now).unwrap();
    let b = Keystore::open(tmp.path().join("b")).unwrap();
    let invite = admin
        .invite(
            &b.identity().unwrap().join_request(),
            "H-B",
            &["icu".into()],
            30 * DAY,
            vec![],
            now,
        )
        .unwrap();
    b.join(&Invite::decode(&invite.encode()).unwrap(), now)
        .unwrap();

    let a_node = spawn(Setup::from_keystore(&admin).unwrap(), config(), "H-A").await;
    let b_node = spawn(Setup::from_keystore(&b).unwrap(), config(), "H-B").await;
    b_node.client.dial(a_node.addr.clone()).await.unwrap();
    let nodes = [a_node, b_node];
    wait_meshed(&nodes).await;

    let green = indicator(1);
    let mut amber = indicator(2);
    amber.tlp = Tlp::Amber;
    nodes[0]
        .client
        .publish(Item::Indicator(green.clone()), None)
        .await
        .unwrap();
    nodes[0]
        .client
        .publish(Item::Indicator(amber.clone()), Some("icu".into()))
        .await
        .unwrap();
    let got = wait_for(WAIT, || async {
        (holders(&nodes[1..], green.id).await + holders(&nodes[1..], amber.id).await == 2)
            .then_some(())
    })
    .await;
    assert!(got.is_some(), "B did not receive both items");

    // `heir mesh status --json` and `heir mesh peers` shapes.
    let status = serde_json::to_value(nodes[1].client.status().await.unwrap()).unwrap();
    assert_eq!(status["hospital"], "H-B");
    assert_eq!(status["peer_id"], nodes[1].client.peer_id().to_string());
    let peers = serde_json::to_value(nodes[1].client.peers().await.unwrap()).unwrap();
    assert_eq!(peers[0]["peer_id"], nodes[0].client.peer_id().to_string());

    // Restart B from its directory: the knowledge base comes back from its log.
    nodes[1].client.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Read while stopped, as `heir indicators` and `heir export` do.
    let (kb, warnings) = heir_mesh::knowledge::load(&b, 1000).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(kb.len(), 2);
    let entries: Vec<_> = kb.entries().cloned().collect();
    let stix = heir_mesh::exchange::to_stix(&entries, &[], &[], Timestamp::now());
    assert_eq!(heir_mesh::exchange::import(&stix).unwrap().len(), 2);
    let b_again = spawn(Setup::from_keystore(&b).unwrap(), config(), "H-B").await;
    assert!(b_again.client.indicator(green.id).await.unwrap().is_some());
    assert!(
        b_again.client.indicator(amber.id).await.unwrap().is_some(),
        "sealed item reopened with the stored group key"
    );
    let st = b_again.client.status().await.unwrap();
    assert_eq!(st.stored_envelopes, 2);
    assert!(st.warnings.is_empty(), "{:?}", st.warnings);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(b.path("knowledge.log"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_member_is_cut_off_everywhere() {
    let consortium = Consortium::new();
    let nodes = network(&consortium, 3, config()).await;
    let (setup, cred) = consortium.member("H-revoked");
    let doomed = spawn(setup, config(), "H-revoked").await;
    doomed.client.dial(nodes[2].addr.clone()).await.unwrap();
    let mut all: Vec<&TestNode> = nodes.iter().collect();
    all.push(&doomed);
    let meshed = wait_for(WAIT, || async {
        for n in &all {
            if n.client.status().await.ok()?.mesh_peers == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(meshed.is_some());

    // The consortium revokes it; one member relays the signed list to the rest.
    let list = consortium.key.revoke(1, [cred.serial].into());
    nodes[0].client.revoke(list).await.unwrap();
    let applied = wait_for(WAIT, || async {
        for n in &nodes {
            if n.client.status().await.ok()?.revocations_version != 1 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(applied.is_some(), "revocation list did not spread");
    let _ = doomed
        .client
        .publish(Item::Indicator(indicator(9)), None)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        holders(&nodes, indicator(9).id).await,
        0,
        "a revoked member's item was stored"
    );
    let mut blocked = false;
    for n in &nodes {
        blocked |= n
            .client
            .status()
            .await
            .unwrap()
            .blocked
            .contains(&doomed.client.peer_id().to_string());
    }
    assert!(blocked, "revoked member still connected");
    // A forged list (not signed by the consortium) is refused.
    let forged = heir_mesh::ConsortiumKey::generate().revoke(5, [1, 2, 3].into());
    assert!(nodes[1].client.revoke(forged).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_key_rotation_reaches_members_and_seals_new_items() {
    let consortium = Consortium::new();
    let mut nodes = network(&consortium, 3, config()).await;
    // Every node has introduced itself (backfill request) to its neighbours by now; make sure
    // node 0 heard from both others.
    let known = wait_for(WAIT, || async {
        {
            let peers = nodes[0].client.peers().await.ok()?;
            (peers.len() == 2 && peers.iter().all(|p| p.hospital.is_some())).then_some(())
        }
    })
    .await;
    assert!(known.is_some());
    let rot = nodes[0].client.rotate_group("icu").await.unwrap();
    assert_eq!(rot.epoch, 2);
    assert_eq!(rot.recipients, 3);
    for n in nodes.iter_mut().skip(1) {
        let ev = tokio::time::timeout(WAIT, async {
            loop {
                match n.events.recv().await {
                    Some(Event::GroupKey { group, epoch }) => break (group, epoch),
                    Some(_) => continue,
                    None => panic!("node stopped"),
                }
            }
        })
        .await
        .expect("no GroupKey event");
        assert_eq!(ev, ("icu".to_string(), 2));
        let ring = n.client.keyring().await.unwrap();
        assert_eq!(ring.current("icu").unwrap().epoch, 2);
    }
    let mut amber = indicator(3);
    amber.tlp = Tlp::AmberStrict;
    nodes[2]
        .client
        .publish(Item::Indicator(amber.clone()), Some("icu".into()))
        .await
        .unwrap();
    let got = wait_for(WAIT, || async {
        (holders(&nodes, amber.id).await == 3).then_some(())
    })
    .await;
    assert!(
        got.is_some(),
        "item sealed under the new epoch did not open everywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_transport_and_kademlia_discovery() {
    let consortium = Consortium::new();
    let mut cfg = config();
    cfg.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    let mut nodes = Vec::new();
    for i in 0..4 {
        let (setup, _) = consortium.member(&format!("H-{i}"));
        let node = spawn(setup, cfg.clone(), &format!("H-{i}")).await;
        assert!(node.addr.to_string().contains("quic-v1"));
        // Everyone is told only of node 0; Kademlia finds the rest.
        if let Some(first) = nodes.first() {
            let first: &TestNode = first;
            node.client.dial(first.addr.clone()).await.unwrap();
        }
        nodes.push(node);
    }
    let found = wait_for(WAIT, || async {
        (nodes[3].client.status().await.ok()?.connected >= 3).then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "node 3 did not discover its peers: {:?}",
        nodes[3].client.status().await.unwrap().connected
    );
    wait_meshed(&nodes).await;
    let ind = indicator(4);
    nodes[3]
        .client
        .publish(Item::Indicator(ind.clone()), None)
        .await
        .unwrap();
    let got = wait_for(WAIT, || async {
        (holders(&nodes, ind.id).await == 4).then_some(())
    })
    .await;
    assert!(got.is_some(), "indicator did not cross QUIC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rama_benchmark_from_noised_distributions() {
    use heir_mesh::indicator::Metric;
    let consortium = Consortium::new();
    let nodes = network(&consortium, 4, config()).await;
    let period = (
        Timestamp::from_secs(1_800_000_000),
        Timestamp::from_secs(1_800_086_400),
    );
    // Too few devices: withheld, nothing sent.
    let err = nodes[0]
        .client
        .publish_statistic(
            Metric::RamaScores,
            vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            2,
            period,
        )
        .await
        .unwrap_err();
    let err = heir_mesh::report(&err);
    assert!(
        err.contains("not shared") && err.contains("k-anonymity"),
        "{err}"
    );
    // Three hospitals release 200-device histograms: all low risk except hospital 2.
    for (i, hist) in [
        [100, 100, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 100, 100, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 100, 100],
    ]
    .into_iter()
    .enumerate()
    {
        nodes[i]
            .client
            .publish_statistic(Metric::RamaScores, hist.to_vec(), 200, period)
            .await
            .unwrap();
    }
    let report = wait_for(WAIT, || async {
        let r = nodes[3].client.observatory(Some(50.0)).await.ok()?;
        r.rama.filter(|b| b.hospitals == 3)
    })
    .await
    .expect("distributions did not arrive");
    // Score 50 sits above the 400 low-risk devices and below the 200 high-risk ones.
    assert!((report.percentile - 66.7).abs() < 5.0, "{report:?}");
    assert_eq!(report.devices, 600);
}
