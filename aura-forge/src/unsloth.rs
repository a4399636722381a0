//! `UnslothForge` (feature `unsloth`): the GPU trainer — the crate's
//! `python/train_unsloth.py`, unsloth's QLoRA on a Hugging Face model, run as a
//! subprocess in a venv that has unsloth on a CUDA machine. The base is a Hugging Face
//! directory or a GGUF file: unsloth trains from safetensors, so the script first
//! dequantises a GGUF base into one, and the adapter is trained on the very weights
//! the embedded model serves. It exports a GGUF LoRA adapter and, given a llama.cpp
//! directory with `convert_hf_to_gguf.py`, a merged GGUF model (`model.gguf`, reported
//! as `metrics.merged_model`) for Ollama servers that refuse adapters.
//!
//! On a machine without a GPU, or an interpreter without torch or unsloth, a job fails
//! fast with [`Error::Unavailable`] saying which. The subprocess protocol, staging and
//! cancellation are [`crate::script`]'s, shared with [`crate::LocalForge`].

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::script::{under_root, venv_python, ScriptRunner, ScriptSpec, FORGE_VENV, TRAIN_SCRIPT};
use crate::*;

/// The GPU training script shipped with the crate.
pub const UNSLOTH_SCRIPT: &str = include_str!("../python/train_unsloth.py");
/// The unsloth venv, relative to `AURA_ROOT` (or the working directory).
pub const DEFAULT_UNSLOTH_VENV: &str = ".venv-unsloth";

/// Builds an [`UnslothForge`].
#[derive(Clone, Debug, Default)]
pub struct UnslothForgeBuilder {
    python: Option<PathBuf>,
    script: Option<PathBuf>,
    llama_cpp: Option<PathBuf>,
    full_precision: bool,
    merged_type: Option<String>,
    max_tokens: Option<usize>,
    seed: Option<u64>,
}

impl UnslothForgeBuilder {
    /// Settings from the environment: `AURA_UNSLOTH_PYTHON` (default
    /// `$AURA_ROOT/.venv-unsloth/bin/python`) and `AURA_LLAMA_CPP_DIR` (a llama.cpp
    /// directory with `convert_hf_to_gguf.py`; default the scripts the forge setup step
    /// fetched into `.venv-forge/llama.cpp`, when there; without them no merged model
    /// is written).
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        // The conversion scripts `AURA_SETUP_FORGE=1 scripts/setup.sh` fetches, when there.
        let fetched = under_root(FORGE_VENV).join("llama.cpp");
        let llama_cpp = var("AURA_LLAMA_CPP_DIR").or_else(|| {
            fetched
                .join("convert_hf_to_gguf.py")
                .is_file()
                .then_some(fetched)
        });
        Self {
            python: var("AURA_UNSLOTH_PYTHON"),
            llama_cpp,
            ..Self::default()
        }
    }

    /// The Python interpreter with torch (CUDA) and unsloth.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some(path.into());
        self
    }

    /// Runs another script instead of the shipped one (same protocol).
    pub fn script(mut self, path: impl Into<PathBuf>) -> Self {
        self.script = Some(path.into());
        self
    }

    /// A llama.cpp directory with `convert_hf_to_gguf.py`: also write a merged GGUF model.
    pub fn llama_cpp(mut self, dir: impl Into<PathBuf>) -> Self {
        self.llama_cpp = Some(dir.into());
        self
    }

    /// Trains on a 16-bit base instead of a 4-bit one (LoRA rather than QLoRA).
    pub fn full_precision(mut self) -> Self {
        self.full_precision = true;
        self
    }

    /// The merged GGUF's tensor type (default `q8_0`; `f16`, `bf16` and `q8_0` convert directly).
    pub fn merged_type(mut self, ty: impl Into<String>) -> Self {
        self.merged_type = Some(ty.into());
        self
    }

    /// The longest example, in tokens (default 2048).
    pub fn max_tokens(mut self, tokens: usize) -> Self {
        self.max_tokens = Some(tokens.max(16));
        self
    }

    /// The seed for initialisation and example order (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The forge; nothing is checked until a job runs.
    pub fn build(self) -> UnslothForge {
        let python = self
            .python
            .unwrap_or_else(|| venv_python(DEFAULT_UNSLOTH_VENV));
        UnslothForge {
            runner: ScriptRunner {
                python,
                script: self.script,
                threads: None,
                max_tokens: self.max_tokens.unwrap_or(2048),
                seed: self.seed.unwrap_or(0),
            },
            llama_cpp: self.llama_cpp,
            four_bit: !self.full_precision,
            merged_type: self.merged_type.unwrap_or_else(|| "q8_0".into()),
        }
    }
}

/// Trains QLoRA adapters with unsloth on a CUDA GPU; exports GGUF adapters and merged models.
#[derive(Clone, Debug)]
pub struct UnslothForge {
    runner: ScriptRunner,
    llama_cpp: Option<PathBuf>,
    four_bit: bool,
    merged_type: String,
}

impl UnslothForge {
    /// A builder.
    pub fn builder() -> UnslothForgeBuilder {
        UnslothForgeBuilder::default()
    }

    /// The forge the environment configures (see [`UnslothForgeBuilder::from_env`]).
    pub fn from_env() -> Self {
        UnslothForgeBuilder::from_env().build()
    }

    /// The interpreter it runs.
    pub fn python(&self) -> &Path {
        &self.runner.python
    }

    fn check(&self, job: &TrainingJob) -> Result<()> {
        if !self.runner.python.is_file() {
            return Err(Error::Unavailable(format!(
                "UnslothForge's Python ({}) is missing: on a CUDA machine, make a venv with \
                 torch, unsloth, gguf and jinja2 and point AURA_UNSLOTH_PYTHON at its \
                 interpreter (LocalForge trains on the CPU)",
                self.runner.python.display()
            )));
        }
        crate::script::check_job(job)?;
        let base = Path::new(&job.base_model);
        let gguf_file = base.is_file() && base.extension().is_some_and(|e| e == "gguf");
        if base.exists() && !gguf_file && !base.join("config.json").is_file() {
            return Err(Error::Invalid(format!(
                "the base model {} is neither a Hugging Face model directory (config.json \
                 and safetensors) nor a GGUF file",
                job.base_model
            )));
        }
        if let Some(dir) = &self.llama_cpp {
            if !dir.join("convert_hf_to_gguf.py").is_file() {
                return Err(Error::Invalid(format!(
                    "{} has no convert_hf_to_gguf.py (AURA_LLAMA_CPP_DIR)",
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Forge for UnslothForge {
    fn capabilities(&self) -> ForgeCapabilities {
        ForgeCapabilities {
            backend: "unsloth",
            needs_gpu: true,
            gguf_adapter: true,
            merged_model: self.llama_cpp.is_some(),
        }
    }

    async fn train(
        &self,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter> {
        self.check(&job)?;
        let mut extra_args = vec!["--merged-type".to_string(), self.merged_type.clone()];
        if self.four_bit {
            extra_args.push("--load-in-4bit".into());
        }
        if let Some(dir) = &self.llama_cpp {
            extra_args.push("--llama-cpp".into());
            extra_args.push(dir.display().to_string());
        }
        let spec = ScriptSpec {
            // train_unsloth.py imports train_lora.py's helpers from its own directory.
            scripts: &[
                ("train_unsloth.py", UNSLOTH_SCRIPT),
                ("train_lora.py", TRAIN_SCRIPT),
            ],
            extra_args,
        };
        self.runner.train(&spec, job, progress, cancel).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::curate::{TRAIN_FILE, VALIDATION_FILE};

    fn job(dir: &Path) -> TrainingJob {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(TRAIN_FILE), "{}\n").unwrap();
        std::fs::write(data.join(VALIDATION_FILE), "{}\n").unwrap();
        let base = dir.join("base");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("config.json"), "{}").unwrap();
        TrainingJob {
            persona: "robin".into(),
            base_model: base.display().to_string(),
            dataset_dir: data,
            output_dir: dir.join("out"),
            lora: LoraConfig {
                steps: 2,
                ..LoraConfig::default()
            },
        }
    }

    /// The shipped script, run by an interpreter without a usable GPU stack, says so
    /// and leaves nothing behind.
    #[tokio::test]
    async fn without_a_gpu_stack_the_shipped_script_reports_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let forge = UnslothForge::builder().python("/usr/bin/python3").build();
        let (tx, _rx) = mpsc::channel(4);
        let (_c, cancel) = watch::channel(false);
        match forge.train(job(dir.path()), tx, cancel).await {
            Err(Error::Unavailable(why)) => {
                assert!(
                    why.contains("torch is not installed")
                        || why.contains("no CUDA GPU")
                        || why.contains("unsloth cannot be imported"),
                    "{why}"
                );
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[tokio::test]
    async fn a_base_that_is_no_model_or_a_missing_venv_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path());
        let not_a_model = dir.path().join("weights");
        std::fs::create_dir_all(&not_a_model).unwrap();
        j.base_model = not_a_model.display().to_string();
        let forge = UnslothForge::builder().python("/usr/bin/python3").build();
        let (tx, _rx) = mpsc::channel(4);
        let (_c, cancel) = watch::channel(false);
        let err = forge
            .train(j, tx.clone(), cancel.clone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("neither a Hugging Face"), "{err}");

        let forge = UnslothForge::builder()
            .python(dir.path().join("nothing/bin/python"))
            .build();
        let err = forge.train(job(dir.path()), tx, cancel).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("AURA_UNSLOTH_PYTHON")),
            "{err:?}"
        );
        assert!(forge.capabilities().needs_gpu);
    }
}
