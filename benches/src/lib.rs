//! Shared fixtures for AURA's criterion benchmarks (the benches live in `benches/benches/`).
#![allow(clippy::expect_used)] // bench fixtures: a failed setup should stop the bench loudly

pub mod kill_check;
pub mod plot;
pub mod rounds;
pub mod suite;

use async_trait::async_trait;
use aura_cognition::{
    ChatRequest, ChatResponse, LanguageModel, ModelCapabilities, ModelInfo, ScriptedModel,
};
use aura_sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};

/// A file of JSON lines named by a command-line flag (`--out`), or nothing when the
/// flag is absent: measurement tools keep their per-item results this way.
pub struct JsonLines {
    file: Option<std::fs::File>,
    flag: &'static str,
}

impl JsonLines {
    /// Creates the file at `path`, if given; `flag` names it in failures.
    pub fn create(path: Option<&std::path::Path>, flag: &'static str) -> Self {
        let file = path.map(|p| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("{flag} {}: {e}", p.display()))
        });
        Self { file, flag }
    }

    /// Appends `line` (one JSON value per line); does nothing without a file.
    pub fn write(&mut self, line: &serde_json::Value) {
        use std::io::Write as _;
        if let Some(f) = self.file.as_mut() {
            writeln!(f, "{line}").unwrap_or_else(|e| panic!("{} write: {e}", self.flag));
        }
    }
}

/// A sandbox that refuses to run anything: for benches that never execute a method.
#[derive(Debug)]
pub struct NullSandbox;

#[async_trait]
impl Sandbox for NullSandbox {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("null")
    }

    async fn execute(&self, _request: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        Err(aura_sandbox::Error::Unavailable(
            "the null sandbox runs nothing".into(),
        ))
    }
}

/// A SQLite store (on a temp file, WAL — the embedded default's real setup) holding
/// `nodes` memory nodes of varied text, about 1 % of them about Fibonacci numbers, so a
/// grounding query has a realistic mix of rare and common terms to rank.
pub async fn memory_store(nodes: usize) -> std::sync::Arc<aura_store::SqliteStore> {
    use aura_store::{NewMemoryNode, Store};

    const WORDS: &[&str] = &[
        "object",
        "method",
        "slot",
        "parent",
        "delegate",
        "message",
        "store",
        "memory",
        "sequence",
        "number",
        "string",
        "reverse",
        "sort",
        "list",
        "sum",
        "average",
        "prime",
        "factorial",
        "square",
        "root",
        "weather",
        "news",
        "time",
        "place",
        "reply",
        "question",
        "answer",
        "learn",
        "teach",
        "calculate",
        "convert",
        "celsius",
        "fahrenheit",
        "distance",
        "vector",
        "matrix",
        "count",
        "word",
        "vowel",
        "palindrome",
        "binary",
        "search",
        "tree",
        "graph",
        "path",
        "node",
        "edge",
        "queue",
        "stack",
        "hash",
    ];
    let dir =
        std::env::temp_dir().join(format!("aura-bench-memory-{}-{nodes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = std::sync::Arc::new(
        aura_store::SqliteStore::open(dir.join("store.sqlite"))
            .await
            .expect("store"),
    );
    // A fixed linear congruential sequence: the same corpus on every run.
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for chunk in (0..nodes).collect::<Vec<_>>().chunks(1000) {
        let mut tx = store.begin().await.expect("begin");
        for &i in chunk {
            let mut text: Vec<&str> = (0..12).map(|_| WORDS[next() % WORDS.len()]).collect();
            if i % 100 == 0 {
                text.push("fibonacci");
            }
            tx.add_memory_node(NewMemoryNode::new("message", text.join(" ")))
                .await
                .expect("node");
        }
        tx.commit().await.expect("commit");
    }
    store
}

/// Resident memory in KiB, from `/proc/self/status`.
pub fn rss_kib() -> u64 {
    status_field(&self_status(), "VmRSS:").expect("VmRSS")
}

fn self_status() -> String {
    std::fs::read_to_string("/proc/self/status").expect("/proc/self/status")
}

/// A number of `/proc/<pid>/status` (its unit, if any, dropped).
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What this process holds at one moment, from `/proc`: what a leak would grow.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
    /// Direct child processes (the jail's fork-servers, a CLI being run).
    pub children: u64,
    /// Children that exited and were never reaped.
    pub zombies: u64,
}

impl ProcessStats {
    /// This process, now.
    pub fn sample() -> Self {
        Self::of(std::process::id()).expect("/proc/self")
    }

    /// Process `pid`, now; `None` once it has gone.
    pub fn of(pid: u32) -> Option<Self> {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        let status = std::fs::read_to_string(proc.join("status")).ok()?;
        let field = |name: &str| status_field(&status, name).unwrap_or(0);
        let fds = std::fs::read_dir(proc.join("fd")).map_or(0, |d| d.count() as u64);
        let me = pid.to_string();
        let (mut children, mut zombies) = (0, 0);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the parenthesised command name: state, then the parent's pid.
            let mut rest = stat
                .rsplit_once(") ")
                .map(|(_, r)| r.split(' '))
                .into_iter()
                .flatten();
            let (state, parent) = (rest.next(), rest.next());
            if parent == Some(me.as_str()) {
                children += 1;
                zombies += u64::from(state == Some("Z"));
            }
        }
        Some(ProcessStats {
            rss_kib: field("VmRSS:"),
            fds,
            threads: field("Threads:"),
            children,
            zombies,
        })
    }
}

/// Slack for what varies with the moment's load rather than with time: connections
/// in flight, a jail call starting, a CLI run, and tokio's blocking pool, which grows
/// with a burst of store calls and shrinks again after 10 s idle.
const SLACK_FDS: u64 = 12;
const SLACK_THREADS: u64 = 16;
const SLACK_CHILDREN: u64 = 3;

/// No growth trend after warm-up (the first quarter, at least 10 s): the peak of the
/// second half of what follows is no higher than the first half's, within the slack;
/// and once the load stopped, no child is left unreaped.
pub fn leak_check(samples: &[(f64, ProcessStats)], settled: &ProcessStats) -> Result<(), String> {
    let warm = (samples.len() / 4).max(10);
    if samples.len() < warm + 10 {
        return Err(format!("too short to judge: {} samples", samples.len()));
    }
    let (first, second) = samples[warm..].split_at((samples.len() - warm) / 2);
    type Measure = fn(&ProcessStats) -> u64;
    let peak = |half: &[(f64, ProcessStats)], f: Measure| {
        half.iter().map(|(_, s)| f(s)).max().unwrap_or(0)
    };
    let mut problems = Vec::new();
    let measures: [(&str, Measure, u64); 3] = [
        ("descriptors", |s| s.fds, SLACK_FDS),
        ("threads", |s| s.threads, SLACK_THREADS),
        ("children", |s| s.children, SLACK_CHILDREN),
    ];
    for (what, f, slack) in measures {
        let (a, b) = (peak(first, f), peak(second, f));
        if b > a + slack {
            problems.push(format!("{what} grew from a peak of {a} to {b}"));
        }
    }
    if settled.zombies > 0 {
        problems.push(format!("{} children left unreaped", settled.zombies));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Where [`scripted_runtime`] keeps its store in `dir` (kill_loop's checker reads it).
pub fn store_path(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("store.sqlite")
}

/// A runtime for the gateway harnesses (scale, soak, kill_loop): the SQLite file
/// [`store_path`]`(dir)`, the real jail, the scripted model in single mode, no forge on
/// stagnation; `configure` adjusts the rest.
///
/// # Panics
/// When the store cannot be opened or the jail cannot start: a harness stops loudly.
#[allow(clippy::expect_used)]
pub async fn scripted_runtime(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut aura_core::Config),
) -> aura_core::Runtime {
    let store = aura_store::SqliteStore::open(store_path(dir))
        .await
        .expect("store");
    let mut config = aura_core::Config::default();
    config.data_dir = dir.to_path_buf();
    config.cascade_mode = Some(aura_cognition::CascadeMode::Single);
    config.forge.on_stagnation = false;
    configure(&mut config);
    aura_core::Runtime::builder()
        .config(config)
        .store(std::sync::Arc::new(store))
        .model(std::sync::Arc::new(ForgetfulModel))
        .build()
        .await
        .expect("runtime (the jail needs python3)")
}

/// The scripted model, fresh for every request: the scripted model keeps every request
/// it is sent (for tests to inspect), which in a soak would be growth of our own making.
#[derive(Debug)]
pub struct ForgetfulModel;

#[async_trait]
impl LanguageModel for ForgetfulModel {
    fn capabilities(&self) -> ModelCapabilities {
        ScriptedModel::blueprint().capabilities()
    }
    async fn info(&self) -> aura_cognition::Result<ModelInfo> {
        ScriptedModel::blueprint().info().await
    }
    async fn chat(&self, request: ChatRequest) -> aura_cognition::Result<ChatResponse> {
        ScriptedModel::blueprint().chat(request).await
    }
}

/// A small xorshift: a workload is the same on every run without a `rand` dependency.
pub struct Dice(pub u64);

impl Dice {
    /// A number below `below`, the same sequence on every run.
    pub fn roll(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as usize
    }
}

/// A gateway process's side of its start (kill_loop's and soak's `--serve`): tells the
/// harness that started it where it listens, in `dir/addr` (written whole or not at all).
///
/// # Panics
/// When the file cannot be written: the harness would wait for it in vain.
#[allow(clippy::expect_used)]
pub fn publish_addr(dir: &std::path::Path, addr: std::net::SocketAddr) {
    write_whole(&dir.join("addr"), &addr.to_string()).expect("addr");
}

/// Writes `text` to `path` whole or not at all (a sibling file, then a rename), so a
/// process polling `path` never reads half of it.
pub fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The harness's side: waits until the gateway process started on `dir` has published
/// its address and answers `/v1/health`, and returns the API's base URL.
///
/// # Panics
/// When `exited` reports that the process ended first, or after `limit`.
pub async fn wait_for_gateway(
    dir: &std::path::Path,
    mut exited: impl FnMut() -> Option<std::process::ExitStatus>,
    limit: std::time::Duration,
) -> String {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        if let Ok(addr) = std::fs::read_to_string(dir.join("addr")) {
            let base = format!("http://{addr}/v1");
            if http
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return base;
            }
        }
        if let Some(status) = exited() {
            panic!("the gateway exited at startup: {status}");
        }
        assert!(
            started.elapsed() < limit,
            "the gateway did not start within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
