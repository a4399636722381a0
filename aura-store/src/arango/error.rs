//! Maps ArangoDB's answers (and arangors' errors) onto the port's [`Error`], by meaning.

use arangors::ClientError;

use crate::Error;

/// The backend name used in [`Error::Backend`].
pub(crate) const BACKEND: &str = "arangodb";

/// ArangoDB error numbers this adapter gives a meaning to (see ArangoDB's error codes list).
pub(crate) mod num {
    /// `ERROR_FORBIDDEN` / not authorized (sent with HTTP 401 or 403).
    pub const FORBIDDEN: u16 = 11;
    /// `ERROR_LOCK_TIMEOUT`.
    pub const LOCK_TIMEOUT: u16 = 18;
    /// `ERROR_ARANGO_CONFLICT`: `_rev` mismatch or write-write conflict.
    pub const CONFLICT: u16 = 1200;
    /// `ERROR_ARANGO_DOCUMENT_NOT_FOUND`.
    pub const DOCUMENT_NOT_FOUND: u16 = 1202;
    /// `ERROR_ARANGO_DATA_SOURCE_NOT_FOUND`: collection or view not found.
    pub const DATA_SOURCE_NOT_FOUND: u16 = 1203;
    /// `ERROR_ARANGO_DUPLICATE_NAME`: a collection, view or database of that name exists.
    pub const DUPLICATE_NAME: u16 = 1207;
    /// `ERROR_ARANGO_UNIQUE_CONSTRAINT_VIOLATED`.
    pub const UNIQUE_CONSTRAINT: u16 = 1210;
    /// `ERROR_ARANGO_DATABASE_NOT_FOUND`.
    pub const DATABASE_NOT_FOUND: u16 = 1228;
    /// `ERROR_TRANSACTION_NOT_FOUND`: unknown or expired stream transaction.
    pub const TRANSACTION_NOT_FOUND: u16 = 1655;
    /// `ERROR_GRAPH_DUPLICATE`: a graph of that name exists.
    pub const GRAPH_DUPLICATE: u16 = 1925;
}

/// What the adapter knows about where it talks to, for messages that say what to fix.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    /// The server's URL.
    pub url: String,
    /// The user name (never the password).
    pub user: String,
    /// The database name.
    pub database: String,
}

/// A `Backend` error with the given message.
pub(crate) fn backend(message: impl Into<String>) -> Error {
    Error::backend(BACKEND, message.into())
}

/// Translates an error answer of the server (HTTP status, `errorNum`, `errorMessage`).
pub(crate) fn from_server(ctx: &Context, status: u16, error_num: u16, message: &str) -> Error {
    match (status, error_num) {
        (401, _) => Error::Unavailable(format!(
            "authentication failed: ArangoDB at {} refused the credentials of user {:?} \
             (check ARANGO_USER and ARANGO_PASS): {message}",
            ctx.url, ctx.user
        )),
        (403, _) | (_, num::FORBIDDEN) => Error::Unavailable(format!(
            "permission denied: user {:?} may not do this on database {:?} at {} \
             (grant it read/write access): {message}",
            ctx.user, ctx.database, ctx.url
        )),
        (_, num::DATABASE_NOT_FOUND) => Error::Unavailable(format!(
            "database {:?} does not exist on ArangoDB at {} (create it with \
             ArangoStore::ensure_schema, the genesis step, or set DB_NAME): {message}",
            ctx.database, ctx.url
        )),
        (_, num::DATA_SOURCE_NOT_FOUND) => Error::Unavailable(format!(
            "a collection or view of database {:?} is missing, so its schema is not set up \
             (run ArangoStore::ensure_schema): {message}",
            ctx.database
        )),
        (_, num::CONFLICT) => Error::Conflict(format!(
            "the record changed since it was read (ArangoDB: {message})"
        )),
        (_, num::UNIQUE_CONSTRAINT) => Error::Conflict(format!(
            "a record with this key already exists (ArangoDB: {message})"
        )),
        (_, num::DOCUMENT_NOT_FOUND) => Error::not_found("document", message),
        (_, num::TRANSACTION_NOT_FOUND) => Error::Conflict(format!(
            "the transaction was aborted or expired on the server; nothing was written \
             (ArangoDB: {message})"
        )),
        (_, num::LOCK_TIMEOUT) | (408, _) => {
            Error::Timeout(format!("ArangoDB gave up waiting for a lock: {message}"))
        }
        (503, _) => Error::Unavailable(format!(
            "ArangoDB at {} is not ready (HTTP 503): {message}",
            ctx.url
        )),
        _ => backend(format!("HTTP {status}, error {error_num}: {message}")),
    }
}

/// Translates an arangors error.
pub(crate) fn map(ctx: &Context, e: ClientError) -> Error {
    match e {
        ClientError::Arango(a) => from_server(ctx, a.code(), a.error_num(), a.message()),
        // arangors reports every transport failure (refused connection, DNS, TLS, reset) as a
        // formatted reqwest error: the server could not be talked to.
        ClientError::HttpClient(detail) => {
            Error::Unavailable(format!("cannot reach ArangoDB at {}: {detail}", ctx.url))
        }
        ClientError::InvalidServer(server) => Error::Unavailable(format!(
            "{} does not answer as ArangoDB (its Server header says {server:?})",
            ctx.url
        )),
        ClientError::InsufficientPermission { operation, .. } => Error::Unavailable(format!(
            "permission denied for user {:?}: {operation}",
            ctx.user
        )),
        ClientError::Serde(e) => backend(format!("unexpected answer from ArangoDB: {e}")),
    }
}

/// Stored JSON that does not read back as what this adapter wrote.
pub(crate) fn json(e: serde_json::Error) -> Error {
    backend(format!("a stored document could not be read: {e}"))
}
