//! Helpers shared by the forge's slow tiers: judging an adapter with llama.cpp itself.
#![allow(clippy::unwrap_used, dead_code)] // test helpers; each test binary uses a subset

use std::path::Path;

use aura_cognition::{ChatMessage, LanguageModel as _, LocalModel};
use aura_forge::curate::Example;

/// The examples of a split file.
pub fn examples(path: &Path) -> Vec<Example> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `LocalModel` on a GGUF `base`, with a GGUF LoRA `adapter` when given.
pub fn local_model(base: &Path, threads: usize, adapter: Option<&str>) -> LocalModel {
    let mut builder = LocalModel::builder().model_path(base).threads(threads);
    if let Some(adapter) = adapter {
        builder = builder.lora(adapter, 1.0);
    }
    builder.build().unwrap()
}

/// Mean per-token log-likelihood of the examples' replies under `model`.
pub async fn mean_log_likelihood(model: &LocalModel, examples: &[Example]) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for e in examples {
        let messages: Vec<ChatMessage> = vec![
            ChatMessage::system(e.messages[0].content.clone()),
            ChatMessage::user(e.messages[1].content.clone()),
        ];
        let (s, n) = model
            .score(&messages, &e.messages[2].content)
            .await
            .unwrap();
        sum += s;
        count += n;
    }
    sum / count as f64
}
