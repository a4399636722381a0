//! The `LanguageModel` port.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;

/// Who said a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user (or the system speaking as one).
    User,
    /// The model.
    Assistant,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Sampling options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationOptions {
    /// Sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        Self {
            temperature: 0.2,
            seed: None,
            max_tokens: 512,
            stop: Vec::new(),
        }
    }
}

/// A chat request: messages (a system message first, if any) and options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// How to sample.
    pub options: GenerationOptions,
    /// When set, the reply must be JSON valid against this JSON Schema.
    pub schema: Option<Value>,
}

impl ChatRequest {
    /// A request with a system prompt and one user message.
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
            ..Self::default()
        }
    }

    /// Asks for JSON matching `schema`.
    pub fn with_schema(mut self, schema: Value) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Sets the options.
    pub fn with_options(mut self, options: GenerationOptions) -> Self {
        self.options = options;
        self
    }
}

/// Token counts and timings of one call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Milliseconds spent on the prompt.
    pub prompt_ms: u64,
    /// Milliseconds spent generating.
    pub generation_ms: u64,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// A stop sequence was reached.
    StopSequence,
    /// `max_tokens` was reached.
    Length,
}

/// A model's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The reply text.
    pub text: String,
    /// For a request with a schema: the parsed JSON, already validated.
    pub structured: Option<Value>,
    /// The model that answered.
    pub model: String,
    /// Why it stopped.
    pub finish: FinishReason,
    /// Counts and timings.
    pub usage: Usage,
}

/// A piece of a streamed reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamChunk {
    /// More text.
    Text(String),
    /// The end: the whole reply.
    Done(ChatResponse),
}

/// What a model is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// Its context window in tokens.
    pub context_length: u32,
    /// Its embedding size, if it embeds.
    pub embedding_dim: Option<u32>,
    /// Free-form details (architecture, quantisation, …).
    pub details: Value,
}

/// What a backend can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelCapabilities {
    /// The backend's name ("local", "ollama", "scripted").
    pub backend: &'static str,
    /// Replies can be constrained to a JSON Schema.
    pub structured_output: bool,
    /// Replies can be streamed.
    pub streaming: bool,
    /// Texts can be embedded.
    pub embeddings: bool,
    /// The same seed gives the same reply.
    pub deterministic_seed: bool,
    /// LoRA adapters (facets) can be applied.
    pub lora: bool,
    /// How likely a given reply is can be measured ([`LanguageModel::score`]).
    pub scoring: bool,
}

impl ModelCapabilities {
    /// A backend that only chats; a backend outside this crate sets the fields it
    /// supports on the value (the struct is non-exhaustive, so it cannot be built literally).
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            structured_output: false,
            streaming: false,
            embeddings: false,
            deterministic_seed: false,
            lora: false,
            scoring: false,
        }
    }
}

/// A language model: chat, structured output, streaming and embeddings.
///
/// Contract (checked by the conformance suite): a reply to a request with a schema
/// carries `structured` JSON that validates against it, or the call fails with
/// [`crate::Error::InvalidOutput`]; a missing model is [`crate::Error::ModelNotFound`];
/// an unreachable backend is [`crate::Error::Unavailable`].
#[async_trait]
pub trait LanguageModel: Send + Sync + fmt::Debug {
    /// What this backend supports.
    fn capabilities(&self) -> ModelCapabilities;
    /// Which backend serves, in the notation of the model settings
    /// (`openai:http://host/v1#name`): what `/health` and the CLI show. By default, the
    /// backend's name.
    fn describe(&self) -> String {
        self.capabilities().backend.to_string()
    }
    /// Describes the model, failing if it is not available.
    async fn info(&self) -> Result<ModelInfo>;
    /// Answers a chat.
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse>;
    /// Answers a chat as a stream of text pieces ending with [`StreamChunk::Done`].
    ///
    /// By default the whole reply is one piece: a backend that cannot stream still
    /// honours the contract.
    async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<BoxStream<'static, Result<StreamChunk>>> {
        Ok(whole_reply_stream(self.chat(request).await?))
    }
    /// Embeds each text. By default a backend does not embed
    /// ([`crate::Error::Unsupported`], and `capabilities().embeddings` is false).
    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Err(crate::Error::Unsupported(format!(
            "the {} backend does not embed",
            self.capabilities().backend
        )))
    }
    /// How likely the model finds `reply` as the answer to `messages`: the summed
    /// natural-log probability of the reply's tokens, and how many there are. Two replies
    /// to the same messages compare by their sums; the mean compares models on reference
    /// replies. By default a backend does not score ([`crate::Error::Unsupported`], and
    /// `capabilities().scoring` is false).
    async fn score(&self, _messages: &[ChatMessage], _reply: &str) -> Result<(f64, usize)> {
        Err(crate::Error::Unsupported(format!(
            "the {} backend does not score replies",
            self.capabilities().backend
        )))
    }
}

/// A whole reply as a stream: the text in one piece, then [`StreamChunk::Done`].
pub(crate) fn whole_reply_stream(
    response: ChatResponse,
) -> BoxStream<'static, Result<StreamChunk>> {
    let pieces = vec![
        Ok(StreamChunk::Text(response.text.clone())),
        Ok(StreamChunk::Done(response)),
    ];
    futures::stream::iter(pieces).boxed()
}

/// The reply a stream ends with: its [`StreamChunk::Done`], the first error it carries, or
/// `backend`'s error `ended_early` when it stops without either.
#[cfg(any(feature = "ollama", feature = "openai"))]
pub(crate) async fn reply_of(
    mut stream: BoxStream<'static, Result<StreamChunk>>,
    backend: &'static str,
    ended_early: &str,
) -> Result<ChatResponse> {
    while let Some(chunk) = stream.next().await {
        if let StreamChunk::Done(r) = chunk? {
            return Ok(r);
        }
    }
    Err(crate::Error::backend(backend, ended_early))
}

/// A language model shared across tasks.
pub type DynLanguageModel = Arc<dyn LanguageModel>;
