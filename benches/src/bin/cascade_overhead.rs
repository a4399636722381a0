//! Orchestration overhead of the full cascade on the embedded model (issue #6: ≤ 5 %).
//!
//! Runs full-cascade cycles for one learn mandate on the local GGUF model, grounded in a
//! SQLite store of 10 000 memory nodes, and prints each cycle's packet timings: model
//! time, grounding, context, and the rest — the cascade's own orchestration — as a share
//! of the wall time.
//!
//! ```sh
//! cargo run --release -p aura-benches --bin cascade_overhead -- [cycles]
//! ```
#![allow(clippy::expect_used)] // a measurement tool: a failed setup should stop it loudly

use std::sync::Arc;

use aura_core::cognition::{
    Cascade, CascadeMode, CascadeRun, LearnMandate, LocalModel, RunOptions,
};
use aura_core::StoreGrounding;
use serde_json::json;

#[tokio::main]
async fn main() {
    let cycles: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let model = LocalModel::from_env().expect("the local model (run scripts/setup.sh)");
    let store = aura_benches::memory_store(10_000).await;
    let cascade = Cascade::builder(Arc::new(model))
        .mode(CascadeMode::Full)
        .grounding(Arc::new(StoreGrounding::new(store)))
        .build();
    let mandate = LearnMandate::new("calc", "fibonacci", json!([10]))
        .with_request("teach yourself to calculate the fibonacci sequence");

    println!("cycle     total ms   model ms  ground ms  orchestr ms  overhead");
    let mut ratios = Vec::new();
    for cycle in 1..=cycles {
        let CascadeRun { packet, result: _ } = cascade.run(&mandate, RunOptions::default()).await;
        let t = &packet.timing;
        ratios.push(t.overhead_ratio());
        println!(
            "{cycle:>5} {:>12.1} {:>10.1} {:>10.2} {:>12.2} {:>8.3} %",
            t.total_us as f64 / 1e3,
            t.model_us as f64 / 1e3,
            t.grounding_us as f64 / 1e3,
            t.orchestration_us as f64 / 1e3,
            t.overhead_ratio() * 100.0,
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median orchestration overhead: {:.3} % of wall time (goal ≤ 5 %)",
        ratios[ratios.len() / 2] * 100.0
    );
}
