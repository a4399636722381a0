//! A quick throughput check without criterion (the real benchmark is
//! `cargo bench -p aura-benches --bench store`):
//! `cargo test --release -p aura-store --test it throughput:: -- --ignored --nocapture`.

#![allow(clippy::expect_used, missing_docs)]

use std::time::Instant;

use aura_store::{NewObject, SqliteStore, StoreExt};
use serde_json::{json, Map, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it in release with --ignored"]
async fn create_and_update_on_a_wal_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let store = SqliteStore::open(dir.path().join("throughput.db"))
        .await
        .expect("open");
    let ops = 20_000u32;
    let started = Instant::now();
    for n in 0..ops {
        let object = store
            .create_object(NewObject::named(format!("t-{n}")))
            .await
            .expect("create");
        let slots: Map<String, Value> = match json!({"count": n, "label": "bench"}) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        store
            .update_slots(object.id, object.rev, slots)
            .await
            .expect("update");
    }
    let took = started.elapsed();
    eprintln!(
        "{ops} create+update operations on a WAL file in {took:?}: {:.0} per second",
        f64::from(ops) / took.as_secs_f64()
    );
}
