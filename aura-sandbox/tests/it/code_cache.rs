//! The jail's code cache (`JailSandboxBuilder::code_cache_*`): a source is cached from
//! its second sighting on (a search's one-off candidates never fill it), so a warm call
//! compiles nothing it has seen twice; a changed source is never served stale, the cache
//! keeps to its bounds, errors read the same cached or not, and a guest cannot poison
//! it for a later call. Every test runs one fork-server (`max_idle(1)`, one call at a time), so each
//! call after the first lands on the server that saw the calls before it.
#![cfg(target_os = "linux")]
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)] // test fixtures

use aura_sandbox::{
    EndReason, ExecOutcome, ExecRequest, JailSandbox, JailSandboxBuilder, MethodSource, Sandbox,
};
use serde_json::{json, Value};

/// The allowlist the guard enforces (see tests/runtime_layer.rs).
const MODULE_API: &str = include_str!("../../../aura-guard/data/module_api.json");

fn builder() -> JailSandboxBuilder {
    let mut b = JailSandbox::builder();
    if let Some(p) = std::env::var_os("AURA_SANDBOX_PYTHON") {
        b = b.python(p);
    } else if std::path::Path::new("/usr/bin/python3").exists() {
        b = b.python("/usr/bin/python3");
    }
    b.max_idle(1).max_concurrent(1)
}

fn jail() -> JailSandbox {
    builder().build().expect("the jail builds")
}

fn method(selector: &str, source: &str) -> MethodSource {
    MethodSource {
        selector: selector.into(),
        source: source.into(),
    }
}

async fn run(sb: &JailSandbox, req: &ExecRequest) -> ExecOutcome {
    sb.execute(req.clone()).await.expect("the sandbox answers")
}

/// Calls `selector` defined by `source`, with no helpers; returns (value, compiled).
async fn call(sb: &JailSandbox, selector: &str, source: &str) -> (Option<Value>, u64) {
    let o = run(sb, &ExecRequest::call(method(selector, source), vec![])).await;
    assert_eq!(o.ended, EndReason::Ok, "{o:?}");
    (o.value, o.usage.compiled_sources)
}

/// `main` calling 20 helpers, each its own source.
fn twenty_helpers() -> ExecRequest {
    let helpers = (0..20)
        .map(|i| {
            method(
                &format!("h{i}"),
                &format!("def h{i}(self, x):\n    return x + {i}\n"),
            )
        })
        .collect();
    let main =
        "def main(self, x):\n    return sum(getattr(self, 'h%d' % i)(x) for i in range(20))\n";
    let mut req = ExecRequest::call(method("main", main), vec![json!(1)]);
    req.helpers = helpers;
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_call_compiles_nothing_it_has_seen_twice() {
    let sb = jail();
    let req = twenty_helpers();
    let want = Some(json!(20 + (0..20).sum::<i64>()));
    // Seen once, then again (now cached), then served from the cache.
    for compiled in [21, 21, 0, 0] {
        let o = run(&sb, &req).await;
        assert_eq!(o.value, want, "{o:?}");
        assert_eq!(o.usage.compiled_sources, compiled);
    }

    // A test run of the same method compiles its test module only, until it is cached.
    let mut tests = req.clone();
    tests.tests = Some("def test_main(o):\n    assert o.main(1) == 210\n".into());
    for compiled in [1, 1, 0] {
        let o = run(&sb, &tests).await;
        assert!(o.succeeded(), "{o:?}");
        assert_eq!(o.usage.compiled_sources, compiled);
    }

    // A search's candidates, each run once, are never cached: the method they were
    // tried beside stays cached, and a candidate run again is compiled again.
    for k in 0..5 {
        let mut c = req.clone();
        c.method.source = format!("{}# candidate {k}\n", req.method.source);
        let o = run(&sb, &c).await;
        assert_eq!((o.value, o.usage.compiled_sources), (want.clone(), 1));
    }
    assert_eq!(run(&sb, &req).await.usage.compiled_sources, 0);

    // Turned off, every call compiles everything.
    let off = builder().code_cache_entries(0).build().unwrap();
    for _ in 0..2 {
        let o = run(&off, &req).await;
        assert_eq!((o.value, o.usage.compiled_sources), (want.clone(), 21));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_source_is_never_served_stale() {
    let sb = jail();
    let v1 = "def f(self):\n    return 1\n";
    let v2 = "def f(self):\n    return 2\n";
    assert_eq!(call(&sb, "f", v1).await, (Some(json!(1)), 1));
    assert_eq!(call(&sb, "f", v1).await, (Some(json!(1)), 1));
    assert_eq!(call(&sb, "f", v1).await, (Some(json!(1)), 0));
    assert_eq!(call(&sb, "f", v2).await, (Some(json!(2)), 1));
    assert_eq!(call(&sb, "f", v2).await, (Some(json!(2)), 1));
    assert_eq!(call(&sb, "f", v2).await, (Some(json!(2)), 0));
    // The old version is still cached, under its own text.
    assert_eq!(call(&sb, "f", v1).await, (Some(json!(1)), 0));
    // A one-character change is a miss too.
    assert_eq!(
        call(&sb, "f", "def f(self):\n    return 1 \n").await,
        (Some(json!(1)), 1)
    );

    // A changed helper, behind an unchanged method.
    let main = method("main", "def main(self):\n    return self.h()\n");
    for (src, want, compiled) in [
        ("def h(self):\n    return 'old'\n", "old", 2),
        ("def h(self):\n    return 'old'\n", "old", 2),
        ("def h(self):\n    return 'old'\n", "old", 0),
        ("def h(self):\n    return 'new'\n", "new", 1),
        ("def h(self):\n    return 'old'\n", "old", 0),
    ] {
        let mut req = ExecRequest::call(main.clone(), vec![]);
        req.helpers = vec![method("h", src)];
        let o = run(&sb, &req).await;
        assert_eq!(o.value, Some(json!(want)), "{o:?}");
        assert_eq!(o.usage.compiled_sources, compiled, "{src}");
    }

    // The same source under another selector is another file: compiled, and correct.
    let o = run(
        &sb,
        &ExecRequest::call(method("g", "def g(self):\n    return 3\n"), vec![]),
    )
    .await;
    assert_eq!((o.value, o.usage.compiled_sources), (Some(json!(3)), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_to_its_bounds() {
    let sb = builder().code_cache_entries(8).build().unwrap();
    let src = |k: usize| format!("def f(self):\n    return {k}\n");
    for k in 0..40 {
        // Twice each: cached from the second sighting on.
        for _ in 0..2 {
            assert_eq!(call(&sb, "f", &src(k)).await, (Some(json!(k)), 1), "{k}");
        }
    }
    // The last 8 are cached, anything older was evicted: still correct either way.
    for k in 32..40 {
        assert_eq!(call(&sb, "f", &src(k)).await, (Some(json!(k)), 0), "{k}");
    }
    assert_eq!(call(&sb, "f", &src(0)).await, (Some(json!(0)), 1));
    assert_eq!(call(&sb, "f", &src(31)).await, (Some(json!(31)), 1));

    // Least recently used first out: a hit keeps an entry in.
    let sb = builder().code_cache_entries(3).build().unwrap();
    for k in [1, 2, 3, 1, 4] {
        call(&sb, "f", &src(k)).await;
        call(&sb, "f", &src(k)).await;
    }
    assert_eq!(call(&sb, "f", &src(1)).await, (Some(json!(1)), 0));
    assert_eq!(call(&sb, "f", &src(2)).await, (Some(json!(2)), 1));

    // A source over the per-source bound is compiled by every call.
    let sb = builder().code_cache_source_bytes(64).build().unwrap();
    let big = format!("def f(self):\n    return {}\n", "1 + ".repeat(30) + "1");
    assert_eq!(call(&sb, "f", &big).await, (Some(json!(31)), 1));
    assert_eq!(call(&sb, "f", &big).await, (Some(json!(31)), 1));
    assert_eq!(call(&sb, "f", &src(5)).await, (Some(json!(5)), 1));
    assert_eq!(call(&sb, "f", &src(5)).await, (Some(json!(5)), 1));
    assert_eq!(call(&sb, "f", &src(5)).await, (Some(json!(5)), 0));

    // The byte bound holds the cache to what fits: two of these, not three.
    let sb = builder().code_cache_bytes(1200).build().unwrap();
    let padded = |k: usize| format!("def f(self):\n    return {k}\n{}\n", "#".repeat(300));
    for k in 0..3 {
        for _ in 0..2 {
            assert_eq!(call(&sb, "f", &padded(k)).await, (Some(json!(k)), 1));
        }
    }
    assert_eq!(call(&sb, "f", &padded(2)).await, (Some(json!(2)), 0));
    assert_eq!(call(&sb, "f", &padded(0)).await, (Some(json!(0)), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_read_the_same_cached_or_not() {
    let layered = builder().module_api(MODULE_API).build().unwrap();
    let cases = [
        // Refused by the runtime layer: the verdict is cached with the code.
        (
            "def f(self):\n    return (1).__class__\n",
            "RuntimeDenied",
            [1, 1, 0],
        ),
        // Raised at run time: the traceback quotes the source line either way.
        (
            "def f(self):\n    raise ValueError('boom')\n",
            "ValueError",
            [1, 1, 0],
        ),
        // Does not compile: never cached.
        ("def f(self):\n    return (\n", "SyntaxError", [1, 1, 1]),
    ];
    for (src, type_name, compiled) in cases {
        let req = ExecRequest::call(method("f", src), vec![]);
        // Seen once, seen again (now cached), then from the cache if it was cached.
        let a = run(&layered, &req).await;
        let b = run(&layered, &req).await;
        let c = run(&layered, &req).await;
        assert_eq!(a.ended, EndReason::Exception, "{a:?}");
        let err = a.error.clone().unwrap();
        assert_eq!(err.type_name, type_name, "{a:?}");
        assert_eq!(a.error, b.error, "{src}");
        assert_eq!(a.error, c.error, "{src}");
        assert_eq!(
            [
                a.usage.compiled_sources,
                b.usage.compiled_sources,
                c.usage.compiled_sources
            ],
            compiled,
            "{src}"
        );
        if type_name == "ValueError" {
            assert!(
                err.traceback.contains("raise ValueError('boom')"),
                "{err:?}"
            );
        }
    }
    // A source that compiles with a warning is not cached: the guest sees the warning
    // on every call.
    let sb = jail();
    let req = ExecRequest::call(
        method("f", "def f(self):\n    x = 1\n    return x is 1\n"),
        vec![],
    );
    for _ in 0..3 {
        let o = run(&sb, &req).await;
        assert_eq!(o.value, Some(json!(true)), "{o:?}");
        assert!(o.stderr.contains("SyntaxWarning"), "{o:?}");
        assert_eq!(o.usage.compiled_sources, 1);
    }
}

/// Reaches the runner's globals (no runtime layer) and rewrites the cache, the compile
/// path and a cached code object's entry every way it can.
const TAMPER: &str = r#"def tamper(self):
    import __main__ as runner
    cache = runner.CODE_CACHE
    bad = compile("def f(self):\n    return 666\n", "<aura:method f>", "exec")
    n = len(cache.entries)
    for key in list(cache.entries):
        cache.entries[key] = (bad, None, 0)
    cache.entries[("<aura:method f>", F)] = (bad, None, 0)
    cache.entries[("<aura:method g>", G)] = (bad, "poisoned", 0)
    runner.compile_source = lambda source, filename: bad
    runner.CodeCache.get = lambda self, filename, source: (bad, None)
    runner.API_LAYER = None
    return n
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_poison_the_cache() {
    let f = "def f(self):\n    return 7\n";
    let g = "def g(self):\n    return 8\n";
    let tamper = TAMPER
        .replace("F)", &format!("{f:?})"))
        .replace("G)", &format!("{g:?})"));

    // Without the runtime layer the guest reaches the cache, in its own copy only.
    let sb = jail();
    assert_eq!(call(&sb, "f", f).await, (Some(json!(7)), 1));
    assert_eq!(call(&sb, "f", f).await, (Some(json!(7)), 1));
    let (n, _) = call(&sb, "tamper", &tamper).await;
    assert!(
        n.and_then(|n| n.as_u64()).unwrap_or(0) >= 1,
        "it reached the cache"
    );
    assert_eq!(call(&sb, "f", f).await, (Some(json!(7)), 0));
    assert_eq!(call(&sb, "g", g).await, (Some(json!(8)), 1));
    assert_eq!(call(&sb, "g", g).await, (Some(json!(8)), 1));
    assert_eq!(call(&sb, "g", g).await, (Some(json!(8)), 0));
    // The tampering call itself is cached like any other once seen twice: running it
    // from the cache tampers again, and changes nothing after it either.
    assert_eq!(call(&sb, "tamper", &tamper).await.1, 1);
    assert_eq!(call(&sb, "tamper", &tamper).await.1, 0);
    assert_eq!(call(&sb, "f", f).await, (Some(json!(7)), 0));

    // With the layer on the guest does not even get there.
    let layered = builder().module_api(MODULE_API).build().unwrap();
    assert_eq!(call(&layered, "f", f).await, (Some(json!(7)), 1));
    assert_eq!(call(&layered, "f", f).await, (Some(json!(7)), 1));
    let o = run(
        &layered,
        &ExecRequest::call(method("tamper", &tamper), vec![]),
    )
    .await;
    assert_eq!(o.ended, EndReason::Exception, "{o:?}");
    assert_eq!(call(&layered, "f", f).await, (Some(json!(7)), 0));
}
