//! # aura-forge
//!
//! The Autopoietic Forge: the system improves its own models from its own experience.
//!
//! 1. [`curate()`] — BABS's golden dataset: successful learn cycles from the audit
//!    trail (through the [`aura_store::Store`] port), scrubbed, deduplicated, split,
//!    written as chat-format JSONL with a manifest.
//! 2. The [`Forge`] port trains a LoRA adapter on it, reporting [`Progress`] and
//!    honouring cancellation. [`LocalForge`] (feature `local`, default) runs the
//!    crate's own `python/train_lora.py` in the forge venv on the CPU and exports a
//!    GGUF LoRA adapter that `aura_cognition::LocalModel` loads.
//! 3. [`register()`] records the adapter as a cognitive facet in one store transaction;
//!    [`promote`] makes it the persona's default only when it does at least as well as
//!    its base, and [`rollback`] undoes that.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use aura_forge::{curate, CurationConfig, EventKind};
//! use aura_store::{NewAuditEvent, SqliteStore, StoreExt};
//! use serde_json::json;
//!
//! let store = SqliteStore::open_in_memory().await?;
//! store.append_event(NewAuditEvent::new(EventKind::LearnCommitted, None, json!({
//!     "selector": "double",
//!     "candidate": {"source": "def double(self, x):\n    return 2 * x", "tests": "def test_d():\n    assert obj.double(2) == 4",
//!                   "doc": "Doubles x.", "rationale": "Multiply."},
//!     "tests": [{"name": "test_d", "passed": true, "message": null}],
//!     "packet": {"mandate": {"selector": "double", "object_name": "calc", "args": [2]},
//!                "decided_by": "ALFRED",
//!                "contributions": [{"persona": "ALFRED", "model": "local", "error": null,
//!                                   "text": "```python\ndef double(x):\n    return 2 * x\n```",
//!                                   "structured": null, "attempts": 1,
//!                                   "usage": {"prompt_tokens": 0, "completion_tokens": 0, "prompt_ms": 0, "generation_ms": 0},
//!                                   "model_us": 0, "step_us": 0}]},
//! }))).await?;
//! let dir = tempfile::tempdir()?;
//! let dataset = curate(&store, &CurationConfig::for_persona("alfred"), dir.path()).await?;
//! assert_eq!(dataset.manifest.train.examples + dataset.manifest.validation.examples, 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub mod curate;
#[cfg(any(test, feature = "test-utils"))]
mod fake;
#[cfg(feature = "local")]
pub mod local;
pub mod register;
#[cfg(any(feature = "local", feature = "unsloth"))]
pub mod script;
pub mod trail;
#[cfg(feature = "unsloth")]
pub mod unsloth;

pub use curate::{curate, CuratedDataset, CurationConfig, Manifest};
#[cfg(any(test, feature = "test-utils"))]
pub use fake::FakeForge;
#[cfg(feature = "local")]
pub use local::{LocalForge, LocalForgeBuilder};
pub use register::{
    facets, is_promotion_record, promote, promoted_facet, register, rollback, serving,
    validate_facet_name, Evaluation, FacetRegistration, LearnComparison, LearnRate, Learning,
};
pub use trail::{AttemptFailure, EventKind, ForgeTrigger, Payload, Stage};
#[cfg(feature = "unsloth")]
pub use unsloth::{UnslothForge, UnslothForgeBuilder};

/// What went wrong in a forge run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The trainer cannot run here (no venv, no GPU, …).
    #[error("forge unavailable: {0}")]
    Unavailable(String),
    /// The job is malformed (empty dataset, unknown base model, …).
    #[error("invalid training job: {0}")]
    Invalid(String),
    /// The run was cancelled.
    #[error("training cancelled")]
    Cancelled,
    /// Training itself failed.
    #[error("training failed: {0}")]
    Failed(String),
    /// A facet was not promoted: it did worse than its base.
    #[error("not promoted: {0}")]
    Rejected(String),
    /// Reading the audit trail or writing the facets registry failed.
    #[error(transparent)]
    Store(#[from] aura_store::Error),
    /// A dataset or adapter file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The forge's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Hyperparameters for a LoRA run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Adapter rank.
    pub rank: u32,
    /// Scaling numerator.
    pub alpha: u32,
    /// Learning rate.
    pub learning_rate: f64,
    /// Optimiser steps.
    pub steps: u32,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16,
            learning_rate: 2e-4,
            steps: 50,
        }
    }
}

/// One training job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingJob {
    /// The persona the facet is for.
    pub persona: String,
    /// The base model (a GGUF path or a model name).
    pub base_model: String,
    /// The golden dataset's directory (train/validation JSONL and a manifest).
    pub dataset_dir: PathBuf,
    /// Where to write the adapter.
    pub output_dir: PathBuf,
    /// Hyperparameters.
    pub lora: LoraConfig,
}

/// A progress report from a running job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The step just finished.
    pub step: u32,
    /// Total steps.
    pub total: u32,
    /// Training loss at this step.
    pub loss: f64,
}

/// A trained adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedAdapter {
    /// The adapter file (GGUF LoRA) or a model name on a server.
    pub adapter_path: String,
    /// Training figures (final loss, seconds per step, …).
    pub metrics: Value,
}

/// What a forge backend can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForgeCapabilities {
    /// The backend's name ("local", "unsloth", "fake").
    pub backend: &'static str,
    /// It needs a GPU.
    pub needs_gpu: bool,
    /// It produces a GGUF LoRA adapter.
    pub gguf_adapter: bool,
    /// It produces a merged model.
    pub merged_model: bool,
}

/// Trains LoRA adapters.
///
/// Contract: progress is sent as steps finish; when `cancel` turns true the run stops
/// promptly with [`Error::Cancelled`] and leaves no partial adapter behind.
#[async_trait]
pub trait Forge: Send + Sync + fmt::Debug {
    /// What this backend supports.
    fn capabilities(&self) -> ForgeCapabilities;
    /// Runs a training job to completion, cancellation or failure.
    async fn train(
        &self,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter>;
}

/// A forge shared across tasks.
pub type DynForge = Arc<dyn Forge>;
