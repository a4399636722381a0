//! Learn suites: plain-language requests with hidden checks, each told to a fresh
//! object on a fresh in-memory store exactly as a user would, then called with inputs
//! the learn cycle never saw. `learn_suite` (the everyday suite) and `forge_round`
//! (the forge's curriculum) both score learning this way.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_core::cognition::{
    python_args, python_literal, DynLanguageModel, LocalModelBuilder, Plan,
};
use aura_core::sandbox::DynSandbox;
use aura_core::store::{NewObject, ObjectId};
use aura_core::{Config, Runtime, RuntimeBuilder};
use serde::Deserialize;
use serde_json::Value;

/// The embedded model, with a GGUF LoRA adapter at a scale when one is given (a forge
/// round's facet, measured before any promotion).
pub fn embedded_model(adapter: Option<(&Path, f32)>) -> Result<DynLanguageModel, String> {
    let mut builder = LocalModelBuilder::from_env();
    if let Some((path, scale)) = adapter {
        builder = builder.lora(path, scale);
    }
    let model = builder.build().map_err(|e| {
        format!("the embedded model (scripts/setup.sh installs it) with {adapter:?}: {e}")
    })?;
    Ok(Arc::new(model))
}

/// `--adapter FILE [--adapter-scale S]`: serve the embedded model with a forge round's
/// LoRA adapter, to measure a facet before any promotion.
#[derive(Debug, clap::Args)]
pub struct AdapterArgs {
    /// Serve the embedded model with this GGUF LoRA adapter (a forge round's
    /// `round-N/adapter/adapter.gguf`), to measure a facet before promoting it.
    #[arg(long)]
    adapter: Option<std::path::PathBuf>,
    /// The adapter's scale (1 is as trained).
    #[arg(long, default_value_t = 1.0, requires = "adapter")]
    adapter_scale: f32,
}

impl AdapterArgs {
    /// `builder` serving the adapted model when an adapter was named; otherwise as it
    /// was, to load its default model itself (so the base is never loaded for nothing).
    pub fn serve(&self, builder: RuntimeBuilder) -> RuntimeBuilder {
        match &self.adapter {
            Some(path) => builder.model(
                embedded_model(Some((path, self.adapter_scale)))
                    .expect("the embedded model with the adapter"),
            ),
            None => builder,
        }
    }
}

/// One request and its hidden checks.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// What the user says ("teach yourself to …").
    pub request: String,
    /// The method name a person would guess.
    pub name: String,
    /// `[args, expected]` pairs.
    pub checks: Vec<(Vec<Value>, Value)>,
    /// `train` or `held_out` (the curriculum's split by task; absent in the everyday suite).
    #[serde(default)]
    pub split: Option<String>,
}

/// The everyday suite, found from any working directory.
pub const EVERYDAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/everyday.json");

/// The forge's curriculum, found from any working directory.
pub const CURRICULUM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/curriculum.json");

/// [`load`], or a one-line error and exit status 2: a suite that cannot be read is a
/// usage error to report, not a crash to trace.
pub fn load_or_exit(path: &Path) -> Vec<Case> {
    load(path).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    })
}

/// Reads a suite file: the everyday suite's `requests` or the curriculum's `tasks`.
pub fn load(path: &Path) -> Result<Vec<Case>, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(alias = "tasks")]
        requests: Vec<Case>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: File = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a suite: {e}", path.display()))?;
    Ok(file.requests)
}

impl Case {
    /// Why this case cannot score anything (no checks, a check whose arguments are not
    /// a list), or `None`: a broken task is reported and skipped, never trained on.
    pub fn defect(&self) -> Option<String> {
        if self.request.trim().is_empty() {
            return Some("the request is empty".into());
        }
        if self.checks.is_empty() {
            return Some(format!("`{}` has no checks", self.request));
        }
        let arity = self.checks[0].0.len();
        self.checks
            .iter()
            .any(|(args, _)| args.len() != arity)
            .then(|| {
                format!(
                    "`{}` has checks with different numbers of arguments",
                    self.request
                )
            })
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Learned, and every hidden check passes.
    Correct,
    /// Committed, but a hidden check fails: the worst outcome.
    Wrong,
    /// Nothing was committed.
    Refused,
}

/// The seed of the `index`-th request's first sample in a run seeded with `seed`:
/// every suite derives it this way, so the same request under the same seed draws the
/// same samples in `learn_suite` and in `forge_round`.
pub fn request_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add(index as u64 * 1000)
}

impl Status {
    /// The status a [`Status::label`] names (anything else is a refusal).
    pub fn from_label(label: &str) -> Self {
        match label {
            "correct" => Self::Correct,
            "WRONG" => Self::Wrong,
            _ => Self::Refused,
        }
    }

    /// As the suites print it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Correct => "correct",
            Self::Wrong => "WRONG",
            Self::Refused => "refused",
        }
    }
}

/// The outcome of one request.
#[derive(Debug)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The selector the request was planned as ("" when it failed before planning).
    pub selector: String,
    /// The refusal's first line or the failing check.
    pub detail: String,
    /// Wall time of the learn.
    pub elapsed: Duration,
    /// The runtime that learned it: its store holds the request's audit trail.
    pub runtime: Runtime,
    /// The object that was told the request.
    pub object: ObjectId,
}

/// Numbers by value (a float within 1e-6), containers element by element.
pub fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            (a - b).abs() <= 1e-6 * b.abs().max(1.0)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Tells `case.request` to a fresh object on a fresh in-memory store served by `model`
/// and `sandbox`, then runs the hidden checks on what was learned.
pub async fn run_case(
    config: &Config,
    model: &DynLanguageModel,
    sandbox: &DynSandbox,
    case: &Case,
) -> Outcome {
    let mut config = config.clone();
    config.store_path = ":memory:".into();
    config.forge.on_stagnation = false;
    let rt = Runtime::builder()
        .config(config)
        .model(model.clone())
        .sandbox(sandbox.clone())
        .without_forge()
        .build()
        .await
        .expect("runtime on an in-memory store");
    let object = rt
        .create_object(NewObject::named("pupil"))
        .await
        .expect("object");
    let started = Instant::now();
    let reply = rt.tell(object.id, &case.request).await;
    let elapsed = started.elapsed();
    let (status, selector, detail) = match reply {
        Err(e) => (Status::Refused, String::new(), e.to_string()),
        Ok(r) => {
            let selector = match &r.plan {
                Plan::Learn { selector, .. } => selector.clone(),
                other => format!("{other:?}"),
            };
            if r.refused || !matches!(r.plan, Plan::Learn { .. }) {
                let first = r.text.lines().next().unwrap_or("").to_string();
                (Status::Refused, selector, first)
            } else {
                let (status, detail) = run_checks(&rt, object.id, &selector, &case.checks).await;
                (status, selector, detail)
            }
        }
    };
    Outcome {
        status,
        selector,
        detail,
        elapsed,
        runtime: rt,
        object: object.id,
    }
}

/// Calls the learned method with each check's arguments: correct when every result
/// is the one wanted, wrong (with the first that is not) otherwise.
async fn run_checks(
    rt: &Runtime,
    object: ObjectId,
    selector: &str,
    checks: &[(Vec<Value>, Value)],
) -> (Status, String) {
    for (args, want) in checks {
        match rt.send(object, selector, args.clone()).await {
            Ok(v) if same(&v, want) => {}
            Ok(v) => {
                return (
                    Status::Wrong,
                    format!("{selector}{args:?} gave {v}, want {want}"),
                )
            }
            Err(e) => return (Status::Wrong, format!("{selector}{args:?} failed: {e}")),
        }
    }
    (Status::Correct, String::new())
}

/// A check told as a person writes an example, and as the planner's example rule and
/// the learn cycle's example reader take it: `count_letter("a b", "a") == 1`.
pub fn example_text(selector: &str, args: &[Value], want: &Value) -> String {
    format!(
        "{selector}({}) == {}",
        python_args(args),
        python_literal(want)
    )
}

/// A missed request's second chance, as a person would give it: the object is told
/// the first hidden check as an example ("fibonacci(10) == 55"), which learns a method
/// the request did not get, or relearns a wrong one; the other checks, which stay
/// hidden, then score it. `None` for a request that was learned correctly, was not
/// planned as a method, or has no check left to score with.
pub async fn answer(outcome: &Outcome, case: &Case) -> Option<(Status, String, String, Duration)> {
    if outcome.status == Status::Correct || outcome.selector.is_empty() || case.checks.len() < 2 {
        return None;
    }
    let (args, want) = &case.checks[0];
    let example = example_text(&outcome.selector, args, want);
    let started = Instant::now();
    let reply = outcome.runtime.tell(outcome.object, &example).await;
    let elapsed = started.elapsed();
    // A refused relearn leaves the wrong method in place: it is scored, not counted
    // as a refusal.
    let (status, detail) = match reply {
        Err(e) if outcome.status == Status::Refused => (Status::Refused, e.to_string()),
        Ok(r) if r.refused && outcome.status == Status::Refused => (
            Status::Refused,
            r.text.lines().next().unwrap_or("").to_string(),
        ),
        _ => {
            run_checks(
                &outcome.runtime,
                outcome.object,
                &outcome.selector,
                &case.checks[1..],
            )
            .await
        }
    };
    Some((status, example, detail, elapsed))
}

/// Totals over a suite run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Tally {
    /// Requests run.
    pub requests: usize,
    /// Learned correctly.
    pub correct: usize,
    /// Committed but wrong.
    pub wrong: usize,
    /// Refused.
    pub refused: usize,
    /// Seconds per learn, in the order run.
    pub seconds: Vec<f64>,
}

impl Tally {
    /// Counts one outcome.
    pub fn add(&mut self, status: Status, elapsed: Duration) {
        self.requests += 1;
        match status {
            Status::Correct => self.correct += 1,
            Status::Wrong => self.wrong += 1,
            Status::Refused => self.refused += 1,
        }
        self.seconds.push(elapsed.as_secs_f64());
    }

    /// Learned correctly, in percent of the requests.
    pub fn learn_rate(&self) -> f64 {
        100.0 * self.correct as f64 / self.requests.max(1) as f64
    }

    /// Committed but wrong, in percent of the commits.
    pub fn wrong_rate(&self) -> f64 {
        let commits = self.correct + self.wrong;
        if commits == 0 {
            0.0
        } else {
            100.0 * self.wrong as f64 / commits as f64
        }
    }

    /// The median seconds per learn.
    pub fn median_seconds(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(0.0)
    }

    /// "learned correctly 29/45 (64 %) · committed but wrong 3 (9.4 % of 32 commits) · refused 13".
    pub fn summary(&self) -> String {
        format!(
            "learned correctly {}/{} ({:.0} %) · committed but wrong {} ({:.1} % of {} commits) · refused {}",
            self.correct,
            self.requests,
            self.learn_rate(),
            self.wrong,
            self.wrong_rate(),
            self.correct + self.wrong,
            self.refused
        )
    }
}
