//! GPU tier: `UnslothForge` trains a real QLoRA. Runs only with `AURA_TEST_UNSLOTH=1`
//! on a CUDA machine, with `AURA_UNSLOTH_PYTHON` (a venv with torch, unsloth, gguf and
//! jinja2) and `AURA_TEST_UNSLOTH_BASE` (a Hugging Face model directory, e.g.
//! SmolLM2-135M-Instruct's safetensors). `AURA_LLAMA_CPP_DIR` adds the merged GGUF.
//! With `AURA_TEST_UNSLOTH_GGUF_BASE` (the same base model as a GGUF file) llama.cpp
//! judges the exported adapter over it, and any merged model on its own.
//! CI has no GPU: there the test says it skipped and why.
#![cfg(feature = "unsloth")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aura_forge::curate::{TRAIN_FILE, VALIDATION_FILE};
use aura_forge::{Forge, LoraConfig, TrainingJob, UnslothForge};
use serde_json::json;
use tokio::sync::{mpsc, watch};

fn example(selector: &str, reply: &str) -> String {
    json!({ "messages": [
        { "role": "system", "content": "You are ROBIN. Write the method." },
        { "role": "user", "content": format!("Write `{selector}`.") },
        { "role": "assistant", "content": reply },
    ]})
    .to_string()
}

#[tokio::test]
async fn unsloth_trains_an_adapter_that_fits_its_data() {
    let (Ok("1"), Ok(base)) = (
        std::env::var("AURA_TEST_UNSLOTH").as_deref(),
        std::env::var("AURA_TEST_UNSLOTH_BASE"),
    ) else {
        eprintln!(
            "skipped: the GPU tier needs AURA_TEST_UNSLOTH=1, AURA_TEST_UNSLOTH_BASE and a CUDA machine"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let validation_file = data.join(VALIDATION_FILE);
    std::fs::create_dir_all(&data).unwrap();
    let lines = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| {
                example(
                    n,
                    &format!("ROBIN DRAFT `{n}`: def {n}(self, x):\n    return x"),
                ) + "\n"
            })
            .collect()
    };
    std::fs::write(
        data.join(TRAIN_FILE),
        lines(&[
            "square", "negate", "greet", "shout", "average", "deposit", "reset", "tax",
        ]),
    )
    .unwrap();
    std::fs::write(data.join(VALIDATION_FILE), lines(&["withdraw", "push"])).unwrap();

    let forge = UnslothForge::from_env();
    let job = TrainingJob {
        persona: "robin".into(),
        base_model: base,
        dataset_dir: data,
        output_dir: dir.path().join("out"),
        lora: LoraConfig {
            steps: 30,
            learning_rate: 1e-3,
            ..LoraConfig::default()
        },
    };
    let (tx, mut rx) = mpsc::channel(1024);
    let (_c, cancel) = watch::channel(false);
    let adapter = forge.train(job, tx, cancel).await.unwrap();
    let mut steps = 0;
    while rx.try_recv().is_ok() {
        steps += 1;
    }
    assert_eq!(steps, 30);
    assert!(std::path::Path::new(&adapter.adapter_path).is_file());
    let m = &adapter.metrics;
    eprintln!("{}", serde_json::to_string_pretty(m).unwrap());
    assert!(
        m["validation_loss_after"].as_f64().unwrap()
            < m["validation_loss_before"].as_f64().unwrap(),
        "{m}"
    );

    // llama.cpp: the adapter over the GGUF base, and the merged model alone, make the
    // held-out replies more likely than the base does.
    let Ok(gguf) = std::env::var("AURA_TEST_UNSLOTH_GGUF_BASE") else {
        return;
    };
    let gguf = std::path::Path::new(&gguf);
    let validation = common::examples(&validation_file);
    let base = common::mean_log_likelihood(&common::local_model(gguf, 2, None), &validation).await;
    let tuned = common::local_model(gguf, 2, Some(&adapter.adapter_path));
    let with_adapter = common::mean_log_likelihood(&tuned, &validation).await;
    eprintln!("LocalModel mean log-likelihood: base {base:.4}, base + adapter {with_adapter:.4}");
    assert!(with_adapter > base, "{base} → {with_adapter}");
    if let Some(merged) = m["merged_model"].as_str() {
        let merged = common::local_model(std::path::Path::new(merged), 2, None);
        let merged = common::mean_log_likelihood(&merged, &validation).await;
        eprintln!("LocalModel mean log-likelihood, merged model: {merged:.4}");
        assert!(merged > base, "{base} → {merged}");
    }
}
