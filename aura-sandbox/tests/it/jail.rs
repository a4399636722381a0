//! The conformance suite against the embedded jail, one test per check.
#![cfg(target_os = "linux")]
#![allow(missing_docs)]

use aura_sandbox::{conformance, Error, ExecRequest, JailSandbox, MethodSource, Sandbox};

/// The jail under test: `AURA_SANDBOX_PYTHON`, else the default choice (the system's
/// `/usr/bin/python3` when present, else `python3` on `PATH`).
fn jail() -> JailSandbox {
    match aura_sandbox::JailSandboxBuilder::from_env().build() {
        Ok(j) => j,
        Err(e) => panic!("cannot build the jail: {e}"),
    }
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            conformance::$name(&jail()).await;
        }
    )*};
}

conformance_tests![
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

#[test]
fn every_check_has_a_test() {
    // Keeps the list above in step with the suite.
    assert_eq!(conformance::CHECKS.len(), 30);
}

#[tokio::test]
async fn whole_suite_on_one_sandbox() {
    conformance::run_all(&jail()).await;
}

#[tokio::test]
async fn the_pyenv_or_path_interpreter_works_too() {
    let Ok(sb) = JailSandbox::builder().build() else {
        println!("skipped: no python3 on PATH");
        return;
    };
    let m = MethodSource {
        selector: "f".into(),
        source: "def f(self):\n    return 7\n".into(),
    };
    let o = sb.execute(ExecRequest::call(m, vec![])).await;
    assert_eq!(o.ok().and_then(|o| o.value), Some(7.into()));
}

#[tokio::test]
async fn invalid_requests_are_rejected() {
    let m = MethodSource {
        selector: "not valid".into(),
        source: String::new(),
    };
    assert!(matches!(
        jail().execute(ExecRequest::call(m, vec![])).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn the_system_interpreter_is_chosen_unless_one_is_named() {
    let chosen = JailSandbox::builder().build().expect("the jail builds");
    let python = chosen.interpreter();
    if std::path::Path::new(aura_sandbox::SYSTEM_PYTHON).is_file() {
        assert_eq!(python.why, "the system interpreter");
        let system = std::fs::canonicalize(aura_sandbox::SYSTEM_PYTHON).unwrap();
        assert_eq!(
            python.path, system,
            "resolved to the binary behind the link"
        );
    } else {
        assert_eq!(python.why, "python3 on PATH");
    }
    assert!(python.version.starts_with("3."), "{python:?}");
    assert!(
        !std::fs::symlink_metadata(&python.path)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{python:?}"
    );
    let described = chosen.describe();
    assert!(
        described.starts_with("jail: Python 3.") && described.contains(python.why),
        "{described}"
    );

    let named = JailSandbox::builder().python("python3").build().unwrap();
    assert_eq!(named.interpreter().why, "set by the host");
    let out = named
        .execute(ExecRequest::call(
            MethodSource {
                selector: "f".into(),
                source: "def f(self):\n    return 2 + 2\n".into(),
            },
            vec![],
        ))
        .await
        .unwrap();
    assert_eq!(out.value, Some(serde_json::json!(4)), "{out:?}");
}

#[tokio::test]
async fn a_missing_interpreter_is_unavailable() {
    let r = JailSandbox::builder()
        .python("/nonexistent/python3")
        .build();
    assert!(matches!(r, Err(Error::Unavailable(_))));
}

/// A call whose future is dropped (a learn's budget ran out, a client went away) takes
/// its guest, the forker and the fork-server with it: nothing is left spinning on the
/// host, and the next call gets a fresh server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_kills_its_guest_and_fork_server() {
    let sb = jail();
    let marker = format!("dropped-call-{}", std::process::id());
    let m = MethodSource {
        selector: "f".into(),
        source: "def f(self, name):\n    held = open(name, 'w')\n    while True:\n        pass\n"
            .into(),
    };
    let mut req = ExecRequest::call(m, vec![marker.clone().into()]);
    req.limits.wall = std::time::Duration::from_secs(90);
    let mut call = Box::pin(sb.execute(req));
    let guest = tokio::select! {
        o = &mut call => panic!("an endless call ended before it was dropped: {o:?}"),
        guest = conformance::holder_of(&marker) => guest.expect("the guest never started"),
    };
    // The guest's parent is the forker, whose parent is the fork-server.
    let forker = parent(guest).expect("the guest has a parent");
    let server = parent(forker).expect("the forker has a parent");
    let processes = [
        ("guest", guest),
        ("forker", forker),
        ("fork-server", server),
    ];
    assert!(
        processes.iter().all(|(_, pid)| alive(*pid)),
        "all run before the drop"
    );
    drop(call);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while processes.iter().any(|(_, pid)| alive(*pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (what, pid) in processes {
        assert!(
            !alive(pid),
            "the dropped call's {what} (pid {pid}) still runs"
        );
    }
    let m = MethodSource {
        selector: "g".into(),
        source: "def g(self):\n    return 1\n".into(),
    };
    let o = sb.execute(ExecRequest::call(m, vec![])).await;
    assert_eq!(o.ok().and_then(|o| o.value), Some(1.into()));
}

/// The `n`-th field after the command name in `/proc/<pid>/stat` (0: the state, 1:
/// the parent's pid), or `None` once the process is gone.
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat.rsplit_once(") ")?.1;
    fields.split(' ').nth(n).map(str::to_owned)
}

/// The parent's pid of a process that has not gone yet.
fn parent(pid: u32) -> Option<u32> {
    stat_field(pid, 1)?.parse().ok()
}

/// Whether the process runs: a zombie nobody reaped yet runs no more.
fn alive(pid: u32) -> bool {
    stat_field(pid, 0).is_some_and(|state| state != "Z" && state != "X")
}

/// The guest's parent (the fork-server's forker, whose death ends the server) killed
/// mid-call: the call ends at once, `Killed` with a note that says so, the dead server
/// is never reused, and the next call runs on a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_server_killed_mid_call_fails_the_call_and_is_replaced() {
    let sb = jail();
    let marker = format!("victim-server-{}", std::process::id());
    let m = MethodSource {
        selector: "f".into(),
        source: "def f(self, name):\n    import time\n    held = open(name, 'w')\n    time.sleep(60)\n    return 'survived'\n".into(),
    };
    let mut req = ExecRequest::call(m, vec![marker.clone().into()]);
    req.limits.wall = std::time::Duration::from_secs(90);
    let (outcome, killed) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::join!(
            sb.execute(req),
            conformance::kill_when_held(&marker, parent)
        )
    })
    .await
    .expect("the call hung after its fork-server was killed");
    assert!(killed.is_some(), "the guest never started");
    let o = outcome.expect("a killed server is an outcome, not an error");
    assert_eq!(o.ended, aura_sandbox::EndReason::Killed, "{o:?}");
    assert!(o.stderr.contains("fork-server died mid-call"), "{o:?}");
    let m = MethodSource {
        selector: "g".into(),
        source: "def g(self):\n    return 1\n".into(),
    };
    let o = sb.execute(ExecRequest::call(m, vec![])).await;
    assert_eq!(o.ok().and_then(|o| o.value), Some(1.into()));
}

/// Each call's child is pid 1 of a pid namespace of its own: no other process (the
/// next call's child, made while this one runs; the fork-server) can be addressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_is_alone_in_its_pid_namespace() {
    let sb = jail();
    let m = MethodSource {
        selector: "f".into(),
        source: "def f(self):\n    import os\n    seen = []\n    for pid in range(1, 4096):\n        try:\n            os.kill(pid, 0)\n            seen.append(pid)\n        except PermissionError:\n            seen.append(pid)\n        except ProcessLookupError:\n            pass\n    return [os.getpid(), seen]\n".into(),
    };
    for _ in 0..3 {
        let o = sb.execute(ExecRequest::call(m.clone(), vec![])).await;
        let o = o.expect("the jail answers");
        assert_eq!(o.value, Some(serde_json::json!([1, [1]])), "{o:?}");
    }
}
