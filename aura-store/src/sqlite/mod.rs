//! [`SqliteStore`]: the embedded default backend (rusqlite, bundled SQLite).
//!
//! Design:
//! - a file store runs in WAL mode (`synchronous=NORMAL`, `foreign_keys=ON`, a busy timeout);
//!   the "in-memory" store is the same thing in a private temporary directory (see
//!   [`SqliteStore::open_in_memory`] for why not SQLite's `:memory:`);
//! - rusqlite is synchronous, so no call runs on an async worker as if it were async: on a
//!   multi-thread runtime a call runs under `block_in_place` (tokio moves the worker's other
//!   tasks away; no thread switch per call), elsewhere on the blocking pool
//!   (`spawn_blocking`, also available as a builder option);
//! - reads use a small pool of reader connections; writes go through one writer connection
//!   per store, handed to one [`Transaction`] at a time (an async semaphore queues the
//!   others without blocking a thread); `BEGIN IMMEDIATE` plus the busy timeout serialise
//!   writers from other processes on the same file;
//! - every transaction operation runs inside a savepoint, so a failed operation leaves the
//!   transaction as it was before that operation; dropping a transaction without commit
//!   rolls it back (also while a panic unwinds).

mod error;
mod ops;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::error::{backend, is_busy, map, opening, read_only};
use crate::model::*;
use crate::port::{Store, StoreCapabilities, Transaction};
use crate::{Error, Result};

/// The default time a writer waits for another writer (in this or another process).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The default number of reader connections.
pub const DEFAULT_READERS: usize = 4;
/// The default page cache of each reader connection, in KiB (the writer keeps SQLite's
/// own default, 2,000 KiB).
///
/// Each connection's cache fills as reads touch more of a growing file and is never
/// given back, so with SQLite's default the readers' caches were a large part of what
/// kept a busy gateway's memory rising long after warm-up (the soak in the README). The
/// pages a reader misses are still in the operating system's page cache: a miss costs a
/// copy, not a disk read.
pub const DEFAULT_READER_CACHE_KIB: u32 = 512;

/// Where a store lives.
#[derive(Clone, Debug)]
enum Location {
    /// A file the caller named.
    File(PathBuf),
    /// A throwaway store in a private temporary directory (see [`SqliteStore::open_in_memory`]).
    Temporary,
}

/// Builds a [`SqliteStore`] with non-default settings.
#[derive(Clone, Debug)]
pub struct SqliteStoreBuilder {
    location: Location,
    busy_timeout: Duration,
    readers: usize,
    reader_cache_kib: u32,
    spawn_blocking: bool,
    max_bytes: Option<u64>,
}

impl SqliteStoreBuilder {
    /// A store in the SQLite file at `path` (created when missing).
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self::at(Location::File(path.as_ref().to_path_buf()))
    }

    /// A private, throwaway store, gone when the store is dropped (see
    /// [`SqliteStore::open_in_memory`]).
    pub fn in_memory() -> Self {
        Self::at(Location::Temporary)
    }

    fn at(location: Location) -> Self {
        Self {
            location,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            readers: DEFAULT_READERS,
            reader_cache_kib: DEFAULT_READER_CACHE_KIB,
            spawn_blocking: false,
            max_bytes: None,
        }
    }

    /// How long a write waits for other writers before it fails with [`Error::Timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many reader connections may run at once (at least 1).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// The page cache each reader connection keeps, in KiB (at least 64; default
    /// [`DEFAULT_READER_CACHE_KIB`]). More memory per reader buys fewer copies from the
    /// operating system's cache on a large, randomly read file.
    pub fn reader_cache_kib(mut self, kib: u32) -> Self {
        self.reader_cache_kib = kib.max(64);
        self
    }

    /// Runs every SQLite call on tokio's blocking pool (`spawn_blocking`), even on a
    /// multi-thread runtime where the default is `block_in_place` (no thread switch per call;
    /// see the crate's store benchmark for the difference).
    pub fn spawn_blocking(mut self, always: bool) -> Self {
        self.spawn_blocking = always;
        self
    }

    /// Caps the database file at about `bytes` (SQLite's `max_page_count`; never below
    /// what the file already holds). A write past the cap fails as a full disk does,
    /// with [`Error::Unavailable`], and changes nothing; space that deletes free is
    /// reused. Unset, the file grows until the disk is full.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Opens the store, creating or migrating its schema.
    pub async fn build(self) -> Result<SqliteStore> {
        let busy_timeout = self.busy_timeout;
        let temporary = matches!(self.location, Location::Temporary);
        let spawn_blocking = self.spawn_blocking;
        let max_bytes = self.max_bytes;
        let reader_cache_kib = self.reader_cache_kib;
        let (settings, writer, temp_dir) = blocking(spawn_blocking, move || {
            let (path, temp_dir) = match self.location {
                Location::File(path) => (path, None),
                Location::Temporary => {
                    let dir = tempfile::Builder::new()
                        .prefix("aura-store-")
                        .tempdir()
                        .map_err(|e| {
                            Error::Unavailable(format!(
                                "cannot make a temporary directory for an in-memory store: {e}"
                            ))
                        })?;
                    (dir.path().join("aura.db"), Some(dir))
                }
            };
            let settings = Settings {
                path,
                temporary,
                busy_timeout,
                spawn_blocking,
                max_bytes,
                reader_cache_kib,
            };
            let writer = settings.connect()?;
            enable_wal(&writer, busy_timeout)?;
            with_busy_retry(busy_timeout, || {
                schema::migrate_to(&writer, schema::SCHEMA_VERSION)
            })?;
            Ok((settings, writer, temp_dir))
        })
        .await?;
        tracing::debug!(target: "Store", path = %settings.path.display(), temporary, "opened SQLite store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                settings,
                readers: Mutex::new(Vec::new()),
                read_permits: Arc::new(Semaphore::new(self.readers)),
                writer: Mutex::new(Some(writer)),
                write_permit: Arc::new(Semaphore::new(1)),
                _temp_dir: temp_dir,
            }),
        })
    }
}

/// How to open connections.
#[derive(Debug)]
struct Settings {
    path: PathBuf,
    /// A throwaway store: durability does not matter.
    temporary: bool,
    busy_timeout: Duration,
    /// Always use `spawn_blocking` (never `block_in_place`).
    spawn_blocking: bool,
    /// The cap on the file's size, if any.
    max_bytes: Option<u64>,
    /// Each reader connection's page cache.
    reader_cache_kib: u32,
}

impl Settings {
    fn connect(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| opening(&self.path, e))?;
        // SQLite falls back to reading a file it cannot write, and says so only at the
        // first write: refuse now, at startup, with the reason.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(map)? {
            return Err(read_only(&self.path));
        }
        conn.busy_timeout(self.busy_timeout).map_err(map)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(map)?;
        let synchronous = if self.temporary { "OFF" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(map)?;
        conn.set_prepared_statement_cache_capacity(64);
        if let Some(bytes) = self.max_bytes {
            let page: u64 = conn
                .pragma_query_value(None, "page_size", |row| row.get(0))
                .map_err(map)?;
            let pages = bytes.div_ceil(page.max(512)).max(1);
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(map)?;
        }
        Ok(conn)
    }
}

fn enable_wal(conn: &Connection, timeout: Duration) -> Result<()> {
    let mode: String = with_busy_retry(timeout, || {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(map)
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "SQLite refused WAL mode for this file (it is in {mode:?} mode)"
        )));
    }
    Ok(())
}

/// Runs `f` again while it fails with a lock timeout, for at most `timeout` more.
fn with_busy_retry<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Err(Error::Timeout(m)) if std::time::Instant::now() < deadline => {
                tracing::debug!(target: "Store", "database busy, retrying: {m}");
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Runs blocking SQLite work without stalling the async runtime.
///
/// On a multi-thread runtime this is [`tokio::task::block_in_place`] (unless the store was
/// built with [`SqliteStoreBuilder::spawn_blocking`]): the calling task runs the work on its
/// own thread at once, while tokio hands that worker's other tasks to another thread, so a
/// short call costs no thread switch. Elsewhere (a current-thread runtime, no runtime) it is
/// [`tokio::task::spawn_blocking`].
async fn offload<T: Send + 'static>(
    spawn: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let in_place = !spawn
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if in_place {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(f)
        }))
        .map_err(|_| backend("a store operation panicked"))
    } else {
        match tokio::task::spawn_blocking(f).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => Err(backend("a store operation panicked")),
            Err(_) => Err(Error::Unavailable(
                "the async runtime is shutting down".into(),
            )),
        }
    }
}

/// [`offload`] for work that returns a `Result`.
async fn blocking<T: Send + 'static>(
    spawn: bool,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    offload(spawn, f).await?
}

struct Inner {
    settings: Settings,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    read_permits: Arc<Semaphore>,
    /// The idle writer connection (`None` while a transaction holds it, or once lost).
    writer: Mutex<Option<Connection>>,
    /// One transaction at a time holds the writer.
    write_permit: Arc<Semaphore>,
    /// The directory of a throwaway store, removed once every connection is closed
    /// (fields drop in order, so this one goes last).
    _temp_dir: Option<tempfile::TempDir>,
}

impl Inner {
    fn take_reader(&self) -> Result<Connection> {
        let idle = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = self.settings.connect()?;
                conn.pragma_update(None, "query_only", true).map_err(map)?;
                // A negative cache_size is in KiB.
                let kib = -i64::from(self.settings.reader_cache_kib);
                conn.pragma_update(None, "cache_size", kib).map_err(map)?;
                Ok(conn)
            }
        }
    }

    fn return_reader(&self, conn: Connection) {
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
    }

    fn take_writer(&self) -> Result<Connection> {
        let idle = self.writer.lock().ok().and_then(|mut slot| slot.take());
        match idle {
            Some(conn) => Ok(conn),
            None => self.settings.connect(),
        }
    }

    fn return_writer(&self, conn: Connection) {
        if let Ok(mut slot) = self.writer.lock() {
            *slot = Some(conn);
        }
    }
}

/// The SQLite [`Store`]: a WAL file, or a private in-memory database for tests.
///
/// Cloning is cheap and shares the same connections; as a port, wrap it in an `Arc`
/// (see [`crate::DynStore`]).
///
/// Writes are serialised (SQLite has one writer): a transaction holds the store's writer
/// from [`Store::begin`] until it commits or is dropped, and `begin` waits at
/// most the busy timeout (5 s by default) for it before failing with [`Error::Timeout`].
/// Keep transactions short — gather what to write first (no model calls inside).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.settings.path)
            .field("temporary", &self.inner.settings.temporary)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the store in the SQLite file at `path`, in WAL mode.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        SqliteStoreBuilder::file(path).build().await
    }

    /// Opens a fresh, private, throwaway store (for tests and scratch work), gone when the
    /// store is dropped.
    ///
    /// It behaves exactly like a file store — same WAL mode, same isolation — because it is
    /// one: a database in a fresh private directory under the system's temporary directory,
    /// with `synchronous=OFF` (nothing waits for the disk), removed on drop. SQLite's own `:memory:` databases
    /// cannot let readers see the last committed state while a write transaction is open
    /// (with shared cache or `memdb`, reads would block or see uncommitted data), and this
    /// store's contract needs both.
    pub async fn open_in_memory() -> Result<Self> {
        SqliteStoreBuilder::in_memory().build().await
    }

    /// A builder for a file store at `path`, to change the defaults.
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::file(path)
    }

    /// The schema version this build of the store writes (`PRAGMA user_version`).
    pub const SCHEMA_VERSION: u32 = schema::SCHEMA_VERSION;

    /// Runs a read on a pooled reader connection, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the store is closed".into()))?;
        let inner = self.inner.clone();
        blocking(inner.settings.spawn_blocking, move || {
            let _permit = permit;
            let conn = inner.take_reader()?;
            let result = with_busy_retry(inner.settings.busy_timeout, || f(&conn));
            if conn.is_autocommit() {
                inner.return_reader(conn);
            }
            result
        })
        .await
    }

    /// Like [`Self::read`], inside one read transaction (a consistent snapshot).
    async fn read_snapshot<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read(move |conn| {
            conn.execute_batch("BEGIN DEFERRED").map_err(map)?;
            let result = f(conn);
            let end = conn.execute_batch("COMMIT").map_err(map);
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let value = result?;
            end?;
            Ok(value)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities {
            backend: error::BACKEND,
            full_text_search: true,
            multi_process: !self.inner.settings.temporary,
            max_document_bytes: ops::MAX_DOCUMENT_BYTES,
        }
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let timeout = self.inner.settings.busy_timeout;
        let permit = tokio::time::timeout(timeout, self.inner.write_permit.clone().acquire_owned())
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "another transaction held the store's writer for longer than {timeout:?}"
                ))
            })?
            .map_err(|_| Error::Unavailable("the store is closed".into()))?;
        Ok(Box::new(SqliteTransaction {
            inner: self.inner.clone(),
            conn: None,
            permit: Some(permit),
            state: TxState::Idle,
        }))
    }

    async fn get_object(&self, id: ObjectId) -> Result<Object> {
        self.read(move |c| ops::get_object(c, id)).await
    }

    async fn find_object(&self, name: &str) -> Result<Option<Object>> {
        let name = name.to_owned();
        self.read(move |c| ops::find_object(c, &name)).await
    }

    async fn list_objects(&self, page: Page) -> Result<Vec<Object>> {
        self.read(move |c| ops::list_objects(c, page)).await
    }

    async fn get_method(&self, object: ObjectId, selector: &Selector) -> Result<Option<Method>> {
        let selector = selector.clone();
        self.read_snapshot(move |c| ops::get_method(c, object, &selector))
            .await
    }

    async fn list_methods(&self, object: ObjectId) -> Result<Vec<Method>> {
        self.read_snapshot(move |c| ops::list_methods(c, object))
            .await
    }

    async fn method_versions(&self, object: ObjectId, selector: &Selector) -> Result<Vec<Method>> {
        let selector = selector.clone();
        self.read_snapshot(move |c| ops::method_versions(c, object, &selector))
            .await
    }

    async fn get_memory_node(&self, id: NodeId) -> Result<MemoryNode> {
        self.read(move |c| ops::get_memory_node(c, id)).await
    }

    async fn neighbours(&self, from: NodeRef, depth: u32, limit: u32) -> Result<Vec<Neighbour>> {
        self.read_snapshot(move |c| ops::neighbours(c, from, depth, limit))
            .await
    }

    async fn search_memory(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let query = query.to_owned();
        self.read(move |c| ops::search_memory(c, &query, limit))
            .await
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let query = query.clone();
        self.read_snapshot(move |c| ops::query_audit(c, &query))
            .await
    }

    async fn get_facet(&self, name: &str) -> Result<Facet> {
        let name = name.to_owned();
        self.read(move |c| ops::get_facet(c, &name)).await
    }

    async fn list_facets(&self) -> Result<Vec<Facet>> {
        self.read(ops::list_facets).await
    }
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    /// No SQL run yet (`BEGIN IMMEDIATE` runs with the first operation).
    Idle,
    /// `BEGIN IMMEDIATE` done; the writer connection is held.
    Open,
    /// An operation is (or was, when its caller was cancelled) running on a blocking thread.
    InFlight,
    /// The transaction can no longer commit (its connection was lost or SQLite aborted it).
    Broken,
}

/// A write transaction on a [`SqliteStore`]: holds the store's writer until it ends.
struct SqliteTransaction {
    inner: Arc<Inner>,
    conn: Option<Connection>,
    permit: Option<OwnedSemaphorePermit>,
    state: TxState,
}

impl fmt::Debug for SqliteTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTransaction")
            .field("state", &self.state)
            .finish()
    }
}

/// Runs `f` inside a savepoint: on error, undoes what `f` wrote and keeps the transaction.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT aura_op").map_err(map)?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE aura_op").map_err(map)?;
            Ok(value)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK TO aura_op; RELEASE aura_op");
            }
            Err(e)
        }
    }
}

fn begin_immediate(conn: &Connection, timeout: Duration) -> Result<()> {
    with_busy_retry(timeout, || {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
            if is_busy(&e) {
                Error::Timeout(format!(
                    "another process held the database's write lock for longer than {timeout:?}"
                ))
            } else {
                map(e)
            }
        })
    })
}

impl SqliteTransaction {
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let begun = match self.state {
            TxState::Idle => false,
            TxState::Open => true,
            TxState::InFlight | TxState::Broken => {
                self.state = TxState::Broken;
                return Err(backend(
                    "this transaction was aborted (an earlier call was cancelled or failed in the \
                     backend); roll it back and start again",
                ));
            }
        };
        let conn = self.conn.take();
        let inner = self.inner.clone();
        self.state = TxState::InFlight;
        let spawn = self.inner.settings.spawn_blocking;
        let joined = offload(spawn, move || {
            let conn = match conn {
                Some(conn) => conn,
                None => match inner.take_writer() {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            if !begun {
                if let Err(e) = begin_immediate(&conn, inner.settings.busy_timeout) {
                    return (Some(conn), Err(e));
                }
            }
            let result = in_savepoint(&conn, f);
            (Some(conn), result)
        })
        .await;
        let (conn, result) = match joined {
            Ok(pair) => pair,
            Err(e) => {
                // The connection went with the failed call; closing it rolled back.
                self.state = TxState::Broken;
                return Err(e);
            }
        };
        let open = conn.as_ref().is_some_and(|c| !c.is_autocommit());
        self.conn = conn;
        self.state = match (begun, open) {
            (_, true) => TxState::Open,
            // BEGIN itself failed: nothing was started, the transaction may try again.
            (false, false) => TxState::Idle,
            // SQLite rolled the whole transaction back on a severe error.
            (true, false) => TxState::Broken,
        };
        result
    }

    /// Ends the transaction on a blocking thread with `sql` (COMMIT or ROLLBACK).
    async fn finish(mut self: Box<Self>, sql: &'static str) -> Result<()> {
        let state = self.state;
        let conn = self.conn.take();
        let permit = self.permit.take();
        let inner = self.inner.clone();
        match state {
            TxState::Idle => {
                if let Some(conn) = conn {
                    inner.return_writer(conn);
                }
                drop(permit);
                Ok(())
            }
            TxState::InFlight | TxState::Broken => {
                drop(conn);
                drop(permit);
                if sql == "ROLLBACK" {
                    Ok(())
                } else {
                    Err(Error::Conflict(
                        "this transaction was aborted before commit; nothing was written".into(),
                    ))
                }
            }
            TxState::Open => {
                let Some(conn) = conn else {
                    return Err(backend("the transaction lost its connection"));
                };
                blocking(inner.settings.spawn_blocking, move || {
                    let _permit = permit;
                    let result = conn.execute_batch(sql).map_err(map);
                    if !conn.is_autocommit() {
                        // COMMIT failed (for example a lock timeout): undo everything.
                        if conn.execute_batch("ROLLBACK").is_err() {
                            return result;
                        }
                    }
                    inner.return_writer(conn);
                    result
                })
                .await
            }
        }
    }
}

impl Drop for SqliteTransaction {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let permit = self.permit.take();
        let inner = self.inner.clone();
        let undo = move || {
            let _permit = permit;
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    // Dropping the connection rolls back whatever is left.
                    tracing::warn!(target: "Store", "rollback of a dropped transaction failed: {e}");
                    return;
                }
            }
            inner.return_writer(conn);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(undo);
            }
            Err(_) => undo(),
        }
    }
}

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn get_object(&mut self, id: ObjectId) -> Result<Object> {
        self.run(move |c| ops::get_object(c, id)).await
    }

    async fn create_object(&mut self, new: NewObject) -> Result<Object> {
        self.run(move |c| ops::create_object(c, new)).await
    }

    async fn update_object(
        &mut self,
        id: ObjectId,
        expected_rev: u64,
        patch: ObjectPatch,
    ) -> Result<Object> {
        self.run(move |c| ops::update_object(c, id, expected_rev, patch))
            .await
    }

    async fn delete_object(&mut self, id: ObjectId) -> Result<()> {
        self.run(move |c| ops::delete_object(c, id)).await
    }

    async fn put_method(&mut self, method: NewMethod) -> Result<Method> {
        self.run(move |c| ops::put_method(c, method)).await
    }

    async fn rollback_method(
        &mut self,
        object: ObjectId,
        selector: &Selector,
        version: u32,
    ) -> Result<Method> {
        let selector = selector.clone();
        self.run(move |c| ops::rollback_method(c, object, &selector, version))
            .await
    }

    async fn add_memory_node(&mut self, node: NewMemoryNode) -> Result<MemoryNode> {
        self.run(move |c| ops::add_memory_node(c, node)).await
    }

    async fn add_link(&mut self, link: ContextLink) -> Result<()> {
        self.run(move |c| ops::add_link(c, link)).await
    }

    async fn append_event(&mut self, event: NewAuditEvent) -> Result<AuditEvent> {
        self.run(move |c| ops::append_event(c, event)).await
    }

    async fn put_facet(&mut self, facet: Facet) -> Result<Facet> {
        self.run(move |c| ops::put_facet(c, facet)).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.finish("COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.finish("ROLLBACK").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written by the first migrations only is brought up to date on open.
    #[tokio::test]
    async fn migrates_an_older_schema() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| backend(e.to_string()))?;
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).map_err(map)?;
            assert_eq!(schema::migrate_to(&conn, 1)?, 1);
            conn.execute(
                "INSERT INTO objects (id, name, rev, created_us, updated_us)
                 VALUES ('0190f5d2-6c1e-7000-8000-000000000001', 'old', 1, 0, 0)",
                [],
            )
            .map_err(map)?;
            conn.execute(
                "INSERT INTO methods (object_id, selector, version, source, tests, doc, provenance, created_us)
                 VALUES ('0190f5d2-6c1e-7000-8000-000000000001', 'f', 1,
                         'def f(self):\n    return self.g()\n', '', '', '{\"kind\":\"manual\"}', 0)",
                [],
            )
            .map_err(map)?;
        }
        let store = SqliteStore::open(&path).await?;
        let old = store
            .find_object("old")
            .await?
            .ok_or_else(|| backend("the old object is gone"))?;
        assert_eq!(old.rev, 1);
        // A method stored before call graphs were recorded reads back without one.
        let f = store
            .get_method(old.id, &Selector::new("f")?)
            .await?
            .ok_or_else(|| backend("the old method is gone"))?;
        assert_eq!(f.calls, None);
        // The later migrations' tables work.
        let hits = store.search_memory("anything", 10).await?;
        assert!(hits.is_empty());
        let conn = Connection::open(&path).map_err(map)?;
        assert_eq!(schema::current_version(&conn)?, SqliteStore::SCHEMA_VERSION);
        Ok(())
    }

    /// Readers keep the page cache they were given; the writer keeps SQLite's default.
    #[tokio::test]
    async fn readers_keep_the_page_cache_they_were_given() -> Result<()> {
        let cache_size = |conn: &Connection| -> Result<i64> {
            conn.pragma_query_value(None, "cache_size", |row| row.get(0))
                .map_err(map)
        };
        let store = SqliteStoreBuilder::in_memory()
            .reader_cache_kib(256)
            .build()
            .await?;
        let reader = store.inner.take_reader()?;
        assert_eq!(cache_size(&reader)?, -256);
        let writer = store.inner.take_writer()?;
        assert_eq!(cache_size(&writer)?, -2000, "SQLite's default");
        let default = SqliteStore::open_in_memory().await?;
        let reader = default.inner.take_reader()?;
        assert_eq!(cache_size(&reader)?, -i64::from(DEFAULT_READER_CACHE_KIB));
        Ok(())
    }
}
