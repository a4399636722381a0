//! # aura-cognition
//!
//! The minds of AURA: the [`LanguageModel`] port that every persona talks through,
//! its embedded default [`LocalModel`] (a GGUF model run in-process by llama.cpp),
//! the Ollama adapter (feature `ollama`), the adapter for OpenAI-compatible servers
//! (feature `openai`), [`backends`] (models named by settings, with fallbacks and
//! concurrency limits), the persona cascade and its planner, and the real-time context
//! ingestor.
//!
//! ```no_run
//! use aura_cognition::{ChatRequest, LanguageModel, LocalModel};
//! # async fn demo() -> aura_cognition::Result<()> {
//! // AURA_MODEL_PATH, or models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/setup.sh installs it).
//! let model = LocalModel::from_env()?;
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {"answer": {"type": "string"}},
//!     "required": ["answer"]
//! });
//! let reply = model
//!     .chat(ChatRequest::new("Reply in JSON.", "What is 2 + 2?").with_schema(schema))
//!     .await?;
//! println!("{}", reply.structured.unwrap_or_default());
//! # Ok(()) }
//! ```

pub mod backends;
pub mod cascade;
pub mod cem;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod context;
mod error;
pub mod grammar;
#[cfg(feature = "local")]
mod local;
mod model;
#[cfg(feature = "ollama")]
mod ollama;
#[cfg(feature = "openai")]
mod openai;
#[cfg(all(feature = "openai", any(test, feature = "test-utils")))]
mod openai_server;
mod persona;
pub mod plan;
pub mod schema;
#[cfg(any(test, feature = "test-utils"))]
mod scripted;
mod template;
#[cfg(any(feature = "local", feature = "ollama", feature = "openai"))]
mod text;

pub use backends::{FallbackModel, ModelChain, ModelOpener, ModelSpec};
pub use cascade::{
    big_int_digits, code_blocks, python_args, python_literal, CandidateCheck, Cascade,
    CascadeBuilder, CascadeMode, CascadeOutcome, CascadeRun, CheckVerdict, CognitiveStatePacket,
    EarlyExit, Evidence, Grounding, KnownMethod, LearnMandate, MethodCandidate, RunOptions,
    Sampling, Selection, BIG_INT_KEY,
};
pub use cem::{Cem, CemScore, CemWeights, Stagnation, StagnationMonitor};
pub use context::{
    ContextIngestor, ContextIngestorBuilder, ContextKind, ContextProvider, ContextReading,
    RealTimeContextFractal,
};
pub use error::{BoxError, Error, Result};
#[cfg(feature = "local")]
pub use local::{
    default_model_path, model_search_path, LocalModel, LocalModelBuilder, DEFAULT_MODEL_FILE,
};
pub use model::*;
#[cfg(feature = "ollama")]
pub use ollama::*;
#[cfg(feature = "openai")]
pub use openai::{OpenAiModel, OpenAiModelBuilder, ASSUMED_CONTEXT_LENGTH};
#[cfg(all(feature = "openai", any(test, feature = "test-utils")))]
pub use openai_server::{OpenAiTestServer, SERVER_VENV};
pub use persona::{Persona, PersonaConfig, PromptSet, METHOD_CONVENTION, TEST_CONVENTION};
pub use plan::{Plan, PlanContext, Planner};
#[cfg(any(test, feature = "test-utils"))]
pub use scripted::{offline_context, ScriptedModel};
pub use template::ChatTemplate;
