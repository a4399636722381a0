//! The bridge from Rust `tracing` to Python's `logging`.
//!
//! Every `tracing` event inside the extension (AURA's components — `Orchestrator`,
//! `Store`, `Sandbox`, `LocalModel`, `Cascade.ROBIN`, … — and the crates under them,
//! llama.cpp as `llama-cpp-2`) becomes a `logging.LogRecord` on the logger
//! `aura.<target>` (`::` in a target becomes `.`):
//!
//! | tracing | logging |
//! |---|---|
//! | `ERROR` | `ERROR` (40) |
//! | `WARN` | `WARNING` (30) |
//! | `INFO` | `INFO` (20) |
//! | `DEBUG` | `DEBUG` (10) |
//! | `TRACE` | `TRACE` (5, a level name this module registers) |
//!
//! The record's message is the event's message followed by its fields as
//! `key=value` (as tracing's own formatter writes them: strings quoted, `%`/`?` values
//! as they format); the fields are also on the record as the dict `aura_fields`
//! (ints, floats and bools as themselves, everything else as its text). `pathname` and
//! `lineno` are the Rust source's, `created` is when the event happened and
//! `threadName` is the Rust thread's name (e.g. `tokio-runtime-worker`).
//!
//! # Why it cannot deadlock
//!
//! Events are emitted on tokio workers, on the local model's worker thread and
//! anywhere else in Rust, often while the Python thread that started the work holds
//! or waits for the GIL. The tracing layer therefore never touches Python and never
//! waits: it copies the event into a [`Record`] and `try_send`s it into a bounded
//! channel; when the channel is full the record is dropped and counted (the count is
//! reported as one `WARNING` on the `aura` logger at the next delivery). So an
//! emitting thread cannot be part of a wait cycle involving the GIL.
//!
//! Records reach Python two ways, both through [`drain`], which runs with the GIL
//! held and only ever *tries* to lock the channel's receiver (a held lock means
//! someone else is delivering, so it returns):
//! - the `aura-logging` thread, which parks until a record is queued and then
//!   attaches to the interpreter. It waits for the GIL holding nothing, and nothing
//!   that holds the GIL waits for it (the `atexit` hook below releases the GIL first);
//! - the end of every blocking binding call ([`crate::runtime::wait`]), so a call's
//!   records are usually delivered by the time it returns.
//!
//! The only lock on this path is the receiver's `Mutex`, taken with `try_lock` while the GIL is
//! held, so nobody ever blocks on it, even when a logging handler releases the GIL
//! mid-delivery (file I/O does) and another thread starts draining.
//! At interpreter exit an `atexit` hook stops the thread and waits for it (GIL
//! released) so that it never attaches while the interpreter finalizes.
//!
//! # Cost of disabled levels
//!
//! The layer keeps one level filter, the most verbose level any `aura`/`aura.*`
//! logger lets through (and `logging.disable` allows). Events below it are never
//! built, queued or formatted: tracing's callsite cache skips them. It is read from
//! Python's loggers when `aura` is imported, when an `aura.Runtime` is created and on
//! `aura.set_log_level()`; making a logger quieter at any other time takes effect at
//! once (Python filters the records), making it more verbose takes effect at the next
//! of those three.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{LazyLock, Mutex, Once, OnceLock};
use std::thread::Thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// How many records wait for Python at most; more are dropped and counted.
pub const CAPACITY: usize = 4096;

/// Python's level number for `TRACE` (below `DEBUG`'s 10).
const PY_TRACE: i64 = 5;

/// One event, copied out of tracing so it can cross to Python later.
struct Record {
    meta: &'static Metadata<'static>,
    message: String,
    fields: Vec<(&'static str, Value)>,
    thread: Option<String>,
    at: SystemTime,
}

/// A field's value: what the `key=value` text and the `aura_fields` dict are made of.
enum Value {
    /// Recorded as a string: quoted in the message.
    Str(String),
    /// Recorded through `Debug`/`Display` (`?x`, `%x`): as it formatted.
    Text(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// The queue between tracing and Python, and the delivery thread's state.
struct Bridge {
    tx: SyncSender<Record>,
    rx: Mutex<Receiver<Record>>,
    /// Records sent and not yet received (the delivery thread's "anything to do?").
    queued: AtomicUsize,
    /// Records dropped because the queue was full, since the last report.
    dropped: AtomicU64,
    /// The least severe level let through: 0 off, 1 error … 5 trace.
    max: AtomicU8,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
    /// Signalled when the delivery thread has ended.
    done: Mutex<Option<Receiver<()>>>,
}

static BRIDGE: LazyLock<Bridge> = LazyLock::new(|| {
    let (tx, rx) = mpsc::sync_channel(CAPACITY);
    Bridge {
        tx,
        rx: Mutex::new(rx),
        queued: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        max: AtomicU8::new(0),
        stop: AtomicBool::new(false),
        thread: OnceLock::new(),
        done: Mutex::new(None),
    }
});

fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5, // TRACE
    }
}

fn py_level(level: Level) -> i64 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        _ => PY_TRACE, // TRACE
    }
}

/// The most verbose tracing level (as a rank) whose Python level is at least `threshold`.
fn rank_for_threshold(threshold: i64) -> u8 {
    [
        Level::TRACE,
        Level::DEBUG,
        Level::INFO,
        Level::WARN,
        Level::ERROR,
    ]
    .into_iter()
    .find(|l| py_level(*l) >= threshold)
    .map_or(0, rank)
}

fn enabled(level: Level) -> bool {
    rank(level) <= BRIDGE.max.load(Ordering::Relaxed)
}

/// The tracing layer: copies enabled events into the queue, never blocks.
struct PyLogLayer;

impl<S: Subscriber> Layer<S> for PyLogLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Rebuilt by `set_max` whenever the filter changes.
        if enabled(*meta.level()) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        enabled(*meta.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match BRIDGE.max.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Checked again: llama-cpp-2 dispatches its events without asking its callsites.
        if !enabled(*meta.level()) {
            return;
        }
        let mut visitor = Visitor::default();
        event.record(&mut visitor);
        let record = Record {
            meta,
            message: visitor.message,
            fields: visitor.fields,
            thread: std::thread::current().name().map(str::to_owned),
            at: SystemTime::now(),
        };
        let bridge = &*BRIDGE;
        // Counted before it is sent, so the count never runs below what is queued.
        bridge.queued.fetch_add(1, Ordering::AcqRel);
        match bridge.tx.try_send(record) {
            Ok(()) => {
                if let Some(thread) = bridge.thread.get() {
                    thread.unpark();
                }
            }
            Err(TrySendError::Full(_)) => {
                bridge.queued.fetch_sub(1, Ordering::AcqRel);
                bridge.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The receiver lives in a static: never disconnected.
            Err(TrySendError::Disconnected(_)) => {
                bridge.queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

#[derive(Default)]
struct Visitor {
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for Visitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields
                .push((field.name(), Value::Text(format!("{value:?}"))));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields
                .push((field.name(), Value::Str(value.to_owned())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), Value::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), Value::U64(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.push((field.name(), Value::F64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::Bool(value)));
    }
}

/// Installs the bridge (once per process: a second call, e.g. from a second
/// `aura.Runtime`, only re-reads the level) and reads the level from Python's loggers.
pub fn install(py: Python<'_>) -> PyResult<()> {
    static STARTED: Once = Once::new();
    let mut started = Ok(());
    STARTED.call_once(|| started = start(py));
    started?;
    sync_level(py)
}

fn start(py: Python<'_>) -> PyResult<()> {
    let logging = py.import("logging")?;
    if logging
        .call_method1("getLevelName", (PY_TRACE,))?
        .extract::<String>()?
        == format!("Level {PY_TRACE}")
    {
        logging.call_method1("addLevelName", (PY_TRACE, "TRACE"))?;
    }
    let (done_tx, done_rx) = mpsc::channel();
    *BRIDGE.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(done_rx);
    let handle = std::thread::Builder::new()
        .name("aura-logging".into())
        .spawn(move || deliver_loop(done_tx))
        .map_err(|e| PyRuntimeError::new_err(format!("aura: logging thread: {e}")))?;
    let _ = BRIDGE.thread.set(handle.thread().clone());
    // This extension has its own copy of tracing's globals, so its default subscriber
    // only sees AURA's events. Should one already be set, keep it (and forward nothing).
    let _ =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PyLogLayer));
    py.import("atexit")?
        .call_method1("register", (pyo3::wrap_pyfunction!(stop_logging, py)?,))?;
    Ok(())
}

/// The `aura-logging` thread: parks until records are queued, then delivers them.
fn deliver_loop(done: mpsc::Sender<()>) {
    let bridge = &*BRIDGE;
    while !bridge.stop.load(Ordering::Acquire) {
        if bridge.queued.load(Ordering::Acquire) == 0 && bridge.dropped.load(Ordering::Relaxed) == 0
        {
            std::thread::park();
            continue;
        }
        // Holding nothing while it waits for the GIL (see the module comment).
        match Python::try_attach(drain) {
            // Another thread is delivering: it takes everything queued; look again soon.
            Some(false) => std::thread::park_timeout(Duration::from_millis(10)),
            Some(true) => {}
            // The interpreter is finalizing.
            None => break,
        }
    }
    let _ = done.send(());
}

/// Delivers every queued record to Python's `logging`, then reports drops. Returns
/// false when another thread is delivering (and so will deliver these too).
pub fn drain(py: Python<'_>) -> bool {
    let bridge = &*BRIDGE;
    if bridge.queued.load(Ordering::Acquire) == 0 && bridge.dropped.load(Ordering::Relaxed) == 0 {
        return true; // the common case on a binding call's return: nothing to import or lock
    }
    // Only ever try: the holder may have released the GIL inside a handler.
    let Ok(rx) = bridge.rx.try_lock() else {
        return false;
    };
    let logging = match py.import("logging") {
        Ok(m) => m,
        Err(e) => {
            e.write_unraisable(py, None);
            return true;
        }
    };
    while let Ok(record) = rx.try_recv() {
        bridge.queued.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = deliver(py, &logging, record) {
            e.write_unraisable(py, None);
        }
    }
    let dropped = bridge.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let message = format!(
            "{dropped} log records were dropped: more than {CAPACITY} were waiting for Python"
        );
        let report = logging
            .call_method1("getLogger", ("aura",))
            .and_then(|l| l.call_method1("warning", (message,)));
        if let Err(e) = report {
            e.write_unraisable(py, None);
        }
    }
    true
}

fn deliver(py: Python<'_>, logging: &Bound<'_, PyModule>, record: Record) -> PyResult<()> {
    let meta = record.meta;
    let name = match meta.target() {
        "" => "aura".to_owned(),
        target => format!("aura.{}", target.replace("::", ".")),
    };
    let logger = logging.call_method1("getLogger", (name.as_str(),))?;
    let level = py_level(*meta.level());
    if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        return Ok(());
    }
    let mut message = record.message;
    let fields = PyDict::new(py);
    for (key, value) in &record.fields {
        if !message.is_empty() {
            message.push(' ');
        }
        let _ = match value {
            Value::Str(s) => write!(message, "{key}={s:?}"),
            Value::Text(s) => write!(message, "{key}={s}"),
            Value::I64(n) => write!(message, "{key}={n}"),
            Value::U64(n) => write!(message, "{key}={n}"),
            Value::F64(x) => write!(message, "{key}={x}"),
            Value::Bool(b) => write!(message, "{key}={b}"),
        };
        match value {
            Value::Str(s) | Value::Text(s) => fields.set_item(key, s)?,
            Value::I64(n) => fields.set_item(key, n)?,
            Value::U64(n) => fields.set_item(key, n)?,
            Value::F64(x) => fields.set_item(key, x)?,
            Value::Bool(b) => fields.set_item(key, b)?,
        }
    }
    let extra = PyDict::new(py);
    extra.set_item("aura_fields", fields)?;
    let log_record = logger.call_method1(
        "makeRecord",
        (
            name,
            level,
            meta.file().unwrap_or("(rust)"),
            meta.line().unwrap_or(0),
            message,
            PyTuple::empty(py),
            py.None(),
            py.None(),
            extra,
        ),
    )?;
    if let Ok(since) = record.at.duration_since(UNIX_EPOCH) {
        let created = since.as_secs_f64();
        log_record.setattr("created", created)?;
        log_record.setattr("msecs", f64::from(since.subsec_millis()))?;
    }
    if let Some(thread) = record.thread {
        log_record.setattr("threadName", thread)?;
    }
    logger.call_method1("handle", (log_record,))?;
    Ok(())
}

/// Reads the filter from Python: the most verbose effective level of `aura` and of
/// every `aura.*` logger created so far, bounded by `logging.disable`.
fn sync_level(py: Python<'_>) -> PyResult<()> {
    let logging = py.import("logging")?;
    let effective = |logger: &Bound<'_, PyAny>| -> PyResult<i64> {
        logger.call_method0("getEffectiveLevel")?.extract()
    };
    let mut threshold = effective(&logging.call_method1("getLogger", ("aura",))?)?;
    let manager = logging.getattr("root")?.getattr("manager")?;
    let logger_type = logging.getattr("Logger")?;
    let loggers = manager.getattr("loggerDict")?.call_method0("copy")?;
    for item in loggers.call_method0("items")?.try_iter()? {
        let (name, logger): (String, Bound<'_, PyAny>) = item?.extract()?;
        if name.starts_with("aura.") && logger.is_instance(&logger_type)? {
            threshold = threshold.min(effective(&logger)?);
        }
    }
    let disabled: i64 = manager.getattr("disable")?.extract()?;
    set_max(rank_for_threshold(
        threshold.max(disabled.saturating_add(1)),
    ));
    Ok(())
}

fn set_max(max: u8) {
    if BRIDGE.max.swap(max, Ordering::Relaxed) != max {
        // Re-asks every callsite (and the global max level) under the new filter.
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Sets the level of the `aura` logger when given (an int or a name such as
/// `"DEBUG"`), then reads AURA's log filter again from Python's loggers.
///
/// AURA drops events below the most verbose level that `aura` or any `aura.*` logger
/// lets through, before they cost anything. That filter is read when `aura` is
/// imported, on every `aura.Runtime(...)` and here; call this after making a logger
/// more verbose with `logging` directly.
#[pyfunction]
#[pyo3(signature = (level=None))]
pub fn set_log_level(py: Python<'_>, level: Option<Bound<'_, PyAny>>) -> PyResult<()> {
    if let Some(level) = level {
        py.import("logging")?
            .call_method1("getLogger", ("aura",))?
            .call_method1("setLevel", (level,))?;
    }
    sync_level(py)
}

/// At interpreter exit: stops the delivery thread and waits for it, so it never
/// attaches to a finalizing interpreter. Records still queued are delivered here.
#[pyfunction]
fn stop_logging(py: Python<'_>) {
    let bridge = &*BRIDGE;
    bridge.stop.store(true, Ordering::Release);
    if let Some(thread) = bridge.thread.get() {
        thread.unpark();
    }
    let done = bridge.done.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(done) = done {
        // The thread may be waiting for the GIL: release it while we wait.
        py.detach(move || {
            let _ = done.recv_timeout(Duration::from_secs(2));
        });
    }
    drain(py);
}

/// Test hook for the bridge: `threads` Rust threads each emit `count` events at
/// `level` (target `selftest`, fields `thread` and `i`) while this call keeps the GIL
/// and waits for them, as a binding that forgot to release it would. It returns only
/// because emitting never needs the GIL; what did not fit in the queue is dropped and
/// reported. The records are delivered before it returns.
#[pyfunction]
#[pyo3(signature = (count, threads=1, level="INFO"))]
pub fn _log_selftest(py: Python<'_>, count: u64, threads: u64, level: &str) -> PyResult<()> {
    let level: Level = level
        .parse()
        .map_err(|_| PyValueError::new_err(format!("level={level:?}")))?;
    let workers = (0..threads)
        .map(|thread| {
            std::thread::Builder::new()
                .name(format!("aura-selftest-{thread}"))
                .spawn(move || {
                    for i in 0..count {
                        match level {
                            Level::ERROR => {
                                tracing::error!(target: "selftest", thread, i, "selftest event")
                            }
                            Level::WARN => {
                                tracing::warn!(target: "selftest", thread, i, "selftest event")
                            }
                            Level::INFO => {
                                tracing::info!(target: "selftest", thread, i, "selftest event")
                            }
                            Level::DEBUG => {
                                tracing::debug!(target: "selftest", thread, i, "selftest event")
                            }
                            _ => tracing::trace!(target: "selftest", thread, i, "selftest event"),
                        }
                    }
                })
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
        .collect::<PyResult<Vec<_>>>()?;
    for worker in workers {
        worker
            .join()
            .map_err(|_| PyRuntimeError::new_err("a selftest thread panicked"))?;
    }
    drain(py);
    Ok(())
}
