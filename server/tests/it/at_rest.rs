//! Encryption at rest beyond stream records: video fragments, checkpoint
//! state and savepoints, with the server's `streams.encryption_key`. The
//! same run without a key finds the plaintext, so the search can fail.

use crate::harness::RunnelServer;
use crate::kinesis_e2e::run_script_with;

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// How many values of the column family hold `needle`.
fn values_holding(db: &rocksdb::DB, family: &str, needle: &[u8]) -> (usize, usize) {
    let cf = db.cf_handle(family).unwrap();
    let mut values = 0;
    let mut holding = 0;
    for entry in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (_, value) = entry.unwrap();
        values += 1;
        if value.windows(needle.len()).any(|w| w == needle) {
            holding += 1;
        }
    }
    (values, holding)
}

fn run(encrypted: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runnel.toml");
    let streams = if encrypted {
        format!("[streams]\nencryption_key = \"{KEY_HEX}\"\n")
    } else {
        String::new()
    };
    std::fs::write(&config, streams).unwrap();
    let mut server = RunnelServer::builder()
        .arg("--config")
        .arg(config.display().to_string())
        .start();
    let mode = if encrypted { "encrypted" } else { "plain" };
    let data_dir = server.data_dir.display().to_string();
    run_script_with(&server, "at_rest.py", &[data_dir.as_str(), mode]);
    server.stop();

    let db_path = server.data_dir.join("db");
    let families = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db_path).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        &db_path,
        &families,
        false,
    )
    .unwrap();
    for family in ["jobs.checkpoints", "jobs.savepoints"] {
        let (values, holding) = values_holding(&db, family, b"marker-plaintext");
        assert!(values > 0, "{mode}: {family} is empty");
        if encrypted {
            assert_eq!(holding, 0, "{mode}: {family} holds the plaintext");
        } else if family == "jobs.checkpoints" {
            // Incremental checkpoints after the first hold only what
            // changed, so the plaintext need not be in every one.
            assert!(holding > 0, "{mode}: {family} should hold the plaintext");
        } else {
            // A savepoint stands alone: each holds the whole state.
            assert_eq!(
                holding, values,
                "{mode}: {family} should hold the plaintext"
            );
        }
    }
}

#[test]
fn with_a_key_fragments_checkpoints_and_savepoints_are_encrypted() {
    run(true);
}

#[test]
fn without_a_key_the_same_search_finds_the_plaintext() {
    run(false);
}
