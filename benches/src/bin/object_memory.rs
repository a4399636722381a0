//! Memory retained per object read, and `GET /v1/objects/{o}` time, against the number
//! of methods every object inherits from `genesis` (issue #27).
//!
//! One size per process, so one run's freed memory cannot hide the next one's growth:
//!
//! ```text
//! cargo build --release -p aura-benches --bin object_memory
//! for m in 0 2000; do target/release/object_memory --methods $m --objects 2000; done
//! ```
//!
//! It fills a fresh SQLite store, serves it with the real gateway on loopback, reads
//! `--objects` distinct objects once each over HTTP, and prints one line: the methods on
//! `genesis`, the objects read, the resident memory retained per object read, and the
//! median, 90th percentile and mean GET time. Goal: ≤ 16 KB per object and a median
//! within 1.3× of the empty library's, at 2,000 inherited methods.
#![allow(clippy::expect_used)] // a measurement: a failed setup should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_benches::rss_kib;
use aura_core::store::{NewObject, StoreExt};
use aura_core::{Config, Runtime};
use aura_gateway::{Gateway, GatewayConfig};
use aura_store::{NewMethod, Provenance, SqliteStore};
use clap::Parser;

// The gateway binary's allocator (examples/src/bin/gateway.rs), so the memory measured
// is what the shipped gateway retains.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Memory retained per object read and GET-object time, at one library size.
#[derive(Parser)]
struct Args {
    /// Methods defined on genesis, which every object inherits.
    #[arg(long, default_value_t = 2000)]
    methods: usize,
    /// Distinct objects read, once each.
    #[arg(long, default_value_t = 2000)]
    objects: usize,
}

/// A method of a learned library's usual size: source, tests and a doc line.
fn method(root: aura_store::ObjectId, i: usize) -> NewMethod {
    let name = format!("skill_{i:05}");
    NewMethod {
        object_id: root,
        selector: name.parse().expect("selector"),
        source: format!(
            "def {name}(self, n=0):\n    \"\"\"Skill number {i}.\"\"\"\n    total = 0\n    \
             for k in range(n):\n        total += k * {i}\n    return total\n"
        ),
        tests: format!(
            "def test_{name}_zero(obj):\n    assert obj.{name}(0) == 0\n\n\
             def test_{name}_three(obj):\n    assert obj.{name}(3) == 3 * {i}\n"
        ),
        doc: format!("Adds up k times {i} for every k below n."),
        provenance: Provenance::Manual,
        // It calls no other method, as `define_method` would record.
        calls: Some(vec![]),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("aura-object-memory-{}", std::process::id()));
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
    for i in 0..args.methods {
        runtime
            .store()
            .put_method(method(runtime.root(), i))
            .await
            .expect("method");
    }
    const WARM_UP: usize = 50;
    let mut names = Vec::with_capacity(args.objects + WARM_UP);
    for i in 0..args.objects + WARM_UP {
        let name = format!("object_{i:06}");
        runtime
            .create_object(NewObject::named(name.clone()))
            .await
            .expect("object");
        names.push(name);
    }
    runtime.invalidate_all();

    let gateway = Gateway::bind(
        runtime.clone(),
        GatewayConfig::default().addr(([127, 0, 0, 1], 0).into()),
    )
    .await
    .expect("gateway");
    let base = format!("http://{}/v1/objects", gateway.local_addr());
    tokio::spawn(gateway.serve());
    let client = reqwest::Client::new();
    let get = |name: &str| {
        let request = client.get(format!("{base}/{name}"));
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("GET");
            assert!(response.status().is_success(), "{}", response.status());
            let body = response.bytes().await.expect("body");
            (started.elapsed(), body.len())
        }
    };
    // The warm-up reads load genesis's table, the connection and the allocator's pools.
    let (warm, read) = names.split_at(WARM_UP);
    for name in warm {
        get(name).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let mut times = Vec::with_capacity(read.len());
    let mut body_bytes = 0;
    for name in read {
        let (elapsed, len) = get(name).await;
        times.push(elapsed);
        body_bytes = len;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib();

    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(times[times.len() / 2]);
    let p90 = ms(times[times.len() * 9 / 10]);
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    let per_object_kb = (after.saturating_sub(before)) as f64 * 1024.0 / 1000.0 / read.len() as f64;
    let stats = runtime.cache_stats();
    println!(
        "methods={} objects={} retained_per_object_kb={per_object_kb:.2} rss_before_mib={:.1} \
         rss_after_mib={:.1} get_median_ms={median:.3} get_p90_ms={p90:.3} get_mean_ms={mean:.3} \
         body_bytes={body_bytes} cached_views={} cached_tables={} table_kib={}",
        args.methods,
        read.len(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        stats.views,
        stats.tables,
        stats.table_bytes >> 10,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
