//! The store's one error type.

use std::fmt;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named record does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What kind of record was looked up ("object", "method", …).
        kind: &'static str,
        /// The id or key that was looked up.
        id: String,
    },
    /// The request conflicts with the stored state: a write lost a race (the record
    /// changed since it was read), a unique name is already taken, or there is nothing
    /// to undo.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is invalid (bad selector, a parent cycle, …); nothing was written.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The backend cannot be reached or is not ready.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("store timed out: {0}")]
    Timeout(String),
    /// The backend failed in a way the port does not name.
    #[error("{backend} error: {message}")]
    Backend {
        /// Which backend ("sqlite", "arangodb").
        backend: &'static str,
        /// The backend's own description.
        message: String,
        /// The error underneath, when there is one: hosts can downcast it, and
        /// `source()` chains reach it.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// A `NotFound` for `kind` with the given id.
    pub fn not_found(kind: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
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

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
