//! Dispatch resolution through a 10-deep delegation chain with a warm cache.
//!
//! Goal (issue #2): median ≤ 20 µs.
#![allow(missing_docs)]
#![allow(clippy::expect_used)] // bench setup: a failed fixture should stop the bench loudly

use std::sync::Arc;

use aura_core::store::NewObject;
use aura_core::{Config, Runtime};
use aura_store::SqliteStore;
use criterion::{criterion_group, criterion_main, Criterion};

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (runtime, leaf) = rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("aura-bench-dispatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(dir.join("store.sqlite"))
                .await
                .expect("store"),
        );
        let runtime = Runtime::builder()
            .config(Config::default())
            .store(store)
            .without_model()
            .sandbox(Arc::new(aura_benches::NullSandbox))
            .build()
            .await
            .expect("runtime");
        let mut parent = runtime.root();
        let mut top = None;
        for i in 0..10 {
            let o = runtime
                .create_object(NewObject::named(format!("level{i}")).with_parents([parent]))
                .await
                .expect("object");
            top.get_or_insert(o.id);
            parent = o.id;
        }
        let top = top.expect("chain");
        runtime
            .define_method(top, "area", "def area(self):\n    return 1\n", "")
            .await
            .expect("method");
        (runtime, parent)
    });
    // Warm the cache once.
    rt.block_on(runtime.resolve(leaf, "area")).expect("resolve");
    c.bench_function("resolve through a 10-deep chain (warm cache)", |b| {
        b.to_async(&rt).iter(|| async {
            let m = runtime.resolve(leaf, "area").await.expect("resolve");
            assert!(m.is_some());
        })
    });
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
