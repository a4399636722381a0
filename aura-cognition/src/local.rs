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

    /// How likely the model finds `reply` as the answer to `messages`: the summed
    /// natural-log probability of the reply's tokens, and how many there are.
    ///
    /// The prompt is rendered with the chat template as [`LanguageModel::chat`] renders
    /// it; `reply` is tokenized on its own (special tokens such as `<|im_end|>`
    /// recognised), as generation would produce it. The mean (sum / count) compares
    /// models — a LoRA adapter against its base, say — on reference replies.
    pub async fn score(&self, messages: &[ChatMessage], reply: &str) -> Result<(f64, usize)> {
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
        }
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

// ---------------------------------------------------------------------------
// The worker thread.

struct Ready {
    info: ModelInfo,
    template: ChatTemplate,
}

fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND_CELL: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND_CELL
        .get_or_init(|| {
            // llama.cpp logs go to `tracing` (targets from llama-cpp-2), never to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| backend_err(format!("llama.cpp backend: {e}")))
}

fn worker(
    cfg: LocalModelBuilder,
    path: PathBuf,
    reused: Arc<AtomicUsize>,
    ready: mpsc::Sender<Result<Ready>>,
    jobs: mpsc::Receiver<Job>,
) {
    let loaded = (|| -> Result<(LlamaModel, Option<(LlamaLoraAdapter, f32)>)> {
        let backend = backend()?;
        let mut model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| {
                Error::ModelNotFound(format!("{}: cannot load as GGUF: {e}", path.display()))
            })?;
        let adapter = match &cfg.lora {
            Some((lora, scale)) => Some((
                model.lora_adapter_init(lora).map_err(|e| {
                    Error::Invalid(format!(
                        "{}: not a usable LoRA adapter: {e}",
                        lora.display()
                    ))
                })?,
                *scale,
            )),
            None => None,
        };
        Ok((model, adapter))
    })();
    let (model, adapter) = match loaded {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut engine = match Engine::new(&model, adapter, &cfg, &path, reused) {
        Ok(engine) => engine,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready
        .send(Ok(Ready {
            info: engine.info.clone(),
            template: engine.template.clone(),
        }))
        .is_err()
    {
        return;
    }
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Chat {
                request,
                prompt,
                grammar,
                deadline,
                events,
            } => {
                let result = engine.chat(&request, &prompt, grammar.as_deref(), deadline, &events);
                match result {
                    Ok(Some(response)) => {
                        let _ = events.send(Ok(StreamChunk::Done(response)));
                    }
                    Ok(None) => {} // the caller went away
                    Err(e) => {
                        let _ = events.send(Err(e));
                    }
                }
            }
            Job::Embed { texts, reply } => {
                let _ = reply.send(engine.embed(&texts));
            }
            Job::Score {
                prompt,
                reply,
                result,
            } => {
                let _ = result.send(engine.score(&prompt, &reply));
            }
        }
    }
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// Tokens whose keys/values sit in `ctx`'s cache (sequence 0), in order.
    cached: Vec<LlamaToken>,
    embed_ctx: Option<LlamaContext<'m>>,
    template: ChatTemplate,
    info: ModelInfo,
    threads: i32,
    n_ctx: usize,
    prompt_cache: bool,
    reused: Arc<AtomicUsize>,
}

impl<'m> Engine<'m> {
    fn new(
        model: &'m LlamaModel,
        adapter: Option<(LlamaLoraAdapter, f32)>,
        cfg: &LocalModelBuilder,
        path: &Path,
        reused: Arc<AtomicUsize>,
    ) -> Result<Self> {
        let backend = backend()?;
        let n_ctx = cfg.context_length.min(model.n_ctx_train().max(64));
        let threads = i32::try_from(cfg.threads).unwrap_or(2);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH as u32)
            .with_n_ubatch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = model
            .new_context(backend, params)
            .map_err(|e| backend_err(format!("cannot create a context: {e}")))?;
        if let Some((mut adapter, scale)) = adapter {
            ctx.lora_adapter_set(&mut adapter, scale)
                .map_err(|e| Error::Invalid(format!("cannot apply the LoRA adapter: {e}")))?;
        }
        let template = match model.chat_template(None) {
            Ok(t) => match t.to_string() {
                Ok(src) => {
                    let vocab = model.vocab();
                    let text = |t: LlamaToken| {
                        String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
                    };
                    ChatTemplate::jinja(src, text(vocab.bos()), text(vocab.eos()))
                }
                Err(_) => ChatTemplate::chatml(),
            },
            Err(_) => {
                tracing::warn!(target: "LocalModel", "the model has no chat template; using ChatML");
                ChatTemplate::chatml()
            }
        };
        let meta = |k: &str| model.meta_val_str(k).ok();
        let name = meta("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into())
        });
        let info = ModelInfo {
            name,
            context_length: n_ctx,
            embedding_dim: u32::try_from(model.n_embd()).ok(),
            details: json!({
                "backend": BACKEND,
                "path": path.display().to_string(),
                "architecture": meta("general.architecture"),
                "parameters": model.n_params(),
                "size_bytes": model.size(),
                "context_train": model.n_ctx_train(),
                "chat_template": if template.is_model_template() { "model" } else { "chatml-fallback" },
                "threads": threads,
                "lora": cfg.lora.as_ref().map(|(p, s)| json!({"path": p.display().to_string(), "scale": s})),
            }),
        };
        Ok(Self {
            model,
            ctx,
            cached: Vec::new(),
            embed_ctx: None,
            template,
            info,
            threads,
            n_ctx: n_ctx as usize,
            prompt_cache: cfg.prompt_cache,
            reused,
        })
    }

    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        if vocab.should_add_bos() && tokens.first() != Some(&vocab.bos()) {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// Runs one chat; `Ok(None)` when the receiver went away (the stream was dropped).
    fn chat(
        &mut self,
        request: &ChatRequest,
        prompt: &str,
        grammar: Option<&str>,
        deadline: Option<(Instant, Duration)>,
        events: &tmpsc::UnboundedSender<Event>,
    ) -> Result<Option<ChatResponse>> {
        let result = self.chat_inner(request, prompt, grammar, deadline, events);
        if result.is_err() {
            // Whatever state the cache is in, do not trust it.
            self.ctx.clear_kv_cache();
            self.cached.clear();
        }
        result
    }

    fn chat_inner(
        &mut self,
        request: &ChatRequest,
        prompt: &str,
        grammar: Option<&str>,
        deadline: Option<(Instant, Duration)>,
        events: &tmpsc::UnboundedSender<Event>,
    ) -> Result<Option<ChatResponse>> {
        let timed_out = || match deadline {
            Some((at, limit)) if Instant::now() >= at => Some(Error::Timeout(limit)),
            _ => None,
        };
        if let Some(e) = timed_out() {
            return Err(e);
        }
        let opts = &request.options;
        let tokens = self.tokenize_prompt(prompt);
        if tokens.is_empty() {
            return Err(Error::Invalid("the prompt is empty".into()));
        }
        if tokens.len() + 1 > self.n_ctx {
            return Err(Error::ContextTooLong {
                tokens: tokens.len(),
                limit: self.n_ctx,
            });
        }

        // The grammar is kept apart from the sampling chain: a token is first drawn
        // without it and only checked against it; only when it fails is the grammar
        // applied to the whole vocabulary (as llama.cpp's own sampler does) — checking
        // every one of ~50k candidates on every step would dominate a small model's time.
        let mut grammar = match grammar {
            Some(gbnf) => Some(
                LlamaSampler::grammar(self.model, gbnf, "root")
                    .map_err(|e| Error::Invalid(format!("cannot use the schema's grammar: {e}")))?,
            ),
            None => None,
        };
        let mut sampler = if opts.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            let seed = opts.seed.unwrap_or_else(random_seed);
            LlamaSampler::chain_simple([
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::min_p(0.05, 1),
                LlamaSampler::temp(opts.temperature),
                LlamaSampler::dist((seed ^ (seed >> 32)) as u32),
            ])
        };

        // --- the prompt: keep the cached common prefix, decode the rest --------------
        let prompt_started = Instant::now();
        let mut keep = if self.prompt_cache {
            common_prefix(&self.cached, &tokens)
        } else {
            0
        };
        // The last prompt token is always decoded on its own, so its logits come out the
        // same whether or not the rest was cached (same seed, same reply).
        keep = keep.min(tokens.len() - 1);
        if keep < self.cached.len() {
            let trimmed = self
                .ctx
                .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
                .unwrap_or(false);
            if !trimmed {
                self.ctx.clear_kv_cache();
                keep = 0;
            }
            self.cached.truncate(keep);
        }
        let reused = keep;
        self.reused.store(reused, Ordering::Relaxed);
        let mut batch = LlamaBatch::new(BATCH, 1);
        let body = &tokens[keep..tokens.len() - 1];
        for chunk in body.chunks(BATCH) {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                batch
                    .add(t, (self.cached.len() + i) as i32, &[0], false)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| backend_err(format!("decoding the prompt: {e}")))?;
            self.cached.extend_from_slice(chunk);
            if let Some(e) = timed_out() {
                return Err(e);
            }
        }
        let last = tokens[tokens.len() - 1];
        self.decode_one(&mut batch, last)?;
        let prompt_ms = prompt_started.elapsed();

        // --- generation --------------------------------------------------------------
        let generation_started = Instant::now();
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let mut utf8 = Utf8Assembler::default();
        let mut stops = StopFilter::new(&opts.stop);
        let mut text = String::new();
        let mut finish = FinishReason::Length;
        let mut generated = 0u32;
        let emit = |piece: String, text: &mut String| -> bool {
            if piece.is_empty() {
                return true;
            }
            text.push_str(&piece);
            events.send(Ok(StreamChunk::Text(piece))).is_ok()
        };
        while generated < opts.max_tokens {
            if let Some(e) = timed_out() {
                return Err(e);
            }
            let token = sample(
                &self.ctx,
                batch.n_tokens() - 1,
                &mut sampler,
                grammar.as_mut(),
            )
            .ok_or_else(|| backend_err("the sampler chose no token"))?;
            if vocab.is_eog(token) {
                finish = FinishReason::Stop;
                break;
            }
            generated += 1;
            let piece = utf8.push(&vocab.token_to_piece(token, false, None));
            let (out, hit) = stops.push(&piece);
            if !emit(out, &mut text) {
                return Ok(None);
            }
            if hit {
                finish = FinishReason::StopSequence;
                break;
            }
            if self.cached.len() + 1 >= self.n_ctx {
                break; // the context is full: Length
            }
            if generated < opts.max_tokens {
                self.decode_one(&mut batch, token)?;
            }
        }
        if finish != FinishReason::StopSequence {
            let (out, hit) = stops.push(&utf8.finish());
            if hit {
                finish = FinishReason::StopSequence;
            }
            let rest = if hit { String::new() } else { stops.finish() };
            if !emit(out + &rest, &mut text) {
                return Ok(None);
            }
        }
        let generation_ms = generation_started.elapsed();
        tracing::debug!(
            target: "LocalModel",
            prompt_tokens = tokens.len(),
            reused,
            generated,
            prompt_ms = prompt_ms.as_millis() as u64,
            generation_ms = generation_ms.as_millis() as u64,
            "chat"
        );

        let structured = match &request.schema {
            Some(schema) => {
                Some(
                    parse_structured(&text, schema).map_err(|e| match (e, finish) {
                        (Error::InvalidOutput(m), FinishReason::Length) => {
                            Error::InvalidOutput(format!(
                                "{m} (the reply was cut off at max_tokens = {})",
                                opts.max_tokens
                            ))
                        }
                        (e, _) => e,
                    })?,
                )
            }
            None => None,
        };
        Ok(Some(ChatResponse {
            text,
            structured,
            model: self.info.name.clone(),
            finish,
            usage: Usage {
                prompt_tokens: tokens.len() as u32,
                completion_tokens: generated,
                prompt_ms: prompt_ms.as_millis() as u64,
                generation_ms: generation_ms.as_millis() as u64,
            },
        }))
    }

    /// Decodes one token at the next position, keeping its logits.
    fn decode_one(&mut self, batch: &mut LlamaBatch, token: LlamaToken) -> Result<()> {
        batch.clear();
        batch
            .add(token, self.cached.len() as i32, &[0], true)
            .map_err(|e| backend_err(e.to_string()))?;
        self.ctx
            .decode(batch)
            .map_err(|e| backend_err(format!("decoding: {e}")))?;
        self.cached.push(token);
        Ok(())
    }

    /// Summed log-probability of `reply`'s tokens after `prompt`, and their count.
    fn score(&mut self, prompt: &str, reply: &str) -> Result<(f64, usize)> {
        let model: &'m LlamaModel = self.model;
        let prompt_tokens = self.tokenize_prompt(prompt);
        let reply_tokens = model.vocab().tokenize(reply.as_bytes(), false, true);
        if prompt_tokens.is_empty() || reply_tokens.is_empty() {
            return Err(Error::Invalid("scoring needs a prompt and a reply".into()));
        }
        let all: Vec<LlamaToken> = prompt_tokens.iter().chain(&reply_tokens).copied().collect();
        if all.len() > self.n_ctx {
            return Err(Error::ContextTooLong {
                tokens: all.len(),
                limit: self.n_ctx,
            });
        }
        // Scoring decodes from position 0: the chat's prompt cache is gone afterwards.
        self.ctx.clear_kv_cache();
        self.cached.clear();
        // Position i's logits predict token i + 1: keep those from the last prompt token
        // on; the last reply token predicts nothing and is not decoded.
        let first = prompt_tokens.len() - 1;
        let inputs = &all[..all.len() - 1];
        let mut batch = LlamaBatch::new(BATCH, 1);
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (c, chunk) in inputs.chunks(BATCH).enumerate() {
            batch.clear();
            let base = c * BATCH;
            for (i, &t) in chunk.iter().enumerate() {
                batch
                    .add(t, (base + i) as i32, &[0], base + i >= first)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| backend_err(format!("decoding for a score: {e}")))?;
            for i in 0..chunk.len() {
                let pos = base + i;
                if pos < first {
                    continue;
                }
                let logits = self.ctx.get_logits_ith(i as i32);
                let target = usize::try_from(all[pos + 1].0).unwrap_or(usize::MAX);
                let Some(&logit) = logits.get(target) else {
                    return Err(backend_err("a reply token is outside the vocabulary"));
                };
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
                sum += logit as f64 - max - z.ln();
                count += 1;
            }
        }
        self.ctx.clear_kv_cache();
        Ok((sum, count))
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let n_ctx = EMBED_CONTEXT.min(self.model.n_ctx_train().max(64));
        if self.embed_ctx.is_none() {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx))
                .with_n_batch(n_ctx)
                .with_n_ubatch(n_ctx)
                .with_n_threads(self.threads)
                .with_n_threads_batch(self.threads)
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::Mean);
            let ctx = self
                .model
                .new_context(backend()?, params)
                .map_err(|e| backend_err(format!("cannot create an embedding context: {e}")))?;
            self.embed_ctx = Some(ctx);
        }
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let Some(ctx) = self.embed_ctx.as_mut() else {
            return Err(backend_err("no embedding context"));
        };
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
            if tokens.is_empty() {
                tokens.push(vocab.bos());
            }
            if tokens.len() > n_ctx as usize {
                return Err(Error::ContextTooLong {
                    tokens: tokens.len(),
                    limit: n_ctx as usize,
                });
            }
            ctx.clear_kv_cache();
            let mut batch = LlamaBatch::new(tokens.len(), 1);
            for (i, &t) in tokens.iter().enumerate() {
                batch
                    .add(t, i as i32, &[0], true)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| backend_err(format!("embedding: {e}")))?;
            let v = ctx
                .embeddings_seq_ith(0)
                .map_err(|e| backend_err(format!("embedding: {e}")))?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.push(if norm > 0.0 {
                v.iter().map(|x| x / norm).collect()
            } else {
                v.to_vec()
            });
        }
        Ok(out)
    }
}

/// Draws the next token from the logits at `idx`, honouring `grammar` if given, and
/// lets the samplers (and the grammar) accept it.
fn sample(
    ctx: &LlamaContext<'_>,
    idx: i32,
    sampler: &mut LlamaSampler,
    grammar: Option<&mut LlamaSampler>,
) -> Option<LlamaToken> {
    let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
    candidates.apply_sampler(sampler);
    let mut token = candidates.selected_token()?;
    if let Some(grammar) = grammar {
        let mut single =
            LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
        single.apply_sampler(grammar);
        if single
            .data
            .first()
            .is_none_or(|d| d.logit() == f32::NEG_INFINITY)
        {
            let mut all = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
            all.apply_sampler(grammar);
            all.apply_sampler(sampler);
            token = all.selected_token()?;
        }
        grammar.accept(token);
    }
    sampler.accept(token);
    Some(token)
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
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
