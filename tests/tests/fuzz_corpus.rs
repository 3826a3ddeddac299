//! Replays the committed fuzz corpus (`fuzz/corpus/<door>/`) through the same door functions
//! the libFuzzer targets call (`heir-fuzz-doors`), without libFuzzer: every input that once
//! crashed a door, and every real seed, stays handled in the default test run.

use std::path::PathBuf;
use std::time::Instant;

#[test]
fn every_door_replays_its_corpus() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut summary = Vec::new();
    for (door, enter) in heir_fuzz_doors::DOORS {
        let dir = corpus.join(door);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("corpus directory {} for door `{door}`: {e}", dir.display())
        });
        let t = Instant::now();
        let mut replayed = 0usize;
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .path();
            if !path.is_file() {
                continue;
            }
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| enter(&bytes));
            assert!(
                outcome.is_ok(),
                "door `{door}` panicked on corpus input {}",
                path.display()
            );
            replayed += 1;
        }
        assert!(
            replayed > 0,
            "door `{door}` has no corpus inputs in {}",
            dir.display()
        );
        summary.push(format!(
            "{door} {replayed} in {:.2}s",
            t.elapsed().as_secs_f64()
        ));
    }
    eprintln!("replayed: {}", summary.join(", "));
}
