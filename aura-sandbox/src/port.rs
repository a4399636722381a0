//! The `Sandbox` port: run untrusted Python in isolation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Result;

/// A method's source, visible to the guest as `self.<selector>(…)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodSource {
    /// The method's name.
    pub selector: String,
    /// Python source defining `def <selector>(self, …)`.
    pub source: String,
}

/// Resource limits for one execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time before the whole process tree is killed.
    #[serde(with = "millis")]
    pub wall: Duration,
    /// CPU time.
    #[serde(with = "millis")]
    pub cpu: Duration,
    /// Address space / memory, in bytes.
    pub memory_bytes: u64,
    /// stdout and stderr, each, in bytes; the result JSON too.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(5),
            cpu: Duration::from_secs(5),
            memory_bytes: 256 << 20,
            output_bytes: 1 << 20,
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// One execution: call `selector` on an object, or run tests against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The method to run.
    pub method: MethodSource,
    /// Other methods on the object's delegation chain (`self.other(…)`).
    pub helpers: Vec<MethodSource>,
    /// The object's slots: `self.x` reads them, `self.x = …` writes them.
    pub slots: Map<String, Value>,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// A test module: when set, its `test_*` functions run instead of a call.
    pub tests: Option<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl ExecRequest {
    /// A call of `method` with `args`, on an object with no slots, under default limits.
    pub fn call(method: MethodSource, args: Vec<Value>) -> Self {
        Self {
            method,
            helpers: Vec::new(),
            slots: Map::new(),
            args,
            tests: None,
            limits: Limits::default(),
        }
    }
}

/// Why an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It returned (a call), or every test ran (a test run, passed or not).
    Ok,
    /// The guest raised.
    Exception,
    /// It ran past the wall or CPU limit.
    Timeout,
    /// It ran past the memory limit.
    Memory,
    /// It wrote past the output limit.
    OutputLimit,
    /// It was killed for another reason (a seccomp violation, a signal).
    Killed,
}

/// An exception raised in the guest, as text only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestError {
    /// The exception's type name.
    pub type_name: String,
    /// Its message.
    pub message: String,
    /// The traceback, formatted by the guest.
    pub traceback: String,
}

/// One test's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test function's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The failure, when it failed.
    pub message: Option<String>,
}

/// Resources an execution used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// CPU milliseconds.
    pub cpu_ms: u64,
    /// Peak resident memory, in KiB.
    pub peak_rss_kib: u64,
    /// How many sources (the method, its helpers, a test module) the guest compiled
    /// itself; the others came compiled from the jail's code cache
    /// (`JailSandboxBuilder::code_cache_entries`). Reported by the guest's process, so
    /// informative only. A `DockerSandbox` call compiles every source.
    #[serde(default)]
    pub compiled_sources: u64,
}

/// What an execution produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecOutcome {
    /// Why it ended.
    pub ended: EndReason,
    /// The return value (a call that returned).
    pub value: Option<Value>,
    /// The exception (a call that raised).
    pub error: Option<GuestError>,
    /// Slots the method assigned, with their new values.
    pub slot_changes: Map<String, Value>,
    /// Each test's result (a test run).
    pub tests: Vec<TestResult>,
    /// Captured stdout, capped.
    pub stdout: String,
    /// Captured stderr, capped.
    pub stderr: String,
    /// Resources used.
    pub usage: ResourceUsage,
}

impl ExecOutcome {
    /// True when it returned normally and every test (if any) passed.
    pub fn succeeded(&self) -> bool {
        self.ended == EndReason::Ok && self.tests.iter().all(|t| t.passed)
    }
}

/// What a sandbox backend can do and enforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxCapabilities {
    /// The backend's name ("jail", "docker").
    pub backend: &'static str,
    /// The guest has no network.
    pub network_isolation: bool,
    /// Memory limits are enforced.
    pub memory_limit: bool,
    /// CPU-time limits are enforced.
    pub cpu_limit: bool,
    /// Peak RSS is measured.
    pub measures_rss: bool,
}

impl SandboxCapabilities {
    /// Capabilities of a backend named `backend` that enforces nothing (fields start false).
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            network_isolation: false,
            memory_limit: false,
            cpu_limit: false,
            measures_rss: false,
        }
    }
}

/// Runs untrusted Python methods in isolation.
///
/// Contract (checked by the conformance suite): whatever the guest does, the call
/// returns within the wall limit plus a small margin; the guest cannot read the host's
/// files or environment, reach the network, or see other processes; nothing survives
/// from one call to the next; results cross back only as bounded JSON.
#[cfg_attr(any(test, feature = "test-utils"), mockall::automock)]
#[async_trait]
pub trait Sandbox: Send + Sync + fmt::Debug {
    /// What this backend supports.
    fn capabilities(&self) -> SandboxCapabilities;
    /// What runs the guest code, in words, for health checks and logs (the jail's
    /// interpreter, the Docker image). Default: the backend's name.
    fn describe(&self) -> String {
        self.capabilities().backend.to_string()
    }
    /// Runs one execution.
    async fn execute(&self, request: ExecRequest) -> Result<ExecOutcome>;

    /// Runs a batch of executions (a search's candidates) and returns one outcome per
    /// request, in request order; an empty batch gives an empty list.
    ///
    /// Each request runs isolated as if it ran alone through [`Sandbox::execute`]: a
    /// process of its own, under its own limits, seeing nothing another request of the
    /// batch did (globals, files, IPC objects, slots). A request that loops, exhausts
    /// memory, floods or crashes loses only its own result. A request whose guest broke
    /// the protocol (what `execute` reports as [`Error::Protocol`](crate::Error::Protocol))
    /// gets a [`EndReason::Killed`] outcome with the error on `stderr`, so that one
    /// candidate cannot void the others' results. `Err` only for a broken backend or an invalid
    /// request, as with `execute`; an invalid request is reported before any runs. A
    /// batch returns within the sum of its requests' wall limits plus a margin.
    ///
    /// The default runs the requests one after another through `execute`, which is
    /// correct for any backend; a backend overrides it to run them faster (the jail
    /// runs them on several warm servers at once, Docker in one container).
    async fn execute_batch(&self, requests: Vec<ExecRequest>) -> Result<Vec<ExecOutcome>> {
        for r in &requests {
            crate::protocol::encode_request(r)?;
        }
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let t = std::time::Instant::now();
            let outcome = self.execute(r).await;
            let wall_ms = t.elapsed().as_millis() as u64;
            out.push(crate::protocol::contain(outcome, wall_ms)?);
        }
        Ok(out)
    }
}

/// A sandbox shared across tasks.
pub type DynSandbox = Arc<dyn Sandbox>;

#[cfg(any(target_os = "linux", test, feature = "conformance"))]
/// Polls the futures together until all are done; their outputs in their order.
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::Mutex;

    /// A backend with only `execute`: echoes the selector, or fails as it names.
    #[derive(Debug, Default)]
    struct Echo {
        ran: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Sandbox for Echo {
        fn capabilities(&self) -> SandboxCapabilities {
            SandboxCapabilities::new("echo")
        }

        async fn execute(&self, request: ExecRequest) -> Result<ExecOutcome> {
            let selector = request.method.selector;
            if let Ok(mut ran) = self.ran.lock() {
                ran.push(selector.clone());
            }
            match selector.as_str() {
                "garbled" => Err(Error::Protocol("garbage".into())),
                "down" => Err(Error::Unavailable("no backend".into())),
                _ => Ok(ExecOutcome {
                    ended: EndReason::Ok,
                    value: Some(Value::String(selector)),
                    error: None,
                    slot_changes: Map::new(),
                    tests: Vec::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                    usage: ResourceUsage::default(),
                }),
            }
        }
    }

    fn req(selector: &str) -> ExecRequest {
        ExecRequest::call(
            MethodSource {
                selector: selector.into(),
                source: String::new(),
            },
            Vec::new(),
        )
    }

    fn ran(sb: &Echo) -> Vec<String> {
        sb.ran.lock().map(|r| r.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn the_default_batch_runs_each_request_in_order() {
        let sb = Echo::default();
        let out = sb.execute_batch(Vec::new()).await.ok();
        assert_eq!(out.map(|o| o.len()), Some(0));
        let out = sb
            .execute_batch(vec![req("a"), req("b"), req("c")])
            .await
            .unwrap_or_default();
        let values: Vec<_> = out.into_iter().filter_map(|o| o.value).collect();
        assert_eq!(values, ["a", "b", "c"]);
        assert_eq!(ran(&sb), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn the_default_batch_checks_every_request_first() {
        let sb = Echo::default();
        let r = sb.execute_batch(vec![req("a"), req("not valid")]).await;
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
        assert!(
            ran(&sb).is_empty(),
            "nothing runs before the batch is checked"
        );
    }

    #[tokio::test]
    async fn a_broken_protocol_costs_one_outcome_a_broken_backend_the_batch() {
        let sb = Echo::default();
        let out = sb
            .execute_batch(vec![req("a"), req("garbled"), req("b")])
            .await
            .unwrap_or_default();
        let ended: Vec<_> = out.iter().map(|o| o.ended).collect();
        assert_eq!(ended, [EndReason::Ok, EndReason::Killed, EndReason::Ok]);
        assert!(out[1].stderr.contains("garbage"), "{:?}", out[1]);
        let r = sb.execute_batch(vec![req("a"), req("down")]).await;
        assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    }
}
