//! `LocalForge`: the embedded default trainer — the crate's own
//! `python/train_lora.py`, run as a subprocess in the forge venv
//! (`AURA_SETUP_FORGE=1 scripts/setup.sh`), on the CPU. It trains a peft LoRA on the
//! base GGUF model and exports a GGUF LoRA adapter that `aura_cognition::LocalModel`
//! loads. The subprocess protocol, staging and cancellation are [`crate::script`]'s.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::script::{venv_python, ScriptRunner, ScriptSpec, TRAIN_SCRIPT};
use crate::*;

/// The forge venv, relative to `AURA_ROOT` (or the working directory).
pub const DEFAULT_VENV: &str = crate::script::FORGE_VENV;

/// Builds a [`LocalForge`].
#[derive(Clone, Debug, Default)]
pub struct LocalForgeBuilder {
    python: Option<PathBuf>,
    script: Option<PathBuf>,
    threads: Option<usize>,
    max_tokens: Option<usize>,
    seed: Option<u64>,
}

impl LocalForgeBuilder {
    /// Settings from the environment: `AURA_FORGE_PYTHON` (the interpreter; default
    /// `$AURA_ROOT/.venv-forge/bin/python`) and `AURA_FORGE_THREADS` (torch threads).
    pub fn from_env() -> Self {
        Self {
            python: std::env::var_os("AURA_FORGE_PYTHON")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            threads: std::env::var("AURA_FORGE_THREADS")
                .ok()
                .and_then(|v| v.parse().ok()),
            ..Self::default()
        }
    }

    /// The Python interpreter to run the script with.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some(path.into());
        self
    }

    /// Runs another training script instead of the shipped one (same protocol); for
    /// tests of the runner and for experiments.
    pub fn script(mut self, path: impl Into<PathBuf>) -> Self {
        self.script = Some(path.into());
        self
    }

    /// Torch's CPU threads (default: torch's own choice).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads.max(1));
        self
    }

    /// The longest example, in tokens, before its prompt is cut from the left (default 1024).
    pub fn max_tokens(mut self, tokens: usize) -> Self {
        self.max_tokens = Some(tokens.max(16));
        self
    }

    /// The seed for initialisation and example order (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The forge. Nothing is checked until a job runs, so a missing venv is reported
    /// where it matters, as [`Error::Unavailable`].
    pub fn build(self) -> LocalForge {
        let python = self.python.unwrap_or_else(|| venv_python(DEFAULT_VENV));
        LocalForge {
            runner: ScriptRunner {
                python,
                script: self.script,
                threads: self.threads,
                max_tokens: self.max_tokens.unwrap_or(1024),
                seed: self.seed.unwrap_or(0),
            },
        }
    }
}

/// Trains LoRA adapters on the CPU with the crate's `train_lora.py` (peft on torch),
/// exporting GGUF adapters for `LocalModel`.
#[derive(Clone, Debug)]
pub struct LocalForge {
    runner: ScriptRunner,
}

impl LocalForge {
    /// A builder.
    pub fn builder() -> LocalForgeBuilder {
        LocalForgeBuilder::default()
    }

    /// The forge the environment configures (see [`LocalForgeBuilder::from_env`]).
    pub fn from_env() -> Self {
        LocalForgeBuilder::from_env().build()
    }

    /// The interpreter it runs.
    pub fn python(&self) -> &Path {
        &self.runner.python
    }

    fn check(&self, job: &TrainingJob) -> Result<()> {
        if !self.runner.python.is_file() {
            return Err(Error::Unavailable(format!(
                "the forge's Python ({}) is missing: run `AURA_SETUP_FORGE=1 scripts/setup.sh` \
                 to install the training venv, or point AURA_FORGE_PYTHON at an interpreter \
                 with torch, transformers, peft, gguf and jinja2",
                self.runner.python.display()
            )));
        }
        crate::script::check_job(job)?;
        if !Path::new(&job.base_model).is_file() {
            return Err(Error::Invalid(format!(
                "the base model {} is not a file (LocalForge trains on a GGUF file)",
                job.base_model
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Forge for LocalForge {
    fn capabilities(&self) -> ForgeCapabilities {
        ForgeCapabilities {
            backend: "local",
            needs_gpu: false,
            gguf_adapter: true,
            merged_model: false,
        }
    }

    async fn train(
        &self,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter> {
        self.check(&job)?;
        let spec = ScriptSpec {
            scripts: &[("train_lora.py", TRAIN_SCRIPT)],
            extra_args: Vec::new(),
        };
        self.runner.train(&spec, job, progress, cancel).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::curate::{TRAIN_FILE, VALIDATION_FILE};
    use crate::script::{ADAPTER_FILE, METRICS_FILE};
    use std::time::Instant;

    /// A stand-in for train_lora.py speaking the same protocol, fast, without torch.
    const FAKE_SCRIPT: &str = r#"
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
for a in ["--base", "--train", "--validation", "--probes", "--persona", "--out", "--rank", "--alpha",
          "--lr", "--steps", "--max-tokens", "--seed", "--threads"]:
    p.add_argument(a)
a = p.parse_args()
steps = int(a.steps)
# The test controls this stand-in through the first line of the training file.
ctl = json.loads(open(a.train).readline() or "{}")
print("some library chatter", flush=True)
print(json.dumps({"event": "loaded"}), flush=True)
for s in range(1, steps + 1):
    print(json.dumps({"step": s, "total": steps, "loss": 4.0 / s}), flush=True)
    print("noise on stderr", file=sys.stderr, flush=True)
    time.sleep(float(ctl.get("step_s", 0)))
    open(os.path.join(a.out, "adapter.gguf"), "ab").write(b"x")
if ctl.get("fail"):
    print("boom: out of memory", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"result": {"validation_loss_before": 2.0, "validation_loss_after": 1.0,
                             "steps": steps}}), flush=True)
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        forge: LocalForge,
    }

    fn fixture(control: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake_train.py");
        std::fs::write(&script, FAKE_SCRIPT).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(TRAIN_FILE), format!("{control}\n")).unwrap();
        std::fs::write(data.join(VALIDATION_FILE), "{}\n").unwrap();
        std::fs::write(dir.path().join("base.gguf"), b"GGUF").unwrap();
        let forge = LocalForge::builder()
            .python("/usr/bin/python3")
            .script(script)
            .build();
        Fixture { dir, forge }
    }

    fn job(f: &Fixture, steps: u32) -> TrainingJob {
        TrainingJob {
            persona: "babs".into(),
            base_model: f.dir.path().join("base.gguf").display().to_string(),
            dataset_dir: f.dir.path().join("data"),
            output_dir: f.dir.path().join("out"),
            lora: LoraConfig {
                steps,
                ..LoraConfig::default()
            },
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test]
    async fn streams_progress_and_keeps_only_a_finished_adapter() {
        let f = fixture("{}");
        let (tx, mut rx) = mpsc::channel(64);
        let (_cancel_tx, cancel) = watch::channel(false);
        let adapter = f.forge.train(job(&f, 3), tx, cancel).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(p) = rx.try_recv() {
            seen.push((p.step, p.total, p.loss));
        }
        assert_eq!(seen, vec![(1, 3, 4.0), (2, 3, 2.0), (3, 3, 4.0 / 3.0)]);
        assert_eq!(std::fs::read(&adapter.adapter_path).unwrap(), b"xxx");
        assert_eq!(adapter.metrics["validation_loss_after"], 1.0);
        assert!(adapter.metrics["wall_seconds"].as_f64().unwrap() > 0.0);
        assert_eq!(
            entries(&f.dir.path().join("out")),
            vec![ADAPTER_FILE, METRICS_FILE]
        );
    }

    #[tokio::test]
    async fn a_failing_script_reports_its_stderr_and_leaves_nothing() {
        let f = fixture(r#"{"fail": true}"#);
        let (tx, _rx) = mpsc::channel(64);
        let (_c, cancel) = watch::channel(false);
        let err = f.forge.train(job(&f, 2), tx, cancel).await.unwrap_err();
        match err {
            Error::Failed(msg) => assert!(msg.contains("boom: out of memory"), "{msg}"),
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(entries(&f.dir.path().join("out")).is_empty());
    }

    #[tokio::test]
    async fn cancelling_kills_the_script_and_removes_the_partial_output() {
        let f = fixture(r#"{"step_s": 0.01}"#);
        let forge = f.forge.clone();
        let job = job(&f, 1000);
        let out = job.output_dir.clone();
        let (tx, mut rx) = mpsc::channel(4096);
        let (cancel_tx, cancel) = watch::channel(false);
        let run = tokio::spawn(async move { forge.train(job, tx, cancel).await });
        // Cancel once training is under way (a few steps reported).
        for _ in 0..3 {
            rx.recv().await.unwrap();
        }
        let t = Instant::now();
        cancel_tx.send(true).unwrap();
        let result = run.await.unwrap();
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        assert!(
            t.elapsed().as_secs() < 5,
            "cancellation took {:?}",
            t.elapsed()
        );
        assert!(entries(&out).is_empty(), "left behind: {:?}", entries(&out));
    }

    #[tokio::test]
    async fn a_missing_venv_says_how_to_install_it() {
        let f = fixture("{}");
        let forge = LocalForge::builder()
            .python(f.dir.path().join("no-venv/bin/python"))
            .build();
        let (tx, _rx) = mpsc::channel(4);
        let (_c, cancel) = watch::channel(false);
        match forge.train(job(&f, 1), tx, cancel).await {
            Err(Error::Unavailable(msg)) => {
                assert!(msg.contains("AURA_SETUP_FORGE=1 scripts/setup.sh"), "{msg}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
