//! `OllamaModel`: the [`LanguageModel`] port over an Ollama server (feature `ollama`).
//!
//! Chat, generate, streaming, structured output (`format` with a JSON Schema),
//! embeddings (`/api/embed`), `keep_alive`, listing and pulling models go through
//! `ollama-rs`; what the forge needs and `ollama-rs` lacks — uploading a blob
//! (`POST /api/blobs/:digest`) and creating a model from files and adapters
//! (`POST /api/create`) — are thin `reqwest` calls on the same client.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use ollama_rs::error::OllamaError;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage as OChatMessage, ChatMessageResponse};
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::generation::embeddings::request::{EmbeddingsInput, GenerateEmbeddingsRequest};
use ollama_rs::generation::parameters::{FormatType, JsonStructure, KeepAlive, TimeUnit};
use ollama_rs::models::ModelOptions;
use ollama_rs::Ollama;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::*;
use crate::schema::{check_schema, parse_structured};
use crate::text::StopFilter;
use crate::{Error, Result};

const BACKEND: &str = "ollama";
/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
pub const DEFAULT_OLLAMA_HOST: &str = "http://127.0.0.1:11434";
/// The model used unless `AURA_OLLAMA_MODEL` says otherwise.
pub const DEFAULT_OLLAMA_MODEL: &str = "smollm2:135m";

/// How long Ollama keeps a model loaded after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OllamaKeepAlive {
    /// Keep it loaded for good.
    Forever,
    /// Unload it right after the call.
    Unload,
    /// Keep it this long.
    For(Duration),
}

impl OllamaKeepAlive {
    /// Parses Ollama's notation: `-1`, `0`, `300`, `30s`, `5m`, `1h`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.starts_with('-') {
            return Some(Self::Forever);
        }
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u64 = num.parse().ok()?;
        let secs = match unit {
            "" | "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return None,
        };
        Some(if secs == 0 {
            Self::Unload
        } else {
            Self::For(Duration::from_secs(secs))
        })
    }

    fn to_ollama(self) -> KeepAlive {
        match self {
            Self::Forever => KeepAlive::Indefinitely,
            Self::Unload => KeepAlive::UnloadOnCompletion,
            Self::For(d) => {
                let s = d.as_secs();
                if s % 3600 == 0 {
                    KeepAlive::Until {
                        time: s / 3600,
                        unit: TimeUnit::Hours,
                    }
                } else if s % 60 == 0 {
                    KeepAlive::Until {
                        time: s / 60,
                        unit: TimeUnit::Minutes,
                    }
                } else {
                    KeepAlive::Until {
                        time: s,
                        unit: TimeUnit::Seconds,
                    }
                }
            }
        }
    }
}

/// Builds an [`OllamaModel`].
#[derive(Clone, Debug)]
pub struct OllamaModelBuilder {
    host: String,
    model: String,
    embed_model: Option<String>,
    keep_alive: Option<OllamaKeepAlive>,
    timeout: Duration,
    context_length: Option<u32>,
}

impl Default for OllamaModelBuilder {
    fn default() -> Self {
        Self {
            host: DEFAULT_OLLAMA_HOST.into(),
            model: DEFAULT_OLLAMA_MODEL.into(),
            embed_model: None,
            keep_alive: None,
            timeout: Duration::from_secs(300),
            context_length: None,
        }
    }
}

impl OllamaModelBuilder {
    /// From the environment: `OLLAMA_HOST` (default `http://127.0.0.1:11434`; a bare
    /// `host:port` works as with the Ollama CLI), `AURA_OLLAMA_MODEL` (default
    /// `smollm2:135m`), `AURA_OLLAMA_EMBED_MODEL` (default: the chat model),
    /// `AURA_OLLAMA_KEEP_ALIVE` (`5m`, `-1`, …) and `AURA_OLLAMA_TIMEOUT_SECS` (default 300).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut b = Self::default();
        if let Some(h) = var("OLLAMA_HOST") {
            b = b.host(h);
        }
        if let Some(m) = var("AURA_OLLAMA_MODEL") {
            b = b.model(m);
        }
        if let Some(m) = var("AURA_OLLAMA_EMBED_MODEL") {
            b = b.embed_model(m);
        }
        if let Some(k) = var("AURA_OLLAMA_KEEP_ALIVE").and_then(|k| OllamaKeepAlive::parse(&k)) {
            b = b.keep_alive(k);
        }
        if let Some(t) = var("AURA_OLLAMA_TIMEOUT_SECS").and_then(|t| t.parse().ok()) {
            b = b.timeout(Duration::from_secs(t));
        }
        b
    }

    /// The server's base URL (`http://host:port`, or `host:port`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        let mut h: String = host.into().trim().trim_end_matches('/').to_string();
        if !h.contains("://") {
            h = format!("http://{h}");
        }
        self.host = h;
        self
    }

    /// The chat model (`name:tag`).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The embedding model (default: the chat model).
    pub fn embed_model(mut self, model: impl Into<String>) -> Self {
        self.embed_model = Some(model.into());
        self
    }

    /// How long the server keeps the model loaded after each call.
    pub fn keep_alive(mut self, keep_alive: OllamaKeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// The longest a call may take before it fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The context window to ask for (`num_ctx`); default: the server's.
    pub fn context_length(mut self, tokens: u32) -> Self {
        self.context_length = Some(tokens);
        self
    }

    /// The adapter; connects lazily (the first call reports an unreachable server).
    pub fn build(self) -> Result<OllamaModel> {
        let url = reqwest::Url::parse(&self.host)
            .map_err(|e| Error::Invalid(format!("bad Ollama host {:?}: {e}", self.host)))?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| backend_err(format!("HTTP client: {e}")))?;
        let client = Ollama::builder()
            .url(url.clone())
            .reqwest_client(http.clone())
            .build();
        Ok(OllamaModel {
            base: self.host.clone(),
            client,
            http,
            embed_model: self
                .embed_model
                .clone()
                .unwrap_or_else(|| self.model.clone()),
            cfg: self,
        })
    }
}

/// The [`LanguageModel`] port over an Ollama server.
#[derive(Clone)]
pub struct OllamaModel {
    cfg: OllamaModelBuilder,
    base: String,
    embed_model: String,
    client: Ollama,
    http: reqwest::Client,
}

impl std::fmt::Debug for OllamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OllamaModel")
            .field("host", &self.base)
            .field("model", &self.cfg.model)
            .finish()
    }
}

/// A model installed on the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OllamaModelEntry {
    /// `name:tag`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// When it last changed.
    pub modified_at: String,
}

/// Progress of a pull or a create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OllamaProgress {
    /// What the server is doing (`pulling manifest`, `success`, …).
    pub status: String,
    /// The layer being transferred, if any.
    pub digest: Option<String>,
    /// Bytes in the layer.
    pub total: Option<u64>,
    /// Bytes done.
    pub completed: Option<u64>,
}

/// A model to create on the server (`POST /api/create`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OllamaCreateRequest {
    /// The new model's name.
    pub model: String,
    /// An existing model to build on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// File name → blob digest (`sha256:…`) of GGUF/safetensors files.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// File name → blob digest of LoRA adapters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub adapters: BTreeMap<String, String>,
    /// A system prompt baked into the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

impl OllamaModel {
    /// A builder with defaults.
    pub fn builder() -> OllamaModelBuilder {
        OllamaModelBuilder::default()
    }

    /// The adapter the environment describes (see [`OllamaModelBuilder::from_env`]).
    pub fn from_env() -> Result<Self> {
        OllamaModelBuilder::from_env().build()
    }

    /// The server's base URL.
    pub fn host(&self) -> &str {
        &self.base
    }

    /// The chat model's name.
    pub fn model_name(&self) -> &str {
        &self.cfg.model
    }

    fn options(&self, o: &GenerationOptions) -> ModelOptions {
        let mut m = ModelOptions::default()
            .temperature(o.temperature)
            .num_predict(i32::try_from(o.max_tokens).unwrap_or(i32::MAX));
        if let Some(seed) = o.seed {
            m = m.seed((seed & 0x7fff_ffff) as i32);
        }
        if let Some(n) = self.cfg.context_length {
            m = m.num_ctx(u64::from(n));
        }
        m
    }

    fn format(schema: Option<&Value>) -> Result<Option<FormatType>> {
        let Some(schema) = schema else {
            return Ok(None);
        };
        check_schema(schema)?;
        let schema = schemars::Schema::try_from(schema.clone())
            .map_err(|e| Error::Invalid(format!("unusable JSON Schema: {e}")))?;
        Ok(Some(FormatType::StructuredJson(Box::new(
            JsonStructure::new_for_schema(schema),
        ))))
    }

    fn map_err(&self, e: OllamaError, model: &str) -> Error {
        match e {
            OllamaError::ReqwestError(e) => self.map_http(e),
            OllamaError::Other(body) => self.map_body(&body, model),
            OllamaError::InternalError(e) => self.map_body(&e.message, model),
            OllamaError::JsonError(e) => backend_err(format!("unexpected reply: {e}")),
            e => backend_err(e.to_string()),
        }
    }

    fn map_http(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout(self.cfg.timeout)
        } else if e.is_connect() {
            Error::Unavailable(format!("Ollama at {}: {e}", self.base))
        } else if e.is_decode() {
            backend_err(format!("unexpected reply: {e}"))
        } else {
            Error::Unavailable(format!("Ollama at {}: {e}", self.base))
        }
    }

    fn map_body(&self, body: &str, model: &str) -> Error {
        let message = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| body.trim().to_string());
        if message.contains("not found") {
            Error::ModelNotFound(format!("{model}: {message}"))
        } else {
            backend_err(message)
        }
    }

    async fn check_status(&self, res: reqwest::Response, model: &str) -> Result<reqwest::Response> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let body = res.text().await.unwrap_or_default();
        Err(if status == reqwest::StatusCode::NOT_FOUND {
            Error::ModelNotFound(format!("{model}: {}", self.map_body(&body, model)))
        } else {
            self.map_body(&body, model)
        })
    }

    /// Completes a raw prompt (`POST /api/generate`, no chat template applied by us).
    pub async fn generate(
        &self,
        prompt: &str,
        options: &GenerationOptions,
        schema: Option<&Value>,
    ) -> Result<ChatResponse> {
        let mut o = self.options(options);
        if !options.stop.is_empty() {
            o = o.stop(options.stop.clone());
        }
        let mut req = GenerationRequest::new(self.cfg.model.clone(), prompt).options(o);
        if let Some(f) = Self::format(schema)? {
            req = req.format(f);
        }
        if let Some(k) = self.cfg.keep_alive {
            req = req.keep_alive(k.to_ollama());
        }
        let r = self
            .client
            .generate(req)
            .await
            .map_err(|e| self.map_err(e, &self.cfg.model))?;
        let completion = r.eval_count.unwrap_or(0) as u32;
        let structured = match schema {
            Some(s) => Some(parse_structured(&r.response, s)?),
            None => None,
        };
        Ok(ChatResponse {
            text: r.response,
            structured,
            model: r.model,
            finish: if completion >= options.max_tokens {
                FinishReason::Length
            } else {
                FinishReason::Stop
            },
            usage: Usage {
                prompt_tokens: r.prompt_eval_count.unwrap_or(0) as u32,
                completion_tokens: completion,
                prompt_ms: r.prompt_eval_duration.unwrap_or(0) / 1_000_000,
                generation_ms: r.eval_duration.unwrap_or(0) / 1_000_000,
            },
        })
    }

    /// The models installed on the server (`GET /api/tags`).
    pub async fn list_models(&self) -> Result<Vec<OllamaModelEntry>> {
        let models = self
            .client
            .list_local_models()
            .await
            .map_err(|e| self.map_err(e, "(list)"))?;
        Ok(models
            .into_iter()
            .map(|m| OllamaModelEntry {
                name: m.name,
                size: m.size,
                modified_at: m.modified_at,
            })
            .collect())
    }

    /// Pulls `name` from the registry, reporting each progress line (`POST /api/pull`).
    pub async fn pull(
        &self,
        name: &str,
        mut progress: impl FnMut(&OllamaProgress) + Send,
    ) -> Result<()> {
        let mut s = self
            .client
            .pull_model_stream(name.to_string(), false)
            .await
            .map_err(|e| self.map_err(e, name))?;
        let mut last = String::new();
        while let Some(status) = s.next().await {
            let status = status.map_err(|e| self.map_err(e, name))?;
            let p = OllamaProgress {
                status: status.message,
                digest: status.digest,
                total: status.total,
                completed: status.completed,
            };
            progress(&p);
            last = p.status;
        }
        if last == "success" {
            Ok(())
        } else {
            Err(backend_err(format!("pull of {name} ended with {last:?}")))
        }
    }

    /// Uploads a file as a blob (`HEAD`, then `POST /api/blobs/sha256:…` if the server
    /// lacks it); returns its digest for [`OllamaCreateRequest`].
    pub async fn upload_blob(&self, path: &Path) -> Result<String> {
        use sha2::Digest as _;
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
        let url = format!("{}/api/blobs/{digest}", self.base);
        let head = self
            .http
            .head(&url)
            .send()
            .await
            .map_err(|e| self.map_http(e))?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let res = self
            .http
            .post(&url)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.map_http(e))?;
        self.check_status(res, &digest).await?;
        Ok(digest)
    }

    /// Creates a model from files/adapters/another model (`POST /api/create`),
    /// reporting each progress line.
    pub async fn create_model(
        &self,
        request: &OllamaCreateRequest,
        mut progress: impl FnMut(&OllamaProgress) + Send,
    ) -> Result<()> {
        let mut body = serde_json::to_value(request)
            .map_err(|e| Error::Invalid(format!("create request: {e}")))?;
        body["stream"] = Value::Bool(true);
        let res = self
            .http
            .post(format!("{}/api/create", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.map_http(e))?;
        let res = self.check_status(res, &request.model).await?;
        let text = res.text().await.map_err(|e| self.map_http(e))?;
        let mut last = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| backend_err(format!("unexpected create reply: {e}")))?;
            if let Some(err) = v.get("error").and_then(Value::as_str) {
                return Err(self.map_body(&json!({ "error": err }).to_string(), &request.model));
            }
            let p: OllamaProgress = serde_json::from_value(v)
                .map_err(|e| backend_err(format!("unexpected create reply: {e}")))?;
            progress(&p);
            last = p.status;
        }
        if last == "success" {
            Ok(())
        } else {
            Err(backend_err(format!(
                "create of {} ended with {last:?}",
                request.model
            )))
        }
    }

    fn chat_request(&self, request: &ChatRequest) -> Result<ChatMessageRequest> {
        if request.messages.is_empty() {
            return Err(Error::Invalid("a chat needs at least one message".into()));
        }
        let messages = request
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => OChatMessage::system(m.content.clone()),
                Role::User => OChatMessage::user(m.content.clone()),
                Role::Assistant => OChatMessage::assistant(m.content.clone()),
            })
            .collect();
        // Stop sequences are applied here, not by the server, so a reply cut by one
        // can say so (Ollama reports "stop" either way).
        let mut req = ChatMessageRequest::new(self.cfg.model.clone(), messages)
            .options(self.options(&request.options));
        if let Some(f) = Self::format(request.schema.as_ref())? {
            req = req.format(f);
        }
        if let Some(k) = self.cfg.keep_alive {
            req = req.keep_alive(k.to_ollama());
        }
        Ok(req)
    }

    async fn open_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        let req = self.chat_request(&request)?;
        let started = Instant::now();
        let upstream = self
            .client
            .send_chat_messages_stream(req)
            .await
            .map_err(|e| self.map_err(e, &self.cfg.model))?;
        let state = StreamState {
            upstream,
            stops: StopFilter::new(&request.options.stop),
            text: String::new(),
            request,
            started,
            finished: false,
        };
        Ok(stream::unfold(state, |mut st| async move {
            if st.finished {
                return None;
            }
            let items = st.step().await;
            Some((items, st))
        })
        .flat_map(stream::iter)
        .boxed())
    }
}

struct StreamState {
    upstream: ollama_rs::generation::chat::ChatMessageResponseStream,
    stops: StopFilter,
    text: String,
    request: ChatRequest,
    started: Instant,
    finished: bool,
}

impl StreamState {
    /// The next items: text pieces, then (once) `Done` or an error.
    async fn step(&mut self) -> Vec<Result<StreamChunk>> {
        loop {
            let Some(item) = self.upstream.next().await else {
                self.finished = true;
                return vec![Err(backend_err(
                    "the reply stream ended before it was done",
                ))];
            };
            let Ok(r) = item else {
                self.finished = true;
                return vec![Err(backend_err("the reply stream broke off"))];
            };
            let (mut piece, hit) = self.stops.push(&r.message.content);
            let finish = if hit {
                Some(FinishReason::StopSequence)
            } else if r.done {
                piece.push_str(&self.stops.finish());
                let eval = r.final_data.as_ref().map_or(0, |d| d.eval_count);
                Some(if eval >= u64::from(self.request.options.max_tokens) {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                })
            } else {
                None
            };
            let mut out = Vec::new();
            if !piece.is_empty() {
                self.text.push_str(&piece);
                out.push(Ok(StreamChunk::Text(piece)));
            }
            if let Some(finish) = finish {
                self.finished = true;
                out.push(self.done(&r, finish));
            }
            if !out.is_empty() {
                return out;
            }
        }
    }

    fn done(&self, last: &ChatMessageResponse, finish: FinishReason) -> Result<StreamChunk> {
        let structured = match &self.request.schema {
            Some(schema) => Some(parse_structured(&self.text, schema)?),
            None => None,
        };
        let usage = match &last.final_data {
            Some(d) => Usage {
                prompt_tokens: d.prompt_eval_count as u32,
                completion_tokens: d.eval_count as u32,
                prompt_ms: d.prompt_eval_duration / 1_000_000,
                generation_ms: d.eval_duration / 1_000_000,
            },
            None => Usage {
                generation_ms: self.started.elapsed().as_millis() as u64,
                ..Usage::default()
            },
        };
        Ok(StreamChunk::Done(ChatResponse {
            text: self.text.clone(),
            structured,
            model: last.model.clone(),
            finish,
            usage,
        }))
    }
}

#[derive(Deserialize)]
struct ShowReply {
    #[serde(default)]
    details: Value,
    #[serde(default)]
    model_info: serde_json::Map<String, Value>,
}

#[async_trait]
impl LanguageModel for OllamaModel {
    fn capabilities(&self) -> ModelCapabilities {
        ModelCapabilities {
            backend: BACKEND,
            structured_output: true,
            streaming: true,
            embeddings: true,
            deterministic_seed: true,
            lora: false,
            scoring: false,
        }
    }

    fn describe(&self) -> String {
        format!("ollama:{} at {}", self.cfg.model, self.base)
    }

    async fn info(&self) -> Result<ModelInfo> {
        let res = self
            .http
            .post(format!("{}/api/show", self.base))
            .json(&json!({ "model": self.cfg.model }))
            .send()
            .await
            .map_err(|e| self.map_http(e))?;
        let res = self.check_status(res, &self.cfg.model).await?;
        let show: ShowReply = res
            .json()
            .await
            .map_err(|e| backend_err(format!("unexpected /api/show reply: {e}")))?;
        let arch = show
            .model_info
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let field = |name: &str| {
            show.model_info
                .get(&format!("{arch}.{name}"))
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        Ok(ModelInfo {
            name: self.cfg.model.clone(),
            context_length: self
                .cfg
                .context_length
                .or_else(|| field("context_length"))
                .unwrap_or(2048),
            embedding_dim: field("embedding_length"),
            details: json!({
                "backend": BACKEND,
                "host": self.base,
                "architecture": arch,
                "details": show.details,
            }),
        })
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let stream = self.open_stream(request).await?;
        reply_of(stream, BACKEND, "the reply stream ended before it was done").await
    }

    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        self.open_stream(request).await
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = GenerateEmbeddingsRequest::new(
            self.embed_model.clone(),
            EmbeddingsInput::Multiple(texts.to_vec()),
        );
        if let Some(k) = self.cfg.keep_alive {
            req = req.keep_alive(k.to_ollama());
        }
        let r = self
            .client
            .generate_embeddings(req)
            .await
            .map_err(|e| self.map_err(e, &self.embed_model))?;
        if r.embeddings.len() != texts.len() {
            return Err(backend_err(format!(
                "{} embeddings for {} texts",
                r.embeddings.len(),
                texts.len()
            )));
        }
        Ok(r.embeddings)
    }
}

fn backend_err(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_notation() {
        assert_eq!(OllamaKeepAlive::parse("-1"), Some(OllamaKeepAlive::Forever));
        assert_eq!(OllamaKeepAlive::parse("0"), Some(OllamaKeepAlive::Unload));
        assert_eq!(
            OllamaKeepAlive::parse("5m"),
            Some(OllamaKeepAlive::For(Duration::from_secs(300)))
        );
        assert_eq!(OllamaKeepAlive::parse("soon"), None);
    }

    #[test]
    fn hosts_without_a_scheme() {
        let b = OllamaModelBuilder::default().host("10.0.0.1:11434/");
        assert_eq!(b.host, "http://10.0.0.1:11434");
    }
}
