//! Maps rusqlite's errors onto the port's [`Error`].

use rusqlite::ErrorCode;

use crate::Error;

/// The backend name used in [`Error::Backend`].
pub(crate) const BACKEND: &str = "sqlite";

/// A `Backend` error with the given message.
pub(crate) fn backend(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, message.into())
}

/// Whether `e` says the database was locked by another connection (`SQLITE_BUSY`/`SQLITE_LOCKED`).
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Translates a rusqlite error into the port's error, by meaning.
pub(crate) fn map(e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(err, message) => {
            let detail = message.clone().unwrap_or_else(|| err.to_string());
            match err.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Timeout(format!(
                    "the SQLite database stayed locked by another writer beyond the busy timeout ({detail})"
                )),
                ErrorCode::ConstraintViolation => match err.extended_code {
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                        Error::Conflict(format!("a record with this key already exists ({detail})"))
                    }
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Error::Conflict(format!(
                        "the write would break a reference between records ({detail})"
                    )),
                    _ => Error::Invalid(format!("the write breaks a rule of the schema ({detail})")),
                },
                ErrorCode::TooBig => Error::Invalid(format!("a value is too large ({detail})")),
                ErrorCode::DiskFull => Error::Unavailable(format!(
                    "the SQLite database is full (its disk, or the store's size cap): the \
                     write changed nothing; free space, then retry ({detail})"
                )),
                ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::NoLargeFileSupport => {
                    Error::Unavailable(format!("the SQLite database cannot be used: {detail}"))
                }
                ErrorCode::NotADatabase => Error::Unavailable(format!(
                    "the file is not an SQLite database (or is encrypted): {detail}"
                )),
                // Unnamed by the port: the rusqlite error stays reachable as the source.
                _ => Error::wrap(BACKEND, e),
            }
        }
        rusqlite::Error::ToSqlConversionFailure(inner)
        | rusqlite::Error::FromSqlConversionFailure(_, _, inner) => {
            backend(format!("value conversion failed: {inner}"))
        }
        _ => Error::wrap(BACKEND, e),
    }
}

/// A JSON (de)serialisation error, as a backend error: the stored data is not what we wrote.
pub(crate) fn json(e: serde_json::Error) -> Error {
    backend(format!("stored JSON could not be read: {e}"))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_error_the_port_does_not_name_keeps_rusqlites_as_its_source() {
        let e = map(rusqlite::Error::InvalidQuery);
        assert!(
            matches!(
                e,
                Error::Backend {
                    backend: BACKEND,
                    ..
                }
            ),
            "{e:?}"
        );
        let source = e
            .source()
            .and_then(|s| s.downcast_ref::<rusqlite::Error>())
            .expect("rusqlite's error is the source");
        assert!(matches!(source, rusqlite::Error::InvalidQuery));
    }
}
