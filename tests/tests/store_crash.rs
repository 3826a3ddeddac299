//! `kill -9` of a process in the middle of writing to the store loses nothing it had
//! committed, and the store opens cleanly afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use heir_store::{Read, Retention, Store};

#[test]
fn kill_9_during_writes_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heir.redb");
    for round in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heir-actor"))
            .arg("store-writer")
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after a varying number of commits, mid-stream.
        let target = 50 + round * 37;
        while acked.len() < target {
            let line = lines.next().expect("writer alive").unwrap();
            acked.push(line.parse::<u64>().unwrap());
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let store = Store::open(&path, Retention::default()).expect("store reopens after kill -9");
        let stored: std::collections::HashSet<u64> = store
            .alerts(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|a| a.seq)
            .collect();
        let missing: Vec<_> = acked.iter().filter(|s| !stored.contains(s)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: committed alerts lost: {missing:?}"
        );
    }
}
