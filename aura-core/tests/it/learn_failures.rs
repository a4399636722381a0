//! A learn cycle that fails at any step leaves the store exactly as it was (issue #7):
//! every write of the commit transaction fails in turn, the commit itself fails, the
//! sandbox and the model fail — and a process is killed with SIGKILL while it learns,
//! once mid-cycle and once in the middle of the commit transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use crate::common;
use common::events_of;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aura_cognition::{CascadeMode, ChatRequest, ScriptedModel};
use aura_core::forge::{EventKind, Stage};
use aura_core::sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};
use aura_core::store::*;
use aura_core::{Config, Error, LearnRequest, Runtime};
use aura_store::SqliteStore;
use rustix::process::Signal;
use serde_json::{json, Map};

const GOOD_FIB: &str = "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n";
/// Returns `n`: its own assert on 10 fails, so the search goes on past it.
const WRONG_FIB: &str = "def fibonacci(self, n):\n    return n\n";
const FIB_TESTS: &str = "def test_ten():\n    assert obj.fibonacci(10) == 55\n";

fn candidate(tests: &str) -> String {
    json!({"source": GOOD_FIB, "tests": tests, "doc": "the n-th Fibonacci number", "rationale": "iterative"})
        .to_string()
}

fn request() -> LearnRequest {
    LearnRequest {
        selector: "fibonacci".into(),
        request_text: "teach yourself to calculate the fibonacci sequence".into(),
        args: vec![],
    }
}

/// Everything a learn could have written, read straight from the store.
#[derive(Debug, PartialEq)]
struct Snapshot {
    object: Object,
    methods: Vec<Method>,
    memory: Vec<String>,
    committed_events: usize,
    facets: usize,
}

async fn snapshot(store: &dyn Store, id: ObjectId) -> Snapshot {
    let committed = events_of(store, EventKind::LearnCommitted.as_str()).await;
    let mut memory: Vec<String> = store
        .search_memory("fibonacci", 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.node.id.to_string())
        .collect();
    memory.sort();
    Snapshot {
        object: store.get_object(id).await.unwrap(),
        methods: store.list_methods(id).await.unwrap(),
        memory,
        committed_events: committed.len(),
        facets: store.list_facets().await.unwrap().len(),
    }
}

/// What an armed [`FaultyStore`] does when a transaction reaches the named operation.
#[derive(Clone, Debug)]
enum Fault {
    /// The operation fails.
    Fail(&'static str),
    /// The process signals through the marker file, then blocks there for good (to be killed).
    Hang(&'static str, PathBuf),
}

/// A store that injects a [`Fault`] into one named operation of any transaction (or its commit).
#[derive(Debug)]
struct FaultyStore {
    inner: Arc<SqliteStore>,
    fault: Arc<Mutex<Option<Fault>>>,
}

struct FaultyTx {
    inner: Box<dyn Transaction>,
    fault: Arc<Mutex<Option<Fault>>>,
}

impl FaultyTx {
    fn trip(&self, op: &'static str) -> aura_store::Result<()> {
        let fault = self.fault.lock().unwrap().clone();
        match fault {
            Some(Fault::Fail(at)) if at == op => Err(aura_store::Error::Unavailable(format!(
                "injected failure in {op}"
            ))),
            Some(Fault::Hang(at, marker)) if at == op => {
                std::fs::write(&marker, op).unwrap();
                // Block the thread outright: nothing may run on after the marker.
                std::thread::sleep(Duration::from_secs(600));
                unreachable!("the process is killed while it hangs")
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Transaction for FaultyTx {
    async fn get_object(&mut self, id: ObjectId) -> aura_store::Result<Object> {
        self.inner.get_object(id).await
    }
    async fn create_object(&mut self, new: NewObject) -> aura_store::Result<Object> {
        self.trip("create_object")?;
        self.inner.create_object(new).await
    }
    async fn update_object(
        &mut self,
        id: ObjectId,
        rev: u64,
        patch: ObjectPatch,
    ) -> aura_store::Result<Object> {
        self.trip("update_object")?;
        self.inner.update_object(id, rev, patch).await
    }
    async fn delete_object(&mut self, id: ObjectId) -> aura_store::Result<()> {
        self.trip("delete_object")?;
        self.inner.delete_object(id).await
    }
    async fn put_method(&mut self, method: NewMethod) -> aura_store::Result<Method> {
        self.trip("put_method")?;
        self.inner.put_method(method).await
    }
    async fn rollback_method(
        &mut self,
        object: ObjectId,
        selector: &Selector,
        version: u32,
    ) -> aura_store::Result<Method> {
        self.trip("rollback_method")?;
        self.inner.rollback_method(object, selector, version).await
    }
    async fn add_memory_node(&mut self, node: NewMemoryNode) -> aura_store::Result<MemoryNode> {
        self.trip("add_memory_node")?;
        self.inner.add_memory_node(node).await
    }
    async fn add_link(&mut self, link: ContextLink) -> aura_store::Result<()> {
        self.trip("add_link")?;
        self.inner.add_link(link).await
    }
    async fn append_event(&mut self, event: NewAuditEvent) -> aura_store::Result<AuditEvent> {
        // Only the commit's own event: the trail of failed attempts must still be written.
        if event.kind == EventKind::LearnCommitted.as_str() {
            self.trip("append_event")?;
        }
        self.inner.append_event(event).await
    }
    async fn put_facet(&mut self, facet: Facet) -> aura_store::Result<Facet> {
        self.trip("put_facet")?;
        self.inner.put_facet(facet).await
    }
    async fn commit(self: Box<Self>) -> aura_store::Result<()> {
        self.trip("commit")?; // dropping `inner` unfinished rolls it back
        self.inner.commit().await
    }
    async fn rollback(self: Box<Self>) -> aura_store::Result<()> {
        self.inner.rollback().await
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
    async fn begin(&self) -> aura_store::Result<Box<dyn Transaction>> {
        Ok(Box::new(FaultyTx {
            inner: self.inner.begin().await?,
            fault: self.fault.clone(),
        }))
    }
    async fn get_object(&self, id: ObjectId) -> aura_store::Result<Object> {
        self.inner.get_object(id).await
    }
    async fn find_object(&self, name: &str) -> aura_store::Result<Option<Object>> {
        self.inner.find_object(name).await
    }
    async fn list_objects(&self, page: Page) -> aura_store::Result<Vec<Object>> {
        self.inner.list_objects(page).await
    }
    async fn get_method(&self, o: ObjectId, s: &Selector) -> aura_store::Result<Option<Method>> {
        self.inner.get_method(o, s).await
    }
    async fn list_methods(&self, o: ObjectId) -> aura_store::Result<Vec<Method>> {
        self.inner.list_methods(o).await
    }
    async fn method_versions(&self, o: ObjectId, s: &Selector) -> aura_store::Result<Vec<Method>> {
        self.inner.method_versions(o, s).await
    }
    async fn get_memory_node(&self, id: NodeId) -> aura_store::Result<MemoryNode> {
        self.inner.get_memory_node(id).await
    }
    async fn neighbours(
        &self,
        from: NodeRef,
        depth: u32,
        limit: u32,
    ) -> aura_store::Result<Vec<Neighbour>> {
        self.inner.neighbours(from, depth, limit).await
    }
    async fn search_memory(&self, q: &str, limit: u32) -> aura_store::Result<Vec<SearchHit>> {
        self.inner.search_memory(q, limit).await
    }
    async fn query_audit(&self, q: &AuditQuery) -> aura_store::Result<AuditPage> {
        self.inner.query_audit(q).await
    }
    async fn get_facet(&self, name: &str) -> aura_store::Result<Facet> {
        self.inner.get_facet(name).await
    }
    async fn list_facets(&self) -> aura_store::Result<Vec<Facet>> {
        self.inner.list_facets().await
    }
}

async fn runtime_on(
    store: Arc<dyn Store>,
    model: ScriptedModel,
    sandbox: Arc<dyn Sandbox>,
) -> Runtime {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    config.learn_samples = 2;
    Runtime::builder()
        .config(config)
        .store(store)
        .sandbox(sandbox)
        .model(Arc::new(model))
        .build()
        .await
        .unwrap()
}

fn good_model() -> ScriptedModel {
    ScriptedModel::from_fn(|_req: &ChatRequest| Ok(candidate(FIB_TESTS)))
}

#[tokio::test]
async fn a_failure_at_any_write_of_the_commit_leaves_the_store_as_it_was() {
    for op in [
        "append_event",
        "put_method",
        "add_memory_node",
        "add_link",
        "commit",
    ] {
        let inner = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let fault = Arc::new(Mutex::new(None));
        let store = Arc::new(FaultyStore {
            inner: inner.clone(),
            fault: fault.clone(),
        });
        let rt = runtime_on(store, good_model(), Arc::new(common::jail())).await;
        let calc = rt
            .create_object(
                NewObject::named("calc")
                    .with_slots(Map::from_iter([("base".to_string(), json!(1))])),
            )
            .await
            .unwrap();
        let before = snapshot(inner.as_ref(), calc.id).await;

        *fault.lock().unwrap() = Some(Fault::Fail(op));
        let err = rt.learn(calc.id, request()).await.unwrap_err();
        assert!(
            err.to_string().contains("injected failure"),
            "{op}: the caller hears the store's failure: {err}"
        );
        assert_eq!(
            snapshot(inner.as_ref(), calc.id).await,
            before,
            "{op}: nothing was written"
        );

        // The store is still sound: the same learn commits once the fault is gone.
        *fault.lock().unwrap() = None;
        rt.learn(calc.id, request()).await.unwrap();
        assert_eq!(
            rt.send(calc.id, "fibonacci", vec![json!(10)])
                .await
                .unwrap(),
            json!(55),
            "{op}"
        );
    }
}

/// A sandbox that is down.
#[derive(Debug)]
struct DownSandbox;

#[async_trait]
impl Sandbox for DownSandbox {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("down")
    }
    async fn execute(&self, _request: ExecRequest) -> aura_core::sandbox::Result<ExecOutcome> {
        Err(aura_core::sandbox::Error::Unavailable(
            "injected: the sandbox is down".into(),
        ))
    }
}

#[tokio::test]
async fn a_sandbox_that_is_down_fails_the_learn_and_writes_nothing() {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let rt = runtime_on(store.clone(), good_model(), Arc::new(DownSandbox)).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let before = snapshot(store.as_ref(), calc.id).await;
    let err = rt.learn(calc.id, request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                port: "sandbox",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(store.as_ref(), calc.id).await, before);
}

#[tokio::test]
async fn a_model_that_fails_every_time_is_refused_and_only_the_trail_is_written() {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let model = ScriptedModel::from_fn(|_req: &ChatRequest| {
        Err(aura_cognition::Error::Unavailable(
            "injected: the model server is down".into(),
        ))
    });
    let rt = runtime_on(store.clone(), model, Arc::new(common::jail())).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let before = snapshot(store.as_ref(), calc.id).await;
    let err = rt.learn(calc.id, request()).await.unwrap_err();
    let Error::Refused { failures, .. } = &err else {
        panic!("expected a refusal, got {err}");
    };
    let (search, candidates) = failures.split_last().unwrap();
    assert_eq!(search.stage, Stage::Search);
    assert!(candidates
        .iter()
        .all(|f| f.stage == Stage::Model && f.message.contains("down")));
    assert_eq!(snapshot(store.as_ref(), calc.id).await, before);
    assert_eq!(
        events_of(store.as_ref(), EventKind::LearnRefused.as_str())
            .await
            .len(),
        1
    );
}

/// A model backend that accepts the request and never answers.
#[derive(Debug)]
struct HangingModel;

#[async_trait]
impl aura_cognition::LanguageModel for HangingModel {
    fn capabilities(&self) -> aura_cognition::ModelCapabilities {
        ScriptedModel::blueprint().capabilities()
    }
    async fn info(&self) -> aura_cognition::Result<aura_cognition::ModelInfo> {
        ScriptedModel::blueprint().info().await
    }
    async fn chat(
        &self,
        _request: ChatRequest,
    ) -> aura_cognition::Result<aura_cognition::ChatResponse> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_model_that_hangs_is_cut_off_by_the_budget_and_the_learn_refused_cleanly() {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_budget = Duration::from_secs(1);
    let rt = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(HangingModel))
        .build()
        .await
        .unwrap();
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let before = snapshot(store.as_ref(), calc.id).await;
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(30), rt.learn(calc.id, request()))
        .await
        .expect("the learn ends although the model never answers")
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let Error::Refused { failures, .. } = &err else {
        panic!("expected a refusal, got {err}");
    };
    let search = failures.last().unwrap();
    assert_eq!(search.stage, Stage::Search);
    assert!(
        search.message.contains("did not answer in time"),
        "{}",
        search.message
    );
    assert_eq!(snapshot(store.as_ref(), calc.id).await, before);
    assert_eq!(
        events_of(store.as_ref(), EventKind::LearnRefused.as_str())
            .await
            .len(),
        1
    );
    // The learn lock was given back: the next learn starts (and is cut off) too.
    let again = tokio::time::timeout(Duration::from_secs(30), rt.learn(calc.id, request())).await;
    assert!(matches!(again, Ok(Err(Error::Refused { .. }))));
    // A message no rule recognises goes to the planner's model: cut off the same way.
    let told = tokio::time::timeout(
        Duration::from_secs(30),
        rt.tell(calc.id, "what would a cat make of quaternions"),
    )
    .await
    .expect("the message ends although the model never answers");
    assert!(
        matches!(&told, Err(Error::Unavailable { port: "model", message }) if message.contains("did not answer")),
        "{told:?}"
    );
    assert_eq!(snapshot(store.as_ref(), calc.id).await, before);
}

// --- killing the process mid-cycle -------------------------------------------------

const KILL_ENV: &str = "AURA_TEST_KILL_CHILD";

/// The child half of the kill tests: learns on the store at `$AURA_TEST_KILL_CHILD`
/// (`<where>:<store path>`) and signals through a marker file when it reaches `where`,
/// then waits there to be killed. Does nothing in an ordinary test run.
#[tokio::test]
async fn kill_child_entry() {
    let Ok(spec) = std::env::var(KILL_ENV) else {
        return;
    };
    let (stage, path) = spec.split_once(':').unwrap();
    let path = PathBuf::from(path);
    let marker = path.with_extension("reached");
    let inner = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = match stage {
        // Killed while the model "thinks": mid-cycle, nothing begun in the store.
        "model" => {
            let marker = marker.clone();
            let model = ScriptedModel::from_fn(move |_req: &ChatRequest| {
                std::fs::write(&marker, b"model").unwrap();
                std::thread::sleep(Duration::from_secs(600));
                Ok(candidate(FIB_TESTS))
            });
            runtime_on(inner, model, Arc::new(common::jail())).await
        }
        // Killed mid-search: the first sample was drawn, audited and run in the
        // sandbox (its own assert fails, so the search goes on), and the second
        // draw is where the process dies.
        "search" => {
            let marker = marker.clone();
            let first_seed = Mutex::new(None);
            let model = ScriptedModel::from_fn(move |req: &ChatRequest| {
                let mut first = first_seed.lock().unwrap();
                if first.is_none() || *first == Some(req.options.seed) {
                    *first = Some(req.options.seed);
                    return Ok(json!({"source": WRONG_FIB, "tests": FIB_TESTS}).to_string());
                }
                std::fs::write(&marker, b"search").unwrap();
                std::thread::sleep(Duration::from_secs(600));
                Ok(candidate(FIB_TESTS))
            });
            runtime_on(inner, model, Arc::new(common::jail())).await
        }
        // Killed inside the commit transaction at its first link: by then the audit
        // event, the method version and a memory node are written but not committed.
        "commit" => {
            let store = Arc::new(FaultyStore {
                inner,
                fault: Arc::new(Mutex::new(Some(Fault::Hang("add_link", marker)))),
            });
            runtime_on(store, good_model(), Arc::new(common::jail())).await
        }
        other => panic!("unknown stage {other}"),
    };
    let calc = rt.find("calc").await.unwrap();
    let _ = rt.learn(calc.id, request()).await;
    panic!("the child should have been killed before its learn finished");
}

/// Runs the child at `stage`, stops it with `signal` once it gets there, and checks
/// the store it left behind.
async fn kill_mid_learn(stage: &str, signal: Signal) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let calc_id = {
        let store = SqliteStore::open(&path).await.unwrap();
        let calc = store.create_object(NewObject::named("calc")).await.unwrap();
        calc.id
    };
    let before = snapshot(&SqliteStore::open(&path).await.unwrap(), calc_id).await;

    let marker = path.with_extension("reached");
    // The test's name in this binary: its module path without the crate's.
    let test_name = concat!(module_path!(), "::kill_child_entry");
    let test_name = test_name
        .split_once("::")
        .map_or(test_name, |(_, rest)| rest);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(KILL_ENV, format!("{stage}:{}", path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the child never reached {stage}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited before {stage}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no destructors, no rollback, no unwinding. SIGINT: what Ctrl-C sends.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!(
                "the child outlived {signal:?} by 60 s: a process started with the signal \
                 ignored (a background job of a non-interactive shell ignores SIGINT) passes \
                 that on to its children; run the tests in the foreground"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !status.success(),
        "the child finished instead of being stopped"
    );

    // A fresh process opening the file sees the store exactly as it was before the learn.
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut after = snapshot(store.as_ref(), calc_id).await;
    // The root object may have been created by the child's runtime; that is not the learn's.
    after.object = store.get_object(calc_id).await.unwrap();
    assert_eq!(
        after, before,
        "killed at {stage}: nothing of the learn persisted"
    );
    if stage == "search" {
        // The search had got somewhere: the first candidate's verdict is in the trail.
        let failed = events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str()).await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].payload["failure"]["stage"], "own tests");
    }

    // And it is sound: a learn in this process commits.
    let rt = runtime_on(store, good_model(), Arc::new(common::jail())).await;
    rt.learn(calc_id, request()).await.unwrap();
    assert_eq!(
        rt.send(calc_id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
}

#[tokio::test]
async fn killing_the_process_mid_cycle_loses_nothing() {
    kill_mid_learn("model", Signal::KILL).await;
}

#[tokio::test]
async fn ctrl_c_mid_search_after_a_candidate_ran_loses_nothing() {
    kill_mid_learn("search", Signal::INT).await;
}

#[tokio::test]
async fn killing_the_process_mid_search_after_a_candidate_ran_loses_nothing() {
    kill_mid_learn("search", Signal::KILL).await;
}

#[tokio::test]
async fn killing_the_process_inside_the_commit_transaction_loses_nothing() {
    kill_mid_learn("commit", Signal::KILL).await;
}
