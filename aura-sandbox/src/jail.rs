//! `JailSandbox`: the embedded default. A pool of warm, jailed CPython fork-servers.
//!
//! # Design
//!
//! * **Fork-server.** The host starts `python3 -I -S -B -c <runner> jail` with an empty
//!   environment and two pipes. The runner (trusted code, shipped in this crate) unshares
//!   user, pid, mount, network, IPC and UTS namespaces (identity-mapping the caller's uid
//!   and gid to root inside), forks the *server* as pid 1 of the new pid namespace, and
//!   the server builds a new root: a tmpfs holding read-only binds of `/usr` (plus the
//!   interpreter's prefix when it lives elsewhere, and `/lib*`, `/bin` when they are not
//!   merged-/usr symlinks), `/dev/{null,zero,random,urandom}`, an empty `/scratch`
//!   mount point and `/tmp -> /scratch`; then `pivot_root`, detaches the old root and
//!   remounts the new one read-only. No `/proc`, no `/etc`, no home, no host `/tmp`.
//! * **One fork per call, forked ahead, by a forker.** Once set up (runner imported,
//!   compiled in a throw-away child so the parser's leftovers stay out of it, its
//!   request path warmed up on a trusted method, `gc.freeze()`d, the capability
//!   bounding set dropped), the server forks a *forker*,
//!   a copy of itself that forks every child from then on: a process pays for each fork
//!   it makes with copy-on-write faults on every page it writes afterwards, so the
//!   server, which reads requests and supervises children, does not fork at all. The
//!   forker keeps one *spare* child ready, each in a **pid namespace of its own** (its
//!   pid 1), so a guest can address no other process: not the forker, and not the next
//!   spare, made while the guest runs. The spare unshares its own mount and IPC
//!   namespaces (SysV objects and POSIX message queues outlive their creator: a shared
//!   IPC namespace would carry them to the next call) and mounts a *fresh* tmpfs at
//!   `/scratch`, makes itself non-dumpable, clears its capabilities, sets
//!   `no_new_privs`, installs its share of the seccomp filters (the forker installed
//!   the rest once, and every spare inherits them; [`crate::seccomp`]), and then blocks
//!   on a pipe; the forker passes its pipes and pidfd to the server (`SCM_RIGHTS`). A
//!   request is handed to the spare, which sets the request's rlimits (AS, CPU, NOFILE,
//!   FSIZE, NPROC, CORE=0, irreversible without capabilities; pid 1 ignores an unhandled
//!   SIGXCPU, so the runner handles it) and only then compiles and runs the guest code.
//!   As soon as the request is handed over, the forker makes the next spare, so a
//!   back-to-back call never waits for a fork or a lock-down. A spare serves exactly one
//!   request; when it exits, everything it did (globals, files, IPC objects, slots) is
//!   gone.
//! * **Code cache.** The forker keeps the code objects of the sources it was sent
//!   (method, helpers, test module), keyed by the exact `(filename, source)` text, with
//!   the runtime layer's verdict on each. Once a request is in its child's hands, and
//!   before it forks the next spare, it compiles (never runs) the request's sources it
//!   has not compiled and the server has seen before (a source is cached from its
//!   second sighting on, so a search's one-off candidates never fill the cache and the
//!   forker's memory, which every fork copies), so the next child inherits them through
//!   `fork` and a warm call compiles only
//!   what is new ([`ResourceUsage::compiled_sources`] counts what it did compile). A
//!   changed method is a different key, so it is never served stale; a source that
//!   does not compile cleanly (an error or a warning) is never cached, so errors,
//!   warnings, `RuntimeDenied` and tracebacks read the same, cached or not. Bounded by
//!   [`JailSandboxBuilder::code_cache_entries`], [`JailSandboxBuilder::code_cache_bytes`]
//!   and [`JailSandboxBuilder::code_cache_source_bytes`] (least recently used first
//!   out). A child holds a copy-on-write copy: nothing it does to it outlives it.
//! * **Supervision.** The server waits on the child's reply pipe and its pidfd until the
//!   wall deadline, then SIGKILLs it (the child cannot fork, so that is the whole tree).
//!   A complete reply ends with a trailer (a marker, the child's CPU time and peak RSS)
//!   and the child closes the pipe before it exits, so the server answers at end-of-file
//!   and the forker reaps the exiting child later; anything else waits for the exit,
//!   and the forker's `wait4` gives CPU time and peak RSS. A dead forker ends the server.
//!   The host keeps a backstop (wall + 2 s): past it, it kills the launcher, whose death
//!   kills the server (PDEATHSIG), whose death kills every process of the namespace.
//! * **Concurrency.** One request at a time per server; at most `max_concurrent` calls
//!   run at once (default: one per CPU, at least 2; later ones wait) and a pool of idle servers is kept warm
//!   (`max_idle`, default 4). A call takes an idle server or starts a new one, and gives
//!   it back when the call went cleanly. So concurrent guests live in different pid
//!   namespaces and never see each other. A server that died, broke the protocol, or
//!   whose call was cancelled (the future dropped) is killed and never reused.
//! * **Batches.** [`Sandbox::execute_batch`] splits its requests into
//!   `min(n, max_concurrent)` lanes that run at once, each its requests one after
//!   another through the per-call path above (a warm server, a fresh child per request,
//!   each under its own limits), so a batch is isolated and contained exactly as that
//!   many calls are, without the wait between them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::protocol::{self, Meta, Ready};
use crate::{
    EndReason, Error, ExecOutcome, ExecRequest, Limits, ResourceUsage, Result, Sandbox,
    SandboxCapabilities,
};

const BACKEND: &str = "jail";
/// The env var naming the interpreter ([`JailSandboxBuilder::from_env`]).
pub const PYTHON_ENV: &str = "AURA_SANDBOX_PYTHON";
/// The env var bounding concurrent calls ([`JailSandboxBuilder::max_concurrent`]).
pub const MAX_CONCURRENT_ENV: &str = "AURA_SANDBOX_MAX_CONCURRENT";

/// Builds a [`JailSandbox`].
#[derive(Clone, Debug)]
pub struct JailSandboxBuilder {
    /// The interpreter asked for, and who asked (shown in the log and `describe`).
    python: Option<(PathBuf, &'static str)>,
    max_idle: usize,
    max_concurrent: usize,
    scratch_bytes: u64,
    start_timeout: Duration,
    module_api: Option<String>,
    code_cache_entries: usize,
    code_cache_bytes: u64,
    code_cache_source_bytes: u64,
}

/// Default [`JailSandboxBuilder::code_cache_entries`].
pub const DEFAULT_CODE_CACHE_ENTRIES: usize = 2048;
/// Default [`JailSandboxBuilder::code_cache_bytes`] (8 MiB).
pub const DEFAULT_CODE_CACHE_BYTES: u64 = 8 << 20;
/// Default [`JailSandboxBuilder::code_cache_source_bytes`] (64 KiB).
pub const DEFAULT_CODE_CACHE_SOURCE_BYTES: u64 = 64 << 10;

impl Default for JailSandboxBuilder {
    fn default() -> Self {
        Self {
            python: None,
            max_idle: 4,
            // Calls are CPU-bound CPython runs: more at once than cores only adds switching.
            max_concurrent: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
            scratch_bytes: 16 << 20,
            start_timeout: Duration::from_secs(10),
            module_api: None,
            code_cache_entries: DEFAULT_CODE_CACHE_ENTRIES,
            code_cache_bytes: DEFAULT_CODE_CACHE_BYTES,
            code_cache_source_bytes: DEFAULT_CODE_CACHE_SOURCE_BYTES,
        }
    }
}

impl JailSandboxBuilder {
    /// Defaults, with the interpreter from `AURA_SANDBOX_PYTHON` and the concurrency
    /// bound from `AURA_SANDBOX_MAX_CONCURRENT` when they are set.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(p) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
            b.python = Some((PathBuf::from(p), "set by AURA_SANDBOX_PYTHON"));
        }
        if let Some(n) = std::env::var(MAX_CONCURRENT_ENV)
            .ok()
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            b = b.max_concurrent(n);
        }
        b
    }

    /// The interpreter: a path, or a name looked up on `PATH`. By default the
    /// system's own [`SYSTEM_PYTHON`] when it exists, else `python3` on `PATH`.
    ///
    /// The system interpreter comes first because what is first on `PATH` is often a
    /// version manager's: a pyenv shim takes ~130 ms to start against ~19 ms, and the
    /// interpreter behind it (built without PGO) made a warm call ~40 % slower. The jail
    /// runs it isolated (`-I -S`), so only its standard library matters.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some((path.into(), "set by the host"));
        self
    }

    /// How many idle fork-servers to keep warm (default 4).
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// How many calls run at once (default: the number of CPUs, at least 2); later calls
    /// wait for a free server.
    ///
    /// Without a bound, a burst of calls would start a fork-server for each (~30 ms of
    /// CPU apiece) and throw away every one beyond `max_idle` afterwards: under load that
    /// churn costs more than the calls. Keep `max_idle` at least this.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// The size of each call's scratch tmpfs, and the largest file a guest may write
    /// (default 16 MiB).
    pub fn scratch_bytes(mut self, n: u64) -> Self {
        self.scratch_bytes = n;
        self
    }

    /// Turns on the runtime layer: guest code gets only the allowed builtins, and an
    /// import gets a read-only proxy exposing only the allowlisted names of its module.
    /// `json` is the API allowlist the guard enforces (`aura_guard::module_api_json()`),
    /// so both layers enforce one list. Checked by `build`.
    pub fn module_api(mut self, json: impl Into<String>) -> Self {
        self.module_api = Some(json.into());
        self
    }

    /// How many compiled sources each fork-server keeps (default
    /// [`DEFAULT_CODE_CACHE_ENTRIES`], 2048; 0 turns the code cache off). See the
    /// module docs, *Code cache*.
    pub fn code_cache_entries(mut self, n: usize) -> Self {
        self.code_cache_entries = n;
        self
    }

    /// How much each fork-server's code cache may weigh: the UTF-8 bytes of the cached
    /// sources plus the marshalled size of their code (default
    /// [`DEFAULT_CODE_CACHE_BYTES`], 8 MiB; 0 turns the cache off). It also bounds how
    /// much source one round of caching compiles.
    pub fn code_cache_bytes(mut self, n: u64) -> Self {
        self.code_cache_bytes = n;
        self
    }

    /// The largest source (UTF-8 bytes) the code cache takes (default
    /// [`DEFAULT_CODE_CACHE_SOURCE_BYTES`], 64 KiB); larger ones are compiled by each
    /// call's child, as without a cache. Keeps the server's compiling cheap and bounded.
    pub fn code_cache_source_bytes(mut self, n: u64) -> Self {
        self.code_cache_source_bytes = n;
        self
    }

    /// How long a fork-server may take to start (default 10 s).
    pub fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = t;
        self
    }

    /// Resolves the interpreter and builds the sandbox. Starts no process until the
    /// first call (or [`JailSandbox::warm_up`]).
    pub fn build(self) -> Result<JailSandbox> {
        if !cfg!(target_os = "linux") {
            return Err(Error::Unavailable("the jail sandbox needs Linux".into()));
        }
        let python = choose_python(self.python)?;
        tracing::info!(target: "Sandbox", python = %python.path.display(), version = %python.version,
            why = python.why, "jail interpreter chosen");
        let config = serde_json::to_vec(&crate::seccomp::with_filters(json!({
            "scratch_bytes": self.scratch_bytes,
            "sys_pivot_root": crate::seccomp::sys_pivot_root(),
            "stage": "/tmp",
            "nproc": 1024,
            "api": crate::protocol::module_api_config(self.module_api.as_deref())?,
            "code_cache": {
                "entries": self.code_cache_entries,
                "bytes": self.code_cache_bytes,
                "source_bytes": self.code_cache_source_bytes,
            },
        }))?)
        .map_err(|e| Error::wrap(BACKEND, e))?;
        Ok(JailSandbox {
            inner: Arc::new(Inner {
                python,
                config,
                max_idle: self.max_idle,
                start_timeout: self.start_timeout,
                idle: Mutex::new(Vec::new()),
                max_concurrent: self.max_concurrent,
                slots: tokio::sync::Semaphore::new(self.max_concurrent),
            }),
        })
    }
}

/// The system's own interpreter, preferred when no other is named.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The interpreter the jail runs, resolved once at build time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonChoice {
    /// The real binary: shims and symlinks resolved.
    pub path: PathBuf,
    /// Its version, e.g. `3.11.2`.
    pub version: String,
    /// Why this one: "set by AURA_SANDBOX_PYTHON", "set by the host", "the system
    /// interpreter" or "python3 on PATH".
    pub why: &'static str,
}

/// The asked-for interpreter, else [`SYSTEM_PYTHON`] when it exists, else `python3`
/// on `PATH`; then resolved to the real binary.
fn choose_python(asked: Option<(PathBuf, &'static str)>) -> Result<PythonChoice> {
    let (python, why) = asked.unwrap_or_else(|| {
        if Path::new(SYSTEM_PYTHON).is_file() {
            (PathBuf::from(SYSTEM_PYTHON), "the system interpreter")
        } else {
            (PathBuf::from("python3"), "python3 on PATH")
        }
    });
    let (path, version) = resolve_python(&python)?;
    if !supported_python(&version) {
        return Err(Error::Unavailable(format!(
            "{} is Python {version}; the jail needs Python {}.{} or newer (its runner uses \
             os.pidfd_open and socket.send_fds): set AURA_SANDBOX_PYTHON to a newer one",
            path.display(),
            MIN_PYTHON.0,
            MIN_PYTHON.1
        )));
    }
    Ok(PythonChoice { path, version, why })
}

/// The oldest interpreter the runner works on.
const MIN_PYTHON: (u32, u32) = (3, 9);

/// Whether `version` ("3.11.2") is at least [`MIN_PYTHON`]. A version that does not
/// parse is given the benefit of the doubt: the server's start reports what fails.
fn supported_python(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= MIN_PYTHON,
        _ => true,
    }
}

/// Finds the real interpreter behind `python` and its version: a shim on `PATH` is
/// asked for its `sys.executable`, once, and symlinks are followed to the binary.
fn resolve_python(python: &Path) -> Result<(PathBuf, String)> {
    let out = std::process::Command::new(python)
        .args([
            "-I",
            "-S",
            "-c",
            "import sys, platform; print(sys.executable); print(platform.python_version())",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Unavailable(format!(
                "no Python interpreter at {}: {e}",
                python.display()
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(str::trim);
    let exe = lines.next().unwrap_or_default();
    if !out.status.success() || exe.is_empty() {
        return Err(Error::Unavailable(format!(
            "{} did not run as Python 3 (`-I -S -c`)",
            python.display()
        )));
    }
    let version = lines.next().unwrap_or("unknown").to_string();
    // `python3` → `python3.11`: the binary the kernel runs, so the log names it.
    let path = std::fs::canonicalize(exe).unwrap_or_else(|_| PathBuf::from(exe));
    Ok((path, version))
}

/// The embedded default sandbox: Linux namespaces + seccomp + rlimits around a warm
/// CPython fork-server. See the module docs for the design.
#[derive(Clone)]
pub struct JailSandbox {
    inner: Arc<Inner>,
}

struct Inner {
    python: PythonChoice,
    config: Vec<u8>,
    max_idle: usize,
    start_timeout: Duration,
    idle: Mutex<Vec<Server>>,
    /// How many calls may run at once (the permits of `slots`; a batch's lanes).
    max_concurrent: usize,
    /// One permit per call that may run now (see [`JailSandboxBuilder::max_concurrent`]).
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for JailSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JailSandbox")
            .field("python", &self.inner.python.path)
            .field("max_idle", &self.inner.max_idle)
            .finish_non_exhaustive()
    }
}

impl JailSandbox {
    /// A builder with defaults.
    pub fn builder() -> JailSandboxBuilder {
        JailSandboxBuilder::default()
    }

    /// Defaults; the interpreter from `AURA_SANDBOX_PYTHON`, else the system's own
    /// (see [`JailSandboxBuilder::python`]).
    pub fn from_env() -> Result<Self> {
        JailSandboxBuilder::from_env().build()
    }

    /// The resolved interpreter.
    pub fn python(&self) -> &Path {
        &self.inner.python.path
    }

    /// The interpreter, its version and why it was chosen.
    pub fn interpreter(&self) -> &PythonChoice {
        &self.inner.python
    }

    /// Starts one fork-server now, so that the next call is warm. Fails with
    /// [`Error::Unavailable`] when the jail cannot be built here.
    pub async fn warm_up(&self) -> Result<()> {
        let server = self.spawn().await?;
        self.put_back(server);
        Ok(())
    }

    /// An idle server that is still alive: one that died while idle (or mid-call) is
    /// dropped here, so the pool never hands out a corpse.
    fn take_idle(&self) -> Option<Server> {
        let mut idle = self.inner.idle.lock().ok()?;
        while let Some(mut server) = idle.pop() {
            if matches!(server.child.try_wait(), Ok(None)) {
                return Some(server);
            }
        }
        None
    }

    fn put_back(&self, server: Server) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            if idle.len() < self.inner.max_idle {
                idle.push(server);
            }
        }
    }

    async fn spawn(&self) -> Result<Server> {
        let mut cmd = Command::new(&self.inner.python.path);
        cmd.args(protocol::runner_args("jail"))
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::Unavailable(format!(
                "cannot start {}: {e}",
                self.inner.python.path.display()
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::backend(BACKEND, "no pipes"));
        };
        let mut server = Server {
            child,
            stdin,
            stdout,
        };
        protocol::write_frame(&mut server.stdin, &self.inner.config).await?;
        let ready = tokio::time::timeout(
            self.inner.start_timeout,
            protocol::read_frame(&mut server.stdout, protocol::MAX_CONTROL_FRAME),
        )
        .await
        .map_err(|_| Error::Unavailable("the jail's fork-server did not start in time".into()))?
        .map_err(|e| {
            Error::Unavailable(format!("the jail's fork-server died while starting: {e}"))
        })?;
        let ready: Ready = serde_json::from_slice(&ready)
            .map_err(|e| Error::Protocol(format!("fork-server handshake: {e}")))?;
        if let Some(fatal) = ready.fatal {
            let hint = if fatal.contains("unshare") || fatal.contains("uid_map") {
                ". The jail needs user namespaces: check the sysctls \
                 kernel.unprivileged_userns_clone=1 and user.max_user_namespaces>0, \
                 kernel.apparmor_restrict_unprivileged_userns=0, and that no container \
                 seccomp profile forbids unshare"
            } else {
                ""
            };
            return Err(Error::Unavailable(format!(
                "the jail cannot be built: {fatal}{hint}"
            )));
        }
        if !ready.ready {
            return Err(Error::Protocol(
                "fork-server handshake without `ready`".into(),
            ));
        }
        tracing::debug!(target: "Sandbox", python = %self.inner.python.path.display(), "fork-server started");
        Ok(server)
    }
}

/// One jailed fork-server (dropping it kills the launcher and with it the namespace).
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Server {
    async fn call(&mut self, body: &[u8], limits: &Limits) -> Result<Option<ExecOutcome>> {
        let start = Instant::now();
        protocol::write_frame(&mut self.stdin, body).await?;
        let backstop = limits.wall + Duration::from_secs(2);
        let cap = protocol::reply_cap(limits);
        let exchange = async {
            let meta = protocol::read_frame(&mut self.stdout, protocol::MAX_CONTROL_FRAME).await?;
            let meta: Meta = serde_json::from_slice(&meta)
                .map_err(|e| Error::Protocol(format!("fork-server meta frame: {e}")))?;
            let reply = protocol::read_frame(&mut self.stdout, cap).await?;
            Ok::<_, Error>((meta, reply))
        };
        match tokio::time::timeout(backstop, exchange).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => {
                // The server itself died mid-call (killed from outside, say): its
                // namespace, and the guest with it, died too. The call was killed.
                let died = tokio::time::timeout(Duration::from_millis(500), self.child.wait());
                match died.await {
                    Ok(Ok(status)) => {
                        let usage = ResourceUsage {
                            wall_ms: start.elapsed().as_millis() as u64,
                            ..ResourceUsage::default()
                        };
                        let note =
                            format!("killed: the jail's fork-server died mid-call ({status})");
                        Ok(Some(protocol::bare_outcome(EndReason::Killed, usage, note)))
                    }
                    _ => Err(e),
                }
            }
            Ok(Ok((meta, reply))) => {
                protocol::build_outcome(BACKEND, &meta, &reply, limits).map(Some)
            }
        }
    }
}

#[async_trait]
impl Sandbox for JailSandbox {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities {
            backend: BACKEND,
            network_isolation: true,
            memory_limit: true,
            cpu_limit: true,
            measures_rss: true,
        }
    }

    fn describe(&self) -> String {
        let p = &self.inner.python;
        format!(
            "{BACKEND}: Python {} at {} ({})",
            p.version,
            p.path.display(),
            p.why
        )
    }

    async fn execute(&self, request: ExecRequest) -> Result<ExecOutcome> {
        let body = protocol::encode_request(&request)?;
        self.run(&body, &request.limits).await
    }

    /// Splits the batch into `min(n, max_concurrent)` lanes (request `i` on lane
    /// `i % lanes`). The lanes run at once, each its requests one after another through
    /// the same path as [`Sandbox::execute`] (a warm fork-server, a fresh locked-down
    /// child per request, its own limits and wall-clock kill), so a batch is isolated
    /// and contained exactly as that many single calls are; it only saves the waiting.
    async fn execute_batch(&self, requests: Vec<ExecRequest>) -> Result<Vec<ExecOutcome>> {
        let bodies = requests
            .iter()
            .map(protocol::encode_request)
            .collect::<Result<Vec<_>>>()?;
        let n = requests.len();
        let lanes = n.min(self.inner.max_concurrent);
        let (requests, bodies) = (&requests, &bodies);
        let lane = |k: usize| async move {
            let mut out = Vec::new();
            for i in (k..n).step_by(lanes) {
                let start = Instant::now();
                let outcome = self.run(&bodies[i], &requests[i].limits).await;
                let wall_ms = start.elapsed().as_millis() as u64;
                out.push((i, protocol::contain(outcome, wall_ms)?));
            }
            Ok::<_, Error>(out)
        };
        let mut outcomes: Vec<Option<ExecOutcome>> = vec![None; n];
        for lane in crate::port::join_all((0..lanes).map(lane).collect()).await {
            for (i, o) in lane? {
                outcomes[i] = Some(o);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| Error::backend(BACKEND, "a batch lost a request")))
            .collect()
    }
}

impl JailSandbox {
    /// One encoded request on a warm fork-server: what `execute` does, and each step of
    /// a batch's lane.
    async fn run(&self, body: &[u8], limits: &Limits) -> Result<ExecOutcome> {
        // Held for the whole call; the semaphore is never closed.
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|e| Error::wrap(BACKEND, e))?;
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut server, warm) = match self.take_idle() {
                Some(s) => (s, true),
                None => (self.spawn().await?, false),
            };
            match server.call(body, limits).await {
                Ok(Some(outcome)) => {
                    self.put_back(server);
                    return Ok(outcome);
                }
                Ok(None) => {
                    // Past the backstop: the server is killed with its whole namespace.
                    drop(server);
                    let usage = ResourceUsage {
                        wall_ms: start.elapsed().as_millis() as u64,
                        ..ResourceUsage::default()
                    };
                    let note = "killed: the fork-server missed the wall-clock limit".to_string();
                    return Ok(protocol::bare_outcome(EndReason::Timeout, usage, note));
                }
                // A warm server that had died while idle: retry once on a fresh one.
                Err(Error::Protocol(m)) if warm && attempt == 1 && m.starts_with("write") => {
                    tracing::debug!(target: "Sandbox", "stale fork-server: {m}");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::supported_python;

    #[test]
    fn interpreters_older_than_the_runner_needs_are_refused() {
        for old in ["3.8.18", "3.6.15", "2.7.18"] {
            assert!(!supported_python(old), "{old}");
        }
        for new in ["3.9.0", "3.11.2", "3.13.0", "4.0", "3.14.0rc1"] {
            assert!(supported_python(new), "{new}");
        }
        // What does not parse runs, and the server's start says what fails.
        assert!(supported_python("unknown"));
    }
}
