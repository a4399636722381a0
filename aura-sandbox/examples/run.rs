//! Runs one method from a Python file in a sandbox and prints the outcome as JSON.
//!
//! ```text
//! cargo run -q -p aura-sandbox --example run -- --backend jail method.py --call fib --args '[10]'
//! ```
//!
//! Every other top-level `def` of the file is visible as `self.<name>(…)`. No guard
//! runs in front of the sandbox. With `--repeat N` the call runs once to warm up, then
//! N more times, and the printed outcome (the last one) gains `p50_ms` and `p99_ms`.
//! With `--batch N` each call is one `execute_batch` of N candidates: the method with
//! a different trailing comment each, and new ones each time (sources the jail's code
//! cache has not seen, as a search's candidates),
//! and the printed outcome (the first of the last batch) gains `batch`, `succeeded`
//! (how many of the batch did), and, with `--repeat`, the percentiles per batch and
//! `test_runs_per_s`: candidates × their tests (or 1 for a call) per second.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use aura_sandbox::{DynSandbox, ExecRequest, JailSandbox, MethodSource};
use clap::{Parser, ValueEnum};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// The embedded namespace jail (warm fork-server).
    Jail,
    /// One Docker container per call (needs the `docker` feature and a running engine).
    Docker,
}

/// Run a method from FILE in an AURA sandbox and print the outcome as JSON.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Which sandbox backend runs the call.
    #[arg(long, value_enum, default_value = "jail")]
    backend: Backend,
    /// The Python file holding `def SELECTOR(self, …)` (and any helper methods).
    file: PathBuf,
    /// The method to call.
    #[arg(long = "call", value_name = "SELECTOR")]
    selector: String,
    /// Positional arguments, a JSON array.
    #[arg(long, default_value = "[]")]
    args: String,
    /// The object's slots, a JSON object.
    #[arg(long, default_value = "{}")]
    slots: String,
    /// A test module to run against the method instead of calling it.
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// Time N warm calls and report p50_ms and p99_ms.
    #[arg(long, value_name = "N")]
    repeat: Option<usize>,
    /// Run each call as one batch of N candidates (`execute_batch`).
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// The interpreter for the jail (default: AURA_SANDBOX_PYTHON, else python3 on PATH).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Wall-clock limit in milliseconds.
    #[arg(long, default_value_t = 5000)]
    wall_ms: u64,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

async fn sandbox(cli: &Cli) -> aura_sandbox::Result<DynSandbox> {
    match cli.backend {
        Backend::Jail => {
            let mut b = aura_sandbox::JailSandboxBuilder::from_env();
            if let Some(p) = &cli.python {
                b = b.python(p);
            }
            let jail: JailSandbox = b.build()?;
            Ok(std::sync::Arc::new(jail))
        }
        #[cfg(feature = "docker")]
        Backend::Docker => Ok(std::sync::Arc::new(
            aura_sandbox::DockerSandbox::from_env().await?,
        )),
        #[cfg(not(feature = "docker"))]
        Backend::Docker => Err(aura_sandbox::Error::Unavailable(
            "built without the `docker` feature: add --features docker".into(),
        )),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let source = std::fs::read_to_string(&cli.file)
        .unwrap_or_else(|e| fail(format!("{}: {e}", cli.file.display())));
    let args: Vec<Value> = serde_json::from_str(&cli.args)
        .unwrap_or_else(|e| fail(format!("--args must be a JSON array: {e}")));
    let slots: Map<String, Value> = serde_json::from_str(&cli.slots)
        .unwrap_or_else(|e| fail(format!("--slots must be a JSON object: {e}")));
    let tests = cli.tests.as_ref().map(|p| {
        std::fs::read_to_string(p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())))
    });
    let helpers = source
        .lines()
        .filter_map(|l| l.strip_prefix("def ")?.split('(').next())
        .map(str::trim)
        .filter(|name| *name != cli.selector)
        .map(|name| MethodSource {
            selector: name.to_string(),
            source: source.clone(),
        })
        .collect();
    let mut request = ExecRequest::call(
        MethodSource {
            selector: cli.selector.clone(),
            source: source.clone(),
        },
        args,
    );
    request.helpers = helpers;
    request.slots = slots;
    request.tests = tests;
    request.limits.wall = std::time::Duration::from_millis(cli.wall_ms);

    let sb = sandbox(&cli).await.unwrap_or_else(|e| fail(e));
    // One call (or batch): its outcomes.
    let once = |round: usize| {
        let batch: Option<Vec<ExecRequest>> = cli.batch.map(|n| {
            (0..n)
                .map(|i| {
                    let mut r = request.clone();
                    r.method.source = format!("{}\n# candidate {round}.{i}\n", r.method.source);
                    r
                })
                .collect()
        });
        let (sb, request) = (&sb, &request);
        async move {
            match batch {
                Some(b) => sb.execute_batch(b).await,
                None => sb.execute(request.clone()).await.map(|o| vec![o]),
            }
            .unwrap_or_else(|e| fail(e))
        }
    };
    let mut outcomes = once(0).await;
    let mut timings = Vec::new();
    for round in 1..=cli.repeat.unwrap_or(0) {
        let t = Instant::now();
        outcomes = once(round).await;
        timings.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let Some(outcome) = outcomes.first() else {
        fail("an empty batch")
    };
    let mut json = serde_json::to_value(outcome).unwrap_or_else(|e| fail(e));
    if let Some(obj) = json.as_object_mut() {
        if let Some(n) = cli.batch {
            obj.insert("batch".into(), n.into());
            let ok = outcomes.iter().filter(|o| o.succeeded()).count();
            obj.insert("succeeded".into(), ok.into());
        }
        if cli.repeat.is_some() {
            let runs: usize = outcomes.iter().map(|o| o.tests.len().max(1)).sum();
            let total_s = timings.iter().sum::<f64>() / 1000.0;
            timings.sort_by(f64::total_cmp);
            obj.insert("p50_ms".into(), percentile(&timings, 0.50).into());
            obj.insert("p99_ms".into(), percentile(&timings, 0.99).into());
            if cli.batch.is_some() && total_s > 0.0 {
                let per_s = (runs * timings.len()) as f64 / total_s;
                obj.insert("test_runs_per_s".into(), per_s.round().into());
            }
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json).unwrap_or_else(|e| fail(e))
    );
}
