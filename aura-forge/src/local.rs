//! `LocalForge`: the embedded default trainer — the crate's own
//! `python/train_lora.py`, run as a subprocess in the forge venv, on the CPU.
//!
//! The script is compiled into the crate and written next to the run's output, so the
//! crate needs no files at run time but the venv (installed by
//! `AURA_SETUP_FORGE=1 scripts/setup.sh`) and the base GGUF model. It prints one JSON
//! object per line on stdout: `{"step","total","loss"}` after each optimiser step
//! (sent on as [`Progress`]), `{"event": …}` lines while it loads and evaluates, and
//! finally `{"result": {…metrics}}`.
//!
//! The run writes into a staging directory inside the job's output directory; only a
//! finished run moves `adapter.gguf` and `metrics.json` into place, so a cancelled or
//! failed run leaves no partial adapter. Cancelling kills the script's whole process
//! group (it is started as a group leader).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::curate::{TRAIN_FILE, VALIDATION_FILE};
use crate::*;

/// The training script shipped with the crate.
pub const TRAIN_SCRIPT: &str = include_str!("../python/train_lora.py");
/// The fixed probe set every facet is also judged on (see [`crate::register`]).
pub const PROBES: &str = include_str!("../python/probes.jsonl");
/// The adapter's file name in the job's output directory.
pub const ADAPTER_FILE: &str = "adapter.gguf";
/// The training figures' file name in the job's output directory.
pub const METRICS_FILE: &str = "metrics.json";
/// The forge venv, relative to `AURA_ROOT` (or the working directory).
pub const DEFAULT_VENV: &str = ".venv-forge";

const STDERR_TAIL: usize = 4000;

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
        let python = self.python.unwrap_or_else(|| {
            let root = std::env::var_os("AURA_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            root.join(DEFAULT_VENV).join("bin").join("python")
        });
        LocalForge {
            python,
            script: self.script,
            threads: self.threads,
            max_tokens: self.max_tokens.unwrap_or(1024),
            seed: self.seed.unwrap_or(0),
        }
    }
}

/// Trains LoRA adapters on the CPU with the crate's `train_lora.py` (peft on torch),
/// exporting GGUF adapters for `LocalModel`.
#[derive(Clone, Debug)]
pub struct LocalForge {
    python: PathBuf,
    script: Option<PathBuf>,
    threads: Option<usize>,
    max_tokens: usize,
    seed: u64,
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
        &self.python
    }

    fn check(&self, job: &TrainingJob) -> Result<()> {
        if !self.python.is_file() {
            return Err(Error::Unavailable(format!(
                "the forge's Python ({}) is missing: run `AURA_SETUP_FORGE=1 scripts/setup.sh` \
                 to install the training venv, or point AURA_FORGE_PYTHON at an interpreter \
                 with torch, transformers, peft, gguf and jinja2",
                self.python.display()
            )));
        }
        if job.lora.steps == 0 || job.lora.rank == 0 {
            return Err(Error::Invalid(
                "a job needs at least one step and a rank of at least 1".into(),
            ));
        }
        if !(job.lora.learning_rate.is_finite() && job.lora.learning_rate > 0.0) {
            return Err(Error::Invalid("the learning rate must be positive".into()));
        }
        if !Path::new(&job.base_model).is_file() {
            return Err(Error::Invalid(format!(
                "the base model {} is not a file (LocalForge trains on a GGUF file)",
                job.base_model
            )));
        }
        for name in [TRAIN_FILE, VALIDATION_FILE] {
            if !job.dataset_dir.join(name).is_file() {
                return Err(Error::Invalid(format!(
                    "{} has no {name}: curate a dataset first",
                    job.dataset_dir.display()
                )));
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        job: &TrainingJob,
        staging: &Path,
        progress: &mpsc::Sender<Progress>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Value> {
        let script = match &self.script {
            Some(path) => path.clone(),
            None => {
                let path = staging.join("train_lora.py");
                tokio::fs::write(&path, TRAIN_SCRIPT)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                path
            }
        };
        let probes = staging.join("probes.jsonl");
        tokio::fs::write(&probes, PROBES)
            .await
            .map_err(|e| Error::io(&probes, e))?;

        let mut cmd = Command::new(&self.python);
        cmd.arg("-u")
            .arg(&script)
            .arg("--base")
            .arg(&job.base_model)
            .arg("--train")
            .arg(job.dataset_dir.join(TRAIN_FILE))
            .arg("--validation")
            .arg(job.dataset_dir.join(VALIDATION_FILE))
            .arg("--probes")
            .arg(&probes)
            .args(["--persona", &job.persona])
            .arg("--out")
            .arg(staging)
            .args(["--rank", &job.lora.rank.to_string()])
            .args(["--alpha", &job.lora.alpha.to_string()])
            .args(["--lr", &job.lora.learning_rate.to_string()])
            .args(["--steps", &job.lora.steps.to_string()])
            .args(["--max-tokens", &self.max_tokens.to_string()])
            .args(["--seed", &self.seed.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so cancellation reaches anything it starts.
            .process_group(0)
            .env("PYTHONUNBUFFERED", "1")
            // Offline by design: the base model is a local file, nothing is fetched.
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1");
        if let Some(threads) = self.threads {
            cmd.args(["--threads", &threads.to_string()]);
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::Unavailable(format!("cannot start {}: {e}", self.python.display()))
        })?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Error::Failed(
                "the script's output pipes are missing".into(),
            ));
        };
        // stderr is read concurrently so a chatty library cannot fill the pipe and stall
        // the script; only its tail is kept for the error message.
        let stderr_task = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 4 * STDERR_TAIL {
                    buf.drain(..buf.len() - STDERR_TAIL);
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let cut = text.len().saturating_sub(STDERR_TAIL);
            text[text.ceil_char_boundary_compat(cut)..].to_string()
        });

        let mut lines = BufReader::new(stdout).lines();
        let mut result: Option<Value> = None;
        let started = Instant::now();
        loop {
            tokio::select! {
                changed = cancel.changed() => {
                    // A dropped sender can no longer cancel: keep training.
                    if changed.is_err() {
                        continue;
                    }
                    if *cancel.borrow() {
                        kill_group(pgid);
                        let _ = child.kill().await;
                        stderr_task.abort();
                        tracing::info!(target: "Forge", persona = %job.persona, "training cancelled");
                        return Err(Error::Cancelled);
                    }
                }
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { break };
                    let Ok(message) = serde_json::from_str::<Value>(&line) else {
                        tracing::debug!(target: "Forge", "{line}");
                        continue;
                    };
                    if let Some(r) = message.get("result") {
                        result = Some(r.clone());
                    } else if let Some(p) = progress_of(&message) {
                        tracing::debug!(target: "Forge", step = p.step, total = p.total, loss = p.loss, "step");
                        // A dropped receiver only means nobody is watching.
                        let _ = progress.send(p).await;
                    } else if let Some(event) = message.get("event") {
                        tracing::info!(target: "Forge", %event, details = %message, "trainer");
                    }
                }
            }
        }
        // stdout closed: the script is finishing; cancellation still wins meanwhile.
        let status = tokio::select! {
            status = child.wait() => status.map_err(|e| Error::Failed(format!("waiting for the script: {e}")))?,
            _ = wait_for_cancel(cancel) => {
                kill_group(pgid);
                let _ = child.kill().await;
                return Err(Error::Cancelled);
            }
        };
        let stderr_tail = stderr_task.await.unwrap_or_default();
        if !status.success() {
            return Err(Error::Failed(format!(
                "train_lora.py exited with {status}: {}",
                stderr_tail.trim()
            )));
        }
        let mut metrics = result.ok_or_else(|| {
            Error::Failed(format!(
                "train_lora.py reported no result: {}",
                stderr_tail.trim()
            ))
        })?;
        if let Value::Object(m) = &mut metrics {
            m.insert(
                "wall_seconds".into(),
                serde_json::json!(started.elapsed().as_secs_f64()),
            );
        }
        Ok(metrics)
    }
}

/// A progress line: `{"step": n, "total": n, "loss": x}`.
fn progress_of(message: &Value) -> Option<Progress> {
    let n = |k: &str| {
        message
            .get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    Some(Progress {
        step: n("step")?,
        total: n("total")?,
        loss: message.get("loss").and_then(Value::as_f64)?,
    })
}

async fn wait_for_cancel(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            // Nobody can cancel any more.
            std::future::pending::<()>().await;
        }
    }
}

/// Kills the script's process group (it was started as its leader, so pgid = pid).
fn kill_group(pgid: Option<i32>) {
    if let Some(pid) = pgid.and_then(rustix::process::Pid::from_raw) {
        // ESRCH (already gone) is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// `str::ceil_char_boundary` for the MSRV.
trait CeilCharBoundary {
    fn ceil_char_boundary_compat(&self, i: usize) -> usize;
}

impl CeilCharBoundary for str {
    fn ceil_char_boundary_compat(&self, mut i: usize) -> usize {
        while i < self.len() && !self.is_char_boundary(i) {
            i += 1;
        }
        i.min(self.len())
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
        mut cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter> {
        self.check(&job)?;
        if *cancel.borrow() {
            return Err(Error::Cancelled);
        }
        let out = &job.output_dir;
        tokio::fs::create_dir_all(out)
            .await
            .map_err(|e| Error::io(out, e))?;
        let staging = out.join(format!(
            ".partial-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| Error::io(&staging, e))?;
        tracing::info!(target: "Forge", persona = %job.persona, base = %job.base_model,
            steps = job.lora.steps, rank = job.lora.rank, "training starts");
        let result = self.run(&job, &staging, &progress, &mut cancel).await;
        let finished = match result {
            Ok(mut metrics) => {
                let adapter = out.join(ADAPTER_FILE);
                let moved = tokio::fs::rename(staging.join(ADAPTER_FILE), &adapter)
                    .await
                    .map_err(|e| Error::io(&adapter, e));
                match moved {
                    Ok(()) => {
                        if let Value::Object(m) = &mut metrics {
                            m.insert(
                                "dataset_dir".into(),
                                job.dataset_dir.display().to_string().into(),
                            );
                        }
                        let path = out.join(METRICS_FILE);
                        let text = serde_json::to_string_pretty(&metrics).unwrap_or_default();
                        tokio::fs::write(&path, text)
                            .await
                            .map_err(|e| Error::io(&path, e))
                            .map(|()| TrainedAdapter {
                                adapter_path: adapter.display().to_string(),
                                metrics,
                            })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        // The staging directory goes whatever happened: partial weights are never kept.
        let _ = tokio::fs::remove_dir_all(&staging).await;
        if let Ok(adapter) = &finished {
            tracing::info!(target: "Forge", persona = %job.persona, adapter = %adapter.adapter_path,
                metrics = %adapter.metrics, "training done");
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
