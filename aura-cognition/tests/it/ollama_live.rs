//! `OllamaModel` against a live Ollama server: set `AURA_TEST_OLLAMA_URL`
//! (e.g. http://127.0.0.1:11434) and optionally `AURA_OLLAMA_MODEL` (default
//! smollm2:135m, pulled if missing).
#![cfg(feature = "ollama")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::sync::Arc;

use aura_cognition::{conformance, DynLanguageModel, OllamaModel, OllamaModelBuilder};

fn live() -> Option<OllamaModelBuilder> {
    match std::env::var("AURA_TEST_OLLAMA_URL") {
        Ok(url) if !url.trim().is_empty() => Some(OllamaModelBuilder::from_env().host(url)),
        _ => {
            println!("skipped: set AURA_TEST_OLLAMA_URL to run OllamaModel against a live server");
            None
        }
    }
}

#[tokio::test]
async fn conformance_suite_live() {
    let Some(builder) = live() else { return };
    let m: OllamaModel = builder.build().unwrap();
    let name = m.model_name().to_string();
    if !m
        .list_models()
        .await
        .unwrap()
        .iter()
        .any(|e| e.name == name)
    {
        m.pull(&name, |p| println!("pull {name}: {}", p.status))
            .await
            .unwrap();
    }
    conformance::run_all(&m).await;
}

#[tokio::test]
async fn missing_model_live() {
    let Some(builder) = live() else { return };
    let m = builder.model("aura-no-such-model:latest").build().unwrap();
    conformance::missing_model(Ok(Arc::new(m) as DynLanguageModel)).await;
}
