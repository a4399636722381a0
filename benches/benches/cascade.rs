//! The cascade's own cost, with the models taken out.
//!
//! Goals (issue #6): grounding retrieval per step ≤ 5 ms median with 10 000 memory nodes
//! on the SQLite store; orchestration overhead ≤ 5 % of the cascade's wall time on the
//! embedded model. The second needs the real model's time as the denominator: this bench
//! measures the numerator (a whole full-cascade cycle with an instant scripted model,
//! i.e. everything but model time), and `cargo run --release -p aura-benches --bin
//! cascade_overhead` measures the share on the embedded model from the packet's timings.
#![allow(missing_docs)]
#![allow(clippy::expect_used)] // bench setup: a failed fixture should stop the bench loudly

use std::sync::Arc;

use aura_core::cognition::{
    Cascade, CascadeMode, CascadeRun, ChatRequest, Grounding, LearnMandate, RunOptions,
    ScriptedModel,
};
use aura_core::StoreGrounding;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const NODES: usize = 10_000;

fn candidate() -> String {
    json!({
        "source": "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "tests": "def test_ten():\n    assert obj.fibonacci(10) == 55\n",
        "doc": "the n-th Fibonacci number",
        "rationale": "iterative",
    })
    .to_string()
}

fn cascade(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let store = rt.block_on(aura_benches::memory_store(NODES));
    let grounding = Arc::new(StoreGrounding::new(store));

    let query = "fibonacci calculate sequence teach";
    let hits = rt.block_on(grounding.ground(query, 3)).expect("ground");
    assert_eq!(hits.len(), 3, "the corpus has matches to rank");
    c.bench_function(
        "grounding: one step's retrieval, 10k memory nodes (SQLite FTS5)",
        |b| {
            b.to_async(&rt)
                .iter(|| async { grounding.ground(query, 3).await.expect("ground") })
        },
    );

    let model = ScriptedModel::from_fn(|req: &ChatRequest| {
        Ok(if req.schema.is_some() {
            candidate()
        } else {
            "Deconstruct: iterate, keeping the last two numbers.".into()
        })
    });
    let full = Cascade::builder(Arc::new(model))
        .mode(CascadeMode::Full)
        .grounding(grounding.clone())
        .build();
    let mandate = LearnMandate::new("calc", "fibonacci", json!([10]))
        .with_request("teach yourself to calculate the fibonacci sequence");
    c.bench_function(
        "cascade: full cycle minus model time (4 personas, 5 grounding rounds, 10k nodes)",
        |b| {
            b.to_async(&rt).iter(|| async {
                let CascadeRun { packet, result } = full.run(&mandate, RunOptions::default()).await;
                result.expect("candidate");
                packet
            })
        },
    );
}

criterion_group!(benches, cascade);
criterion_main!(benches);
