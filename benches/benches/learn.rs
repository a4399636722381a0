//! The learn cycle's own cost and a call of a learned method, on the jail.
//!
//! Goals: learn-cycle overhead excluding model time (the guard, the sandbox runs and
//! the commit) at most 30 ms median (issue #7), and at most 30 ms per candidate
//! checked when the search draws 16 (issue #16: the second bench; divide its time by
//! 16); calling an already-learned method through `Runtime::send` at most 3 ms median
//! on the jail. The model is an instant scripted one, so the learn figures are
//! everything but model time (the cascade's bookkeeping and grounding included).
//!
//! With `--features otel`, the search of 16 runs a second time with the OTLP exporter
//! installed (batch processor, protobuf over HTTP to a receiver in this process that
//! accepts and drops every export): the difference is what tracing costs a cycle
//! (README, "Traces (OpenTelemetry)"). It runs last, since it installs the process's
//! subscriber for good.
#![allow(missing_docs)]
#![allow(clippy::expect_used)] // bench setup: a failed fixture should stop the bench loudly

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_core::cognition::{CascadeMode, ChatRequest, ContextIngestorBuilder, ScriptedModel};
use aura_core::sandbox::JailSandbox;
use aura_core::store::NewObject;
use aura_core::{Config, LearnRequest, Learned, Runtime};
use aura_store::SqliteStore;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

/// A runtime on a fresh SQLite store and the jail, with `model` and no context
/// providers (nothing but the cycle itself is measured).
fn runtime(
    rt: &tokio::runtime::Runtime,
    name: &str,
    model: ScriptedModel,
    config: Config,
) -> Runtime {
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("aura-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(dir.join("store.sqlite"))
                .await
                .expect("store"),
        );
        Runtime::builder()
            .config(config)
            .store(store)
            .sandbox(Arc::new(
                JailSandbox::builder()
                    .python("/usr/bin/python3")
                    .build()
                    .expect("jail"),
            ))
            .model(Arc::new(model))
            .context(Arc::new(
                ContextIngestorBuilder::from_vars(|_| None).build(),
            ))
            .build()
            .await
            .expect("runtime")
    })
}

/// Times `iters` learns of `request`, each on a fresh object (`<name><n>`), the
/// object's creation excluded; `check` sees each outcome.
async fn time_learns(
    runtime: &Runtime,
    counter: &AtomicUsize,
    iters: u64,
    name: &str,
    request: &LearnRequest,
    check: impl Fn(aura_core::Result<Learned>),
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let object = runtime
            .create_object(NewObject::named(format!("{name}{n}")))
            .await
            .expect("object");
        let started = Instant::now();
        let outcome = runtime.learn(object.id, request.clone()).await;
        spent += started.elapsed();
        check(outcome);
    }
    spent
}

fn single_mode() -> Config {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config
}

fn learn(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let model = ScriptedModel::from_fn(|_req: &ChatRequest| {
        Ok(json!({
            "source": "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
            "tests": "def test_ten():\n    assert obj.fibonacci(10) == 55\n\ndef test_zero():\n    assert obj.fibonacci(0) == 0\n",
            "doc": "the n-th Fibonacci number",
            "rationale": "iterative",
        })
        .to_string())
    });
    let runtime = runtime(&rt, "learn", model, single_mode());

    let counter = AtomicUsize::new(0);
    let request = LearnRequest {
        selector: "fibonacci".into(),
        request_text: "teach yourself to calculate the fibonacci sequence".into(),
        args: vec![],
    };
    c.bench_function(
        "learn: one cycle minus model time (guard + jail tests + commit)",
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                time_learns(&runtime, &counter, iters, "learner", &request, |outcome| {
                    outcome.expect("learned");
                })
            })
        },
    );

    let calc = rt.block_on(async {
        let calc = runtime
            .create_object(NewObject::named("calc"))
            .await
            .expect("object");
        let value = runtime
            .send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .expect("learn and call");
        assert_eq!(value, json!(55));
        calc
    });
    c.bench_function("send: a learned method through the jail", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .send(calc.id, "fibonacci", vec![json!(20)])
                .await
                .expect("call")
        })
    });
}

/// Sixteen candidates that all pass their own asserts and no two of which agree: the
/// search checks every one (guard, normaliser, sandbox on the probe inputs) and then
/// refuses. The time divided by 16 is the overhead per candidate checked.
fn search_of_16(c: &mut Criterion) {
    search(
        c,
        "search16",
        "a search of 16 candidates minus model time (refused)",
    );
}

/// The search of 16 with every span exported over OTLP.
#[cfg(feature = "otel")]
fn search_of_16_traced(c: &mut Criterion) {
    use aura_gateway::telemetry::{Telemetry, TelemetryConfig};
    use tracing_subscriber::layer::SubscriberExt as _;
    let telemetry = Telemetry::start(TelemetryConfig::new(format!("{}/v1/traces", otlp_sink())))
        .expect("an exporter");
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::set_global_default(subscriber).expect("the process's first subscriber");
    search(
        c,
        "search16-traced",
        "a search of 16 candidates minus model time, traced over OTLP (refused)",
    );
    telemetry.force_flush().expect("the sink took the spans");
}

/// An OTLP/HTTP receiver that accepts every export and keeps nothing, on a thread and
/// runtime of its own; its base URL.
#[cfg(feature = "otel")]
fn otlp_sink() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("sink runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("sink port");
            tx.send(listener.local_addr().expect("sink address"))
                .expect("send");
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(|_body: axum::body::Bytes| async { "" }),
            );
            axum::serve(listener, app).await.expect("sink");
        });
    });
    format!("http://{}", rx.recv().expect("the sink's address"))
}

/// The search of 16 as bench `name`, on a store of its own (`store`).
fn search(c: &mut Criterion, store: &str, name: &str) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let draws = AtomicUsize::new(0);
    let model = ScriptedModel::from_fn(move |_req: &ChatRequest| {
        let k = draws.fetch_add(1, Ordering::Relaxed) + 2;
        Ok(format!(
            "```python\ndef scale(n):\n    return n * {k}\n\nassert scale(1) == {k}\n```\n"
        ))
    });
    let mut config = single_mode();
    config.learn_samples = 16;
    config.learn_budget = Duration::from_secs(600);
    let runtime = runtime(&rt, store, model, config);
    let counter = AtomicUsize::new(0);
    let request = LearnRequest {
        selector: "scale".into(),
        request_text: "teach yourself to scale a number".into(),
        args: vec![],
    };
    let mut group = c.benchmark_group("learn");
    // Each iteration is sixteen sandbox runs: ten samples keep the bench short.
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.to_async(&rt).iter_custom(|iters| {
            time_learns(&runtime, &counter, iters, "scaler", &request, |outcome| {
                assert!(
                    outcome.is_err(),
                    "no two candidates agree: the search refuses"
                );
            })
        })
    });
    group.finish();
}

#[cfg(not(feature = "otel"))]
criterion_group!(benches, learn, search_of_16);
#[cfg(feature = "otel")]
criterion_group!(benches, learn, search_of_16, search_of_16_traced);
criterion_main!(benches);
