//! The OpenAI-compatible adapter's own cost: `OpenAiModel::chat` against a bare HTTP
//! round trip (reqwest posting the same body and parsing the JSON reply) to the same
//! server. The goal is ≤ 1 ms per call over the raw round trip.
//!
//! Two servers: an in-process axum server that answers a fixed completion at once (so
//! the difference is the adapter alone), and llama-cpp-python's server generating one
//! token of SmolLM2 (the live figure; skipped when `scripts/setup.sh test` has not
//! installed it). Before criterion runs, a summary prints p50 of each path and the
//! overhead, and what a dead primary costs behind a fallback: a server that accepts
//! connections and never answers, with a 1 s timeout, in front of the in-process one
//! (the goal: its timeout once per cool-down, not once per call).
//!
//! Run: `cargo bench -p aura-benches --bench model_http`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_cognition::{
    ChatRequest, FallbackModel, GenerationOptions, LanguageModel, OpenAiModel, OpenAiTestServer,
};
use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

fn request() -> ChatRequest {
    ChatRequest::new("You are terse.", "Say hi.").with_options(GenerationOptions {
        temperature: 0.0,
        seed: Some(1),
        max_tokens: 1,
        stop: Vec::new(),
    })
}

/// The body the adapter sends for [`request`], for the raw round trip.
fn raw_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi."}
        ],
        "temperature": 0.0,
        "max_tokens": 1,
        "seed": 1
    })
}

async fn canned_server() -> String {
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async {
                Json(json!({"object": "list", "data": [{"id": "canned", "object": "model"}]}))
            }),
        )
        .route(
            "/v1/chat/completions",
            post(|Json(_): Json<Value>| async {
                Json(json!({
                    "id": "c", "object": "chat.completion", "created": 0, "model": "canned",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                                 "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

struct Paths {
    name: &'static str,
    url: String,
    model: String,
    adapter: OpenAiModel,
    raw: reqwest::Client,
}

impl Paths {
    fn new(name: &'static str, url: String, model: String) -> Self {
        let adapter = OpenAiModel::builder(url.clone(), model.clone())
            .build()
            .unwrap();
        Self {
            name,
            url,
            model,
            adapter,
            raw: reqwest::Client::new(),
        }
    }

    async fn raw_call(&self) {
        let v: Value = self
            .raw
            .post(format!("{}/chat/completions", self.url))
            .json(&raw_body(&self.model))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    }

    async fn adapter_call(&self) {
        let r = self.adapter.chat(request()).await.unwrap();
        assert!(r.usage.completion_tokens >= 1, "{r:?}");
    }
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// p50 of each path, alternating calls so drift affects both alike.
fn summary(rt: &Runtime, p: &Paths, n: usize) {
    rt.block_on(async {
        p.adapter_call().await; // warm: the connection, the model check
        p.raw_call().await;
        let (mut raw, mut adapter) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let t = Instant::now();
            p.raw_call().await;
            raw.push(t.elapsed());
            let t = Instant::now();
            p.adapter_call().await;
            adapter.push(t.elapsed());
        }
        let (raw, adapter) = (p50(raw), p50(adapter));
        println!(
            "{}: raw round trip p50 {:.3} ms, OpenAiModel::chat p50 {:.3} ms, overhead {:+.3} ms ({n} calls each)",
            p.name,
            raw.as_secs_f64() * 1e3,
            adapter.as_secs_f64() * 1e3,
            (adapter.as_secs_f64() - raw.as_secs_f64()) * 1e3
        );
    });
}

/// 50 calls through `[dead, canned]` with a 30 s cool-down: the first pays the dead
/// server's 1 s timeout, the others go straight to the fallback.
fn dead_primary(rt: &Runtime, canned: &Paths) {
    rt.block_on(async {
        // Accepts connections (the kernel's backlog) and never reads or answers them.
        let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = OpenAiModel::builder(format!("http://{}/v1", hole.local_addr().unwrap()), "m")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let m = FallbackModel::new(
            vec![Arc::new(dead), Arc::new(canned.adapter.clone())],
            Duration::from_secs(30),
        );
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = m.chat(request()).await.unwrap();
            assert_eq!(r.model, "canned");
            times.push(t.elapsed());
        }
        let first = times.remove(0);
        println!(
            "dead primary (1 s timeout, 30 s cool-down): first call {:.0} ms, the next 49 p50 {:.3} ms, slowest {:.3} ms",
            first.as_secs_f64() * 1e3,
            p50(times.clone()).as_secs_f64() * 1e3,
            times.iter().max().unwrap().as_secs_f64() * 1e3
        );
        drop(hole);
    });
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let canned = Paths::new("canned", rt.block_on(canned_server()), "canned".into());
    dead_primary(&rt, &canned);
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..");
    let live_server = OpenAiTestServer::start(&root);
    let live = live_server
        .as_ref()
        .map(|s| Paths::new("llama-cpp-python", s.url().into(), s.model().into()));
    summary(&rt, &canned, 2000);
    if let Some(live) = &live {
        summary(&rt, live, 200);
    }
    for p in std::iter::once(&canned).chain(live.as_ref()) {
        let mut g = c.benchmark_group(format!("openai_{}", p.name.replace('-', "_")));
        g.bench_function("raw_round_trip", |b| b.to_async(&rt).iter(|| p.raw_call()));
        g.bench_function("adapter_chat", |b| {
            b.to_async(&rt).iter(|| p.adapter_call())
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // No plots: plotters finds no font on a headless machine.
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5)).without_plots();
    targets = bench
}
criterion_main!(benches);
