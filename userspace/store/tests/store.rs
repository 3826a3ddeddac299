//! The store against real files.

use std::time::Duration;

use heir_model::event::ProcessInfo;
use heir_model::{Alert, Category, Event, EventKind, Process, Severity, Timestamp};
use heir_store::{Error, Read, Retention, Store};

fn alert(n: u64) -> Alert {
    Alert::new(
        Timestamp::from_secs(1_700_000_000 + n),
        "test.rule",
        format!("alert {n}"),
        Category::PortScan,
        Severity::High,
        0.9,
    )
}

fn event(secs: u64) -> Event {
    Event {
        ts: Timestamp::from_secs(secs),
        process: Process {
            pid: 7,
            tid: 7,
            comm: "cat".into(),
            info: Some(std::sync::Arc::new(ProcessInfo {
                exe: Some("/usr/bin/cat".into()),
                ..ProcessInfo::default()
            })),
            ..Process::default()
        },
        kind: EventKind::Open {
            path: "/etc/shadow".into(),
            flags: 0,
            ret: 3,
        },
    }
}

#[test]
fn alerts_round_trip_and_acknowledgements_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heir.redb");
    {
        let s = Store::open(&path, Retention::default()).unwrap();
        let seqs = s.append_alerts(&[alert(1), alert(2), alert(3)]).unwrap();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(
            s.acknowledge(2, "sysadmin", Timestamp::from_secs(5))
                .unwrap()
        );
        assert!(
            !s.acknowledge(99, "sysadmin", Timestamp::from_secs(5))
                .unwrap()
        );
    }
    let s = Store::open(&path, Retention::default()).unwrap();
    let all = s.alerts(0, 10).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].alert, alert(2));
    assert_eq!(all[1].acknowledged.as_ref().unwrap().by, "sysadmin");
    assert!(all[0].acknowledged.is_none());
    assert_eq!(s.alerts(2, 10).unwrap().len(), 1);
    assert_eq!(s.append_alerts(&[alert(4)]).unwrap(), vec![4]);
}

#[test]
fn event_ring_keeps_the_newest_within_count_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let r = Retention {
        max_events: 5,
        max_age: Duration::from_secs(100),
    };
    let s = Store::open(&dir.path().join("heir.redb"), r).unwrap();
    let batch: Vec<Event> = (0..8).map(|i| event(1000 + i)).collect();
    s.append_events(&batch).unwrap();
    assert_eq!(s.event_count().unwrap(), 5);
    let kept = s.recent_events(10).unwrap();
    assert_eq!(kept.first().unwrap().ts, Timestamp::from_secs(1003));
    assert_eq!(kept.last().unwrap(), &event(1007));
    // Everything older than 100 s before the newest event goes.
    s.append_events(&[event(1200)]).unwrap();
    assert_eq!(s.recent_events(10).unwrap(), vec![event(1200)]);
}

#[test]
fn foreign_and_corrupt_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"this is not a database, it is a shopping list").unwrap();
    let before = std::fs::read(&junk).unwrap();
    assert!(Store::open(&junk, Retention::default()).is_err());
    assert!(std::fs::read(&junk).unwrap() == before, "junk file changed");

    let foreign = dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(redb::TableDefinition::<u64, u64>::new("other_app"))
            .unwrap();
        tx.commit().unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    let err = Store::open(&foreign, Retention::default()).err().unwrap();
    assert!(matches!(err, Error::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("left untouched"));
    assert!(
        std::fs::read(&foreign).unwrap() == before,
        "foreign store changed"
    );
}

#[test]
fn a_store_from_a_newer_heir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heir.redb");
    drop(Store::open(&path, Retention::default()).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("schema", heir_store::SCHEMA + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(&path, Retention::default()).err().unwrap();
    assert!(matches!(err, Error::Newer { .. }), "{err}");
}

#[test]
fn state_blobs_are_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("heir.redb"), Retention::default()).unwrap();
    assert_eq!(s.blob("rama").unwrap(), None);
    s.put_blob("rama", b"one").unwrap();
    s.put_blob("rama", b"two").unwrap();
    assert_eq!(s.blob("rama").unwrap().as_deref(), Some(&b"two"[..]));
}

#[test]
fn a_schema_1_store_is_migrated_and_keeps_its_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heir.redb");
    {
        // A store as schema 1 wrote it: no audit table.
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("schema", 1)
            .unwrap();
        tx.open_table(redb::TableDefinition::<u64, &[u8]>::new("events"))
            .unwrap();
        tx.open_table(redb::TableDefinition::<&str, &[u8]>::new("blobs"))
            .unwrap();
        // The record as builds of that schema wrote it, the acknowledgement named `ack`.
        let stored = serde_json::json!({
            "seq": 1,
            "alert": alert(1),
            "ack": {"at": Timestamp::from_secs(5), "by": "sysadmin"},
        });
        tx.open_table(redb::TableDefinition::<u64, &[u8]>::new("alerts"))
            .unwrap()
            .insert(1, serde_json::to_vec(&stored).unwrap().as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let s = Store::open(&path, Retention::default()).unwrap();
    let alerts = s.alerts(0, 10).unwrap();
    assert_eq!(alerts[0].alert, alert(1));
    assert_eq!(
        alerts[0].acknowledged,
        Some(heir_store::Ack {
            at: Timestamp::from_secs(5),
            by: "sysadmin".into()
        })
    );
    assert!(s.audit().unwrap().is_empty());
    let entry = heir_store::AuditEntry {
        at: Timestamp::from_secs(9),
        action: "block".into(),
        target: "203.0.113.9".into(),
        reason: "port scan".into(),
        actor: "policy".into(),
        outcome: "done".into(),
    };
    assert_eq!(s.append_audit(&entry).unwrap(), 1);
    drop(s);
    let s = Store::open(&path, Retention::default()).unwrap();
    assert_eq!(s.audit().unwrap(), vec![entry]);
}

#[test]
fn events_between_visits_the_range_despite_arrival_skew() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb"), Retention::default()).unwrap();
    // Two sensors' batches arrive interleaved: stamps go back by a few seconds at times.
    let stamps = [100, 200, 300, 295, 400, 390, 500, 600];
    let events: Vec<Event> = stamps.iter().map(|&s| event(s)).collect();
    store.append_events(&events).unwrap();
    let mut seen = Vec::new();
    let n = store
        .events_between(
            Timestamp::from_secs(295),
            Timestamp::from_secs(500),
            &mut |e| seen.push(e.ts.as_nanos() / 1_000_000_000),
        )
        .unwrap();
    assert_eq!(n, 4);
    seen.sort();
    assert_eq!(seen, [295, 300, 390, 400]);
    // Nothing in range: nothing visited, and the walk still ends.
    let n = store
        .events_between(
            Timestamp::from_secs(700),
            Timestamp::from_secs(800),
            &mut |_| panic!("out of range"),
        )
        .unwrap();
    assert_eq!(n, 0);
}
