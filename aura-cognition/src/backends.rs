//! Models named by a setting, served with fallbacks and a concurrency limit.
//!
//! One value names the backend of a persona (or of all of them):
//!
//! - `local:models/x.gguf`: [`crate::LocalModel`], in process (feature `local`);
//! - `ollama:qwen2.5-coder:7b`: an Ollama server at `OLLAMA_HOST` (feature `ollama`);
//! - `openai:http://127.0.0.1:8080/v1#model-name`: any OpenAI-compatible server, its key
//!   from `AURA_OPENAI_API_KEY` (feature `openai`).
//!
//! A comma-separated list names fallbacks: `ollama:llama3,local:models/x.gguf`. When a
//! backend is down or times out, the next one serves, and the first is skipped for a
//! cool-down, so a dead server costs its timeout once per cool-down and not once per
//! call. Every backend is opened once per [`ModelOpener`] and shares one concurrency
//! limit among all the personas it serves, so one slow server queues only its own calls.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::*;
use crate::{Error, Result};

/// Calls one backend serves at a time unless `AURA_MODEL_CONCURRENCY` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How long a backend that failed is skipped unless `AURA_MODEL_COOLDOWN_SECS` says otherwise.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// One backend, as a setting names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelSpec {
    /// A GGUF file run in process.
    Local(PathBuf),
    /// A model on the Ollama server at `OLLAMA_HOST`.
    Ollama(String),
    /// A model on an OpenAI-compatible server.
    OpenAi {
        /// The API root (`http://127.0.0.1:8080/v1`).
        base_url: String,
        /// The model's name on that server.
        model: String,
    },
}

impl ModelSpec {
    /// Parses one `scheme:rest` value; the error says what is wrong, not where.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once(':').ok_or_else(|| {
            format!("{text:?} names no backend: write local:PATH, ollama:MODEL or openai:URL#MODEL")
        })?;
        let rest = rest.trim();
        match scheme.trim().to_ascii_lowercase().as_str() {
            "local" if rest.is_empty() => Err("local: needs the path of a GGUF file".into()),
            "local" => Ok(Self::Local(PathBuf::from(rest))),
            "ollama" if rest.is_empty() => {
                Err("ollama: needs a model name, such as ollama:llama3".into())
            }
            "ollama" => Ok(Self::Ollama(rest.to_string())),
            "openai" => {
                let (base, model) = rest.split_once('#').ok_or_else(|| {
                    format!("openai:{rest} names no model: write openai:URL#MODEL")
                })?;
                let (base, model) = (base.trim().trim_end_matches('/'), model.trim());
                let url = url_of(base).map_err(|e| format!("openai:{rest}: {e}"))?;
                if model.is_empty() {
                    return Err(format!("openai:{rest} names no model after '#'"));
                }
                Ok(Self::OpenAi {
                    base_url: url,
                    model: model.to_string(),
                })
            }
            "http" | "https" => Err(format!(
                "{text:?} is a URL, not a backend: write openai:{text}#MODEL"
            )),
            other => Err(format!(
                "unknown backend {other:?} in {text:?}: use local:, ollama: or openai:"
            )),
        }
    }

    /// Opens the backend, with settings (timeouts, hosts, keys) read through `get`.
    pub fn open(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<DynLanguageModel> {
        let _ = get; // each backend reads only the settings it needs
        match self {
            #[cfg(feature = "local")]
            Self::Local(path) => Ok(Arc::new(
                crate::LocalModelBuilder::from_env()
                    .model_path(path.clone())
                    .build()?,
            )),
            #[cfg(feature = "ollama")]
            Self::Ollama(model) => {
                let mut b = crate::OllamaModelBuilder::from_env().model(model.clone());
                if let Some(host) = get("OLLAMA_HOST").filter(|h| !h.trim().is_empty()) {
                    b = b.host(host);
                }
                Ok(Arc::new(b.build()?))
            }
            #[cfg(feature = "openai")]
            Self::OpenAi { base_url, model } => Ok(Arc::new(
                crate::OpenAiModelBuilder::with_lookup(base_url.clone(), model.clone(), get)
                    .build()?,
            )),
            #[allow(unreachable_patterns)] // every feature on: nothing is left over
            other => Err(Error::Unsupported(format!(
                "{other} needs a build with aura-cognition's `{}` feature",
                other.scheme()
            ))),
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Ollama(_) => "ollama",
            Self::OpenAi { .. } => "openai",
        }
    }
}

fn url_of(base: &str) -> std::result::Result<String, String> {
    if base.is_empty() {
        return Err("no server URL".into());
    }
    let scheme_end = base
        .find("://")
        .ok_or("the URL needs http:// or https://")?;
    if !matches!(&base[..scheme_end], "http" | "https") {
        return Err("the URL needs http:// or https://".into());
    }
    if base[scheme_end + 3..]
        .split('/')
        .next()
        .unwrap_or("")
        .is_empty()
    {
        return Err("the URL names no host".into());
    }
    Ok(base.to_string())
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "local:{}", p.display()),
            Self::Ollama(m) => write!(f, "ollama:{m}"),
            Self::OpenAi { base_url, model } => write!(f, "openai:{base_url}#{model}"),
        }
    }
}

/// A setting's backends, first choice first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChain {
    /// The setting it came from (`AURA_MODEL_ROBIN`), for errors and the monologue.
    pub setting: String,
    /// Its backends, in the order they are tried.
    pub specs: Vec<ModelSpec>,
}

impl ModelChain {
    /// Parses `value`, a comma-separated list of backends; a malformed value is
    /// [`Error::Invalid`] naming `setting`.
    pub fn parse(setting: &str, value: &str) -> Result<Self> {
        let specs = value
            .split(',')
            .map(|part| {
                if part.trim().is_empty() {
                    Err("an empty entry in the list".to_string())
                } else {
                    ModelSpec::parse(part)
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|why| Error::Invalid(format!("{setting}={value:?}: {why}")))?;
        if specs.is_empty() {
            return Err(Error::Invalid(format!("{setting} is empty")));
        }
        Ok(Self {
            setting: setting.to_string(),
            specs,
        })
    }
}

impl fmt::Display for ModelChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.specs.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Reads a setting by name.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Opens the backends settings name, each once, each behind its own concurrency limit.
pub struct ModelOpener {
    get: Lookup,
    opened: HashMap<ModelSpec, DynLanguageModel>,
    concurrency: usize,
    cooldown: Duration,
}

impl fmt::Debug for ModelOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelOpener")
            .field("opened", &self.opened.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .field("cooldown", &self.cooldown)
            .finish()
    }
}

impl ModelOpener {
    /// An opener reading backend settings through `get` (`|k| std::env::var(k).ok()`).
    pub fn new(get: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            get: Box::new(get),
            opened: HashMap::new(),
            concurrency: DEFAULT_CONCURRENCY,
            cooldown: DEFAULT_COOLDOWN,
        }
    }

    /// Calls each backend serves at once (default [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = calls.max(1);
        self
    }

    /// How long a failed backend is skipped (default [`DEFAULT_COOLDOWN`]).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The model for `chain`: its one backend, or its backends with fallback. A backend
    /// that cannot be opened is an error naming the setting.
    pub fn open(&mut self, chain: &ModelChain) -> Result<DynLanguageModel> {
        let mut models = Vec::with_capacity(chain.specs.len());
        for spec in &chain.specs {
            let model = match self.opened.get(spec) {
                Some(m) => m.clone(),
                None => {
                    let model = spec.open(&*self.get).map_err(|e| {
                        Error::Invalid(format!("{}: cannot open {spec}: {e}", chain.setting))
                    })?;
                    let limited: DynLanguageModel = Arc::new(Limited::new(model, self.concurrency));
                    self.opened.insert(spec.clone(), limited.clone());
                    limited
                }
            };
            models.push(model);
        }
        Ok(if models.len() == 1 {
            models.remove(0)
        } else {
            Arc::new(FallbackModel::new(models, self.cooldown))
        })
    }
}

/// A model behind a semaphore: at most `n` calls at once; a stream holds its permit
/// until it ends.
#[derive(Debug)]
pub struct Limited {
    inner: DynLanguageModel,
    permits: Arc<Semaphore>,
}

impl Limited {
    /// `inner`, serving at most `calls` at once.
    pub fn new(inner: DynLanguageModel, calls: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(calls.max(1))),
        }
    }

    async fn permit(&self) -> OwnedSemaphorePermit {
        #[allow(clippy::expect_used)] // the semaphore is never closed
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

#[async_trait]
impl LanguageModel for Limited {
    fn capabilities(&self) -> ModelCapabilities {
        self.inner.capabilities()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn info(&self) -> Result<ModelInfo> {
        self.inner.info().await
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let _permit = self.permit().await;
        self.inner.chat(request).await
    }
    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        let permit = self.permit().await;
        let stream = self.inner.chat_stream(request).await?;
        Ok(stream
            .map(move |chunk| {
                let _held = &permit;
                chunk
            })
            .boxed())
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let _permit = self.permit().await;
        self.inner.embed(texts).await
    }
    async fn score(&self, messages: &[ChatMessage], reply: &str) -> Result<(f64, usize)> {
        let _permit = self.permit().await;
        self.inner.score(messages, reply).await
    }
}

/// Backends tried in order: one that is down or times out hands the call to the next and
/// is skipped for a cool-down. When every backend is cooling down, all are tried anyway.
///
/// A stream falls back only while it is being opened: once text has been handed on, a
/// failure ends the stream with the error rather than splice two models' words.
/// Embeddings and scores come from the first backend only, because vectors and
/// likelihoods from different models cannot be compared with one another.
#[derive(Debug)]
pub struct FallbackModel {
    backends: Vec<DynLanguageModel>,
    down_until: Vec<Mutex<Option<Instant>>>,
    cooldown: Duration,
}

impl FallbackModel {
    /// `backends`, first choice first, each skipped for `cooldown` after it fails.
    pub fn new(backends: Vec<DynLanguageModel>, cooldown: Duration) -> Self {
        let down_until = backends.iter().map(|_| Mutex::new(None)).collect();
        Self {
            backends,
            down_until,
            cooldown,
        }
    }

    /// The order to try the backends in now: those not cooling down, or all of them.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let up: Vec<usize> = (0..self.backends.len())
            .filter(|&i| {
                self.down_until[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_none_or(|t| t <= now)
            })
            .collect();
        if up.is_empty() {
            (0..self.backends.len()).collect()
        } else {
            up
        }
    }

    /// Records that backend `i` failed with `e`; whether the next one should be tried.
    fn failed(&self, i: usize, e: &Error) -> bool {
        if !is_outage(e) {
            return false;
        }
        *self.down_until[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + self.cooldown);
        let next = self.backends.get(i + 1).map(|m| m.describe());
        tracing::warn!(target: "Cascade", backend = %self.backends[i].describe(),
            next = next.as_deref().unwrap_or("(none)"), cooldown_s = self.cooldown.as_secs(),
            "model backend failed ({e}); falling back");
        true
    }

    /// `call` on the first backend that answers it, in [`Self::order`]: an outage puts
    /// a backend in its cool-down and moves on, an answer ends a backend's cool-down, and
    /// any other error is the caller's.
    async fn serve<T>(
        &self,
        call: impl Fn(DynLanguageModel) -> BoxFuture<'static, Result<T>>,
    ) -> Result<T> {
        let mut last = None;
        for i in self.order() {
            match call(self.backends[i].clone()).await {
                Ok(r) => {
                    self.recovered(i);
                    return Ok(r);
                }
                Err(e) if self.failed(i, &e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no backend".into())))
    }

    fn recovered(&self, i: usize) {
        self.down_until[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

#[async_trait]
impl LanguageModel for FallbackModel {
    fn capabilities(&self) -> ModelCapabilities {
        self.backends[0].capabilities()
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.backends.iter().map(|m| m.describe()).collect();
        parts.join(",")
    }

    /// Like a call, but a health check's answer leaves the cool-downs as they are.
    async fn info(&self) -> Result<ModelInfo> {
        let mut last = None;
        for i in self.order() {
            match self.backends[i].info().await {
                Ok(info) => return Ok(info),
                Err(e) if is_outage(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no backend".into())))
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.serve(|m| {
            let request = request.clone();
            async move { m.chat(request).await }.boxed()
        })
        .await
    }

    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        self.serve(|m| {
            let request = request.clone();
            async move { m.chat_stream(request).await }.boxed()
        })
        .await
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.backends[0].embed(texts).await
    }

    /// Scores come from the first backend only, like embeddings: two replies' scores
    /// compare only when one model gave both.
    async fn score(&self, messages: &[ChatMessage], reply: &str) -> Result<(f64, usize)> {
        self.backends[0].score(messages, reply).await
    }
}

/// A backend that is down or timed out, which the next one in a list may serve instead.
fn is_outage(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_) | Error::Timeout(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_parses_and_prints_back() {
        for text in [
            "local:models/x.gguf",
            "ollama:qwen2.5-coder:7b",
            "openai:http://127.0.0.1:8080/v1#model-name",
            "openai:https://api.openai.com/v1#gpt-4o-mini",
        ] {
            assert_eq!(ModelSpec::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            ModelSpec::parse(" OpenAI:http://h:1/v1/#m ").unwrap(),
            ModelSpec::OpenAi {
                base_url: "http://h:1/v1".into(),
                model: "m".into()
            }
        );
    }

    #[test]
    fn malformed_values_name_the_setting_and_the_fault() {
        let cases = [
            ("gpt4", "names no backend"),
            ("local:", "needs the path"),
            ("ollama:", "needs a model name"),
            ("openai:http://h/v1", "names no model"),
            ("openai:http://h/v1#", "no model after"),
            ("openai:ftp://h/v1#m", "http:// or https://"),
            ("openai:http:///v1#m", "names no host"),
            ("http://h/v1", "is a URL"),
            ("vllm:x", "unknown backend"),
            ("ollama:a,,local:b", "empty entry"),
            ("", "empty entry"),
        ];
        for (value, why) in cases {
            let e = ModelChain::parse("AURA_MODEL_ROBIN", value)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("AURA_MODEL_ROBIN") && e.contains(why),
                "{value:?}: {e}"
            );
        }
    }

    /// A backend that counts its calls and fails each with `error`.
    #[derive(Debug)]
    struct Failing {
        calls: std::sync::atomic::AtomicU32,
        error: fn() -> Error,
        in_flight: std::sync::atomic::AtomicU32,
        most_in_flight: std::sync::atomic::AtomicU32,
    }

    impl Failing {
        fn new(error: fn() -> Error) -> Arc<Self> {
            Arc::new(Self {
                calls: 0.into(),
                error,
                in_flight: 0.into(),
                most_in_flight: 0.into(),
            })
        }
        fn calls(&self) -> u32 {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl LanguageModel for Failing {
        fn capabilities(&self) -> ModelCapabilities {
            ModelCapabilities::new("failing")
        }
        async fn info(&self) -> Result<ModelInfo> {
            Err((self.error)())
        }
        async fn chat(&self, _: ChatRequest) -> Result<ChatResponse> {
            use std::sync::atomic::Ordering::SeqCst;
            self.calls.fetch_add(1, SeqCst);
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.most_in_flight.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.in_flight.fetch_sub(1, SeqCst);
            Err((self.error)())
        }
    }

    fn hello() -> DynLanguageModel {
        Arc::new(crate::ScriptedModel::from_fn(|_| Ok("hello".into())))
    }

    #[tokio::test]
    async fn a_dead_backend_costs_one_call_per_cooldown() {
        let dead = Failing::new(|| Error::Unavailable("connection refused".into()));
        let m = FallbackModel::new(vec![dead.clone(), hello()], Duration::from_secs(3600));
        for _ in 0..5 {
            let r = m.chat(ChatRequest::new("s", "u")).await.unwrap();
            assert_eq!(r.text, "hello");
        }
        assert_eq!(
            dead.calls(),
            1,
            "the dead backend was tried again within its cool-down"
        );
        // With no cool-down it is tried on every call, and still falls back.
        let m = FallbackModel::new(vec![dead.clone(), hello()], Duration::ZERO);
        for _ in 0..3 {
            m.chat(ChatRequest::new("s", "u")).await.unwrap();
        }
        assert_eq!(dead.calls(), 4);
        assert_eq!(m.describe(), "failing,scripted");
    }

    #[tokio::test]
    async fn only_outages_fall_back() {
        let picky = Failing::new(|| Error::ContextTooLong {
            tokens: 9,
            limit: 8,
        });
        let m = FallbackModel::new(vec![picky.clone(), hello()], DEFAULT_COOLDOWN);
        let e = m.chat(ChatRequest::new("s", "u")).await.unwrap_err();
        assert!(matches!(e, Error::ContextTooLong { .. }), "{e}");
        // When every backend is down, the last outage is reported.
        let a = Failing::new(|| Error::Timeout(Duration::from_secs(1)));
        let b = Failing::new(|| Error::Unavailable("b is down".into()));
        let m = FallbackModel::new(vec![a.clone(), b.clone()], DEFAULT_COOLDOWN);
        let e = m.chat(ChatRequest::new("s", "u")).await.unwrap_err();
        assert!(e.to_string().contains("b is down"), "{e}");
        // Both cooling down: both are tried again rather than nothing.
        m.chat(ChatRequest::new("s", "u")).await.unwrap_err();
        assert_eq!((a.calls(), b.calls()), (2, 2));
    }

    #[tokio::test]
    async fn a_backend_serves_at_most_its_limit_at_once() {
        let slow = Failing::new(|| Error::Unavailable("x".into()));
        let limited = Arc::new(Limited::new(slow.clone(), 2));
        let calls = (0..6).map(|_| {
            let m = limited.clone();
            tokio::spawn(async move { m.chat(ChatRequest::new("s", "u")).await })
        });
        for c in calls.collect::<Vec<_>>() {
            c.await.unwrap().unwrap_err();
        }
        assert_eq!(slow.calls(), 6);
        assert_eq!(
            slow.most_in_flight
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }

    #[test]
    #[cfg(all(feature = "openai", feature = "ollama"))] // it opens both kinds
    fn a_backend_is_opened_once_for_every_setting_that_names_it() {
        let mut opener = ModelOpener::new(|_| None);
        let spec = "openai:http://127.0.0.1:9/v1#m";
        let a = opener
            .open(&ModelChain::parse("AURA_MODEL", spec).unwrap())
            .unwrap();
        let b = opener
            .open(&ModelChain::parse("AURA_MODEL_ROBIN", &format!("ollama:x,{spec}")).unwrap())
            .unwrap();
        assert_eq!(opener.opened.len(), 2);
        assert_eq!(a.describe(), format!("{spec}"));
        assert_eq!(
            b.describe(),
            format!("ollama:x at http://127.0.0.1:11434,{spec}")
        );
        let e = opener
            .open(&ModelChain::parse("AURA_MODEL_BABS", "local:/no/such.gguf").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AURA_MODEL_BABS") && e.contains("/no/such.gguf"),
            "{e}"
        );
    }

    #[test]
    fn a_list_is_a_chain_of_fallbacks() {
        let c = ModelChain::parse("AURA_MODEL", "ollama:llama3, local:m.gguf").unwrap();
        assert_eq!(c.specs.len(), 2);
        assert_eq!(c.to_string(), "ollama:llama3,local:m.gguf");
    }
}
