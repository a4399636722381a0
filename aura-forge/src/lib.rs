//! # aura-forge
//!
//! The [`Forge`] port: turn a curated dataset into a LoRA adapter for a persona's model.
//! Dataset curation, the CPU training runner and facet registration arrive with the
//! forge issue; this crate defines the contract they fulfil.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

#[cfg(any(test, feature = "test-utils"))]
mod fake;
#[cfg(any(test, feature = "test-utils"))]
pub use fake::FakeForge;

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
