//! Shared fixtures for AURA's criterion benchmarks (the benches live in `benches/benches/`).
#![allow(clippy::expect_used)] // bench fixtures: a failed setup should stop the bench loudly

pub mod kill_check;
pub mod plot;
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
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
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
