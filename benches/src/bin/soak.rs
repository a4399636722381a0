//! A soak of the gateway at library size (issue #27): opt-in, never part of CI.
//!
//! ```text
//! cargo build --release -p aura-benches --bin soak
//! target/release/soak --minutes 10 --objects 10000 --methods 10000 --csv soak.csv
//! ```
//!
//! It fills a fresh SQLite store with `--methods` methods on `genesis` and `--objects`
//! objects, serves it with the real gateway on loopback over the real jail and the
//! scripted model, and runs `--clients` clients for `--minutes`, each looping over a mixed
//! workload: read an object (60 %), call a method (15 %), create an object (10 %), tell
//! an object something in words (10 %) and define a method on `genesis` (5 %). Every
//! second it writes the process's resident memory to the CSV (`elapsed_s,rss_kib,
//! requests,errors`), and at the end draws it as a PNG beside the CSV (`soak.png`) and
//! prints the growth after the first minute. Goal: ≤ 10 %.
#![allow(clippy::expect_used)] // a measurement: a failed setup should stop it loudly

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_benches::plot::{line_chart, Chart, Series};
use aura_benches::{rss_kib, scripted_runtime, Dice};
use aura_core::store::{NewObject, StoreExt};
use aura_gateway::{Gateway, GatewayConfig};
use aura_store::{NewMethod, Provenance};
use clap::Parser;
use serde_json::json;

/// Runs the gateway under a mixed workload and samples its memory every second.
#[derive(Parser)]
struct Args {
    /// How long the workload runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Objects created before the workload starts.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Methods defined on genesis before the workload starts.
    #[arg(long, default_value_t = 10_000)]
    methods: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Where the samples go.
    #[arg(long, default_value = "soak.csv")]
    csv: PathBuf,
    /// The resolution cache's table bound (`AURA_CACHE_TABLES`); the library's default
    /// when not given.
    #[arg(long)]
    cache_tables: Option<usize>,
}

fn main() {
    // The gateway binary's allocator setting, so the soak measures what it ships with.
    aura_gateway::cap_malloc_arenas();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let dir = std::env::temp_dir().join(format!("aura-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let runtime = scripted_runtime(&dir, |config| {
        if let Some(n) = args.cache_tables {
            config.cache.tables = n;
        }
    })
    .await;
    eprintln!(
        "filling: {} methods on genesis, {} objects",
        args.methods, args.objects
    );
    for i in 0..args.methods {
        let name = format!("skill_{i:05}");
        runtime
            .store()
            .put_method(NewMethod {
                object_id: runtime.root(),
                selector: name.parse().expect("selector"),
                source: format!("def {name}(self, n=0):\n    return n + {i}\n"),
                tests: format!(
                    "def test_{name}(obj):\n    assert obj.{name}(1) == {}\n",
                    i + 1
                ),
                doc: format!("Adds {i} to n."),
                provenance: Provenance::Manual,
                // It calls no other method, as `define_method` would record.
                calls: Some(vec![]),
            })
            .await
            .expect("method");
    }
    for i in 0..args.objects {
        runtime
            .create_object(NewObject::named(format!("soak_{i:06}")))
            .await
            .expect("object");
    }
    runtime.invalidate_all();

    let gateway = Gateway::bind(
        runtime.clone(),
        GatewayConfig::default().addr(([127, 0, 0, 1], 0).into()),
    )
    .await
    .expect("gateway");
    let base = format!("http://{}/v1", gateway.local_addr());
    tokio::spawn(gateway.serve());

    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(args.objects as u64));
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (base, requests, errors, stop, created) = (
            base.clone(),
            requests.clone(),
            errors.clone(),
            stop.clone(),
            created.clone(),
        );
        let methods = args.methods;
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            while !stop.load(Ordering::Relaxed) {
                let known = created.load(Ordering::Relaxed) as usize;
                let object = format!("soak_{:06}", dice.roll(known));
                let request = match dice.roll(100) {
                    0..=59 => http.get(format!("{base}/objects/{object}")),
                    60..=74 => {
                        let selector = format!("skill_{:05}", dice.roll(methods));
                        http.post(format!("{base}/objects/{object}/messages"))
                            .json(&json!({ "selector": selector, "args": [1] }))
                    }
                    75..=84 => {
                        let n = created.fetch_add(1, Ordering::Relaxed);
                        http.post(format!("{base}/objects"))
                            .json(&json!({ "name": format!("soak_{n:06}") }))
                    }
                    85..=94 => http
                        .post(format!("{base}/objects/{object}/messages"))
                        .json(&json!({ "text": "calculate fibonacci for 10" })),
                    _ => {
                        let selector = format!("extra_{}_{}", c, dice.roll(1000));
                        http.put(format!("{base}/objects/genesis/methods/{selector}"))
                            .json(&json!({ "source": format!("def {selector}(self):\n    return 1\n") }))
                    }
                };
                requests.fetch_add(1, Ordering::Relaxed);
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let mut csv = std::fs::File::create(&args.csv).expect("csv");
    writeln!(csv, "elapsed_s,rss_kib,requests,errors").expect("csv");
    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let mut at_one_minute = None;
    let mut last = 0;
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < run_for {
        tick.tick().await;
        let elapsed = started.elapsed().as_secs();
        last = rss_kib();
        samples.push((elapsed as f64, last as f64 / 1024.0));
        if elapsed >= 60 && at_one_minute.is_none() {
            at_one_minute = Some(last);
        }
        writeln!(
            csv,
            "{elapsed},{last},{},{}",
            requests.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        )
        .expect("csv");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let growth = at_one_minute
        .map(|base| format!("{:+.1} %", (last as f64 / base as f64 - 1.0) * 100.0))
        .unwrap_or_else(|| "n/a (ran under a minute)".into());
    let png = args.csv.with_extension("png");
    let chart = Chart {
        title: &format!(
            "AURA gateway soak: {} objects, {} methods on genesis, {} clients",
            args.objects, args.methods, args.clients
        ),
        x_label: "seconds",
        y_label: "resident memory (MiB)",
        log_x: false,
        log_y: false,
    };
    let series = [Series {
        label: "RSS".into(),
        points: samples,
    }];
    if let Err(why) = line_chart(&png, &chart, &series) {
        eprintln!("no chart: {why}");
    }
    // What the bounded caches hold, to tell their filling from other growth.
    let cache = runtime.cache_stats();
    println!(
        "requests={} errors={} rss_end_mib={:.1} growth_after_first_minute={growth} \
         cached_views={} cached_tables={} table_kib={} learn_locks={} csv={}",
        requests.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        last as f64 / 1024.0,
        cache.views,
        cache.tables,
        cache.table_bytes >> 10,
        runtime.learn_lock_count(),
        args.csv.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
