//! The everyday learn suite: plain-language requests, each told to a fresh object
//! on a fresh store exactly as a user would ("teach yourself to …"), then checked by
//! hidden calls the learn cycle never saw (`benches/data/everyday.json`).
//!
//! Per request and in total it reports: learned correctly, committed but wrong (a
//! method that fails a hidden check: the worst outcome), refused, the seconds taken,
//! and whether the method got the name a person would guess.
//!
//! ```sh
//! cargo run --release -p aura-benches --bin learn_suite -- --help
//! cargo run --release -p aura-benches --bin learn_suite -- --limit 10 --seed 1
//! ```
//! The model is the runtime's default (the embedded GGUF model, `AURA_MODEL_PATH`);
//! the sandbox is the default jail (`AURA_SANDBOX_PYTHON=/usr/bin/python3` is faster).
#![allow(clippy::expect_used)] // a measurement tool: a failed setup should stop it loudly

use std::path::PathBuf;
use std::time::Instant;

use aura_benches::suite::{self, AdapterArgs, Case, Tally};
use aura_benches::JsonLines;
use aura_core::cognition::CascadeMode;
use aura_core::forge::trail::{LearnAttemptFailed, LearnCommitted, Payload};
use aura_core::store::{AuditEvent, AuditQuery};
use aura_core::{Config, Runtime};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

/// The everyday learn suite on the embedded model.
#[derive(Debug, Parser)]
#[command(about = "AURA's everyday learn suite: requests in plain words, scored by hidden checks")]
struct Args {
    /// The suite file.
    #[arg(long, default_value = suite::EVERYDAY)]
    data: PathBuf,
    /// Requests to run (all by default).
    #[arg(long)]
    limit: Option<usize>,
    /// Skip the first N requests.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// single: ALFRED alone samples; full: each sample is a whole cascade cycle.
    #[arg(long, value_enum, default_value_t = Mode::Single)]
    mode: Mode,
    /// Candidates drawn per learn at most [default: AURA_LEARN_SAMPLES or 10].
    #[arg(long)]
    samples: Option<u32>,
    /// Seed of the first sample of each learn (repeatable runs).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write every request's result here, as JSON lines.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print each candidate's verdict and reply from the audit trail.
    #[arg(long)]
    verbose: bool,
    /// Also write every drawn candidate (normalised source, verdict) with the
    /// request's hidden checks here, as JSON lines: for studying the search offline.
    #[arg(long)]
    candidates: Option<PathBuf>,
    /// Give each missed request one example, as a person would after a refusal or a
    /// wrong answer: the first hidden check, told as "name(args) == value"; the
    /// other checks then score it (a second tally).
    #[arg(long)]
    answer: bool,
    #[command(flatten)]
    adapter: AdapterArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Full,
    Single,
}

/// Each learn event's verdict, the model's time and the candidate's first lines.
async fn print_trail(rt: &Runtime) {
    for e in learn_events(rt).await {
        let p = &e.payload;
        let model_ms = p["packet"]["timing"]["model_us"].as_u64().unwrap_or(0) / 1000;
        let tokens: u64 = p["packet"]["contributions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["usage"]["completion_tokens"].as_u64())
                    .sum()
            })
            .unwrap_or(0);
        let verdict = if let Some(failed) = LearnAttemptFailed::read(&e) {
            format!("{}: {}", failed.failure.stage, failed.failure.message)
        } else if let Some(committed) = LearnCommitted::read(&e) {
            let reason = committed.packet.selection.map(|s| s.reason);
            format!("committed: {}", reason.unwrap_or_default())
        } else {
            e.kind.clone()
        };
        println!("      · {model_ms} ms, {tokens} tokens · {verdict}");
        let source = p["candidate"]["source"].as_str().unwrap_or("");
        for line in source.lines().take(8) {
            println!("          | {line}");
        }
    }
}

/// The candidate pools the learn cycles recorded (on commit or refusal).
async fn pools(rt: &Runtime) -> Vec<Value> {
    learn_events(rt)
        .await
        .into_iter()
        .filter_map(|e| e.payload.get("candidates").cloned())
        .collect()
}

/// The learn cycle's audit events on this (single-request) store, oldest first.
async fn learn_events(rt: &Runtime) -> Vec<AuditEvent> {
    let query = AuditQuery {
        kind: Some("learn.*".into()),
        limit: Some(200),
        ..AuditQuery::default()
    };
    rt.store()
        .query_audit(&query)
        .await
        .map(|page| page.events)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let suite = suite::load_or_exit(&args.data);
    let cases: Vec<&Case> = suite
        .iter()
        .skip(args.offset)
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();

    let mut config = Config::from_env();
    config.store_path = PathBuf::from(":memory:");
    config.forge.on_stagnation = false;
    config.cascade_mode = Some(match args.mode {
        Mode::Full => CascadeMode::Full,
        Mode::Single => CascadeMode::Single,
    });
    if let Some(n) = args.samples {
        config.learn_samples = n;
    }
    // The model and the jail load once; each request gets a fresh in-memory store.
    let first = args
        .adapter
        .serve(Runtime::builder().config(config.clone()).without_forge())
        .build()
        .await
        .expect("runtime");
    let model = first.model().cloned().expect(
        "no model: install the embedded model with scripts/setup.sh (or set AURA_MODEL_PATH)",
    );
    let sandbox = first.sandbox().clone();
    println!(
        "everyday learn suite: {} requests, model {}, mode {:?}, up to {} samples per learn\n",
        cases.len(),
        model.describe(),
        config.cascade_mode,
        config.learn_samples
    );
    let mut out = JsonLines::create(args.out.as_deref(), "--out");
    let mut candidates_out = JsonLines::create(args.candidates.as_deref(), "--candidates");
    let mut tally = Tally::default();
    let mut answered = Tally::default();
    let mut named = 0;
    let started = Instant::now();
    for (i, case) in cases.iter().enumerate() {
        let mut config = config.clone();
        // Seeded by the request's place in the whole suite, so that `--offset` reruns
        // one request exactly as the full run drew it.
        config.learn_seed = args.seed.map(|s| suite::request_seed(s, i + args.offset));
        let outcome = suite::run_case(&config, &model, &sandbox, case).await;
        let (status, selector, detail) = (outcome.status, &outcome.selector, &outcome.detail);
        if args.verbose {
            print_trail(&outcome.runtime).await;
        }
        // The trail is read for candidates only when they are kept.
        if args.candidates.is_some() {
            for pool in pools(&outcome.runtime).await {
                candidates_out.write(&json!({
                    "request": case.request, "name": case.name, "status": status.label(),
                    "checks": case.checks, "selector": selector, "pool": pool,
                }));
            }
        }
        tally.add(status, outcome.elapsed);
        if *selector == case.name {
            named += 1;
        }
        println!(
            "{:>3} {:<8} {:>6.1}s  {:<28} {}{}",
            i + 1 + args.offset,
            status.label(),
            outcome.elapsed.as_secs_f64(),
            selector,
            case.request,
            if detail.is_empty() {
                String::new()
            } else {
                format!("\n                 ↳ {detail}")
            }
        );
        let mut record = json!({
            "request": case.request, "expected_name": case.name, "selector": selector,
            "status": status.label(), "seconds": outcome.elapsed.as_secs_f64(), "detail": detail,
        });
        if args.answer {
            match suite::answer(&outcome, case).await {
                Some((second, example, why, took)) => {
                    answered.add(second, outcome.elapsed + took);
                    println!(
                        "                 ↳ told `{example}`: {} ({:.1}s){}",
                        second.label(),
                        took.as_secs_f64(),
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" {why}")
                        }
                    );
                    record["answer"] = json!({
                        "example": example, "status": second.label(),
                        "seconds": took.as_secs_f64(), "detail": why,
                    });
                }
                None => answered.add(status, outcome.elapsed),
            }
        }
        out.write(&record);
    }
    println!(
        "\n{} · named as a person would guess {named}/{}",
        tally.summary(),
        cases.len()
    );
    if args.answer {
        println!(
            "with one example for each miss: {} · median {:.1} s per request",
            answered.summary(),
            answered.median_seconds()
        );
    }
    println!(
        "median {:.1} s per learn · total {:.0} s",
        tally.median_seconds(),
        started.elapsed().as_secs_f64()
    );
}
