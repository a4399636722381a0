//! The LanguageModel port's backends, the cascade, the planner and the context ingestor.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod cascade;
mod cascade_cem;
mod cascade_local;
mod cascade_plan;
mod context;
mod local_model;
mod ollama_live;
mod ollama_replay;
mod openai_live;
mod openai_replay;

/// llama.cpp's threads spin while they wait: models running side by side on a small
/// machine slow each other down badly (tenfold and more on 2 cores), so every test
/// that runs the embedded model takes its turn.
#[cfg(feature = "local")]
pub(crate) static MODEL_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sampling options for the replay tests: their recorded request bodies carry these.
#[cfg(any(feature = "ollama", feature = "openai"))]
pub(crate) fn opts(
    temperature: f32,
    seed: u64,
    max_tokens: u32,
    stop: &[&str],
) -> aura_cognition::GenerationOptions {
    aura_cognition::GenerationOptions {
        temperature,
        seed: Some(seed),
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
    }
}

/// The question the replay tests' recordings answer.
#[cfg(any(feature = "ollama", feature = "openai"))]
pub(crate) fn sky() -> aura_cognition::ChatRequest {
    aura_cognition::ChatRequest::new("You are a helpful assistant.", "Why is the sky blue?")
}
