//! The cognition crate's one error type.

/// What went wrong talking to a language model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend (a server, a model file) cannot be reached.
    #[error("language model backend unreachable: {0}")]
    Unavailable(String),
    /// The named model is not installed / not present.
    #[error("model not found: {0}")]
    ModelNotFound(String),
    /// The prompt does not fit the model's context window.
    #[error("prompt of {tokens} tokens does not fit the context of {limit} tokens")]
    ContextTooLong {
        /// Tokens in the prompt.
        tokens: usize,
        /// The model's context size.
        limit: usize,
    },
    /// The model did not finish in time.
    #[error("language model timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The model's output was not what was asked for (not JSON, not matching the schema).
    #[error("invalid model output: {0}")]
    InvalidOutput(String),
    /// The request is malformed (empty messages, an unusable schema, …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend does not support this operation (see its capabilities).
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// The backend failed in a way the port does not name.
    #[error("{backend} error: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// Its description.
        message: String,
        /// The error underneath, when there is one: hosts can downcast it, and
        /// `source()` chains reach it.
        #[source]
        source: Option<BoxError>,
    },
}

/// A boxed error underneath a [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// A `Backend` error that only has words.
    pub fn backend(backend: &'static str, message: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
            source: None,
        }
    }

    /// A `Backend` error caused by `source`: its words are the message, and the error
    /// itself stays reachable (`source()`, downcasting).
    pub fn wrap(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            backend,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

/// The cognition crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
