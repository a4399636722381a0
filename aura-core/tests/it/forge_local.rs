//! Slow tier: the runtime's forge loop with the real parts. Runs only with
//! `AURA_TEST_FORGE=1` (and the forge venv from `AURA_SETUP_FORGE=1 scripts/setup.sh`).
//!
//! Learn cycles (a scripted model writes, the jail tests, the store commits) →
//! `Runtime::forge_persona` curates ROBIN's dataset → `LocalForge` trains a LoRA on
//! SmolLM2-135M → the facet is registered with its evaluation → the default facet
//! loader serves it as `LocalModel` + adapter, which answers; when the promotion rule
//! lets it through, the cascade's ROBIN is that model. Figures are printed
//! (`--nocapture`). `AURA_TEST_FORGE_STEPS` (default 20) sizes the run.
#![cfg(all(feature = "local-model", feature = "local-forge"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use aura_cognition::{ChatRequest, Persona, ScriptedModel};
use aura_core::evolution::default_facet_model;
use aura_core::forge::LocalForge;
use aura_core::store::NewObject;
use aura_core::{Config, ForgeRequest, LearnRequest, Runtime};
use aura_store::SqliteStore;

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_forges_a_real_facet_and_serves_it() {
    if std::env::var("AURA_TEST_FORGE").ok().as_deref() != Some("1") {
        println!("skipped: set AURA_TEST_FORGE=1 (and install the venv with AURA_SETUP_FORGE=1 scripts/setup.sh)");
        return;
    }
    let steps = std::env::var("AURA_TEST_FORGE_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let python = std::env::var_os("AURA_FORGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-forge/bin/python"));
    let base = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        base.is_file(),
        "{} is missing: run scripts/setup.sh",
        base.display()
    );

    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.data_dir = data.path().to_path_buf();
    config.forge.base_model = Some(base.clone());
    config.forge.on_stagnation = false;
    let rt = Runtime::builder()
        .config(config)
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(ScriptedModel::blueprint().named("scripted")))
        .forge(Arc::new(
            LocalForge::builder().python(python).threads(2).build(),
        ))
        .build()
        .await
        .unwrap();
    for i in 0..8 {
        let object = rt
            .create_object(NewObject::named(format!("calculator{i}")))
            .await
            .unwrap();
        let request = LearnRequest {
            selector: "fibonacci".into(),
            request_text: format!("teach calculator {i} the fibonacci sequence"),
            args: vec![],
        };
        rt.learn(object.id, request).await.unwrap();
    }

    let t = Instant::now();
    let report = rt
        .forge_persona(
            ForgeRequest::new(Persona::Robin)
                .label("slow-tier")
                .steps(steps),
        )
        .await
        .unwrap();
    println!(
        "forge run: {:.0} s, {} examples, promoted: {}, not promoted: {:?}\n{}",
        t.elapsed().as_secs_f64(),
        report.examples,
        report.promoted,
        report.not_promoted,
        serde_json::to_string_pretty(&report.facet.metrics["training"]).unwrap()
    );
    let evaluation = report
        .evaluation
        .expect("LocalForge measures base and facet");
    println!("{evaluation:?}");
    assert!(
        evaluation.facet_validation_loss < evaluation.base_validation_loss,
        "training on the curated cycles makes their replies more likely: {evaluation:?}"
    );

    // The default loader serves the facet in-process: base GGUF plus the adapter.
    let facet_model = default_facet_model(&report.facet).unwrap();
    assert_eq!(facet_model.capabilities().backend, "local");
    let reply = facet_model
        .chat(ChatRequest::new("You are ROBIN.", "Say hello."))
        .await
        .unwrap();
    assert!(!reply.text.trim().is_empty());

    let robin = rt
        .cascade()
        .unwrap()
        .persona(Persona::Robin)
        .unwrap()
        .model
        .clone();
    if report.promoted {
        assert_eq!(
            robin.capabilities().backend,
            "local",
            "ROBIN is served by the facet"
        );
    } else {
        assert_eq!(robin.info().await.unwrap().name, "scripted");
    }
}
