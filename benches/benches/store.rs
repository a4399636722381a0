//! Store throughput: "object create + slot update committed to a WAL file store:
//! ≥ 5 000 per second".
//!
//! One operation = create an object (one committed transaction) and then replace its slots
//! at the revision just read (a second committed transaction), on a `SqliteStore` file in
//! WAL mode (`synchronous=NORMAL`). Criterion reports the time per operation and the rate
//! (elements/s). Variants: one task in a loop (with the default `block_in_place` offload,
//! and with every call on tokio's blocking pool), and 8 tasks at once (writes serialise on
//! SQLite's single writer, so this shows what queueing costs).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_store::{NewObject, SqliteStore, StoreExt};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Map, Value};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn slots(n: u64) -> Map<String, Value> {
    match json!({"count": n, "label": "bench", "tags": ["a", "b"]}) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

async fn one_op(store: &SqliteStore, run: &str) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let object = store
        .create_object(NewObject::named(format!("bench-{run}-{n}")))
        .await
        .expect("create");
    store
        .update_slots(object.id, object.rev, slots(n))
        .await
        .expect("update");
}

fn store_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile_dir();
    let store = Arc::new(
        runtime
            .block_on(SqliteStore::open(dir.join("bench.db")))
            .expect("open the WAL store"),
    );
    let pooled = Arc::new(
        runtime
            .block_on(
                SqliteStore::builder(dir.join("bench-pooled.db"))
                    .spawn_blocking(true)
                    .build(),
            )
            .expect("open the WAL store"),
    );
    let run = format!("{}", std::process::id());

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("create+update (WAL file, 1 task, spawn_blocking)", |b| {
        b.to_async(&runtime).iter(|| one_op(&pooled, &run));
    });

    group.bench_function("create+update (WAL file, 1 task)", |b| {
        b.to_async(&runtime).iter(|| one_op(&store, &run));
    });

    group.bench_function("create+update (WAL file, 8 tasks)", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let store = store.clone();
            let run = run.clone();
            async move {
                let tasks = 8u64;
                let started = Instant::now();
                let handles: Vec<_> = (0..tasks)
                    .map(|t| {
                        let store = store.clone();
                        let run = run.clone();
                        let share = iters / tasks + u64::from(t < iters % tasks);
                        tokio::spawn(async move {
                            for _ in 0..share {
                                one_op(&store, &run).await;
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.expect("task");
                }
                started.elapsed()
            }
        });
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the target directory (on disk, unlike a tmpfs `/tmp`).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("aura-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

criterion_group!(benches, store_throughput);
criterion_main!(benches);
