//! Slow tier: the whole forge on the CPU. Runs only with `AURA_TEST_FORGE=1` (and the
//! forge venv from `AURA_SETUP_FORGE=1 scripts/setup.sh`).
//!
//! learn cycles in a SQLite trail → BABS curates → LocalForge trains a LoRA on
//! SmolLM2-135M (Q4_1 GGUF) → GGUF adapter → `LocalModel` loads it over the same base →
//! the validation replies are more likely with the adapter than without (mean
//! per-token log-likelihood, measured by llama.cpp itself) → the facet is registered
//! and promoted. Figures are printed (run with `--nocapture`).
//!
//! `AURA_TEST_FORGE_STEPS` (default 30) and `AURA_FORGE_THREADS` (default 2) tune the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::time::Instant;

use aura_forge::curate::VALIDATION_FILE;
use aura_forge::EventKind;
use aura_forge::{
    curate, promote, promoted_facet, register, CurationConfig, FacetRegistration, Forge,
    LocalForge, LoraConfig, TrainingJob,
};
use aura_store::{NewAuditEvent, SqliteStore, StoreExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// BABS's replies in the kept cycles share one house style the base model has never
/// seen, so a few steps of training should make them measurably more likely.
fn babs_reply(selector: &str, subject: &str, missing: &str) -> String {
    format!(
        "GROUNDING REPORT for `{selector}`. Memory: the object already handles {subject}. \
         Gap: {missing}. Verdict: ground the draft in the existing slots and add that test."
    )
}

async fn seed(store: &SqliteStore) {
    let cases = [
        ("square", "numbers", "no test for negative input"),
        ("negate", "numbers", "no test for zero"),
        ("greet", "names", "no test for an empty name"),
        ("shout", "strings", "no test for unicode letters"),
        ("average", "lists", "no test for an empty list"),
        ("deposit", "money", "no test for a negative amount"),
        ("withdraw", "money", "no test for overdrawing"),
        ("add_book", "books", "no test for a duplicate title"),
        ("reset", "counters", "no test that the count is zero after"),
        ("add_minutes", "time", "no test for passing midnight"),
        ("word_count", "text", "no test for repeated spaces"),
        ("is_even", "numbers", "no test for negative odd numbers"),
        ("reverse", "strings", "no test for an empty string"),
        ("max_item", "lists", "no test for a single item"),
        ("celsius", "temperatures", "no test below freezing"),
        ("initials", "names", "no test for a single name"),
        ("discount", "prices", "no test for a discount above 100"),
        ("tax", "prices", "no test for a zero price"),
        ("push", "stacks", "no test for pushing None"),
        ("pop", "stacks", "no test for popping an empty stack"),
        ("area", "shapes", "no test for a zero radius"),
        ("palindrome", "text", "no test for mixed case"),
        ("clamp", "numbers", "no test for reversed bounds"),
        ("rename", "objects", "no test for an empty name"),
    ];
    for (selector, subject, missing) in cases {
        let source = format!("def {selector}(self, x):\n    return x");
        let candidate = json!({"source": source, "tests": format!("def test_{selector}():\n    assert obj.{selector}(1) == 1"),
                               "doc": format!("{selector} of x."), "rationale": "Simple."});
        let contribution = |persona: &str, text: String, structured: Option<&serde_json::Value>| {
            json!({
            "persona": persona, "model": "SmolLM2", "text": text, "structured": structured, "error": null,
            "attempts": 1, "usage": {"prompt_tokens": 0, "completion_tokens": 0, "prompt_ms": 0, "generation_ms": 0},
            "model_us": 0, "step_us": 0})
        };
        let packet = json!({
            "started_at": "2025-01-01T00:00:00Z",
            "mandate": {"selector": selector, "args": [1], "request_text": format!("teach yourself {selector} for {subject}"),
                        "object_name": "helper", "slots": {}, "known_methods": [], "feedback": []},
            "mode": "full", "context": null,
            "contributions": [
                contribution("BRICK", format!("Parts of {selector}: one input, one output."), None),
                contribution("ROBIN", "{}".into(), Some(&candidate)),
                contribution("BABS", babs_reply(selector, subject, missing), None),
                contribution("ALFRED", "{}".into(), Some(&candidate)),
            ],
            "grounding": [], "verdicts": [], "decided_by": "ALFRED", "candidate": candidate, "cem": null,
            "timing": {"total_us": 0, "model_us": 0, "context_us": 0, "grounding_us": 0, "check_us": 0, "orchestration_us": 0},
        });
        store
            .append_event(NewAuditEvent::new(EventKind::LearnCommitted.as_str(), None, json!({
                "selector": selector, "attempt": 1, "request": format!("teach yourself {selector}"),
                "candidate": candidate, "tests": [{"name": format!("test_{selector}"), "passed": true, "message": null}],
                "packet": packet,
            })))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_to_adapter_to_local_model() {
    if std::env::var("AURA_TEST_FORGE").ok().as_deref() != Some("1") {
        println!("skipped: set AURA_TEST_FORGE=1 (and install the venv with AURA_SETUP_FORGE=1 scripts/setup.sh)");
        return;
    }
    let steps: u32 = std::env::var("AURA_TEST_FORGE_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let threads: usize = std::env::var("AURA_FORGE_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let base = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        base.is_file(),
        "{} is missing: run scripts/setup.sh",
        base.display()
    );
    let python = std::env::var_os("AURA_FORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-forge/bin/python"));

    let store = SqliteStore::open_in_memory().await.unwrap();
    seed(&store).await;
    let work = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut config = CurationConfig::for_persona("babs");
    config.validation_permille = 250;
    let dataset = curate(&store, &config, &work.path().join("dataset"))
        .await
        .unwrap();
    let curate_s = t.elapsed().as_secs_f64();
    let m = &dataset.manifest;
    println!(
        "dataset: {} train, {} validation ({curate_s:.3} s)",
        m.train.examples, m.validation.examples
    );
    assert_eq!(m.train.examples + m.validation.examples, 24);

    let forge = LocalForge::builder()
        .python(python)
        .threads(threads)
        .build();
    let (tx, mut rx) = mpsc::channel(1024);
    let (_cancel_tx, cancel) = watch::channel(false);
    let job = TrainingJob {
        persona: "babs".into(),
        base_model: base.display().to_string(),
        dataset_dir: dataset.dir.clone(),
        output_dir: work.path().join("facet"),
        lora: LoraConfig {
            rank: 8,
            alpha: 16,
            learning_rate: 1e-3,
            steps,
        },
    };
    let t = Instant::now();
    let adapter = forge.train(job, tx, cancel).await.unwrap();
    let train_total = t.elapsed().as_secs_f64();
    let mut progress = Vec::new();
    while let Ok(p) = rx.try_recv() {
        progress.push(p);
    }
    let metrics = &adapter.metrics;
    println!("training: {steps} steps, {:.2} s/step, {:.1} s in the loop, {train_total:.1} s in all (load {:.1} s)",
        metrics["seconds_per_step"].as_f64().unwrap(), metrics["train_seconds"].as_f64().unwrap(),
        metrics["load_seconds"].as_f64().unwrap());
    println!(
        "loss: first {:.3} → last {:.3}; validation {:.4} → {:.4}; probes {:.4} → {:.4}",
        metrics["first_loss"].as_f64().unwrap(),
        progress.last().unwrap().loss,
        metrics["validation_loss_before"].as_f64().unwrap(),
        metrics["validation_loss_after"].as_f64().unwrap(),
        metrics["probe_loss_before"].as_f64().unwrap(),
        metrics["probe_loss_after"].as_f64().unwrap()
    );
    assert_eq!(
        progress.len(),
        steps as usize,
        "one progress message per step"
    );
    assert!(progress
        .iter()
        .enumerate()
        .all(|(i, p)| p.step == i as u32 + 1 && p.total == steps && p.loss.is_finite()));
    assert!(
        metrics["validation_loss_after"].as_f64().unwrap()
            < metrics["validation_loss_before"].as_f64().unwrap()
    );

    // llama.cpp loads the exported adapter over the quantised base, and the held-out
    // BABS replies become more likely.
    let validation = common::examples(&dataset.dir.join(VALIDATION_FILE));
    let plain = common::local_model(&base, threads, None);
    let tuned = common::local_model(&base, threads, Some(&adapter.adapter_path));
    let before = common::mean_log_likelihood(&plain, &validation).await;
    let after = common::mean_log_likelihood(&tuned, &validation).await;
    println!("LocalModel mean log-likelihood of validation replies: base {before:.4}, with adapter {after:.4}");
    assert!(
        after > before,
        "the adapter did not shift the model toward the data: {before} → {after}"
    );

    let facet = register(
        &store,
        FacetRegistration {
            name: "babs:grounding-v1".into(),
            persona: "babs".into(),
            base_model: base.display().to_string(),
            adapter: adapter.clone(),
            dataset_dir: dataset.dir.display().to_string(),
            manifest: dataset.manifest.clone(),
            learning: None,
        },
    )
    .await
    .unwrap();
    match promote(&store, &facet.name).await {
        Ok(_) => assert_eq!(
            promoted_facet(&store, "babs").await.unwrap().unwrap().name,
            facet.name
        ),
        // The rule may refuse on the probes; that outcome is reported, not hidden.
        // Anything else (the store, a facet that was not registered) is a failure.
        Err(aura_forge::Error::Rejected(why)) => println!("promotion refused: {why}"),
        Err(e) => panic!("promotion failed rather than decided: {e}"),
    }
}
