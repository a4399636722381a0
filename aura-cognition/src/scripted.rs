//! A scripted language model for deterministic tests (feature `test-utils`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use crate::model::*;
use crate::{Error, Result};

type Responder = dyn Fn(&ChatRequest) -> Result<String> + Send + Sync;
type Scorer = dyn Fn(&[ChatMessage], &str) -> f64 + Send + Sync;

/// A model that answers from a script: queued replies in order, then a fallback function.
///
/// Every request is recorded so tests can check what the model was asked.
#[derive(Clone)]
pub struct ScriptedModel {
    name: String,
    queue: Arc<Mutex<VecDeque<Result<String>>>>,
    fallback: Option<Arc<Responder>>,
    scorer: Option<Arc<Scorer>>,
    seen: Arc<Mutex<Vec<ChatRequest>>>,
}

impl std::fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("name", &self.name)
            .finish()
    }
}

impl ScriptedModel {
    /// A model that gives `replies` in order, then fails with `InvalidOutput`.
    pub fn new<I, S>(replies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: "scripted".into(),
            queue: Arc::new(Mutex::new(
                replies.into_iter().map(|r| Ok(r.into())).collect(),
            )),
            fallback: None,
            scorer: None,
            seen: Arc::default(),
        }
    }

    /// A model that answers every request with `f` (after any queued replies).
    pub fn from_fn(f: impl Fn(&ChatRequest) -> Result<String> + Send + Sync + 'static) -> Self {
        Self {
            fallback: Some(Arc::new(f)),
            ..Self::new(Vec::<String>::new())
        }
    }

    /// A tiny but obedient model for the blueprint's scenarios: a summary for the
    /// reflect step's summary request, a `list_files` candidate that imports `os` for the
    /// os-module request (the guard must refuse it), and otherwise an iterative
    /// `fibonacci` candidate with a test of `fibonacci(10) == 55`.
    pub fn blueprint() -> Self {
        Self::from_fn(|req: &ChatRequest| {
            let prompt: String = req
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            if prompt.contains("Summarize the conversation notes") {
                return Ok(
                    "We talked about the fibonacci sequence; you taught me to compute it.".into(),
                );
            }
            let candidate = if prompt.contains("os module") || prompt.contains("list_files") {
                serde_json::json!({
                    "source": "import os\ndef list_files(self):\n    return os.listdir('.')\n",
                    "tests": "def test_it():\n    assert obj.list_files() is not None\n",
                    "doc": "lists files",
                    "rationale": "os.listdir",
                })
            } else {
                serde_json::json!({
                    "source": "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
                    "tests": "def test_ten():\n    assert obj.fibonacci(10) == 55\n",
                    "doc": "the n-th Fibonacci number",
                    "rationale": "iterative",
                })
            };
            Ok(candidate.to_string())
        })
    }

    /// Scores replies with `f` (a summed log-probability, so at most 0), one token per
    /// character: without it the model does not score, like most remote backends.
    pub fn scoring(
        mut self,
        f: impl Fn(&[ChatMessage], &str) -> f64 + Send + Sync + 'static,
    ) -> Self {
        self.scorer = Some(Arc::new(f));
        self
    }

    /// Names the model.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Queues one more reply.
    pub fn push(&self, reply: impl Into<String>) {
        lock(&self.queue).push_back(Ok(reply.into()));
    }

    /// Queues an error as the next reply.
    pub fn push_error(&self, error: Error) {
        lock(&self.queue).push_back(Err(error));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.seen).clone()
    }

    fn next_reply(&self, request: &ChatRequest) -> Result<String> {
        lock(&self.seen).push(request.clone());
        if let Some(reply) = lock(&self.queue).pop_front() {
            return reply;
        }
        match &self.fallback {
            Some(f) => f(request),
            None => Err(Error::InvalidOutput(
                "the scripted model has no reply left".into(),
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl LanguageModel for ScriptedModel {
    fn capabilities(&self) -> ModelCapabilities {
        ModelCapabilities {
            backend: "scripted",
            structured_output: true,
            streaming: true,
            embeddings: true,
            deterministic_seed: true,
            lora: false,
            scoring: self.scorer.is_some(),
        }
    }

    async fn info(&self) -> Result<ModelInfo> {
        Ok(ModelInfo {
            name: self.name.clone(),
            context_length: 8192,
            embedding_dim: Some(EMBEDDING_DIM as u32),
            details: Value::Null,
        })
    }

    async fn score(&self, messages: &[ChatMessage], reply: &str) -> Result<(f64, usize)> {
        match &self.scorer {
            Some(f) if !reply.is_empty() => Ok((f(messages, reply), reply.chars().count())),
            Some(_) => Err(Error::Invalid("scoring needs a reply".into())),
            None => Err(Error::Unsupported(
                "this scripted model does not score replies".into(),
            )),
        }
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut text = self.next_reply(&request)?;
        let mut finish = FinishReason::Stop;
        if let Some(cut) = request
            .options
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(cut);
            finish = FinishReason::StopSequence;
        }
        let structured =
            match &request.schema {
                Some(_) => Some(serde_json::from_str::<Value>(&text).map_err(|e| {
                    Error::InvalidOutput(format!("scripted reply is not JSON: {e}"))
                })?),
                None => None,
            };
        Ok(ChatResponse {
            usage: Usage {
                prompt_tokens: request
                    .messages
                    .iter()
                    .map(|m| m.content.len() as u32 / 4)
                    .sum(),
                completion_tokens: text.len() as u32 / 4,
                ..Usage::default()
            },
            text,
            structured,
            model: self.name.clone(),
            finish,
        })
    }

    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        let response = self.chat(request).await?;
        let pieces: Vec<Result<StreamChunk>> = response
            .text
            .split_inclusive(' ')
            .map(|p| Ok(StreamChunk::Text(p.to_string())))
            .chain(std::iter::once(Ok(StreamChunk::Done(response.clone()))))
            .collect();
        Ok(stream::iter(pieces).boxed())
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| hashed_embedding(t)).collect())
    }
}

const EMBEDDING_DIM: usize = 32;

/// A deterministic bag-of-words embedding: similar texts land near each other.
fn hashed_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBEDDING_DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
        v[(h % EMBEDDING_DIM as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Real-time context for tests that must not touch the network: the place is `place`
/// and the news come from the RSS or Atom file at `feed_file` (no other provider).
pub fn offline_context(place: &str, feed_file: &std::path::Path) -> crate::ContextIngestor {
    let place = place.to_string();
    let feed_url = format!("file://{}", feed_file.display());
    crate::ContextIngestorBuilder::from_vars(move |k| match k {
        "AURA_LOCATION" => Some(place.clone()),
        "AURA_NEWS_FEED_URL" => Some(feed_url.clone()),
        _ => None,
    })
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_in_order_then_fails() {
        let m = ScriptedModel::new(["one", "two"]);
        assert_eq!(
            m.chat(ChatRequest::new("s", "a")).await.unwrap().text,
            "one"
        );
        assert_eq!(
            m.chat(ChatRequest::new("s", "b")).await.unwrap().text,
            "two"
        );
        assert!(matches!(
            m.chat(ChatRequest::new("s", "c")).await,
            Err(Error::InvalidOutput(_))
        ));
        assert_eq!(m.requests().len(), 3);
    }

    #[tokio::test]
    async fn schema_requests_get_parsed_json_or_an_error() {
        let m = ScriptedModel::new([r#"{"a":1}"#, "not json"]);
        let req = ChatRequest::new("s", "u").with_schema(serde_json::json!({"type":"object"}));
        let ok = m.chat(req.clone()).await.unwrap();
        assert_eq!(ok.structured, Some(serde_json::json!({"a":1})));
        assert!(matches!(m.chat(req).await, Err(Error::InvalidOutput(_))));
    }

    #[tokio::test]
    async fn stop_sequences_cut_the_reply() {
        let m = ScriptedModel::new(["hello END world"]);
        let mut req = ChatRequest::new("s", "u");
        req.options.stop = vec!["END".into()];
        let r = m.chat(req).await.unwrap();
        assert_eq!(r.text, "hello ");
        assert_eq!(r.finish, FinishReason::StopSequence);
    }
}
