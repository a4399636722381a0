//! Maps rusqlite's errors onto the port's [`Error`].

use std::path::Path;

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

/// Why the store at `path` cannot be opened for writing, from `e` and from its directory:
/// SQLite's own "unable to open database file" does not say that the directory is
/// missing, read-only or not ours.
pub(crate) fn opening(path: &Path, e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() != Some(ErrorCode::CannotOpen) {
        return map(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let why = match std::fs::metadata(dir) {
        Err(_) => format!("its directory {} does not exist", dir.display()),
        Ok(m) if !m.is_dir() => format!("{} is not a directory", dir.display()),
        // Probe with a nameless temporary file: as root, permission bits say nothing,
        // and a read-only mount shows only when something tries to write.
        Ok(_) => match tempfile::tempfile_in(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
                format!(
                    "its directory {} is on a read-only file system",
                    dir.display()
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                format!(
                    "its directory {} is not writable by this user",
                    dir.display()
                )
            }
            _ => return map(e),
        },
    };
    Error::Unavailable(format!(
        "cannot open the SQLite store {}: {why}; give the store a writable location",
        path.display()
    ))
}

/// The store at `path` opened, but only for reading (a read-only file or mount): refused
/// at once, since every write would fail later.
pub(crate) fn read_only(path: &Path) -> Error {
    Error::Unavailable(format!(
        "the SQLite store {} can only be read (a read-only file, or a read-only mount): \
         AURA writes to its store; give it a writable location",
        path.display()
    ))
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
