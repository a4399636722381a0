//! The behaviour suite every [`Sandbox`] backend runs (`feature = "conformance"`).
//!
//! Each check is a plain `async fn(&dyn Sandbox)` that panics with a clear message when
//! the backend misbehaves; [`CHECKS`] lists them all and [`run_all`] runs the list.
//! The isolation checks assume *no guard* in front of the sandbox: the guest code tries
//! its worst directly. The `batch_*` checks run the same guest code through
//! [`Sandbox::execute_batch`], mixed with ordinary candidates in one batch.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{EndReason, Error, ExecOutcome, ExecRequest, Limits, MethodSource, Sandbox};

/// A check of the suite.
pub type Check = for<'a> fn(&'a dyn Sandbox) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, by name, in a sensible order.
        pub const CHECKS: &[(&str, Check)] = &[
            $((stringify!($name), |s| Box::pin($name(s)))),*
        ];
    };
}

checks![
    return_values,
    exceptions,
    unserialisable_return_value,
    slot_changes,
    big_integers,
    helper_calls,
    captured_output,
    test_runs,
    broken_test_module,
    limit_infinite_loop,
    limit_cpu_time,
    limit_memory_bomb,
    limit_output_flood,
    limit_fork_bomb,
    limit_deep_recursion,
    forbidden_syscall_kills,
    garbage_reply,
    interpreter_killed_mid_call,
    nothing_leaks_between_calls,
    nothing_reaches_the_next_call,
    concurrent_calls,
    isolation_host_files,
    isolation_write_outside_scratch,
    isolation_network,
    isolation_environment,
    isolation_processes,
    batch_outcomes_in_order,
    batch_isolation,
    batch_dos_contained,
    batch_isolation_escape,
];

/// Runs every check in [`CHECKS`], printing each name as it goes.
pub async fn run_all(sandbox: &dyn Sandbox) {
    for (name, check) in CHECKS {
        let t = Instant::now();
        check(sandbox).await;
        println!("conformance {name}: ok ({} ms)", t.elapsed().as_millis());
    }
}

fn method(selector: &str, source: &str) -> MethodSource {
    MethodSource {
        selector: selector.into(),
        source: source.into(),
    }
}

fn call(source: &str, args: Vec<Value>) -> ExecRequest {
    let selector = source
        .trim_start()
        .strip_prefix("def ")
        .and_then(|s| s.split('(').next())
        .unwrap_or("f")
        .to_string();
    ExecRequest::call(method(&selector, source), args)
}

async fn run(sandbox: &dyn Sandbox, req: ExecRequest) -> ExecOutcome {
    match sandbox.execute(req).await {
        Ok(o) => o,
        Err(e) => panic!("execute failed: {e}"),
    }
}

async fn run_batch(sandbox: &dyn Sandbox, reqs: Vec<ExecRequest>) -> Vec<ExecOutcome> {
    let n = reqs.len();
    match sandbox.execute_batch(reqs).await {
        Ok(o) => {
            assert_eq!(o.len(), n, "a batch of {n} gave {} outcomes", o.len());
            o
        }
        Err(e) => panic!("execute_batch failed: {e}"),
    }
}

/// An ordinary candidate of a batch: returns `i`.
fn candidate(i: usize) -> ExecRequest {
    call(
        &format!("def f(self, x):\n    return x + {i}\n"),
        vec![json!(0)],
    )
}

fn assert_candidate(o: &ExecOutcome, i: usize) {
    assert!(
        o.ended == EndReason::Ok && o.value == Some(json!(i)),
        "ordinary candidate {i} of the batch: {o:#?}"
    );
}

async fn run_ok(sandbox: &dyn Sandbox, req: ExecRequest) -> ExecOutcome {
    let o = run(sandbox, req).await;
    assert_returned(&o);
    o
}

fn assert_returned(o: &ExecOutcome) {
    assert_eq!(
        o.ended,
        EndReason::Ok,
        "expected a clean return, got {o:#?}"
    );
}

/// The per-call overhead limits are measured on top of: twice the slower of two
/// trivial calls (a warm fork for the jail, a container start for Docker).
async fn baseline(sandbox: &dyn Sandbox) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        run_ok(sandbox, call("def f(self):\n    return 1\n", vec![])).await;
        worst = worst.max(t.elapsed());
    }
    worst * 2
}

async fn still_healthy(sandbox: &dyn Sandbox) {
    let o = run_ok(
        sandbox,
        call("def f(self, x):\n    return x + 1\n", vec![json!(41)]),
    )
    .await;
    assert_eq!(
        o.value,
        Some(json!(42)),
        "the sandbox is unhealthy after a limit test"
    );
}

async fn ends_within(
    sandbox: &dyn Sandbox,
    req: ExecRequest,
    limit: Duration,
    want: EndReason,
) -> ExecOutcome {
    let base = baseline(sandbox).await;
    let t = Instant::now();
    let o = run(sandbox, req).await;
    let took = t.elapsed();
    assert_eq!(o.ended, want, "wrong end reason: {o:#?}");
    // Measured by the supervisor, from the guest's start to its end.
    let guest_ms = u128::from(o.usage.wall_ms);
    assert!(
        guest_ms <= limit.as_millis() + 100,
        "the guest ran {guest_ms} ms, more than the limit {limit:?} + 100 ms"
    );
    // Measured by the host, around the whole call.
    let allowed = limit + Duration::from_millis(100) + base;
    assert!(
        took <= allowed,
        "took {took:?}, more than the limit {limit:?} + 100 ms + call overhead {base:?}"
    );
    still_healthy(sandbox).await;
    o
}

/// Returned JSON values come back intact.
pub async fn return_values(sandbox: &dyn Sandbox) {
    let src = "def f(self, a, b):\n    return {'sum': a + b, 'list': [a, b], 'none': None, 's': 'h\u{e9}', 'f': 1.5, 't': True}\n";
    let o = run_ok(sandbox, call(src, vec![json!(2), json!(3)])).await;
    assert_eq!(
        o.value,
        Some(json!({"sum": 5, "list": [2, 3], "none": null, "s": "h\u{e9}", "f": 1.5, "t": true}))
    );
    assert!(o.error.is_none() && o.slot_changes.is_empty() && o.tests.is_empty());
    assert!(o.succeeded());
    let o = run_ok(sandbox, call("def g(self):\n    pass\n", vec![])).await;
    assert_eq!(o.value, Some(Value::Null));
}

/// A raise is an exception outcome with type, message and a guest traceback.
pub async fn exceptions(sandbox: &dyn Sandbox) {
    let o = run(
        sandbox,
        call(
            "def f(self):\n    x = 1\n    raise ValueError('boom')\n",
            vec![],
        ),
    )
    .await;
    assert_eq!(o.ended, EndReason::Exception);
    let e = o.error.unwrap_or_else(|| panic!("no error"));
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("ValueError", "boom")
    );
    assert!(
        e.traceback.contains("line 3") && e.traceback.contains("ValueError: boom"),
        "{}",
        e.traceback
    );
    assert!(
        !e.traceback.contains("runner"),
        "runner frames leak into the traceback: {}",
        e.traceback
    );
    let o = run(sandbox, call("def f(self):\n    return (\n", vec![])).await;
    assert_eq!(o.ended, EndReason::Exception);
    assert_eq!(o.error.map(|e| e.type_name), Some("SyntaxError".into()));
    let o = run(
        sandbox,
        call("def f(self):\n    import sys\n    sys.exit(3)\n", vec![]),
    )
    .await;
    assert_eq!(o.ended, EndReason::Exception);
    assert_eq!(o.error.map(|e| e.type_name), Some("SystemExit".into()));
    let o = run(
        sandbox,
        ExecRequest::call(method("missing", "def other(self):\n    pass\n"), vec![]),
    )
    .await;
    assert_eq!(o.ended, EndReason::Exception, "{o:?}");
}

/// A return value JSON cannot carry is a clear exception outcome.
pub async fn unserialisable_return_value(sandbox: &dyn Sandbox) {
    for body in [
        "return object()",
        "return {1, 2}",
        "return float('nan')",
        "self.x = object()",
    ] {
        let o = run(
            sandbox,
            call(&format!("def f(self):\n    {body}\n"), vec![]),
        )
        .await;
        assert_eq!(o.ended, EndReason::Exception, "{body}: {o:?}");
        let e = o.error.unwrap_or_else(|| panic!("no error"));
        assert!(
            e.type_name == "TypeError" && e.message.contains("JSON"),
            "{body}: {e:?}"
        );
    }
}

/// Assigned and mutated slots come back; untouched ones do not.
pub async fn slot_changes(sandbox: &dyn Sandbox) {
    let src = "def bump(self, by):\n    self.count = self.count + by\n    self.items.append(by)\n    self.fresh = 'new'\n    return self.keep\n";
    let mut req = call(src, vec![json!(2)]);
    req.slots = json!({"count": 1, "items": [1], "keep": "k", "other": {"a": 1}})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let o = run_ok(sandbox, req).await;
    assert_eq!(o.value, Some(json!("k")));
    assert_eq!(
        Value::Object(o.slot_changes),
        json!({"count": 3, "items": [1, 2], "fresh": "new"})
    );
    let o = run(
        sandbox,
        call("def f(self):\n    return self.nope\n", vec![]),
    )
    .await;
    assert_eq!(o.error.map(|e| e.type_name), Some("AttributeError".into()));
}

/// Integers beyond 64 bits cross both ways exactly, as `{"$int": "<digits>"}`: in
/// arguments, return values and slots. Those within `i64`/`u64` stay JSON numbers, and
/// a guest's own dict of that one key is refused rather than misread later.
pub async fn big_integers(sandbox: &dyn Sandbox) {
    let src = "def grow(self, n):\n    self.total = self.total * n\n    \
               return [n + 1, self.total, 2 ** 64 - 1, -2 ** 63, -2 ** 64, n == 2 ** 70]\n";
    let mut req = call(src, vec![json!({"$int": "1180591620717411303424"})]);
    req.slots = json!({"total": {"$int": "-36893488147419103232"}})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let o = run_ok(sandbox, req).await;
    assert_eq!(
        o.value,
        Some(json!([
            {"$int": "1180591620717411303425"},
            {"$int": "-43556142965880123323311949751266331066368"},
            u64::MAX,
            i64::MIN,
            {"$int": "-18446744073709551616"},
            true
        ]))
    );
    assert_eq!(
        Value::Object(o.slot_changes),
        json!({"total": {"$int": "-43556142965880123323311949751266331066368"}})
    );
    let o = run(
        sandbox,
        call("def f(self):\n    return {'$int': '12'}\n", vec![]),
    )
    .await;
    let e = o
        .error
        .unwrap_or_else(|| panic!("the reserved dict came back: {:?}", o.value));
    assert!(
        e.type_name == "TypeError" && e.message.contains("reserved"),
        "{e:?}"
    );
    // Not an integer's shape: an ordinary dict, both ways.
    let o = run_ok(
        sandbox,
        call(
            "def f(self, d):\n    return d\n",
            vec![json!({"$int": "x"})],
        ),
    )
    .await;
    assert_eq!(o.value, Some(json!({"$int": "x"})));
}

/// `self.other(…)` reaches the helpers, which see the same slots.
pub async fn helper_calls(sandbox: &dyn Sandbox) {
    let mut req = call(
        "def f(self, x):\n    return self.twice(x) + self.base()\n",
        vec![json!(5)],
    );
    req.helpers = vec![
        method(
            "twice",
            "def twice(self, x):\n    self.seen = x\n    return 2 * x\n",
        ),
        method("base", "def base(self):\n    return self.offset\n"),
    ];
    req.slots = json!({"offset": 100})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let o = run_ok(sandbox, req).await;
    assert_eq!(o.value, Some(json!(110)));
    assert_eq!(o.slot_changes.get("seen"), Some(&json!(5)));
}

/// print() to stdout and stderr is captured.
pub async fn captured_output(sandbox: &dyn Sandbox) {
    let src = "def f(self):\n    import sys\n    print('hello')\n    print('oops', file=sys.stderr)\n    return 0\n";
    let o = run_ok(sandbox, call(src, vec![])).await;
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("hello\n", "oops\n")
    );
}

/// Test modules run against the method: per-test pass/fail with messages, each test
/// with a fresh object whose class no earlier test could patch.
pub async fn test_runs(sandbox: &dyn Sandbox) {
    let mut req = call(
        "def double(self, x):\n    self.last = x\n    return 2 * x\n",
        vec![],
    );
    req.slots = json!({"last": 0}).as_object().cloned().unwrap_or_default();
    req.tests = Some(
        "def test_global():\n    assert obj.double(2) == 4\n\n\
         def test_param(o):\n    o.double(3)\n    assert o.last == 3\n\n\
         def test_fresh_object():\n    assert obj.last == 0\n\n\
         def test_fails():\n    assert obj.double(1) == 3, 'one doubled'\n\n\
         def test_raises():\n    obj.nothing()\n\n\
         def test_patch_class(o):\n    type(o).double = lambda self, x: 0\n\n\
         def test_class_unpatched(o):\n    assert o.double(5) == 10\n\n\
         def helper_not_a_test():\n    raise RuntimeError\n"
            .into(),
    );
    let o = run(sandbox, req).await;
    assert_eq!(o.ended, EndReason::Ok, "{o:#?}");
    let got: Vec<(&str, bool)> = o
        .tests
        .iter()
        .map(|t| (t.name.as_str(), t.passed))
        .collect();
    assert_eq!(
        got,
        [
            ("test_global", true),
            ("test_param", true),
            ("test_fresh_object", true),
            ("test_fails", false),
            ("test_raises", false),
            ("test_patch_class", false),
            ("test_class_unpatched", true)
        ]
    );
    let msg = o.tests[3].message.clone().unwrap_or_default();
    assert!(
        msg.contains("AssertionError") && msg.contains("one doubled"),
        "{msg}"
    );
    assert!(o.tests[4]
        .message
        .as_deref()
        .unwrap_or("")
        .contains("AttributeError"));
    assert!(!o.succeeded());
}

/// A test module that does not compile is an exception outcome.
pub async fn broken_test_module(sandbox: &dyn Sandbox) {
    let mut req = call("def f(self):\n    return 1\n", vec![]);
    req.tests = Some("def test_x(:\n".into());
    let o = run(sandbox, req).await;
    assert_eq!(o.ended, EndReason::Exception);
    assert_eq!(o.error.map(|e| e.type_name), Some("SyntaxError".into()));
}

fn limited(src: &str, f: impl FnOnce(&mut Limits)) -> ExecRequest {
    let mut req = call(src, vec![]);
    f(&mut req.limits);
    req
}

const BUSY_LOOP: &str = "def f(self):\n    while True:\n        pass\n";
const HUGE_ALLOCATION: &str = "def f(self):\n    x = bytearray(1 << 34)\n    return len(x)\n";
const MEMORY_HOG: &str =
    "def f(self):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 20))\n";
const PRINT_FLOOD: &str = "def f(self):\n    while True:\n        print('x' * 1000)\n";
const FORK_BOMB: &str = "def f(self):\n    import os\n    while True:\n        os.fork()\n";
const SEGFAULT: &str = "def f(self):\n    import ctypes\n    return ctypes.string_at(0)\n";
const GARBAGE_REPLY: &str = "def f(self):\n    import os\n    for fd in range(3, 32):\n        try:\n            os.write(fd, b'\\x00garbage{{{')\n        except OSError:\n            pass\n    os._exit(0)\n";

/// An infinite loop ends `Timeout` at the wall limit.
pub async fn limit_infinite_loop(sandbox: &dyn Sandbox) {
    let wall = Duration::from_millis(1000);
    let req = limited(BUSY_LOOP, |l| l.wall = wall);
    let o = ends_within(sandbox, req, wall, EndReason::Timeout).await;
    assert!(o.usage.wall_ms >= 900, "{:?}", o.usage);
    let req = limited("def f(self):\n    import time\n    time.sleep(60)\n", |l| {
        l.wall = wall
    });
    ends_within(sandbox, req, wall, EndReason::Timeout).await;
}

/// Spinning past the CPU limit ends `Timeout` (CPU limits are whole seconds).
pub async fn limit_cpu_time(sandbox: &dyn Sandbox) {
    let req = limited(BUSY_LOOP, |l| {
        l.cpu = Duration::from_secs(1);
        // Generous: on a loaded host one second of CPU can take many seconds of wall.
        l.wall = Duration::from_secs(30);
    });
    // CPU time, not wall time, is what this limit bounds (the host may be busy): it
    // ends long before the wall limit, after most of a second of CPU and not much more.
    // The lower bound is loose: the child's lock-down before the request counts against
    // the same limit, and on a host busy elsewhere the guest was seen ending at 886 ms.
    let o = run(sandbox, req).await;
    assert_eq!(o.ended, EndReason::Timeout, "{o:?}");
    assert!(
        o.usage.wall_ms < 30_000,
        "the wall limit fired: {:?}",
        o.usage
    );
    assert!((500..=1100).contains(&o.usage.cpu_ms), "{:?}", o.usage);
    still_healthy(sandbox).await;
}

/// Allocating past the memory limit ends `Memory`.
pub async fn limit_memory_bomb(sandbox: &dyn Sandbox) {
    let wall = Duration::from_secs(5);
    for src in [HUGE_ALLOCATION, MEMORY_HOG] {
        let req = limited(src, |l| {
            l.memory_bytes = 64 << 20;
            l.wall = wall;
        });
        let o = ends_within(sandbox, req, wall, EndReason::Memory).await;
        assert!(o.usage.peak_rss_kib < 400 << 10, "{:?}", o.usage);
    }
}

/// Writing past the output limit ends `OutputLimit`, with output capped.
pub async fn limit_output_flood(sandbox: &dyn Sandbox) {
    let wall = Duration::from_secs(5);
    let srcs = [
        PRINT_FLOOD,
        "def f(self):\n    while True:\n        try:\n            print('y' * 1000)\n        except BaseException:\n            pass\n",
        "def f(self):\n    return 'z' * (1 << 20)\n",
        "def f(self):\n    self.big = 'z' * (1 << 20)\n",
    ];
    for src in srcs {
        let req = limited(src, |l| {
            l.output_bytes = 64 << 10;
            l.wall = wall;
        });
        let o = ends_within(sandbox, req, wall, EndReason::OutputLimit).await;
        assert!(o.stdout.len() <= 64 << 10 && o.value.is_none(), "{src}");
    }
}

/// Creating processes fails inside the guest (an exception), and the host is untouched.
pub async fn limit_fork_bomb(sandbox: &dyn Sandbox) {
    let wall = Duration::from_secs(3);
    for src in [
        FORK_BOMB,
        "def f(self):\n    import subprocess\n    return subprocess.run(['true']).returncode\n",
        "def f(self):\n    import os\n    os.execv('/usr/bin/true', ['true'])\n",
    ] {
        let req = limited(src, |l| l.wall = wall);
        let o = ends_within(sandbox, req, wall, EndReason::Exception).await;
        let e = o.error.unwrap_or_else(|| panic!("no error"));
        assert!(
            e.type_name.contains("Permission") || e.message.contains("not permitted"),
            "{src}: {e:?}"
        );
    }
}

/// Unbounded recursion ends as an exception (RecursionError); raising the recursion
/// limit first ends in a kill or a memory error, never a hang or a host crash.
pub async fn limit_deep_recursion(sandbox: &dyn Sandbox) {
    let wall = Duration::from_secs(5);
    let req = limited("def f(self, n=0):\n    return self.f(n + 1)\n", |l| {
        l.wall = wall
    });
    let o = ends_within(sandbox, req, wall, EndReason::Exception).await;
    assert_eq!(o.error.map(|e| e.type_name), Some("RecursionError".into()));
    let src = "def f(self):\n    import sys\n    sys.setrecursionlimit(10 ** 8)\n    def r(n):\n        return r(n + 1) + 1\n    return r(0)\n";
    let base = baseline(sandbox).await;
    let t = Instant::now();
    let o = run(
        sandbox,
        limited(src, |l| {
            l.wall = wall;
            l.memory_bytes = 64 << 20;
        }),
    )
    .await;
    let took = t.elapsed();
    assert!(
        took <= wall + Duration::from_millis(100) + base,
        "took {took:?}: {o:?}"
    );
    assert!(
        matches!(
            o.ended,
            EndReason::Killed | EndReason::Memory | EndReason::Exception | EndReason::Timeout
        ),
        "{o:?}"
    );
    still_healthy(sandbox).await;
}

/// The guest's interpreter killed from outside mid-call (the OOM killer, an operator's
/// `kill -9`): the call ends at once as `Killed` instead of hanging until its wall
/// limit, and the next call runs normally. The guest holds a file whose name carries a
/// token; the check finds the process holding it through the host's `/proc` (so the
/// backend must run its guests on this host) and kills it.
pub async fn interpreter_killed_mid_call(sandbox: &dyn Sandbox) {
    let token = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let src = "def f(self, token):\n    import time\n    held = open('victim-' + token, 'w')\n    time.sleep(60)\n    return 'survived'\n";
    let mut req = call(src, vec![json!(token)]);
    req.limits.wall = Duration::from_secs(90);
    let marker = format!("victim-{token}");
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(sandbox.execute(req), kill_when_held(&marker, Some))
    })
    .await;
    let Ok((outcome, killed)) = ended else {
        panic!("the call hung after its interpreter was killed");
    };
    assert!(
        killed.is_some(),
        "no process of this host held {marker}: the guest never started, or runs elsewhere"
    );
    match outcome {
        Ok(o) => {
            assert_eq!(o.ended, EndReason::Killed, "{o:?}");
            assert_eq!(o.value, None, "{o:?}");
        }
        Err(e) => panic!("a killed interpreter is an outcome (Killed), not an error: {e}"),
    }
    still_healthy(sandbox).await;
}

/// Waits (up to 20 s) for a process of this host to hold a file whose path ends with
/// `marker` open, then SIGKILLs the process `victim` names for it (the holder itself,
/// or its parent, say). The pid killed, or `None` if none held it or the kill failed.
pub async fn kill_when_held(marker: &str, victim: impl Fn(u32) -> Option<u32>) -> Option<u32> {
    let pid = victim(holder_of(marker).await?)?;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    killed.then_some(pid)
}

/// Waits (up to 20 s) for a process of this host to hold a file whose path ends with
/// `marker` open, and returns its pid (`None` if none did).
pub async fn holder_of(marker: &str) -> Option<u32> {
    for _ in 0..400 {
        if let Some(holder) = process_holding(marker) {
            return Some(holder);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The process of this host that holds a file whose path ends with `name` open (the
/// kill checks find their guest this way, through any pid namespace).
fn process_holding(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let holds = std::fs::read_dir(entry.path().join("fd"))
                .ok()?
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.ends_with(name)));
            holds.then_some(pid)
        })
}

/// A dangerous system call (here ptrace, through ctypes) kills the guest.
pub async fn forbidden_syscall_kills(sandbox: &dyn Sandbox) {
    let src = "def f(self):\n    import ctypes\n    return ctypes.CDLL(None).ptrace(16, 1, 0, 0)\n";
    let o = run(sandbox, call(src, vec![])).await;
    assert_eq!(o.ended, EndReason::Killed, "{o:?}");
    still_healthy(sandbox).await;
}

/// A guest that forges garbage or oversize replies gets a protocol error or an
/// output-limit outcome, and the sandbox keeps working.
pub async fn garbage_reply(sandbox: &dyn Sandbox) {
    match sandbox.execute(call(GARBAGE_REPLY, vec![])).await {
        Err(Error::Protocol(_)) => {}
        Ok(o) if o.ended == EndReason::Killed => {}
        other => panic!("garbage reply: expected a protocol error, got {other:?}"),
    }
    let flood = "def f(self):\n    import os\n    chunk = b'[' * 65536\n    for fd in range(3, 32):\n        try:\n            for _ in range(64):\n                os.write(fd, chunk)\n        except OSError:\n            pass\n    os._exit(0)\n";
    let req = limited(flood, |l| l.output_bytes = 1024);
    match sandbox.execute(req).await {
        Err(Error::Protocol(_)) => {}
        Ok(o) if matches!(o.ended, EndReason::OutputLimit | EndReason::Killed) => {}
        other => panic!("oversize reply: expected output_limit or a protocol error, got {other:?}"),
    }
    still_healthy(sandbox).await;
}

/// What one call leaves behind for the next, if it can: globals, scratch files (one in
/// a directory it locked, a symlink out), a SysV shared-memory segment, a POSIX
/// message queue, a slot.
const LEAK_WRITE: &str = "def f(self):\n    import builtins, ctypes, json, os\n    builtins.aura_leak = 1\n    json.aura_leak = 2\n    open('leak.txt', 'w').write('x')\n    os.mkdir('locked')\n    open('locked/f', 'w').write('x')\n    os.chmod('locked', 0)\n    os.symlink('/usr', 'link')\n    libc = ctypes.CDLL(None, use_errno=True)\n    libc.shmget(0x41555241, 4096, 0o1600)\n    if hasattr(libc, 'mq_open'):\n        libc.mq_open(b'/aura_leak', 0o102, 0o600, None)\n    self.ghost = 'boo'\n    return sorted(os.listdir('.'))\n";
/// Looks for all of it: `[false, false, [], false, false, false, false]` when nothing leaked.
const LEAK_READ: &str = "def f(self):\n    import builtins, ctypes, json, os\n    libc = ctypes.CDLL(None, use_errno=True)\n    shm = libc.shmget(0x41555241, 0, 0) >= 0\n    mq = hasattr(libc, 'mq_open') and libc.mq_open(b'/aura_leak', 0) >= 0\n    return [hasattr(builtins, 'aura_leak'), hasattr(json, 'aura_leak'), os.listdir('.'), os.path.exists('/scratch/leak.txt'), hasattr(self, 'ghost'), shm, mq]\n";

fn assert_leak_written(o: &ExecOutcome) {
    assert!(
        o.ended == EndReason::Ok && o.value == Some(json!(["leak.txt", "link", "locked"])),
        "the leaking call: {o:#?}"
    );
    assert_eq!(o.slot_changes.get("ghost"), Some(&json!("boo")));
}

fn assert_nothing_leaked(o: &ExecOutcome) {
    assert!(
        o.ended == EndReason::Ok
            && o.value == Some(json!([false, false, [], false, false, false, false])),
        "a call saw what an earlier one left (globals, files, slots, IPC): {o:#?}"
    );
}

/// Globals, scratch files, IPC objects and slots written by one call are gone in the next.
pub async fn nothing_leaks_between_calls(sandbox: &dyn Sandbox) {
    assert_leak_written(&run(sandbox, call(LEAK_WRITE, vec![])).await);
    for _ in 0..3 {
        assert_nothing_leaked(&run(sandbox, call(LEAK_READ, vec![])).await);
    }
}

/// What a guest does to every process it can address (stop it, lower its limits and
/// priority) never reaches a later call: the calls after it answer, at once. (A jail
/// makes the next call's child while this one runs; it must be out of reach.)
const REACH_OUT: &str = "def f(self):\n    import os, signal, resource\n    reached = []\n    try:\n        os.kill(-1, signal.SIGSTOP)\n        reached.append('all')\n    except OSError:\n        pass\n    for pid in range(1, 512):\n        if pid == os.getpid():\n            continue\n        for act in (lambda: os.kill(pid, signal.SIGSTOP), lambda: resource.prlimit(pid, resource.RLIMIT_AS, (1 << 20, 1 << 20)), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)), lambda: os.setpriority(os.PRIO_PROCESS, pid, 19)):\n            try:\n                act()\n                reached.append(pid)\n            except (OSError, ValueError):\n                pass\n    return sorted(set(str(p) for p in reached))\n";

/// See [`REACH_OUT`].
pub async fn nothing_reaches_the_next_call(sandbox: &dyn Sandbox) {
    let o = run(sandbox, call(REACH_OUT, vec![])).await;
    assert_eq!(o.ended, EndReason::Ok, "{o:?}");
    let reached = o.value;
    for i in 0..3 {
        let mut req = call(
            "def g(self, i):\n    return [i, len(list(range(100000)))]\n",
            vec![json!(i)],
        );
        req.limits.wall = Duration::from_secs(10);
        let o = run(sandbox, req).await;
        assert_eq!(
            o.value,
            Some(json!([i, 100000])),
            "a call after one that reached out to {reached:?} was harmed: {o:?}"
        );
    }
}

/// Concurrent calls all complete, each with its own answer.
pub async fn concurrent_calls(sandbox: &dyn Sandbox) {
    let src = "def f(self, i):\n    import time\n    time.sleep(0.2)\n    open('mine', 'w').write(str(i))\n    return int(open('mine').read())\n";
    let calls = (0..4).map(|i| sandbox.execute(call(src, vec![json!(i)])));
    let results = crate::port::join_all(calls.collect()).await;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(o) => assert_eq!(o.value, Some(json!(i)), "{o:?}"),
            Err(e) => panic!("concurrent call {i} failed: {e}"),
        }
    }
}

fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("aura-canary-{}-{t}", std::process::id())
}

fn outcome_text(o: &ExecOutcome) -> String {
    serde_json::to_string(o).unwrap_or_default()
}

/// An isolation probe: the guest's attempt, and the check of its outcome (which also
/// removes what the probe planted on the host). The single-call checks and
/// [`batch_isolation_escape`] run the same probes.
struct Probe {
    request: ExecRequest,
    verify: Box<dyn FnOnce(ExecOutcome) + Send>,
}

async fn run_probe(sandbox: &dyn Sandbox, probe: Probe) {
    let o = run(sandbox, probe.request).await;
    (probe.verify)(o);
}

fn host_files_probe() -> Probe {
    let secret = token();
    let dir = std::env::temp_dir().join(format!("aura-files-{}", token()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("canary");
    std::fs::write(&path, &secret).unwrap_or_else(|e| panic!("{e}"));
    let src = "def f(self, paths):\n    out = {}\n    for p in paths:\n        try:\n            out[p] = open(p).read()\n        except OSError as e:\n            out[p] = type(e).__name__\n    return out\n";
    let cwd = std::env::current_dir()
        .unwrap_or_default()
        .join("Cargo.toml");
    let paths = json!([
        path.to_string_lossy(),
        "/etc/shadow",
        cwd.to_string_lossy(),
        "/root/.bash_history",
        "/proc/1/environ"
    ]);
    Probe {
        request: call(src, vec![paths]),
        verify: Box::new(move |o| {
            let _ = std::fs::remove_dir_all(&dir);
            assert_returned(&o);
            assert!(
                !outcome_text(&o).contains(&secret),
                "the guest read the host canary: {o:?}"
            );
            let got = o.value.unwrap_or_default();
            for p in [path, cwd] {
                assert!(
                    got.get(p.to_string_lossy().as_ref())
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.ends_with("Error")),
                    "{got}"
                );
            }
        }),
    }
}

/// A canary file planted on the host cannot be read.
pub async fn isolation_host_files(sandbox: &dyn Sandbox) {
    run_probe(sandbox, host_files_probe()).await;
}

fn write_outside_scratch_probe() -> Probe {
    let dir = std::env::temp_dir().join(format!("{}.w", token()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let target = dir.join("pwned");
    let src = "def f(self, paths):\n    out = {}\n    for p in paths:\n        try:\n            with open(p, 'w') as fh:\n                fh.write('x')\n            out[p] = 'written'\n        except OSError as e:\n            out[p] = type(e).__name__\n    with open('ok.txt', 'w') as fh:\n        fh.write('fine')\n    out['scratch'] = open('ok.txt').read()\n    return out\n";
    let paths = json!([
        target.to_string_lossy(),
        "/pwned",
        "/usr/pwned",
        "/usr/lib/pwned",
        "/dev/pwned"
    ]);
    Probe {
        request: call(src, vec![paths.clone()]),
        verify: Box::new(move |o| {
            let written = target.exists();
            let _ = std::fs::remove_dir_all(&dir);
            assert!(!written, "the guest wrote a file on the host");
            assert_returned(&o);
            let got = o.value.unwrap_or_default();
            assert_eq!(
                got.get("scratch"),
                Some(&json!("fine")),
                "scratch must be writable: {got}"
            );
            for p in paths.as_array().into_iter().flatten() {
                let p = p.as_str().unwrap_or_default();
                assert_ne!(
                    got.get(p),
                    Some(&json!("written")),
                    "the guest wrote {p}: {got}"
                );
            }
            for p in ["/pwned", "/usr/pwned", "/usr/lib/pwned"] {
                assert!(
                    !std::path::Path::new(p).exists(),
                    "{p} appeared on the host"
                );
            }
        }),
    }
}

/// Writing anywhere but scratch fails, and nothing appears on the host.
pub async fn isolation_write_outside_scratch(sandbox: &dyn Sandbox) {
    run_probe(sandbox, write_outside_scratch_probe()).await;
}

fn network_probe() -> Probe {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let src = "def f(self, port):\n    import socket\n    out = []\n    for fam, addr in ((socket.AF_INET, ('127.0.0.1', port)), (socket.AF_INET6, ('::1', port))):\n        try:\n            s = socket.socket(fam, socket.SOCK_STREAM)\n            s.settimeout(1)\n            s.connect(addr)\n            out.append('connected')\n        except OSError as e:\n            out.append(type(e).__name__)\n    return out\n";
    Probe {
        request: call(src, vec![json!(port)]),
        verify: Box::new(move |o| {
            assert_returned(&o);
            let got = o.value.unwrap_or_default();
            assert!(
                !got.to_string().contains("connected"),
                "the guest reached the host: {got}"
            );
            assert!(
                listener.accept().is_err(),
                "the host listener saw a connection"
            );
        }),
    }
}

/// A port the host listens on at 127.0.0.1 cannot be reached.
pub async fn isolation_network(sandbox: &dyn Sandbox) {
    run_probe(sandbox, network_probe()).await;
}

fn environment_probe() -> Probe {
    let secret = token();
    std::env::set_var("AURA_CONFORMANCE_SECRET", &secret);
    let src = "def f(self):\n    import os\n    out = {'env': dict(os.environ)}\n    for p in ('/proc/self/environ', '/proc/1/environ'):\n        try:\n            out[p] = open(p, 'rb').read().decode('latin-1')\n        except OSError as e:\n            out[p] = type(e).__name__\n    return out\n";
    Probe {
        request: call(src, vec![]),
        verify: Box::new(move |o| {
            assert_returned(&o);
            assert!(
                !outcome_text(&o).contains(&secret),
                "the guest read the host secret: {o:?}"
            );
            let env = o
                .value
                .as_ref()
                .and_then(|v| v.get("env"))
                .cloned()
                .unwrap_or_default();
            assert!(env.get("AURA_CONFORMANCE_SECRET").is_none(), "{env}");
        }),
    }
}

/// A secret in the host process's environment is invisible to the guest.
pub async fn isolation_environment(sandbox: &dyn Sandbox) {
    run_probe(sandbox, environment_probe()).await;
}

fn processes_probe() -> Probe {
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start a victim process: {e}"));
    let pid = victim.id();
    let host_self = std::process::id();
    let src = "def f(self, pids):\n    import os, signal\n    out = {}\n    for pid in pids:\n        for sig in (0, signal.SIGKILL):\n            try:\n                os.kill(pid, sig)\n                out['%d/%d' % (pid, sig)] = 'delivered'\n            except OSError as e:\n                out['%d/%d' % (pid, sig)] = type(e).__name__\n    try:\n        out['proc'] = [p for p in os.listdir('/proc') if p.isdigit()]\n    except OSError as e:\n        out['proc'] = type(e).__name__\n    try:\n        os.kill(-1, signal.SIGKILL)\n        out['all'] = 'sent'\n    except OSError as e:\n        out['all'] = type(e).__name__\n    return out\n";
    Probe {
        request: call(src, vec![json!([pid, host_self])]),
        verify: Box::new(move |o| {
            let alive = matches!(victim.try_wait(), Ok(None));
            let _ = victim.kill();
            let _ = victim.wait();
            assert!(alive, "the guest killed a host process: {o:?}");
            assert_eq!(o.ended, EndReason::Ok, "{o:?}");
            let got = o.value.unwrap_or_default();
            assert!(
                !got.to_string().contains("delivered"),
                "the guest signalled a host process: {got}"
            );
            let visible = got
                .get("proc")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for p in [pid, host_self] {
                assert!(
                    !visible.contains(&json!(p.to_string())),
                    "host pid {p} visible: {got}"
                );
            }
            assert!(
                visible.len() <= 3,
                "the guest sees too many processes: {got}"
            );
        }),
    }
}

/// Host processes can be neither seen nor signalled.
pub async fn isolation_processes(sandbox: &dyn Sandbox) {
    run_probe(sandbox, processes_probe()).await;
}

/// A batch gives one outcome per request, in request order (an empty batch none); a
/// test run in a batch reports its tests; one invalid request rejects the whole batch.
pub async fn batch_outcomes_in_order(sandbox: &dyn Sandbox) {
    match sandbox.execute_batch(Vec::new()).await {
        Ok(o) => assert!(o.is_empty(), "an empty batch gave {o:?}"),
        Err(e) => panic!("an empty batch failed: {e}"),
    }
    let mut reqs: Vec<ExecRequest> = (0..16).map(candidate).collect();
    let mut tested = call("def double(self, x):\n    return 2 * x\n", vec![]);
    tested.tests = Some(
        "def test_two():\n    assert obj.double(1) == 2\n\n\
         def test_wrong():\n    assert obj.double(1) == 3\n"
            .into(),
    );
    reqs.insert(5, tested);
    let out = run_batch(sandbox, reqs.clone()).await;
    for (i, o) in out.iter().enumerate() {
        match i {
            5 => {
                let got: Vec<(&str, bool)> = o
                    .tests
                    .iter()
                    .map(|t| (t.name.as_str(), t.passed))
                    .collect();
                assert!(
                    o.ended == EndReason::Ok && got == [("test_two", true), ("test_wrong", false)],
                    "the test run of the batch: {o:#?}"
                );
            }
            _ => assert_candidate(o, if i < 5 { i } else { i - 1 }),
        }
    }
    reqs[9].method.selector = "not valid".into();
    assert!(
        matches!(sandbox.execute_batch(reqs).await, Err(Error::Invalid(_))),
        "a batch holding an invalid request must be rejected"
    );
}

/// A candidate of a batch sees nothing another left behind: globals, scratch files,
/// IPC objects, slots (as [`nothing_leaks_between_calls`], within one batch).
pub async fn batch_isolation(sandbox: &dyn Sandbox) {
    let writers = [0, 3];
    let reqs = (0..8)
        .map(|i| {
            call(
                if writers.contains(&i) {
                    LEAK_WRITE
                } else {
                    LEAK_READ
                },
                vec![],
            )
        })
        .collect();
    for (i, o) in run_batch(sandbox, reqs).await.iter().enumerate() {
        if writers.contains(&i) {
            assert_leak_written(o);
        } else {
            assert_nothing_leaked(o);
        }
    }
}

/// In one batch, an infinite loop, a memory bomb, a fork bomb, an output flood, a
/// crash, an exit without a reply and a garbage reply each end with their own outcome
/// within their own limits, and every ordinary candidate between them succeeds.
pub async fn batch_dos_contained(sandbox: &dyn Sandbox) {
    let wall = Duration::from_millis(1000);
    let mut bad: Vec<(ExecRequest, EndReason)> = vec![
        (limited(BUSY_LOOP, |l| l.wall = wall), EndReason::Timeout),
        (
            limited(MEMORY_HOG, |l| {
                l.memory_bytes = 64 << 20;
                l.wall = Duration::from_secs(5);
            }),
            EndReason::Memory,
        ),
        (limited(FORK_BOMB, |l| l.wall = wall), EndReason::Exception),
        (
            limited(PRINT_FLOOD, |l| {
                l.output_bytes = 64 << 10;
                l.wall = Duration::from_secs(5);
            }),
            EndReason::OutputLimit,
        ),
        (limited(SEGFAULT, |l| l.wall = wall), EndReason::Killed),
        (
            limited("def f(self):\n    import os\n    os._exit(3)\n", |l| {
                l.wall = wall
            }),
            EndReason::Killed,
        ),
        (limited(GARBAGE_REPLY, |l| l.wall = wall), EndReason::Killed),
    ];
    // The same batch without its bad candidates: the overhead the limits come on top of.
    let ordinary: Vec<ExecRequest> = (0..=bad.len()).map(candidate).collect();
    let t = Instant::now();
    run_batch(sandbox, ordinary.clone()).await;
    let base = t.elapsed() * 2;
    let mut reqs = Vec::new();
    let mut want = Vec::new();
    for ok in ordinary {
        reqs.push(ok);
        want.push(None);
        if !bad.is_empty() {
            let (req, reason) = bad.remove(0);
            reqs.push(req);
            want.push(Some(reason));
        }
    }
    let limits: Vec<Limits> = reqs.iter().map(|r| r.limits.clone()).collect();
    let t = Instant::now();
    let out = run_batch(sandbox, reqs).await;
    let took = t.elapsed();
    let mut ordinary_seen = 0;
    for ((o, want), limits) in out.iter().zip(&want).zip(&limits) {
        match want {
            None => {
                assert_candidate(o, ordinary_seen);
                ordinary_seen += 1;
            }
            Some(reason) => {
                assert_eq!(o.ended, *reason, "wrong end reason in a batch: {o:#?}");
                let guest_ms = u128::from(o.usage.wall_ms);
                assert!(
                    guest_ms <= limits.wall.as_millis() + 100,
                    "a guest of the batch ran {guest_ms} ms, past its limit {:?} + 100 ms: {o:?}",
                    limits.wall
                );
            }
        }
    }
    // The loop is the only one that runs to its limit.
    let allowed = wall + Duration::from_millis(100 * want.len() as u64) + base;
    assert!(
        took <= allowed,
        "the batch took {took:?}, more than {allowed:?} (its loop's limit, 100 ms a request, twice the overhead)"
    );
    still_healthy(sandbox).await;
}

/// The isolation probes (host files, writes outside scratch, network, environment,
/// processes) in one batch, between ordinary candidates: each is contained.
pub async fn batch_isolation_escape(sandbox: &dyn Sandbox) {
    let probes = vec![
        host_files_probe(),
        write_outside_scratch_probe(),
        network_probe(),
        environment_probe(),
        processes_probe(),
    ];
    let mut reqs = Vec::new();
    let mut checks = Vec::new();
    for (i, p) in probes.into_iter().enumerate() {
        reqs.push(candidate(i));
        reqs.push(p.request);
        checks.push(p.verify);
    }
    let out = run_batch(sandbox, reqs).await;
    let mut checks = checks.into_iter();
    for (i, o) in out.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_candidate(&o, i / 2);
        } else if let Some(verify) = checks.next() {
            verify(o);
        }
    }
}
