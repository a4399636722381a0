//! The runner both script trainers share ([`crate::LocalForge`] on the CPU,
//! `UnslothForge` on a GPU, feature `unsloth`): one of the crate's Python scripts, run as a
//! subprocess in a training venv, speaking a line protocol on stdout.
//!
//! The scripts are compiled into the crate and written next to the run's output, so the
//! crate needs no files at run time but the venv and the base model. A script prints one
//! JSON object per line on stdout: `{"step","total","loss"}` after each optimiser step
//! (sent on as [`Progress`]), `{"event": …}` lines while it loads and evaluates, and
//! finally `{"result": {…metrics}}`. It exits with [`EXIT_UNAVAILABLE`] when it cannot
//! train on this machine at all (no GPU, a package missing), which becomes
//! [`Error::Unavailable`] with its last stderr line.
//!
//! The run writes into a staging directory inside the job's output directory; only a
//! finished run moves `adapter.gguf` (and `model.gguf`, a merged model, when the script
//! wrote one) and `metrics.json` into place, so a cancelled or failed run leaves no
//! partial adapter. Cancelling kills the script's whole process group (it is started as
//! a group leader).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::curate::{TRAIN_FILE, VALIDATION_FILE};
use crate::*;

/// The training script shared by both trainers (the CPU path, and helpers the GPU path imports).
pub const TRAIN_SCRIPT: &str = include_str!("../python/train_lora.py");
/// The fixed probe set every facet is also judged on (see the [`crate::register`](mod@crate::register) module).
pub const PROBES: &str = include_str!("../python/probes.jsonl");
/// The adapter's file name in the job's output directory.
pub const ADAPTER_FILE: &str = "adapter.gguf";
/// A merged model's file name in the job's output directory (when the trainer writes one).
pub const MERGED_FILE: &str = "model.gguf";
/// The training figures' file name in the job's output directory.
pub const METRICS_FILE: &str = "metrics.json";
/// The exit status of a script that cannot train on this machine (sysexits' EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: i32 = 69;

const STDERR_TAIL: usize = 4000;

/// The forge venv the setup step installs, relative to `AURA_ROOT`.
pub(crate) const FORGE_VENV: &str = ".venv-forge";

/// `$AURA_ROOT/<dir>` (the working directory when `AURA_ROOT` is unset).
pub(crate) fn under_root(dir: &str) -> PathBuf {
    std::env::var_os("AURA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(dir)
}

/// The interpreter of the venv `<root>/<venv>`.
pub(crate) fn venv_python(venv: &str) -> PathBuf {
    under_root(venv).join("bin").join("python")
}

/// What differs between the trainers.
pub(crate) struct ScriptSpec {
    /// The scripts to write into the staging directory; the first is the entry point.
    pub scripts: &'static [(&'static str, &'static str)],
    /// Arguments after the common ones.
    pub extra_args: Vec<String>,
}

/// The interpreter and the settings common to both trainers.
#[derive(Clone, Debug)]
pub(crate) struct ScriptRunner {
    pub python: PathBuf,
    pub script: Option<PathBuf>,
    pub threads: Option<usize>,
    pub max_tokens: usize,
    pub seed: u64,
}

/// The checks every script trainer makes before it starts: hyperparameters in range and
/// a curated dataset in place.
pub(crate) fn check_job(job: &TrainingJob) -> Result<()> {
    if job.lora.steps == 0 || job.lora.rank == 0 {
        return Err(Error::Invalid(
            "a job needs at least one step and a rank of at least 1".into(),
        ));
    }
    if !(job.lora.learning_rate.is_finite() && job.lora.learning_rate > 0.0) {
        return Err(Error::Invalid("the learning rate must be positive".into()));
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

impl ScriptRunner {
    /// Runs `spec` for `job` and moves the finished outputs into `job.output_dir`.
    pub(crate) async fn train(
        &self,
        spec: &ScriptSpec,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter> {
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
        let result = self.run(spec, &job, &staging, &progress, &mut cancel).await;
        let finished = match result {
            Ok(mut metrics) => {
                let adapter = out.join(ADAPTER_FILE);
                let mut moved = tokio::fs::rename(staging.join(ADAPTER_FILE), &adapter)
                    .await
                    .map_err(|e| Error::io(&adapter, e));
                // A merged model is optional: the script writes one when it can.
                let merged = out.join(MERGED_FILE);
                if moved.is_ok() && staging.join(MERGED_FILE).is_file() {
                    moved = tokio::fs::rename(staging.join(MERGED_FILE), &merged)
                        .await
                        .map_err(|e| Error::io(&merged, e));
                    if let Value::Object(m) = &mut metrics {
                        m.insert("merged_model".into(), merged.display().to_string().into());
                    }
                }
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

    async fn run(
        &self,
        spec: &ScriptSpec,
        job: &TrainingJob,
        staging: &Path,
        progress: &mpsc::Sender<Progress>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Value> {
        // Every shipped script goes next to the entry point (they import each other).
        for (name, text) in spec.scripts {
            let path = staging.join(name);
            tokio::fs::write(&path, text)
                .await
                .map_err(|e| Error::io(&path, e))?;
        }
        let script = match &self.script {
            Some(path) => path.clone(),
            None => staging.join(spec.scripts[0].0),
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
            .env("TRANSFORMERS_OFFLINE", "1")
            .args(&spec.extra_args);
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
                        tracing::info!(target: "Forge", step = p.step, total = p.total, loss = p.loss, "training step");
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
        let name = spec.scripts[0].0;
        if status.code() == Some(EXIT_UNAVAILABLE) {
            // The script found it cannot train here (no GPU, a package missing).
            let why = stderr_tail
                .trim()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            return Err(Error::Unavailable(why));
        }
        if !status.success() {
            return Err(Error::Failed(format!(
                "{name} exited with {status}: {}",
                stderr_tail.trim()
            )));
        }
        let mut metrics = result.ok_or_else(|| {
            Error::Failed(format!("{name} reported no result: {}", stderr_tail.trim()))
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
