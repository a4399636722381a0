//! The sandbox crate's one error type.

/// What went wrong *around* an execution. A guest that raises, loops or floods is not an
/// error here: that is an [`crate::ExecOutcome`] with its [`crate::EndReason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sandbox cannot run here (no user namespaces, no Docker engine, no interpreter).
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// The request is malformed (bad selector, oversize input, non-object slots).
    #[error("invalid execution request: {0}")]
    Invalid(String),
    /// The guest broke the host↔guest protocol (garbled or oversize reply).
    #[error("sandbox protocol error: {0}")]
    Protocol(String),
    /// The backend failed in a way the port does not name.
    #[error("{backend} error: {message}")]
    Backend {
        /// Which backend ("jail", "docker").
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

/// The sandbox crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
