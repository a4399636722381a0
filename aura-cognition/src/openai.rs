//! `OpenAiModel`: the [`LanguageModel`] port over any server that speaks the OpenAI
//! chat-completions API (feature `openai`): llama.cpp's `llama-server`,
//! llama-cpp-python, vLLM, LM Studio, a LiteLLM proxy, or OpenAI itself.
//!
//! The wire format is three small JSON shapes (`/chat/completions`, `/embeddings`,
//! `/models`) spoken with `reqwest`; servers differ in what they add or reject, so
//! the adapter reads leniently and learns a server's limits once:
//!
//! - Structured output asks for `response_format: json_schema`. A server that rejects
//!   it is remembered, and from then on the schema goes into the prompt, the reply is
//!   validated, and one repair round feeds the validation error back.
//! - Stop sequences are applied here, on a streamed reply, rather than sent: servers do
//!   not agree on saying whether a stop sequence or the end of the turn ended a reply
//!   (OpenAI and llama-cpp-python both answer `stop`), and the port must tell them
//!   apart. Dropping the stream at the stop ends generation on the server.
//! - 429 and 5xx are retried with exponential backoff, honouring `Retry-After` (and
//!   OpenAI's `retry-after-ms`); a refused connection is not retried, so a fallback
//!   behind a dead server takes over at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::stream::{BoxStream, Stream, StreamExt};
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::model::*;
use crate::schema::{check_schema, parse_structured};
use crate::text::StopFilter;
use crate::{Error, Result};

const BACKEND: &str = "openai";
/// The context window reported when the server does not say (`/models` carries no
/// standard field for it); set [`OpenAiModelBuilder::context_length`] to the real one.
pub const ASSUMED_CONTEXT_LENGTH: u32 = 4096;

const JSON_SCHEMA: u8 = 0;
const JSON_OBJECT: u8 = 1;
const PROMPT_ONLY: u8 = 2;

/// Builds an [`OpenAiModel`].
#[derive(Clone)]
pub struct OpenAiModelBuilder {
    base: String,
    model: String,
    embed_model: Option<String>,
    api_key: Option<String>,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    context_length: Option<u32>,
    deterministic_seed: bool,
    extra_body: Result<Map<String, Value>, String>,
}

impl std::fmt::Debug for OpenAiModelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: only whether there is one is shown.
        f.debug_struct("OpenAiModelBuilder")
            .field("base", &self.base)
            .field("model", &self.model)
            .field("embed_model", &self.embed_model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("context_length", &self.context_length)
            .field("extra_body", &self.extra_body)
            .finish()
    }
}

impl OpenAiModelBuilder {
    /// A builder for `model` on the server whose API root is `base_url`
    /// (`http://127.0.0.1:8080/v1`), with the settings the environment gives:
    /// `AURA_OPENAI_API_KEY` (sent as a bearer token when set),
    /// `AURA_OPENAI_TIMEOUT_SECS` (default 300), `AURA_OPENAI_RETRIES` (default 2),
    /// `AURA_OPENAI_CONTEXT` (the context window, when the server does not report it),
    /// `AURA_OPENAI_EMBED_MODEL` (default: the chat model) and `AURA_OPENAI_EXTRA_BODY`
    /// (see [`Self::extra_body`]).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self::with_lookup(base_url, model, |k| std::env::var(k).ok())
    }

    /// As [`Self::new`], reading settings through `get` instead of the environment.
    pub fn with_lookup(
        base_url: impl Into<String>,
        model: impl Into<String>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let num = |k: &str| var(k).and_then(|v| v.trim().parse::<u64>().ok());
        Self {
            base: base_url.into().trim().trim_end_matches('/').to_string(),
            model: model.into(),
            embed_model: var("AURA_OPENAI_EMBED_MODEL"),
            api_key: var("AURA_OPENAI_API_KEY"),
            timeout: Duration::from_secs(num("AURA_OPENAI_TIMEOUT_SECS").unwrap_or(300).max(1)),
            max_retries: num("AURA_OPENAI_RETRIES").map_or(2, |n| n.min(10) as u32),
            backoff: Duration::from_millis(250),
            context_length: num("AURA_OPENAI_CONTEXT").map(|n| n.min(u64::from(u32::MAX)) as u32),
            deterministic_seed: false,
            extra_body: match var("AURA_OPENAI_EXTRA_BODY") {
                None => Ok(Map::new()),
                Some(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => Ok(map),
                    Ok(_) => Err(format!(
                        "AURA_OPENAI_EXTRA_BODY={text:?} is not a JSON object"
                    )),
                    Err(e) => Err(format!("AURA_OPENAI_EXTRA_BODY={text:?} is not JSON: {e}")),
                },
            },
        }
    }

    /// The bearer token (default `AURA_OPENAI_API_KEY`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The embedding model (default: the chat model).
    pub fn embed_model(mut self, model: impl Into<String>) -> Self {
        self.embed_model = Some(model.into());
        self
    }

    /// The longest one HTTP exchange may take before it fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a 429 or 5xx (default 2), and the first backoff (default 250 ms,
    /// doubling; a `Retry-After` from the server wins).
    pub fn retries(mut self, max_retries: u32, backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.backoff = backoff;
        self
    }

    /// The model's context window, when the server does not report it.
    pub fn context_length(mut self, tokens: u32) -> Self {
        self.context_length = Some(tokens);
        self
    }

    /// Fields added to every chat request, for a server's own sampling settings: the
    /// port's options say nothing of them, and some servers' defaults differ from plain
    /// temperature sampling. llama-cpp-python applies a repeat penalty of 1.1 unless told
    /// `{"repeat_penalty": 1.0}`, and the penalty spoils code, whose indentation and
    /// names repeat: on the everyday suite, SmolLM2 through it learned 16 of 45 requests
    /// with the penalty and 28 without. A field the adapter sets itself (model, messages,
    /// temperature, …) is never replaced.
    pub fn extra_body(mut self, fields: Map<String, Value>) -> Self {
        self.extra_body = Ok(fields);
        self
    }

    /// Declares that the server honours `seed` (llama.cpp and vLLM do; OpenAI only
    /// tries), which lets the conformance suite check it.
    pub fn deterministic_seed(mut self, yes: bool) -> Self {
        self.deterministic_seed = yes;
        self
    }

    /// The adapter; connects lazily (the first call reports an unreachable server).
    pub fn build(self) -> Result<OpenAiModel> {
        let url = reqwest::Url::parse(&self.base).map_err(|e| {
            Error::Invalid(format!("bad OpenAI-compatible URL {:?}: {e}", self.base))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!(
                "bad OpenAI-compatible URL {:?}: the scheme must be http or https",
                self.base
            )));
        }
        if self.model.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "no model named for the OpenAI-compatible server at {}",
                self.base
            )));
        }
        if let Err(e) = &self.extra_body {
            return Err(Error::Invalid(e.clone()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| backend_err(format!("HTTP client: {e}")))?;
        Ok(OpenAiModel {
            inner: Arc::new(Inner {
                http,
                structured_tier: AtomicU8::new(JSON_SCHEMA),
                model_checked: tokio::sync::OnceCell::new(),
                stream_usage_rejected: AtomicBool::new(false),
                embed_singly: AtomicBool::new(false),
                cfg: self,
            }),
        })
    }
}

/// The [`LanguageModel`] port over an OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiModel {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: OpenAiModelBuilder,
    http: reqwest::Client,
    /// How structured output is asked for: [`JSON_SCHEMA`], [`JSON_OBJECT`] or
    /// [`PROMPT_ONLY`]; a server that refuses one is asked the next way from then on.
    structured_tier: AtomicU8,
    /// The model was found among the server's models (or the server lists none).
    model_checked: tokio::sync::OnceCell<()>,
    /// The server refused `stream_options` once: count streamed pieces instead.
    stream_usage_rejected: AtomicBool,
    /// The server's batched embeddings differ from single ones: send one text a call.
    embed_singly: AtomicBool,
}

impl std::fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("base", &self.inner.cfg.base)
            .field("model", &self.inner.cfg.model)
            .finish()
    }
}

impl OpenAiModel {
    /// The server's models (`GET /models`), or `None` when it has no such endpoint.
    async fn list_models(&self) -> Result<Option<Vec<Value>>> {
        let cfg = &self.inner.cfg;
        let req = self.inner.http.get(format!("{}/models", cfg.base));
        let res = self.send(req).await?;
        let status = res.status();
        let text = res.text().await.map_err(|e| self.map_http(e))?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.map_status(status, &text, 0));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| backend_err(format!("unreadable /models reply ({e}): {text:.200}")))?;
        Ok(Some(v["data"].as_array().cloned().unwrap_or_default()))
    }

    /// The configured model's entry among the server's `models`, or `ModelNotFound`.
    fn served_entry<'m>(&self, models: &'m [Value]) -> Result<&'m Value> {
        let cfg = &self.inner.cfg;
        models
            .iter()
            .find(|m| m["id"].as_str() == Some(cfg.model.as_str()))
            .ok_or_else(|| {
                Error::ModelNotFound(format!(
                    "{} is not among the models {} serves",
                    cfg.model, cfg.base
                ))
            })
    }

    /// Before the first completion, makes sure the server serves the configured model:
    /// llama-cpp-python answers any model name with the one it has loaded, which would
    /// hide a misspelt setting. A server without `/models` is taken at its word.
    async fn check_model(&self) -> Result<()> {
        self.inner
            .model_checked
            .get_or_try_init(|| async {
                match self.list_models().await? {
                    Some(models) => self.served_entry(&models).map(|_| ()),
                    None => Ok(()),
                }
            })
            .await
            .map(|_| ())
    }

    /// A builder for `model` at `base_url` (see [`OpenAiModelBuilder::new`]).
    pub fn builder(base_url: impl Into<String>, model: impl Into<String>) -> OpenAiModelBuilder {
        OpenAiModelBuilder::new(base_url, model)
    }

    /// The server's API root.
    pub fn base_url(&self) -> &str {
        &self.inner.cfg.base
    }

    /// The chat model's name.
    pub fn model_name(&self) -> &str {
        &self.inner.cfg.model
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Map<String, Value> {
        let o = &request.options;
        let mut body = Map::new();
        body.insert("model".into(), json!(self.inner.cfg.model));
        body.insert(
            "messages".into(),
            Value::Array(
                request
                    .messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect(),
            ),
        );
        body.insert("temperature".into(), json!(o.temperature));
        body.insert("max_tokens".into(), json!(o.max_tokens));
        if let Some(seed) = o.seed {
            // Some servers keep seeds in a signed 32-bit field.
            body.insert("seed".into(), json!(seed & 0x7fff_ffff));
        }
        if stream {
            body.insert("stream".into(), json!(true));
            if !self.inner.stream_usage_rejected.load(Ordering::Relaxed) {
                body.insert("stream_options".into(), json!({"include_usage": true}));
            }
        }
        if let Ok(extra) = &self.inner.cfg.extra_body {
            for (k, v) in extra {
                body.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        body
    }

    /// Sends `req` with the timeout and, when there is one, the bearer token.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let cfg = &self.inner.cfg;
        let req = match &cfg.api_key {
            Some(key) => req.header(AUTHORIZATION, format!("Bearer {key}")),
            None => req,
        };
        req.timeout(cfg.timeout)
            .send()
            .await
            .map_err(|e| self.map_http(e))
    }

    /// Sends `body` to `path`, retrying 429/5xx; a non-success reply becomes an error.
    async fn post(&self, path: &str, body: &Map<String, Value>) -> Result<reqwest::Response> {
        let cfg = &self.inner.cfg;
        let url = format!("{}{path}", cfg.base);
        let mut attempt = 0;
        loop {
            let res = self.send(self.inner.http.post(&url).json(body)).await?;
            let status = res.status();
            if status.is_success() {
                return Ok(res);
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            let wait = retry_after(res.headers())
                .unwrap_or_else(|| cfg.backoff.saturating_mul(1 << attempt.min(16)));
            let text = res.text().await.unwrap_or_default();
            // llama-cpp-python refuses a `response_format` it does not know with a 500:
            // asking again cannot help, and the caller asks a simpler way instead.
            let retryable = retryable && !mentions_response_format(&text);
            if retryable && attempt < cfg.max_retries && wait <= cfg.timeout {
                attempt += 1;
                tracing::debug!(target: "OpenAiModel", %status, attempt, wait_ms = wait.as_millis() as u64,
                    "OpenAI-compatible server busy; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(match self.map_status(status, &text, attempt) {
                Error::Backend { .. } if status == StatusCode::NOT_FOUND => {
                    Error::Unsupported(format!(
                        "{url} answered 404 ({}): the server has no such endpoint (an \
                     OpenAI-compatible base URL usually ends in /v1)",
                        error_text(&text).0
                    ))
                }
                e => e,
            });
        }
    }

    fn map_http(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout(self.inner.cfg.timeout)
        } else if e.is_decode() || e.is_body() {
            Error::Unavailable(format!(
                "the OpenAI-compatible server at {} broke off its reply: {e}",
                self.inner.cfg.base
            ))
        } else {
            Error::Unavailable(format!(
                "the OpenAI-compatible server at {}: {e}",
                self.inner.cfg.base
            ))
        }
    }

    fn map_status(&self, status: StatusCode, body: &str, retries: u32) -> Error {
        let cfg = &self.inner.cfg;
        let (message, code) = error_text(body);
        let lower = message.to_lowercase();
        if let Some(e) = context_error(&lower) {
            return e;
        }
        let model_missing = code.as_deref() == Some("model_not_found")
            || lower.contains("model")
                && (lower.contains("not found")
                    || lower.contains("does not exist")
                    || lower.contains("no such model"));
        if model_missing {
            return Error::ModelNotFound(format!("{} at {}: {message}", cfg.model, cfg.base));
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => backend_err(format!(
                "{} refused the credentials ({status}; set AURA_OPENAI_API_KEY): {message}",
                cfg.base
            )),
            StatusCode::TOO_MANY_REQUESTS => Error::Unavailable(format!(
                "{} is rate-limiting (429 after {retries} retries): {message}",
                cfg.base
            )),
            s if s.is_server_error() => Error::Unavailable(format!(
                "{} failed ({s} after {retries} retries): {message}",
                cfg.base
            )),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Error::Invalid(format!(
                "{} rejected the request ({status}): {message}",
                cfg.base
            )),
            s => backend_err(format!("{} answered {s}: {message}", cfg.base)),
        }
    }

    /// One non-streamed chat completion.
    async fn complete(&self, request: &ChatRequest, format: Option<Value>) -> Result<ChatResponse> {
        self.check_model().await?;
        let started = Instant::now();
        let mut body = self.body(request, false);
        if let Some(f) = format {
            body.insert("response_format".into(), f);
        }
        let res = self.post("/chat/completions", &body).await?;
        let v: Value = res.json().await.map_err(|e| self.map_http(e))?;
        let choice = v["choices"].get(0).ok_or_else(|| {
            backend_err(format!(
                "a chat completion without choices: {:.200}",
                v.to_string()
            ))
        })?;
        let text = choice["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let finish = match choice["finish_reason"].as_str() {
            Some("length") => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        Ok(ChatResponse {
            text,
            structured: None,
            model: v["model"]
                .as_str()
                .unwrap_or(&self.inner.cfg.model)
                .to_string(),
            finish,
            usage: usage(&v["usage"], started.elapsed()),
        })
    }

    /// A structured reply, asked for in the strongest way the server takes:
    /// `response_format: json_schema` (OpenAI, vLLM, LM Studio); else `json_object` with
    /// a `schema` (llama-cpp-python constrains it with a grammar); else the schema in the
    /// prompt alone. The last two validate the reply and feed a failure back once.
    async fn chat_structured(&self, request: ChatRequest, schema: &Value) -> Result<ChatResponse> {
        loop {
            let tier = self.inner.structured_tier.load(Ordering::Relaxed);
            let result = if tier == JSON_SCHEMA {
                let format = json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}});
                self.complete(&request, Some(format)).await.and_then(|r| {
                    let value = extract_json(&r.text, schema).map_err(Error::InvalidOutput)?;
                    Ok(structured_reply(r, value, Usage::default()))
                })
            } else {
                let format =
                    (tier == JSON_OBJECT).then(|| json!({"type": "json_object", "schema": schema}));
                self.schema_in_prompt(request.clone(), schema, format).await
            };
            match result {
                Err(Error::Invalid(m) | Error::Unavailable(m))
                    if tier < PROMPT_ONLY && mentions_response_format(&m) =>
                {
                    tracing::info!(target: "OpenAiModel", base = %self.inner.cfg.base, tier,
                        "the server refused this response_format; asking a simpler way");
                    self.inner
                        .structured_tier
                        .store(tier + 1, Ordering::Relaxed);
                }
                r => return r,
            }
        }
    }

    async fn schema_in_prompt(
        &self,
        mut request: ChatRequest,
        schema: &Value,
        format: Option<Value>,
    ) -> Result<ChatResponse> {
        let rule = format!(
            "Reply with one JSON value and nothing else. It must be valid against this JSON Schema:\n{schema}"
        );
        match request.messages.first_mut() {
            Some(m) if m.role == Role::System => m.content = format!("{}\n\n{rule}", m.content),
            _ => request.messages.insert(0, ChatMessage::system(rule)),
        }
        let first = self.complete(&request, format.clone()).await?;
        let problem = match extract_json(&first.text, schema) {
            Ok(value) => return Ok(structured_reply(first, value, Usage::default())),
            Err(problem) => problem,
        };
        request
            .messages
            .push(ChatMessage::assistant(first.text.clone()));
        request.messages.push(ChatMessage::user(format!(
            "That reply is not usable: {problem}. Reply again with only the JSON."
        )));
        let second = self.complete(&request, format).await?;
        let value = extract_json(&second.text, schema).map_err(Error::InvalidOutput)?;
        Ok(structured_reply(second, value, first.usage))
    }

    /// Opens a streamed completion; stops are applied to the pieces here.
    async fn open_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        self.check_model().await?;
        let started = Instant::now();
        let body = self.body(&request, true);
        let res = match self.post("/chat/completions", &body).await {
            Err(Error::Invalid(m)) if m.contains("stream_options") => {
                self.inner
                    .stream_usage_rejected
                    .store(true, Ordering::Relaxed);
                self.post("/chat/completions", &self.body(&request, true))
                    .await?
            }
            r => r?,
        };
        let state = StreamState {
            events: Box::pin(res.bytes_stream().eventsource()),
            stop: StopFilter::new(&request.options.stop),
            text: String::new(),
            pieces: 0,
            usage: None,
            finish: None,
            model: self.inner.cfg.model.clone(),
            started,
            adapter: self.clone(),
            ended: false,
        };
        Ok(futures::stream::unfold(state, |mut s| async move {
            if s.ended {
                return None;
            }
            let out = s.step().await;
            Some((futures::stream::iter(out), s))
        })
        .flatten()
        .boxed())
    }
}

type Events = Pin<
    Box<
        dyn Stream<
                Item = std::result::Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

struct StreamState {
    events: Events,
    stop: StopFilter,
    text: String,
    pieces: u32,
    usage: Option<Value>,
    finish: Option<FinishReason>,
    model: String,
    started: Instant,
    adapter: OpenAiModel,
    ended: bool,
}

impl StreamState {
    /// Reads events until there is something to hand on.
    async fn step(&mut self) -> Vec<Result<StreamChunk>> {
        loop {
            let Some(event) = self.events.next().await else {
                // The connection ended without `[DONE]`: a reply cut short is an error,
                // so that nothing half-written is taken for a whole reply.
                self.ended = true;
                if self.finish.is_none() {
                    return vec![Err(Error::Unavailable(format!(
                        "the OpenAI-compatible server at {} ended the stream mid-reply",
                        self.adapter.inner.cfg.base
                    )))];
                }
                return self.done();
            };
            let event = match event {
                Ok(e) => e,
                Err(eventsource_stream::EventStreamError::Transport(e)) => {
                    self.ended = true;
                    return vec![Err(self.adapter.map_http(e))];
                }
                Err(e) => {
                    self.ended = true;
                    return vec![Err(backend_err(format!("unreadable stream: {e}")))];
                }
            };
            let data = event.data.trim();
            if data == "[DONE]" {
                self.finish.get_or_insert(FinishReason::Stop);
                return self.done();
            }
            let v: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    self.ended = true;
                    return vec![Err(backend_err(format!(
                        "unreadable stream event ({e}): {data:.200}"
                    )))];
                }
            };
            if let Some(err) = v.get("error") {
                self.ended = true;
                let status = err["code"]
                    .as_u64()
                    .and_then(|c| StatusCode::from_u16(c as u16).ok());
                return vec![Err(self.adapter.map_status(
                    status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &v.to_string(),
                    0,
                ))];
            }
            if let Some(m) = v["model"].as_str() {
                self.model = m.to_string();
            }
            if v["usage"].is_object() {
                self.usage = Some(v["usage"].clone());
            }
            let Some(choice) = v["choices"].get(0) else {
                continue;
            };
            match choice["finish_reason"].as_str() {
                Some("length") => self.finish = Some(FinishReason::Length),
                Some(_) => self.finish = Some(FinishReason::Stop),
                None => {}
            }
            let piece = choice["delta"]["content"].as_str().unwrap_or_default();
            if piece.is_empty() {
                continue;
            }
            self.pieces += 1;
            let (out, hit) = self.stop.push(piece);
            self.text.push_str(&out);
            if hit {
                // Dropping the events closes the connection, which ends generation.
                self.finish = Some(FinishReason::StopSequence);
                self.usage = None;
                let mut chunks = text_chunk(out);
                chunks.extend(self.done());
                return chunks;
            }
            if !out.is_empty() {
                return text_chunk(out);
            }
        }
    }

    fn done(&mut self) -> Vec<Result<StreamChunk>> {
        self.ended = true;
        let mut chunks = Vec::new();
        if self.finish != Some(FinishReason::StopSequence) {
            let rest = self.stop.finish();
            self.text.push_str(&rest);
            chunks.extend(text_chunk(rest));
        }
        let mut usage = usage(
            self.usage.as_ref().unwrap_or(&Value::Null),
            self.started.elapsed(),
        );
        if usage.completion_tokens == 0 {
            // No usage from the server (or cut at a stop): one streamed piece is one token
            // on every server seen so far.
            usage.completion_tokens = self.pieces;
        }
        chunks.push(Ok(StreamChunk::Done(ChatResponse {
            text: std::mem::take(&mut self.text),
            structured: None,
            model: self.model.clone(),
            finish: self.finish.unwrap_or(FinishReason::Stop),
            usage,
        })));
        chunks
    }
}

fn text_chunk(text: String) -> Vec<Result<StreamChunk>> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![Ok(StreamChunk::Text(text))]
    }
}

#[async_trait]
impl LanguageModel for OpenAiModel {
    fn capabilities(&self) -> ModelCapabilities {
        let mut c = ModelCapabilities::new(BACKEND);
        c.structured_output = true;
        c.streaming = true;
        c.embeddings = true;
        c.deterministic_seed = self.inner.cfg.deterministic_seed;
        c
    }

    fn describe(&self) -> String {
        format!("openai:{}#{}", self.inner.cfg.base, self.inner.cfg.model)
    }

    async fn info(&self) -> Result<ModelInfo> {
        let cfg = &self.inner.cfg;
        let models = self.list_models().await?.ok_or_else(|| {
            Error::Unsupported(format!("{} does not list its models (/models)", cfg.base))
        })?;
        let entry = self.served_entry(&models)?;
        // Servers that say: vLLM (`max_model_len`), llama.cpp (`meta.n_ctx_train`),
        // LM Studio (`max_context_length`). The configured value wins over all of them.
        let served = [
            &entry["max_model_len"],
            &entry["meta"]["n_ctx_train"],
            &entry["max_context_length"],
            &entry["context_length"],
        ]
        .into_iter()
        .find_map(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32);
        let (context_length, source) = match (cfg.context_length, served) {
            (Some(n), _) => (n, "configured"),
            (None, Some(n)) => (n, "server"),
            (None, None) => (ASSUMED_CONTEXT_LENGTH, "assumed"),
        };
        Ok(ModelInfo {
            name: cfg.model.clone(),
            context_length,
            embedding_dim: None,
            details: json!({
                "backend": BACKEND,
                "base_url": cfg.base,
                "owned_by": entry["owned_by"],
                "context_length_source": source,
            }),
        })
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        if request.messages.is_empty() {
            return Err(Error::Invalid("a chat needs at least one message".into()));
        }
        if let Some(schema) = request.schema.clone() {
            check_schema(&schema)?;
            return self.chat_structured(request, &schema).await;
        }
        if request.options.stop.iter().any(|s| !s.is_empty()) {
            let stream = self.open_stream(request).await?;
            return reply_of(stream, BACKEND, "the stream ended without a reply").await;
        }
        self.complete(&request, None).await
    }

    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        if request.messages.is_empty() {
            return Err(Error::Invalid("a chat needs at least one message".into()));
        }
        if request.schema.is_some() {
            // A structured reply is validated whole, so it arrives as one piece.
            return Ok(whole_reply_stream(self.chat(request).await?));
        }
        self.open_stream(request).await
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if self.inner.embed_singly.load(Ordering::Relaxed) {
            let mut out = Vec::with_capacity(texts.len());
            for text in texts {
                out.extend(self.embed_batch(std::slice::from_ref(text)).await?.0);
            }
            return Ok(out);
        }
        let (vectors, per_token) = self.embed_batch(texts).await?;
        if per_token && texts.len() > 1 {
            // llama-cpp-python sends one vector per token when the model has no pooling
            // layer, and then a batch's later texts come out different from the same texts
            // sent alone: such a server is asked one text at a time from now on.
            self.inner.embed_singly.store(true, Ordering::Relaxed);
            return self.embed(texts).await;
        }
        Ok(vectors)
    }
}

impl OpenAiModel {
    /// One `/embeddings` call: the vectors, and whether the server sent them per token.
    async fn embed_batch(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, bool)> {
        let cfg = &self.inner.cfg;
        let model = cfg.embed_model.as_ref().unwrap_or(&cfg.model);
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("input".into(), json!(texts));
        let res = self.post("/embeddings", &body).await?;
        let v: Value = res.json().await.map_err(|e| self.map_http(e))?;
        let data = v["data"].as_array().cloned().unwrap_or_default();
        let per_token = data
            .iter()
            .any(|d| d["embedding"].get(0).is_some_and(Value::is_array));
        let mut rows: Vec<(u64, Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    d["index"].as_u64().unwrap_or(i as u64),
                    pooled(&d["embedding"]),
                )
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        if rows.len() != texts.len() || rows.iter().any(|(_, v)| v.is_empty()) {
            return Err(backend_err(format!(
                "{} embeddings for {} texts from {}",
                rows.len(),
                texts.len(),
                cfg.base
            )));
        }
        Ok((rows.into_iter().map(|(_, v)| v).collect(), per_token))
    }
}

/// An embedding as a vector. llama-cpp-python, serving a model without a pooling
/// layer, sends one vector per token: their mean stands for the text.
fn pooled(embedding: &Value) -> Vec<f32> {
    let floats = |xs: &Value| -> Vec<f32> {
        xs.as_array()
            .map(|xs| {
                xs.iter()
                    .filter_map(Value::as_f64)
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(rows) = embedding.as_array() else {
        return Vec::new();
    };
    if !rows.first().is_some_and(Value::is_array) {
        return floats(embedding);
    }
    let rows: Vec<Vec<f32>> = rows.iter().map(floats).collect();
    let n = rows[0].len();
    if n == 0 || rows.iter().any(|r| r.len() != n) {
        return Vec::new();
    }
    let mut mean = vec![0.0; n];
    for r in &rows {
        for (m, x) in mean.iter_mut().zip(r) {
            *m += x / rows.len() as f32;
        }
    }
    mean
}

fn structured_reply(mut r: ChatResponse, value: Value, earlier: Usage) -> ChatResponse {
    r.text = value.to_string();
    r.structured = Some(value);
    r.usage.prompt_tokens += earlier.prompt_tokens;
    r.usage.completion_tokens += earlier.completion_tokens;
    r.usage.generation_ms += earlier.generation_ms;
    r
}

/// The JSON value in a reply written without the server's help: the whole text, or the
/// outermost object in it (models wrap JSON in fences and chatter).
fn extract_json(text: &str, schema: &Value) -> std::result::Result<Value, String> {
    let escaped = escape_raw_controls(text);
    let t = escaped.trim();
    let candidate = match (t.find('{'), t.rfind('}')) {
        _ if serde_json::from_str::<Value>(t).is_ok() => t,
        (Some(a), Some(b)) if a < b => &t[a..=b],
        _ => return Err(format!("the reply holds no JSON: {t:.200}")),
    };
    parse_structured(candidate, schema).map_err(|e| e.to_string())
}

/// `text` with raw control characters inside JSON strings escaped. llama-cpp-python's
/// schema grammar lets a raw newline into a string, which JSON forbids; the value meant
/// is plain, so it is read as meant rather than refused.
fn escape_raw_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(|c: char| c.is_control() && c != ' ') {
        return text.into();
    }
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(text.len()), false, false);
    for c in text.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                out.push(c);
            }
            '\\' if in_string => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            '\n' if in_string => out.push_str("\\n"),
            '\r' if in_string => out.push_str("\\r"),
            '\t' if in_string => out.push_str("\\t"),
            c if in_string && u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.into()
}

/// `usage` of a reply; the server's timings when it gives them (llama.cpp's `timings`
/// are not in `usage`, so the wall time counts as generation).
fn usage(u: &Value, elapsed: Duration) -> Usage {
    let n = |k: &str| {
        u[k].as_u64()
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32)
    };
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        prompt_ms: 0,
        generation_ms: elapsed.as_millis() as u64,
    }
}

/// How long the server asks to wait: `retry-after-ms` (OpenAI) or `Retry-After` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    header(RETRY_AFTER.as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0)))
}

/// The message and code of an error body; servers nest it (`{"error": {"message"}}`,
/// OpenAI and vLLM), flatten it (`{"error": "…"}`, LM Studio) or send FastAPI's
/// `{"detail": …}` (llama-cpp-python).
fn error_text(body: &str) -> (String, Option<String>) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (body.trim().chars().take(500).collect(), None);
    };
    let err = &v["error"];
    let message = err["message"]
        .as_str()
        .or_else(|| err.as_str())
        .or_else(|| v["message"].as_str())
        .map(String::from)
        .or_else(|| match &v["detail"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            d => Some(d.to_string()),
        })
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    let code = err["code"].as_str().map(String::from);
    (message, code)
}

/// A context-window error in any server's words, with the figures when they are given.
fn context_error(lower: &str) -> Option<Error> {
    let says = lower.contains("context length")
        || lower.contains("context window")
        || lower.contains("context_length_exceeded")
        || lower.contains("maximum context");
    if !says {
        return None;
    }
    // OpenAI: "maximum context length is {limit} tokens. However, your messages resulted
    // in {tokens} tokens"; vLLM: "… However, you requested {tokens} tokens", or, newer,
    // "'max_tokens' … is too large: {max}. This model's maximum context length is {limit}
    // tokens and your request has {input} input tokens"; llama-cpp-python: "Requested
    // tokens ({tokens}) exceed context window of {limit}".
    let limit = number_after(lower, "maximum context length is")
        .or_else(|| number_after(lower, "context window of"))
        .unwrap_or(0);
    let tokens = number_after(lower, "resulted in")
        .or_else(|| number_after(lower, "you requested"))
        .or_else(|| number_after(lower, "requested tokens ("))
        .or_else(|| {
            let input = number_after(lower, "your request has")?;
            Some(input + number_after(lower, "is too large:").unwrap_or(0))
        })
        .unwrap_or(0);
    Some(Error::ContextTooLong { tokens, limit })
}

/// The number right after `phrase` in `text` (spaces skipped).
fn number_after(text: &str, phrase: &str) -> Option<usize> {
    let rest = &text[text.find(phrase)? + phrase.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn mentions_response_format(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("response_format") || m.contains("json_schema") || m.contains("response format")
}

fn backend_err(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_errors_in_each_servers_words() {
        let openai = "this model's maximum context length is 4097 tokens. however, your messages resulted in 5000 tokens.";
        assert!(matches!(
            context_error(openai),
            Some(Error::ContextTooLong {
                tokens: 5000,
                limit: 4097
            })
        ));
        let vllm = "this model's maximum context length is 2048 tokens. however, you requested 2100 tokens (2000 in the messages, 100 in the completion).";
        assert!(matches!(
            context_error(vllm),
            Some(Error::ContextTooLong {
                tokens: 2100,
                limit: 2048
            })
        ));
        let llama = "requested tokens (9000) exceed context window of 8192";
        assert!(matches!(
            context_error(llama),
            Some(Error::ContextTooLong {
                tokens: 9000,
                limit: 8192
            })
        ));
        assert!(context_error("model not found").is_none());
    }

    #[test]
    fn retry_after_in_seconds_or_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_bodies_of_each_shape() {
        assert_eq!(
            error_text(r#"{"error":{"message":"m","code":"model_not_found"}}"#),
            ("m".into(), Some("model_not_found".into()))
        );
        assert_eq!(error_text(r#"{"error":"flat"}"#).0, "flat");
        assert_eq!(error_text(r#"{"detail":"fastapi"}"#).0, "fastapi");
        assert_eq!(error_text("plain words").0, "plain words");
    }

    #[test]
    fn json_in_chatter_is_found_and_checked() {
        let schema =
            json!({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]});
        assert_eq!(
            extract_json("Sure! ```json\n{\"a\": 1}\n```", &schema),
            Ok(json!({"a": 1}))
        );
        assert!(extract_json("{\"b\": 1}", &schema).is_err());
        assert!(extract_json("no json", &schema).is_err());
        let raw = "{\"a\": 1, \"s\": \"two\nlines\\\"\t\"}";
        let schema = json!({"type":"object","properties":{"s":{"type":"string"}}});
        assert_eq!(
            extract_json(raw, &schema),
            Ok(json!({"a": 1, "s": "two\nlines\"\t"}))
        );
    }

    #[test]
    fn extra_fields_join_the_body_without_replacing_the_ports() {
        let m = OpenAiModelBuilder::with_lookup("http://h/v1", "m", |k| {
            (k == "AURA_OPENAI_EXTRA_BODY")
                .then(|| r#"{"repeat_penalty": 1.0, "temperature": 9, "model": "x"}"#.into())
        })
        .build()
        .unwrap();
        let body = m.body(&ChatRequest::new("s", "u"), false);
        assert_eq!(body["repeat_penalty"], json!(1.0));
        assert_eq!(body["model"], json!("m"));
        assert_eq!(body["temperature"].as_f64().map(|t| t < 1.0), Some(true));
    }

    #[test]
    fn a_bad_url_or_model_is_refused_when_built() {
        assert!(matches!(
            OpenAiModel::builder("ftp://x/v1", "m").build(),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            OpenAiModel::builder("not a url", "m").build(),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            OpenAiModel::builder("http://h/v1", " ").build(),
            Err(Error::Invalid(_))
        ));
        let key = format!(
            "{:?}",
            OpenAiModel::builder("http://h/v1", "m").api_key("sk-secret")
        );
        assert!(!key.contains("sk-secret"), "{key}");
    }
}
