//! `LocalModel`: the embedded default backend — a GGUF model run in-process on the CPU
//! through llama.cpp (`llama-cpp-2`).
//!
//! All inference runs on one dedicated worker thread per model, never on the async
//! executor: calls send a job over a channel and await the worker's replies.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use serde_json::json;
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::grammar::json_schema_to_gbnf;
use crate::model::*;
use crate::schema::{check_schema, parse_structured};
use crate::template::ChatTemplate;
use crate::text::{StopFilter, Utf8Assembler};
use crate::{Error, Result};

mod engine;
mod worker;

use worker::worker;

const BACKEND: &str = "local";
/// The default model file, relative to `AURA_ROOT` (or the working directory).
pub const DEFAULT_MODEL_FILE: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
const BATCH: usize = 512;
const EMBED_CONTEXT: u32 = 2048;

/// Builds a [`LocalModel`].
#[derive(Clone, Debug)]
pub struct LocalModelBuilder {
    model_path: Option<PathBuf>,
    threads: usize,
    context_length: u32,
    lora: Option<(PathBuf, f32)>,
    timeout: Option<Duration>,
    prompt_cache: bool,
}

impl Default for LocalModelBuilder {
    fn default() -> Self {
        Self {
            model_path: None,
            threads: 2,
            context_length: 4096,
            lora: None,
            timeout: None,
            prompt_cache: true,
        }
    }
}

impl LocalModelBuilder {
    /// A builder configured from the environment: `AURA_MODEL_PATH` (default
    /// `models/SmolLM2-135M-Instruct.Q4_1.gguf` under `AURA_ROOT` or the working
    /// directory), `AURA_MODEL_THREADS` (default 2), `AURA_MODEL_CONTEXT` (default 4096).
    pub fn from_env() -> Self {
        let mut b = Self::default().model_path(default_model_path());
        if let Some(n) = env_parse::<usize>("AURA_MODEL_THREADS") {
            b = b.threads(n);
        }
        if let Some(n) = env_parse::<u32>("AURA_MODEL_CONTEXT") {
            b = b.context_length(n);
        }
        b
    }

    /// The GGUF file to load.
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.model_path = Some(path.into());
        self
    }

    /// CPU threads for inference (default 2).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The context window in tokens (default 4096; capped at the model's training context).
    pub fn context_length(mut self, tokens: u32) -> Self {
        self.context_length = tokens.max(64);
        self
    }

    /// A LoRA adapter (GGUF) applied to generation at `scale` (one adapter; the last call wins).
    /// Embeddings always come from the base model, so stored vectors stay comparable.
    pub fn lora(mut self, path: impl Into<PathBuf>, scale: f32) -> Self {
        self.lora = Some((path.into(), scale));
        self
    }

    /// Fails a call with [`Error::Timeout`] once it has taken this long (queueing included).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reuses the KV cache for a prompt prefix shared with the previous call (default on).
    pub fn prompt_cache(mut self, enabled: bool) -> Self {
        self.prompt_cache = enabled;
        self
    }

    /// Loads the model on a new worker thread and waits until it is ready.
    pub fn build(self) -> Result<LocalModel> {
        let path = self.model_path.clone().unwrap_or_else(default_model_path);
        if !path.is_file() {
            return Err(Error::ModelNotFound(format!(
                "{}: no such model file (run scripts/setup.sh demo to install the default \
                 model, or set AURA_MODEL_PATH; see aura_cognition::model_search_path)",
                path.display()
            )));
        }
        if let Some((lora, _)) = &self.lora {
            if !lora.is_file() {
                return Err(Error::ModelNotFound(format!(
                    "{}: no such LoRA adapter file",
                    lora.display()
                )));
            }
        }
        let started = Instant::now();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (job_tx, job_rx) = mpsc::channel();
        let cfg = self.clone();
        let worker_path = path.clone();
        let reused = Arc::new(AtomicUsize::new(0));
        let worker_reused = reused.clone();
        std::thread::Builder::new()
            .name("aura-local-model".into())
            .spawn(move || worker(cfg, worker_path, worker_reused, ready_tx, job_rx))
            .map_err(|e| backend_err(format!("cannot start the model thread: {e}")))?;
        let ready = ready_rx
            .recv()
            .map_err(|_| backend_err("the model thread stopped while loading"))??;
        tracing::info!(
            target: "LocalModel",
            model = %ready.info.name,
            load_ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        Ok(LocalModel {
            inner: Arc::new(Inner {
                jobs: std::sync::Mutex::new(job_tx),
                info: ready.info,
                template: ready.template,
                timeout: self.timeout,
                load_time: started.elapsed(),
                path,
                reused,
            }),
        })
    }
}

/// A GGUF model run in-process on the CPU (llama.cpp): the embedded default backend.
///
/// Applies the model's own chat template, samples reproducibly with a seed, constrains
/// replies to a JSON Schema with a grammar, streams, embeds, applies a LoRA adapter,
/// and reuses the KV cache across calls that share a prompt prefix.
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: std::sync::Mutex<mpsc::Sender<Job>>,
    info: ModelInfo,
    template: ChatTemplate,
    timeout: Option<Duration>,
    load_time: Duration,
    path: PathBuf,
    reused: Arc<AtomicUsize>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.inner.info.name)
            .field("path", &self.inner.path)
            .finish()
    }
}

impl LocalModel {
    /// A builder with defaults (no model path: `from_env`'s default is used).
    pub fn builder() -> LocalModelBuilder {
        LocalModelBuilder::default()
    }

    /// Loads the model the environment names (see [`LocalModelBuilder::from_env`]).
    pub fn from_env() -> Result<Self> {
        LocalModelBuilder::from_env().build()
    }

    /// How long loading took (model file, context, adapter).
    pub fn load_time(&self) -> Duration {
        self.inner.load_time
    }

    /// How many prompt tokens the last chat took from the KV cache instead of decoding.
    pub fn last_reused_tokens(&self) -> usize {
        self.inner.reused.load(Ordering::Relaxed)
    }

    /// The GGUF file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The prompt the model's chat template makes of `messages`.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        self.inner.template.render(messages)
    }

    fn submit(&self, job: Job) -> Result<()> {
        let jobs = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs.send(job)
            .map_err(|_| Error::Unavailable("the local model's worker thread has stopped".into()))
    }

    fn start_chat(&self, request: ChatRequest) -> Result<tmpsc::UnboundedReceiver<Event>> {
        let prompt = self.inner.template.render(&request.messages)?;
        let grammar = match &request.schema {
            Some(schema) => {
                check_schema(schema)?;
                Some(json_schema_to_gbnf(schema)?)
            }
            None => None,
        };
        let (tx, rx) = tmpsc::unbounded_channel();
        self.submit(Job::Chat {
            request,
            prompt,
            grammar,
            deadline: self.inner.timeout.map(|t| (Instant::now() + t, t)),
            events: tx,
        })?;
        Ok(rx)
    }
}

type Event = Result<StreamChunk>;

enum Job {
    Chat {
        request: ChatRequest,
        prompt: String,
        grammar: Option<String>,
        deadline: Option<(Instant, Duration)>,
        events: tmpsc::UnboundedSender<Event>,
    },
    Embed {
        texts: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
    },
    Score {
        prompt: String,
        reply: String,
        result: oneshot::Sender<Result<(f64, usize)>>,
    },
}

#[async_trait]
impl LanguageModel for LocalModel {
    fn capabilities(&self) -> ModelCapabilities {
        ModelCapabilities {
            backend: BACKEND,
            structured_output: true,
            streaming: true,
            embeddings: true,
            deterministic_seed: true,
            lora: true,
            scoring: true,
        }
    }

    fn describe(&self) -> String {
        format!("local:{}", self.inner.path.display())
    }

    async fn info(&self) -> Result<ModelInfo> {
        if !self.inner.path.is_file() {
            return Err(Error::ModelNotFound(format!(
                "{}: the model file is gone",
                self.inner.path.display()
            )));
        }
        Ok(self.inner.info.clone())
    }

    /// The prompt is rendered with the chat template as [`LanguageModel::chat`] renders
    /// it; `reply` is tokenized on its own (special tokens such as `<|im_end|>`
    /// recognised), as generation would produce it.
    async fn score(&self, messages: &[ChatMessage], reply: &str) -> Result<(f64, usize)> {
        let prompt = self.inner.template.render(messages)?;
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Score {
            prompt,
            reply: reply.to_string(),
            result: tx,
        })?;
        rx.await
            .map_err(|_| backend_err("the model thread stopped mid-scoring"))?
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut rx = self.start_chat(request)?;
        while let Some(event) = rx.recv().await {
            if let StreamChunk::Done(response) = event? {
                return Ok(response);
            }
        }
        Err(backend_err("the model thread stopped mid-reply"))
    }

    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        let rx = self.start_chat(request)?;
        Ok(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .boxed())
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Embed {
            texts: texts.to_vec(),
            reply: tx,
        })?;
        let work = async {
            rx.await
                .map_err(|_| backend_err("the model thread stopped mid-embedding"))?
        };
        match self.inner.timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Error::Timeout(t))?,
            None => work.await,
        }
    }
}

fn backend_err(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, message.into())
}

fn env_parse<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

/// Where the embedded model is looked for, in order: `AURA_MODEL_PATH`; else
/// [`DEFAULT_MODEL_FILE`] under `AURA_ROOT`, then under the working directory and each
/// of its ancestors (a checkout's `models/`, also from a crate directory), then in the
/// user's data directory, `$XDG_DATA_HOME/aura/` (default `~/.local/share/aura/`), then
/// in `aura/` under each of `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`).
/// The first file that exists wins; when none does, this is the first candidate, so a
/// "no such file" message names where it was expected first. [`model_search_path`]
/// lists every candidate.
pub fn default_model_path() -> PathBuf {
    let candidates = model_search_path();
    candidates
        .iter()
        .find(|p| p.is_file())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_FILE))
}

/// Every place [`default_model_path`] looks, in order (only `AURA_MODEL_PATH` when it
/// is set).
pub fn model_search_path() -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    search_path(|k| std::env::var_os(k), &cwd)
}

/// [`model_search_path`] for a given environment and working directory.
fn search_path(var: impl Fn(&str) -> Option<std::ffi::OsString>, cwd: &Path) -> Vec<PathBuf> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(p) = var("AURA_MODEL_PATH") {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(root) = var("AURA_ROOT") {
        out.push(PathBuf::from(root).join(DEFAULT_MODEL_FILE));
    }
    out.extend(cwd.ancestors().map(|d| d.join(DEFAULT_MODEL_FILE)));
    // The XDG base directories: relative entries are invalid there and are ignored.
    let user = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    let system = var("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    for dir in user
        .into_iter()
        .chain(std::env::split_paths(&system).filter(|p| p.is_absolute()))
    {
        out.push(dir.join("aura").join(DEFAULT_MODEL_FILE));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_model_not_found() {
        let e = LocalModel::builder()
            .model_path("/nonexistent/model.gguf")
            .build()
            .unwrap_err();
        assert!(
            matches!(&e, Error::ModelNotFound(m) if m.contains("scripts/setup.sh")),
            "{e}"
        );
    }

    #[test]
    fn the_model_is_looked_for_in_the_checkout_then_the_xdg_data_dirs() {
        use std::ffi::OsString;
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let cwd = Path::new("/work/repo/crate");
        let file = DEFAULT_MODEL_FILE;
        assert_eq!(
            search_path(
                env(&[("AURA_MODEL_PATH", "/m.gguf"), ("AURA_ROOT", "/r")]),
                cwd
            ),
            vec![PathBuf::from("/m.gguf")]
        );
        assert_eq!(
            search_path(env(&[("AURA_ROOT", "/r"), ("HOME", "/home/u")]), cwd),
            vec![
                Path::new("/r").join(file),
                Path::new("/work/repo/crate").join(file),
                Path::new("/work/repo").join(file),
                Path::new("/work").join(file),
                Path::new("/").join(file),
                Path::new("/home/u/.local/share/aura").join(file),
                Path::new("/usr/local/share/aura").join(file),
                Path::new("/usr/share/aura").join(file),
            ]
        );
        let xdg = search_path(
            env(&[
                ("HOME", "/home/u"),
                ("XDG_DATA_HOME", "/data"),
                ("XDG_DATA_DIRS", "/opt/share:relative:/srv"),
            ]),
            Path::new("/"),
        );
        assert_eq!(
            xdg,
            vec![
                Path::new("/").join(file),
                Path::new("/data/aura").join(file),
                Path::new("/opt/share/aura").join(file),
                Path::new("/srv/aura").join(file),
            ]
        );
        // A relative XDG_DATA_HOME is invalid: the default under HOME is used.
        let relative = search_path(
            env(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "data")]),
            Path::new("/"),
        );
        assert_eq!(
            relative[1],
            Path::new("/home/u/.local/share/aura").join(file)
        );
    }
}
