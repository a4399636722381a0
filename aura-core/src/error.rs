//! The core's one error type: what a host sees from the object machine.

use aura_sandbox::{EndReason, GuestError};

/// What went wrong in the object machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object, method or record does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What was looked up.
        kind: &'static str,
        /// Its id or name.
        id: String,
    },
    /// A write lost a race (a stale revision, a taken name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is invalid (a bad selector, a parent cycle, malformed arguments).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No object on the delegation chain has the method, and nothing learned it.
    #[error("{object} does not understand {selector:?} (searched: {})", chain.join(" → "))]
    DoesNotUnderstand {
        /// The receiver's name.
        object: String,
        /// The message's selector.
        selector: String,
        /// The names of the objects searched, in delegation order.
        chain: Vec<String>,
    },
    /// The guard refused a method's source; nothing was stored.
    #[error("the guard rejected {selector}:\n{verdict}")]
    Rejected {
        /// The method.
        selector: String,
        /// Every violation, with rule ids and positions.
        verdict: aura_guard::Verdict,
    },
    /// The learn cycle gave up: no attempt passed the guard and its tests. Nothing but
    /// the audit trail of the attempts was written.
    #[error("could not learn {selector} in {attempts} attempt(s): {}", failures.last().map(|f| format!("{} — {}", f.stage, f.message)).unwrap_or_default())]
    Refused {
        /// The method.
        selector: String,
        /// Attempts made.
        attempts: u32,
        /// Why each attempt failed, in order.
        failures: Vec<crate::learn::AttemptFailure>,
    },
    /// The method ran and raised an exception.
    #[error("{selector} raised {}: {}", error.type_name, error.message)]
    MethodRaised {
        /// The method.
        selector: String,
        /// The guest's exception, as text.
        error: GuestError,
    },
    /// The method was stopped by a sandbox limit.
    #[error("{selector} was stopped: {reason:?} ({detail})")]
    Stopped {
        /// The method.
        selector: String,
        /// Which limit ended it.
        reason: EndReason,
        /// What the sandbox reported.
        detail: String,
    },
    /// A port's backend failed (store, sandbox, model) in a way not named above.
    #[error("{port} unavailable: {message}")]
    Unavailable {
        /// Which port ("store", "sandbox", "model").
        port: &'static str,
        /// What it said.
        message: String,
    },
    /// A forge run or a promotion did not go through: cancelled, training failed, or a
    /// facet that did worse than its base. Nothing was registered or promoted.
    #[error("forge: {0}")]
    Forge(aura_forge::Error),
    /// A port's backend failed in a way not named above.
    #[error("{port} error: {message}")]
    Backend {
        /// Which port.
        port: &'static str,
        /// What it said.
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
    pub fn backend(port: &'static str, message: impl Into<String>) -> Self {
        Error::Backend {
            port,
            message: message.into(),
            source: None,
        }
    }

    /// A `Backend` error caused by `source`: its words are the message, and the error
    /// itself stays reachable (`source()`, downcasting).
    pub fn wrap(
        port: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            port,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The error's stable code: the gateway's `error.code`, and the `code` attribute
    /// of every Python exception. Codes are part of the API; new ones may be added.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Invalid(_) => "invalid",
            Error::DoesNotUnderstand { .. } => "does_not_understand",
            Error::Rejected { .. } => "rejected",
            Error::Refused { .. } => "refused",
            Error::MethodRaised { .. } => "method_raised",
            Error::Stopped { .. } => "stopped",
            Error::Unavailable { .. } => "unavailable",
            Error::Forge(aura_forge::Error::Rejected(_)) => "not_promoted",
            Error::Forge(aura_forge::Error::Cancelled) => "cancelled",
            Error::Forge(_) => "forge_failed",
            Error::Backend { .. } => "internal",
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<aura_store::Error> for Error {
    fn from(e: aura_store::Error) -> Self {
        use aura_store::Error as S;
        match e {
            S::NotFound { kind, id } => Error::NotFound { kind, id },
            S::Conflict(m) => Error::Conflict(m),
            S::Invalid(m) => Error::Invalid(m),
            S::Unavailable(m) | S::Timeout(m) => Error::Unavailable {
                port: "store",
                message: m,
            },
            other => Error::wrap("store", other),
        }
    }
}

impl From<aura_sandbox::Error> for Error {
    fn from(e: aura_sandbox::Error) -> Self {
        use aura_sandbox::Error as S;
        match e {
            S::Invalid(m) => Error::Invalid(m),
            S::Unavailable(m) => Error::Unavailable {
                port: "sandbox",
                message: m,
            },
            other => Error::wrap("sandbox", other),
        }
    }
}

impl From<aura_cognition::Error> for Error {
    fn from(e: aura_cognition::Error) -> Self {
        use aura_cognition::Error as C;
        match e {
            C::Unavailable(m) => Error::Unavailable {
                port: "model",
                message: m,
            },
            C::ModelNotFound(m) => Error::Unavailable {
                port: "model",
                message: format!("model not found: {m}"),
            },
            other => Error::wrap("model", other),
        }
    }
}

impl From<aura_forge::Error> for Error {
    fn from(e: aura_forge::Error) -> Self {
        use aura_forge::Error as F;
        match e {
            F::Unavailable(m) => Error::Unavailable {
                port: "forge",
                message: m,
            },
            F::Invalid(m) => Error::Invalid(m),
            F::Store(e) => e.into(),
            other => Error::Forge(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_backend_error_keeps_its_cause_through_every_layer() {
        let io = std::io::Error::other("disk on fire");
        let store = aura_store::Error::wrap("sqlite", io);
        let core: Error = store.into();
        assert_eq!(core.to_string(), "store error: sqlite error: disk on fire");
        // The store's error is reachable from the core's, and the io error from it.
        let store = core
            .source()
            .and_then(|s| s.downcast_ref::<aura_store::Error>())
            .expect("the store's error is the source");
        let io = store
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io error is the store error's source");
        assert_eq!(io.to_string(), "disk on fire");
        assert!(Error::backend("store", "plain words").source().is_none());
    }
}
