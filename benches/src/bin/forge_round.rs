//! Expert iteration (STaR / ReST-style) for the forge, measured on learning.
//!
//! One round: the serving model attempts the curriculum's training tasks through the
//! real learn cycle (sample and verify, guard, sandbox); only the methods that pass the
//! task's hidden checks are kept. Their learn cycles' `learn.committed` events go into
//! the run's own audit trail, BABS's curation turns ALFRED's chosen replies into a
//! golden dataset, `LocalForge` trains a LoRA adapter on it from the base model, and
//! the forged model is measured against the serving model on the curriculum's held-out
//! tasks and on the everyday suite, with the same search budget and seeds. The facet is
//! then registered in the run's trail with its losses and learn rates, and promoted
//! only when the registry's rule says it learns better (`aura_forge::register`); only a
//! promoted facet samples the next round. Each round redraws `learn-rate.png` and
//! `loss.png` under `--dir`.
//!
//! ```sh
//! AURA_SETUP_FORGE=1 scripts/setup.sh forge     # the trainer's venv, once
//! cargo run --release -p aura-benches --bin forge_round -- --help
//! cargo run --release -p aura-benches --bin forge_round -- --rounds 1
//! ```
//! Everything a round makes stays under `--dir` (`data/forge-rounds` by default):
//! each phase writes its results as it goes, so a run that is killed resumes where
//! it stopped when it is started again with the same flags.
#![allow(clippy::expect_used)] // a measurement tool: a failed setup should stop it loudly

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aura_benches::rounds::{self, RoundFigures};
use aura_benches::suite::{self, Case, Status, Tally};
use aura_core::cognition::plan::{derive_selector, strip_learn_prefix};
use aura_core::cognition::{default_model_path, CascadeMode, DynLanguageModel, Persona};
use aura_core::forge::{
    curate,
    curate::{MANIFEST_FILE, TRAIN_FILE},
    promote, register, CurationConfig, EventKind, FacetRegistration, Forge, LocalForge, LoraConfig,
    Manifest, TrainedAdapter, TrainingJob, UnslothForgeBuilder,
};
use aura_core::sandbox::DynSandbox;
use aura_core::store::{AuditQuery, NewAuditEvent, SqliteStore, StoreExt};
use aura_core::{Config, Runtime};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Expert iteration on the curriculum: sample, keep what passes, train, re-measure.
#[derive(Debug, Parser)]
#[command(
    about = "AURA's forge round: expert iteration on verified methods, measured by learn rate"
)]
struct Args {
    /// The curriculum (tasks with a train / held_out split).
    #[arg(long, default_value = suite::CURRICULUM)]
    curriculum: PathBuf,
    /// The everyday suite, measured before and after.
    #[arg(long, default_value = suite::EVERYDAY)]
    everyday: PathBuf,
    /// Where the rounds keep their files.
    #[arg(long, default_value = "data/forge-rounds")]
    dir: PathBuf,
    /// Rounds to run (each trains from the base model on every round's kept methods).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Optimiser steps per round [default: two passes over the training examples].
    #[arg(long)]
    steps: Option<u32>,
    /// How strongly the forged model applies its adapter (LoRA scale; 1 is as trained).
    #[arg(long, default_value_t = 1.0)]
    adapter_scale: f32,
    /// Learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    rank: u32,
    /// Seed of the first sample of each learn (request i uses seed + 1000 i).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Candidates drawn per learn at most [default: AURA_LEARN_SAMPLES or 10].
    #[arg(long)]
    samples: Option<u32>,
    /// Use only the first N training tasks (quick runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Use only the first N held-out tasks (quick runs).
    #[arg(long)]
    limit_held_out: Option<usize>,
    /// Skip the everyday suite (faster; the round then reports the held-out split only).
    #[arg(long)]
    skip_everyday: bool,
    /// When a training task is not learned, try it once more with two of its checks
    /// written into the request as examples (STaR's rationalisation). What is kept is
    /// trained on with the request as the task states it, without the hint. Held-out
    /// and everyday requests never get hints.
    #[arg(long)]
    hints: bool,
    /// Who trains the adapter, from the GGUF the learn cycle serves: LocalForge on the
    /// CPU, or UnslothForge on a CUDA GPU (`AURA_UNSLOTH_PYTHON` names its interpreter).
    #[arg(long, value_enum, default_value_t = Trainer::Local)]
    trainer: Trainer,
    /// Stop each round once its adapter is trained. Running again without it measures
    /// the adapter: a round can train on a GPU machine and be measured on another.
    #[arg(long)]
    train_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Trainer {
    /// `LocalForge`: peft on the CPU, from the GGUF base.
    Local,
    /// `UnslothForge`: unsloth in 16-bit on a CUDA GPU.
    Unsloth,
}

/// What the run shares between phases.
struct Run {
    config: Config,
    hints: bool,
    sandbox: DynSandbox,
    seed: u64,
    /// The run's own trail: the kept `learn.committed` events and one `forge.round` per round.
    trail: Arc<SqliteStore>,
}

impl Run {
    /// Runs `cases` on `model`, appending one JSON line per case to `file` and skipping
    /// the cases already there (a resumed run). With `keep` (the round), each method
    /// that passes its hidden checks is kept for training. Request `i` is learned with
    /// seed `suite::request_seed(seed, i)`.
    async fn suite(
        &self,
        label: &str,
        model: &DynLanguageModel,
        cases: &[Case],
        file: &Path,
        keep: Option<u32>,
        seed: u64,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut done = HashSet::new();
        if let Ok(f) = std::fs::File::open(file) {
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let status = Status::from_label(v["status"].as_str().unwrap_or_default());
                let secs = v["seconds"].as_f64().unwrap_or(0.0);
                tally.add(status, std::time::Duration::from_secs_f64(secs));
                done.insert(v["request"].as_str().unwrap_or_default().to_string());
            }
        }
        if !done.is_empty() {
            println!(
                "  {label}: resuming after {} of {} requests",
                done.len(),
                cases.len()
            );
        }
        // Each request's line is printed above the bar, so a log without a terminal
        // (where the bar is hidden) keeps the same progress.
        let bar = ProgressBar::new(cases.len() as u64).with_style(
            ProgressStyle::with_template(
                "  {prefix} [{bar:30}] {pos}/{len} · {msg} · {elapsed_precise} elapsed, about {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_position(done.len() as u64);
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (i, case) in cases.iter().enumerate() {
            if done.contains(&case.request) {
                continue;
            }
            if let Some(defect) = case.defect() {
                say(&bar, format!("  {label}: skipped a broken task: {defect}"));
                bar.inc(1);
                continue;
            }
            let mut config = self.config.clone();
            config.learn_seed = Some(suite::request_seed(seed, i));
            let mut outcome = suite::run_case(&config, model, &self.sandbox, case).await;
            let mut hinted = false;
            if let (true, Some(_), Some(hint)) = (
                self.hints && outcome.status != Status::Correct,
                keep,
                hinted_case(case),
            ) {
                let retry = suite::run_case(&config, model, &self.sandbox, &hint).await;
                if retry.status == Status::Correct {
                    outcome = retry;
                    hinted = true;
                }
            }
            if let (Some(round), Status::Correct) = (keep, outcome.status) {
                self.keep(round, case, &outcome.runtime).await;
            }
            tally.add(outcome.status, outcome.elapsed);
            say(
                &bar,
                format!(
                    "  {label} {:>3}/{} {:<8} {:>5.1}s  {:<24} {}",
                    i + 1,
                    cases.len(),
                    outcome.status.label(),
                    outcome.elapsed.as_secs_f64(),
                    outcome.selector,
                    strip_learn_prefix(&case.request)
                ),
            );
            bar.set_message(format!(
                "{} learned, {} wrong, {} refused",
                tally.correct, tally.wrong, tally.refused
            ));
            bar.inc(1);
            use std::io::Write as _;
            writeln!(
                out,
                "{}",
                json!({ "request": case.request, "selector": outcome.selector,
                        "status": outcome.status.label(), "detail": outcome.detail, "hinted": hinted,
                        "seconds": outcome.elapsed.as_secs_f64() })
            )
            .expect("write the phase's results");
        }
        bar.finish_and_clear();
        println!(
            "  {label}: {} · median {:.1} s",
            tally.summary(),
            tally.median_seconds()
        );
        tally
    }

    /// Measures `model` on the held-out tasks and, unless it is empty, the everyday
    /// suite, keeping the results in `dir`.
    async fn measure(
        &self,
        who: &str,
        model: &DynLanguageModel,
        held_out: &[Case],
        everyday: &[Case],
        dir: &Path,
    ) -> (Tally, Option<Tally>) {
        // The same seeds for every model measured: the figures compare models, not draws.
        println!("\n{who}, held-out tasks");
        let held = self
            .suite(
                "held-out",
                model,
                held_out,
                &dir.join("held_out.jsonl"),
                None,
                self.seed,
            )
            .await;
        if everyday.is_empty() {
            return (held, None);
        }
        println!("\n{who}, everyday suite");
        let daily = self
            .suite(
                "everyday",
                model,
                everyday,
                &dir.join("everyday.jsonl"),
                None,
                self.seed,
            )
            .await;
        (held, Some(daily))
    }

    /// Copies the learn cycle's `learn.committed` event into the run's trail, marked
    /// with the round: curation reads only these, so nothing that failed a hidden
    /// check is ever trained on.
    async fn keep(&self, round: u32, case: &Case, rt: &Runtime) {
        let query = AuditQuery {
            kind: Some(EventKind::LearnCommitted.into()),
            ..AuditQuery::default()
        };
        let events = rt.store().query_audit(&query).await.expect("trail").events;
        for e in events {
            let mut payload = e.payload;
            // Trained on as the task was stated: a hint is scaffolding, not the task.
            payload["packet"]["mandate"]["request_text"] = json!(case.request);
            payload["forge_round"] = json!(round);
            self.trail
                .append_event(NewAuditEvent::new(e.kind, None, payload))
                .await
                .expect("append to the run's trail");
        }
    }
}

/// `case` with its first two checks written into the request as examples of the
/// method the request will be learned as: "…, where count_letter('a b') == 0 and …".
/// `None` when the request names no method.
fn hinted_case(case: &Case) -> Option<Case> {
    let selector = derive_selector(strip_learn_prefix(&case.request))?;
    let examples: Vec<String> = case
        .checks
        .iter()
        .take(2)
        .map(|(args, want)| suite::example_text(&selector, args, want))
        .collect();
    let mut hinted = case.clone();
    hinted.request = format!("{}, where {}", case.request, examples.join(" and "));
    Some(hinted)
}

fn split(cases: &[Case], name: &str, limit: Option<usize>) -> Vec<Case> {
    cases
        .iter()
        .filter(|c| c.split.as_deref() == Some(name))
        .take(limit.unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let curriculum = suite::load_or_exit(&args.curriculum);
    let train = split(&curriculum, "train", args.limit_train);
    let held_out = split(&curriculum, "held_out", args.limit_held_out);
    let everyday = if args.skip_everyday {
        Vec::new()
    } else {
        suite::load_or_exit(&args.everyday)
    };
    std::fs::create_dir_all(&args.dir).expect("the run's directory");

    let mut config = Config::from_env();
    config.cascade_mode = Some(CascadeMode::Single);
    if let Some(n) = args.samples {
        config.learn_samples = n;
    }
    let base = suite::embedded_model(None).expect("the base model");
    let mut setup_config = config.clone();
    setup_config.store_path = ":memory:".into();
    let setup = Runtime::builder()
        .config(setup_config)
        .model(base.clone())
        .without_forge()
        .build()
        .await
        .expect("runtime");
    let system_prompt = setup.cascade().and_then(|c| {
        c.persona(Persona::Alfred)
            .map(|p| c.prompts().render(&p.prompt, "{selector}"))
    });
    let run = Run {
        sandbox: setup.sandbox().clone(),
        config,
        hints: args.hints,
        seed: args.seed,
        trail: Arc::new(
            SqliteStore::open(args.dir.join("trail.sqlite"))
                .await
                .expect("the run's trail"),
        ),
    };
    // The file `model(None)` loaded: the environment's model, named without a second load.
    let base_path = default_model_path();
    println!(
        "forge round: {} training tasks, {} held out, {} everyday; base {}; up to {} samples per learn",
        train.len(),
        held_out.len(),
        everyday.len(),
        base_path.display(),
        run.config.learn_samples
    );

    let round0 = args.dir.join("round-0");
    std::fs::create_dir_all(&round0).expect("round-0");
    let (base_held_out, base_everyday) = run
        .measure("base model", &base, &held_out, &everyday, &round0)
        .await;
    // Every model measured in this run, the base first: what the charts draw.
    let mut figures = vec![RoundFigures {
        round: 0,
        held_out: base_held_out,
        everyday: base_everyday,
        losses: Vec::new(),
    }];
    // The model that samples the next round, and its figures: the base until a
    // round's facet earns promotion.
    let mut serving = base.clone();
    let mut serving_figures = figures[0].clone();
    for round in 1..=args.rounds {
        let dir = args.dir.join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).expect("the round's directory");

        println!("\nround {round}: sampling the training tasks");
        // Fresh draws each round: a round whose facet was not promoted samples with the
        // same model again, and the same seeds would only repeat the last round.
        let sampled = run
            .suite(
                "sample",
                &serving,
                &train,
                &dir.join("sampled.jsonl"),
                Some(round),
                args.seed + 1_000_000 * u64::from(round),
            )
            .await;

        let dataset_dir = dir.join("dataset");
        let curation = CurationConfig {
            system_prompt: system_prompt.clone(),
            ..CurationConfig::for_persona("alfred")
        };
        // A resumed run keeps the dataset a round made: the trail then also holds
        // later rounds' methods, which this round never trained on.
        let manifest = match std::fs::read_to_string(dataset_dir.join(MANIFEST_FILE)) {
            Ok(text) => serde_json::from_str::<Manifest>(&text).expect("the dataset's manifest"),
            Err(_) => match curate(run.trail.as_ref(), &curation, &dataset_dir).await {
                Ok(dataset) => dataset.manifest,
                // Nothing kept yet: the next round draws afresh.
                Err(e) => {
                    println!("\nround {round}: nothing to train on: {e}");
                    continue;
                }
            },
        };
        let examples = manifest.train.examples;
        println!(
            "\nround {round}: {examples} training and {} validation examples (every round's kept methods so far) in {}",
            manifest.validation.examples,
            dataset_dir.join(TRAIN_FILE).display()
        );

        let trained = train_adapter(&args, round, &dir, &dataset_dir, examples, &base_path).await;
        if args.train_only {
            println!("\nround {round}: trained; --train-only stops here");
            return;
        }
        let adapter_path = dir.join(trained["adapter"].as_str().expect("adapter path"));
        let forged = suite::embedded_model(Some((&adapter_path, args.adapter_scale)))
            .expect("the forged model");

        let (forged_held_out, forged_everyday) = run
            .measure(
                &format!("round {round}: forged model"),
                &forged,
                &held_out,
                &everyday,
                &dir,
            )
            .await;
        let forged_figures = RoundFigures {
            round,
            held_out: forged_held_out,
            everyday: forged_everyday,
            losses: serde_json::from_value(trained["losses"].clone()).unwrap_or_default(),
        };

        // The facets registry decides, on loss and on learning (see aura_forge::register).
        let facet = format!("alfred:round-{round}");
        let learning = rounds::learning(&serving_figures, &forged_figures);
        let registration = FacetRegistration {
            name: facet.clone(),
            persona: "alfred".into(),
            base_model: base_path.display().to_string(),
            adapter: TrainedAdapter {
                adapter_path: adapter_path.display().to_string(),
                metrics: trained["metrics"].clone(),
            },
            dataset_dir: dataset_dir.display().to_string(),
            manifest,
            learning: learning.as_ref().ok().copied(),
        };
        register(run.trail.as_ref(), registration)
            .await
            .expect("register the round's facet in the run's trail");
        let not_promoted = match (&learning, promote(run.trail.as_ref(), &facet).await) {
            (Err(why), _) => Some(format!("{facet} is not promoted: {why}")),
            (Ok(_), Ok(_)) => None,
            (Ok(_), Err(aura_core::forge::Error::Rejected(why))) => Some(why),
            (Ok(_), Err(e)) => panic!("promoting {facet}: {e}"),
        };

        // Summed from what each phase recorded, so a resumed round reports the time its
        // phases took, not the resumption's.
        let sampling_s: f64 = sampled.seconds.iter().sum();
        let measuring_s: f64 = forged_figures
            .held_out
            .seconds
            .iter()
            .chain(forged_figures.everyday.iter().flat_map(|t| &t.seconds))
            .sum();
        let training_s = trained["seconds"].as_f64().unwrap_or(0.0);
        let report = json!({
            "round": round,
            "facet": facet,
            "promoted": not_promoted.is_none(),
            "not_promoted": not_promoted,
            "adapter_scale": args.adapter_scale,
            "kept": sampled.correct,
            "sampled": sampled,
            "examples": examples,
            "trained": trained,
            "held_out": { "before": serving_figures.held_out, "after": forged_figures.held_out },
            "everyday": { "before": serving_figures.everyday, "after": forged_figures.everyday },
            "seconds": { "sampling": sampling_s, "training": training_s, "measuring": measuring_s,
                         "round": sampling_s + training_s + measuring_s },
        });
        let report_file = dir.join("report.json");
        // A resumed run that finds the round done rewrites the same report and leaves
        // the trail's event as it was.
        let first_report = !report_file.exists();
        std::fs::write(&report_file, format!("{report:#}\n")).expect("report.json");
        if first_report {
            run.trail
                .append_event(NewAuditEvent::new(EventKind::ForgeRound, None, report))
                .await
                .expect("forge.round event");
        }
        println!(
            "\nround {round} report: {:.0} s sampling, {:.0} s training, {:.0} s measuring",
            sampling_s, training_s, measuring_s
        );
        println!(
            "  kept {} of {} training tasks; {examples} training examples",
            sampled.correct, sampled.requests
        );
        println!("  held-out before: {}", serving_figures.held_out.summary());
        println!("  held-out after:  {}", forged_figures.held_out.summary());
        if let (Some(b), Some(a)) = (&serving_figures.everyday, &forged_figures.everyday) {
            println!("  everyday before: {}", b.summary());
            println!("  everyday after:  {}", a.summary());
        }
        figures.push(forged_figures.clone());
        match not_promoted {
            None => {
                println!("  {facet} is promoted: it samples the next round");
                serving = forged;
                serving_figures = forged_figures;
            }
            Some(why) => println!("  {why}; the serving model samples the next round"),
        }
        match rounds::draw(&args.dir, &figures) {
            Ok(files) => {
                for f in files {
                    println!("  chart: {}", f.display());
                }
            }
            Err(why) => println!("  no chart: {why}"),
        }
    }
}

/// Prints `line` above `bar`. (`ProgressBar::println` prints nothing when the bar is
/// hidden, as it is without a terminal, and a log must keep every line.)
fn say(bar: &ProgressBar, line: String) {
    bar.suspend(|| println!("{line}"));
}

/// Trains the round's adapter from the base model on every round's kept methods, or
/// reads what an earlier run of this round trained (`trained.json`): the adapter's path
/// relative to the round's directory, the trainer's figures and the loss of each step.
async fn train_adapter(
    args: &Args,
    round: u32,
    dir: &Path,
    dataset_dir: &Path,
    examples: usize,
    base_path: &Path,
) -> Value {
    let trained_file = dir.join("trained.json");
    if let Ok(text) = std::fs::read_to_string(&trained_file) {
        return serde_json::from_str(&text).expect("trained.json");
    }
    let started = Instant::now();
    let steps = args
        .steps
        .unwrap_or((2 * u32::try_from(examples).unwrap_or(u32::MAX)).clamp(20, 600));
    let forge: Box<dyn Forge> = match args.trainer {
        Trainer::Local => Box::new(LocalForge::from_env()),
        // 16-bit: QLoRA would train against NF4 weights, not the GGUF's, and a 135M
        // model needs no 4-bit to fit.
        Trainer::Unsloth => Box::new(UnslothForgeBuilder::from_env().full_precision().build()),
    };
    let job = TrainingJob {
        persona: "alfred".into(),
        base_model: base_path.display().to_string(),
        dataset_dir: dataset_dir.to_path_buf(),
        output_dir: dir.join("adapter"),
        lora: LoraConfig {
            rank: args.rank,
            alpha: 2 * args.rank,
            learning_rate: args.lr,
            steps,
        },
    };
    println!(
        "\nround {round}: training a LoRA adapter ({steps} steps, rank {})",
        args.rank
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<aura_core::forge::Progress>(64);
    let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let bar = ProgressBar::new(u64::from(steps)).with_style(
        ProgressStyle::with_template(
            "  train [{bar:30}] step {pos}/{len} · loss {msg} · about {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let printer = tokio::spawn(async move {
        let mut losses = Vec::new();
        while let Some(p) = rx.recv().await {
            losses.push((p.step, p.loss));
            bar.set_length(u64::from(p.total));
            bar.set_position(u64::from(p.step));
            bar.set_message(format!("{:.3}", p.loss));
            if p.step == 1 || p.step % 10 == 0 || p.step == p.total {
                say(
                    &bar,
                    format!("  train step {:>4}/{} loss {:.3}", p.step, p.total, p.loss),
                );
            }
        }
        bar.finish_and_clear();
        losses
    });
    let adapter = forge.train(job, tx, cancel).await.expect(
        "training (AURA_SETUP_FORGE=1 scripts/setup.sh forge installs LocalForge's trainer)",
    );
    let losses = printer.await.unwrap_or_default();
    // Relative to the round's directory, so the run can move between machines.
    let relative = Path::new(&adapter.adapter_path)
        .strip_prefix(dir)
        .map_or_else(|_| PathBuf::from(&adapter.adapter_path), Path::to_path_buf);
    let v = json!({ "adapter": relative, "trainer": forge.capabilities().backend,
                    "metrics": adapter.metrics, "losses": losses,
                    "seconds": started.elapsed().as_secs_f64() });
    std::fs::write(&trained_file, v.to_string()).expect("trained.json");
    v
}
