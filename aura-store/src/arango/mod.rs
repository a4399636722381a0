//! [`ArangoStore`]: the Store port on ArangoDB (feature `arangodb`), through arangors.
//!
//! Design:
//! - collections `Objects`, `Methods`, `MemoryNodes`, `AuditEvents`, `Facets` (documents)
//!   and `ContextLinks` (edges between memory nodes and objects), the named graph
//!   `ContextGraph` over them, and the ArangoSearch view `MemoryView` for ranked text search
//!   ([`ArangoStore::ensure_schema`] creates what is missing, idempotently);
//! - every query is AQL with bind variables; the query texts are compile-time constants
//!   (see `aql.rs`), so no user or model text is ever part of a query;
//! - a [`Transaction`] is an ArangoDB stream transaction declaring every collection: begun
//!   by [`Store::begin`], each operation sends the `x-arango-trx-id` header, `commit` and
//!   `rollback` end it, and dropping it sends the abort in the background (on the tokio
//!   runtime it was dropped on);
//! - a write naming a stale revision is refused by our check of the port's `rev`, and a
//!   race that slips past it is refused by ArangoDB's own `_rev` check (error 1200): both
//!   are [`Error::Conflict`];
//! - every request is bounded by the store's timeout ([`Error::Timeout`]); an unreachable
//!   server, refused credentials and a missing database are each a clear
//!   [`Error::Unavailable`].

mod aql;
mod error;
mod ops;
mod schema;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arangors::client::reqwest::ReqwestClient;
use arangors::transaction::{Transaction as Trx, TransactionCollections, TransactionSettings};
use arangors::{Connection, Database};
use async_trait::async_trait;

use self::error::{backend, map, Context, BACKEND};
use self::ops::{Runner, Target};
use crate::model::*;
use crate::port::{Store, StoreCapabilities, Transaction};
use crate::{Error, Result};

/// The default time one request to ArangoDB may take.
pub const DEFAULT_ARANGO_TIMEOUT: Duration = Duration::from_secs(30);
/// The default database name (`DB_NAME`).
pub const DEFAULT_DATABASE: &str = "aura";
/// The default server URL (`ARANGO_HOST`).
pub const DEFAULT_ARANGO_URL: &str = "http://127.0.0.1:8529";

/// Builds an [`ArangoStore`]: where the server is, who to log in as, which database.
///
/// ```no_run
/// # async fn demo() -> aura_store::Result<()> {
/// use aura_store::ArangoStoreBuilder;
/// // ARANGO_HOST, ARANGO_USER, ARANGO_PASS and DB_NAME, with defaults for what is unset.
/// let store = ArangoStoreBuilder::from_env().build().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ArangoStoreBuilder {
    url: String,
    user: String,
    password: String,
    database: String,
    timeout: Duration,
    setup: bool,
}

impl fmt::Debug for ArangoStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArangoStoreBuilder")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .field("setup", &self.setup)
            .finish()
    }
}

impl ArangoStoreBuilder {
    /// A store on the server at `url` (`http://host:8529`; a bare `host:port` means http),
    /// as `root` with an empty password, database [`DEFAULT_DATABASE`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: normalise_url(url.into()),
            user: "root".into(),
            password: String::new(),
            database: DEFAULT_DATABASE.into(),
            timeout: DEFAULT_ARANGO_TIMEOUT,
            setup: true,
        }
    }

    /// Settings from the environment: `ARANGO_HOST`, `ARANGO_USER`, `ARANGO_PASS`, `DB_NAME`
    /// (defaults: [`DEFAULT_ARANGO_URL`], `root`, empty, [`DEFAULT_DATABASE`]).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder =
            Self::new(var("ARANGO_HOST").unwrap_or_else(|| DEFAULT_ARANGO_URL.into()));
        if let Some(user) = var("ARANGO_USER") {
            builder.user = user;
        }
        if let Ok(password) = std::env::var("ARANGO_PASS") {
            builder.password = password;
        }
        if let Some(database) = var("DB_NAME") {
            builder.database = database;
        }
        builder
    }

    /// The user to log in as (basic authentication).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The user's password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = password.into();
        self
    }

    /// The database to use.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// How long one request may take before it fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether [`Self::build`] creates what is missing (database, collections, indexes,
    /// analyzers, view, graph) — on by default; off, the database must already be set up.
    pub fn setup(mut self, setup: bool) -> Self {
        self.setup = setup;
        self
    }

    /// Connects, checks the credentials and the database, and (unless turned off) sets up
    /// the schema.
    pub async fn build(self) -> Result<ArangoStore> {
        let ctx = Context {
            url: self.url.clone(),
            user: self.user.clone(),
            database: self.database.clone(),
        };
        if self.database.is_empty() || self.database.contains('/') {
            return Err(Error::Invalid(format!(
                "{:?} is not a valid ArangoDB database name",
                self.database
            )));
        }
        let timeout = self.timeout;
        let connect = Connection::establish_basic_auth(&self.url, &self.user, &self.password);
        let conn = bounded(&ctx, timeout, connect).await?;
        if self.setup {
            schema::ensure_database(&conn, &ctx, timeout).await?;
        }
        // Opening the database asks for its details, so bad credentials (401) and a missing
        // database (1228) show here, each with its own message.
        let db = bounded(&ctx, timeout, conn.db(&self.database)).await?;
        let store = ArangoStore {
            inner: Arc::new(Inner { db, ctx, timeout }),
        };
        if self.setup {
            store.ensure_schema().await?;
        }
        tracing::debug!(target: "Store", url = %store.inner.ctx.url, database = %store.inner.ctx.database, "opened ArangoDB store");
        Ok(store)
    }
}

/// Accepts `host:port` as `http://host:port`, and drops a trailing slash.
fn normalise_url(url: String) -> String {
    let url = url.trim().trim_end_matches('/').to_string();
    if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    }
}

/// Runs an arangors call under the store's timeout, mapping its errors.
async fn bounded<T>(
    ctx: &Context,
    timeout: Duration,
    call: impl std::future::Future<Output = std::result::Result<T, arangors::ClientError>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(|e| map(ctx, e)),
        Err(_) => Err(Error::Timeout(format!(
            "ArangoDB at {} did not answer within {timeout:?}",
            ctx.url
        ))),
    }
}

struct Inner {
    db: Database<ReqwestClient>,
    ctx: Context,
    timeout: Duration,
}

impl Inner {
    fn runner(&self) -> Runner<'_> {
        Runner {
            target: Target::Db(&self.db),
            ctx: &self.ctx,
            timeout: self.timeout,
            failed: AtomicBool::new(false),
        }
    }
}

/// The ArangoDB [`Store`]: a database on an ArangoDB server (OneShard in a cluster).
///
/// Cloning is cheap and shares the connection. Unlike the SQLite store, writers do not
/// queue: concurrent transactions run side by side, and one that writes a document another
/// changed meanwhile fails with [`Error::Conflict`].
#[derive(Clone)]
pub struct ArangoStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for ArangoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArangoStore")
            .field("url", &self.inner.ctx.url)
            .field("user", &self.inner.ctx.user)
            .field("database", &self.inner.ctx.database)
            .finish()
    }
}

impl ArangoStore {
    /// A builder for the server at `url`.
    pub fn builder(url: impl Into<String>) -> ArangoStoreBuilder {
        ArangoStoreBuilder::new(url)
    }

    /// Connects with the settings in the environment (see [`ArangoStoreBuilder::from_env`]).
    pub async fn from_env() -> Result<Self> {
        ArangoStoreBuilder::from_env().build().await
    }

    /// Creates the collections, indexes, analyzers, search view and graph that are missing
    /// (the database itself is created by [`ArangoStoreBuilder::build`]). Safe to run again.
    pub async fn ensure_schema(&self) -> Result<()> {
        schema::ensure_schema(&self.inner.db, &self.inner.ctx, self.inner.timeout).await
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.inner.ctx.database
    }
}

#[async_trait]
impl Store for ArangoStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities {
            backend: BACKEND,
            full_text_search: true,
            multi_process: true,
            max_document_bytes: ops::MAX_DOCUMENT_BYTES,
        }
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let names = || {
            schema::ALL_COLLECTIONS
                .iter()
                .map(|c| c.to_string())
                .collect()
        };
        let settings = TransactionSettings::builder()
            .collections(
                TransactionCollections::builder()
                    .read(names())
                    .write(names())
                    .build(),
            )
            .allow_implicit(false)
            .build();
        let trx = bounded(
            &self.inner.ctx,
            self.inner.timeout,
            self.inner.db.begin_transaction(settings),
        )
        .await?;
        tracing::trace!(target: "Store", id = %trx.id(), "began stream transaction");
        Ok(Box::new(ArangoTransaction {
            inner: self.inner.clone(),
            trx: Some(trx),
            state: TxState::Open,
        }))
    }

    async fn get_object(&self, id: ObjectId) -> Result<Object> {
        ops::get_object(&self.inner.runner(), id).await
    }

    async fn find_object(&self, name: &str) -> Result<Option<Object>> {
        ops::find_object(&self.inner.runner(), name).await
    }

    async fn list_objects(&self, page: Page) -> Result<Vec<Object>> {
        ops::list_objects(&self.inner.runner(), page).await
    }

    async fn get_method(&self, object: ObjectId, selector: &Selector) -> Result<Option<Method>> {
        ops::get_method(&self.inner.runner(), object, selector).await
    }

    async fn list_methods(&self, object: ObjectId) -> Result<Vec<Method>> {
        ops::list_methods(&self.inner.runner(), object).await
    }

    async fn method_versions(&self, object: ObjectId, selector: &Selector) -> Result<Vec<Method>> {
        ops::method_versions(&self.inner.runner(), object, selector).await
    }

    async fn get_memory_node(&self, id: NodeId) -> Result<MemoryNode> {
        ops::get_memory_node(&self.inner.runner(), id).await
    }

    async fn neighbours(&self, from: NodeRef, depth: u32, limit: u32) -> Result<Vec<Neighbour>> {
        ops::neighbours(&self.inner.runner(), from, depth, limit).await
    }

    async fn search_memory(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        ops::search_memory(&self.inner.runner(), query, limit).await
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        ops::query_audit(&self.inner.runner(), query).await
    }

    async fn get_facet(&self, name: &str) -> Result<Facet> {
        ops::get_facet(&self.inner.runner(), name).await
    }

    async fn list_facets(&self) -> Result<Vec<Facet>> {
        ops::list_facets(&self.inner.runner()).await
    }
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    /// Ready for the next operation.
    Open,
    /// An operation started and has not finished (its caller may have been cancelled).
    InFlight,
    /// The server or the transport failed mid-transaction: it can only be aborted.
    Broken,
}

/// A stream transaction on an [`ArangoStore`].
struct ArangoTransaction {
    inner: Arc<Inner>,
    /// `None` once committed or aborted.
    trx: Option<Trx<ReqwestClient>>,
    state: TxState,
}

impl fmt::Debug for ArangoTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArangoTransaction")
            .field("id", &self.trx.as_ref().map(|t| t.id().clone()))
            .field("state", &self.state)
            .finish()
    }
}

/// Aborts a stream transaction, retrying briefly: right after a cancelled call the server
/// may still be running that call's request on the transaction.
async fn abort(inner: &Inner, trx: &Trx<ReqwestClient>) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bounded(&inner.ctx, inner.timeout, trx.abort()).await {
            Ok(_) => return Ok(()),
            // Already gone (expired, or aborted by the server): nothing to undo.
            Err(Error::Conflict(_)) => return Ok(()),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::debug!(target: "Store", "abort of transaction {} failed, retrying: {e}", trx.id());
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
        }
    }
}

impl ArangoTransaction {
    /// Marks an operation as started; refuses one on a transaction that can only abort.
    fn start(&mut self) -> Result<()> {
        match self.state {
            TxState::Open if self.trx.is_some() => {
                self.state = TxState::InFlight;
                Ok(())
            }
            _ => {
                self.state = TxState::Broken;
                Err(backend(
                    "this transaction was aborted (an earlier call was cancelled or failed in \
                     ArangoDB); roll it back and start again",
                ))
            }
        }
    }

    fn runner(&self) -> Result<Runner<'_>> {
        let trx = self
            .trx
            .as_ref()
            .ok_or_else(|| backend("the transaction has ended"))?;
        Ok(Runner {
            target: Target::Trx(trx),
            ctx: &self.inner.ctx,
            timeout: self.inner.timeout,
            failed: AtomicBool::new(false),
        })
    }

    /// Marks an operation as finished: a refusal by our own checks leaves the transaction
    /// usable (as in the SQLite store); a failure of the server or the transport does not.
    fn finish<T>(&mut self, failed: bool, result: Result<T>) -> Result<T> {
        self.state = if failed {
            TxState::Broken
        } else {
            TxState::Open
        };
        result
    }
}

/// Runs one operation of a transaction: start, run on the stream transaction, finish.
macro_rules! in_trx {
    ($self:ident, |$run:ident| $body:expr) => {{
        $self.start()?;
        let (failed, result) = match $self.runner() {
            Ok($run) => {
                let result = $body.await;
                ($run.failed.load(Ordering::Relaxed), result)
            }
            Err(e) => (true, Err(e)),
        };
        $self.finish(failed, result)
    }};
}

impl Drop for ArangoTransaction {
    fn drop(&mut self) {
        let Some(trx) = self.trx.take() else {
            return;
        };
        let inner = self.inner.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = abort(&inner, &trx).await {
                        tracing::warn!(target: "Store", "abort of dropped transaction {} failed (the server aborts it when it expires): {e}", trx.id());
                    }
                });
            }
            Err(_) => tracing::warn!(
                target: "Store",
                "transaction {} dropped outside a tokio runtime: the server aborts it when it \
                 expires (--transaction.streaming-idle-timeout)",
                trx.id()
            ),
        }
    }
}

#[async_trait]
impl Transaction for ArangoTransaction {
    async fn get_object(&mut self, id: ObjectId) -> Result<Object> {
        in_trx!(self, |run| ops::get_object(&run, id))
    }

    async fn create_object(&mut self, new: NewObject) -> Result<Object> {
        in_trx!(self, |run| ops::create_object(&run, new))
    }

    async fn update_object(
        &mut self,
        id: ObjectId,
        expected_rev: u64,
        patch: ObjectPatch,
    ) -> Result<Object> {
        in_trx!(self, |run| ops::update_object(
            &run,
            id,
            expected_rev,
            patch
        ))
    }

    async fn delete_object(&mut self, id: ObjectId) -> Result<()> {
        in_trx!(self, |run| ops::delete_object(&run, id))
    }

    async fn put_method(&mut self, method: NewMethod) -> Result<Method> {
        in_trx!(self, |run| ops::put_method(&run, method))
    }

    async fn rollback_method(
        &mut self,
        object: ObjectId,
        selector: &Selector,
        version: u32,
    ) -> Result<Method> {
        in_trx!(self, |run| ops::rollback_method(
            &run, object, selector, version
        ))
    }

    async fn add_memory_node(&mut self, node: NewMemoryNode) -> Result<MemoryNode> {
        in_trx!(self, |run| ops::add_memory_node(&run, node))
    }

    async fn add_link(&mut self, link: ContextLink) -> Result<()> {
        in_trx!(self, |run| ops::add_link(&run, link))
    }

    async fn append_event(&mut self, event: NewAuditEvent) -> Result<AuditEvent> {
        in_trx!(self, |run| ops::append_event(&run, event))
    }

    async fn put_facet(&mut self, facet: Facet) -> Result<Facet> {
        in_trx!(self, |run| ops::put_facet(&run, facet))
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(trx) = self.trx.take() else {
            return Err(backend("the transaction has already ended"));
        };
        if self.state != TxState::Open {
            abort(&self.inner, &trx).await?;
            return Err(Error::Conflict(
                "this transaction was aborted before commit; nothing was written".into(),
            ));
        }
        match bounded(&self.inner.ctx, self.inner.timeout, trx.commit()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // A failed commit leaves nothing behind (the abort is a no-op if the server
                // already dropped the transaction).
                if let Err(abort_error) = abort(&self.inner, &trx).await {
                    tracing::warn!(target: "Store", "abort after a failed commit failed: {abort_error}");
                }
                Err(e)
            }
        }
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        match self.trx.take() {
            Some(trx) => abort(&self.inner, &trx).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_hosts_mean_http() {
        assert_eq!(normalise_url("db:8529".into()), "http://db:8529");
        assert_eq!(
            normalise_url(" https://db.example:8529/ ".into()),
            "https://db.example:8529"
        );
    }

    #[test]
    fn the_password_is_never_printed() {
        let builder = ArangoStoreBuilder::new("db:8529").password("hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}
