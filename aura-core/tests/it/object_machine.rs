//! The object machine over a real SQLite store, with a mocked sandbox standing in for
//! execution (the sandbox's own suite proves execution; here we test dispatch logic).
#![allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly

use std::sync::{Arc, Mutex};

use aura_core::store::{NewObject, StoreExt};
use aura_core::{Config, Error, Runtime};
use aura_sandbox::{EndReason, ExecOutcome, ExecRequest, GuestError, MockSandbox, ResourceUsage};
use aura_store::{AuditQuery, SqliteStore};
use serde_json::{json, Map, Value};

fn outcome(value: Value) -> ExecOutcome {
    ExecOutcome {
        ended: EndReason::Ok,
        value: Some(value),
        error: None,
        slot_changes: Map::new(),
        tests: vec![],
        stdout: String::new(),
        stderr: String::new(),
        usage: ResourceUsage::default(),
    }
}

/// A sandbox that records requests and answers with `reply`.
fn recording_sandbox(
    reply: impl Fn(&ExecRequest) -> ExecOutcome + Send + Sync + 'static,
) -> (MockSandbox, Arc<Mutex<Vec<ExecRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut sandbox = MockSandbox::new();
    sandbox
        .expect_capabilities()
        .returning(|| aura_sandbox::SandboxCapabilities::new("mock"));
    sandbox.expect_execute().returning(move |req| {
        log.lock().unwrap().push(req.clone());
        Ok(reply(&req))
    });
    (sandbox, seen)
}

async fn runtime_with(sandbox: MockSandbox) -> Runtime {
    runtime_configured(sandbox, Config::default()).await
}

async fn runtime_configured(sandbox: MockSandbox, config: Config) -> Runtime {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    Runtime::builder()
        .config(config)
        .store(store)
        .without_model()
        .sandbox(Arc::new(sandbox))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn new_objects_delegate_to_genesis() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert_eq!(obj.parents, vec![rt.root()]);
    assert_eq!(rt.find("genesis").await.unwrap().id, rt.root());
}

#[tokio::test]
async fn a_missing_method_is_not_understood_naming_the_chain() {
    let (sb, seen) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    let err = rt
        .send(obj.id, "fibonacci", vec![json!(10)])
        .await
        .unwrap_err();
    match err {
        Error::DoesNotUnderstand {
            object,
            selector,
            chain,
        } => {
            assert_eq!(object, "calc");
            assert_eq!(selector, "fibonacci");
            assert_eq!(chain, vec!["calc".to_string(), "genesis".to_string()]);
        }
        other => panic!("expected DoesNotUnderstand, got {other:?}"),
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing may run for an unknown selector"
    );
}

#[tokio::test]
async fn bad_selectors_and_unknown_ids_are_clear_errors() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    for bad in [
        "",
        "1abc",
        "with space",
        "__class__",
        "_private",
        "import",
        "a-b",
        "x;y",
    ] {
        assert!(
            matches!(rt.send(obj.id, bad, vec![]).await, Err(Error::Invalid(_))),
            "{bad:?} must be refused"
        );
    }
    let ghost = aura_store::ObjectId::new();
    assert!(matches!(
        rt.send(ghost, "ok", vec![]).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rt.object(ghost).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn resolution_walks_parents_in_order_depth_first() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    // a → [b, c]; b → [d]; d defines greet; c defines greet too. Depth-first: d wins over c.
    let d = rt.create_object(NewObject::named("d")).await.unwrap();
    let c = rt.create_object(NewObject::named("c")).await.unwrap();
    let b = rt
        .create_object(NewObject::named("b").with_parents([d.id]))
        .await
        .unwrap();
    let a = rt
        .create_object(NewObject::named("a").with_parents([b.id, c.id]))
        .await
        .unwrap();
    rt.define_method(c.id, "greet", "def greet(self):\n    return 'c'\n", "")
        .await
        .unwrap();
    rt.define_method(d.id, "greet", "def greet(self):\n    return 'd'\n", "")
        .await
        .unwrap();
    let m = rt.resolve(a.id, "greet").await.unwrap().unwrap();
    assert_eq!(m.object_id, d.id);
    let names = rt.chain_view(a.id).await.unwrap().chain_names();
    assert_eq!(names, vec!["a", "b", "d", "genesis", "c"]);
}

#[tokio::test]
async fn the_cache_follows_method_writes_rollbacks_and_parent_changes() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let mut chain = vec![rt.root()];
    for i in 0..10 {
        let o = rt
            .create_object(
                NewObject::named(format!("level{i}")).with_parents([*chain.last().unwrap()]),
            )
            .await
            .unwrap();
        chain.push(o.id);
    }
    let leaf = *chain.last().unwrap();
    let top = chain[1];
    assert!(rt.resolve(leaf, "area").await.unwrap().is_none()); // cached miss
    rt.define_method(top, "area", "def area(self):\n    return 1\n", "v1")
        .await
        .unwrap();
    assert_eq!(rt.resolve(leaf, "area").await.unwrap().unwrap().doc, "v1");
    rt.define_method(top, "area", "def area(self):\n    return 2\n", "v2")
        .await
        .unwrap();
    assert_eq!(rt.resolve(leaf, "area").await.unwrap().unwrap().doc, "v2");
    rt.rollback_method(top, "area", 1).await.unwrap();
    let m = rt.resolve(leaf, "area").await.unwrap().unwrap();
    assert_eq!((m.doc.as_str(), m.version), ("v1", 3));
    // Each version is in the trail, written with it.
    let trail = rt
        .store()
        .query_audit(&AuditQuery {
            object_id: Some(top),
            kind: Some("method.*".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let written: Vec<(String, Value)> = trail
        .events
        .into_iter()
        .map(|e| (e.kind, e.payload))
        .collect();
    assert_eq!(
        written,
        vec![
            (
                "method.defined".into(),
                json!({ "selector": "area", "version": 1 })
            ),
            (
                "method.defined".into(),
                json!({ "selector": "area", "version": 2 })
            ),
            (
                "method.rolled_back".into(),
                json!({ "selector": "area", "from_version": 1, "version": 3 })
            ),
        ]
    );
    // An override nearer the leaf wins as soon as it is written.
    rt.define_method(chain[5], "area", "def area(self):\n    return 5\n", "mid")
        .await
        .unwrap();
    assert_eq!(rt.resolve(leaf, "area").await.unwrap().unwrap().doc, "mid");
    // Re-parenting the leaf straight onto genesis drops the whole chain.
    rt.set_parents(leaf, vec![rt.root()]).await.unwrap();
    assert!(rt.resolve(leaf, "area").await.unwrap().is_none());
}

fn method_source(selector: &str, value: &str) -> String {
    format!("def {selector}(self):\n    return {value:?}\n")
}

#[tokio::test]
async fn multi_parent_chains_share_one_table_per_object() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    for i in 0..50 {
        let s = format!("g{i}");
        rt.define_method(rt.root(), &s, method_source(&s, "genesis"), "")
            .await
            .unwrap();
    }
    // a → [b, c] and x → [c, b]: the same ancestors, searched in opposite orders.
    let b = rt.create_object(NewObject::named("b")).await.unwrap();
    let c = rt.create_object(NewObject::named("c")).await.unwrap();
    let a = rt
        .create_object(NewObject::named("a").with_parents([b.id, c.id]))
        .await
        .unwrap();
    let x = rt
        .create_object(NewObject::named("x").with_parents([c.id, b.id]))
        .await
        .unwrap();
    rt.define_method(b.id, "greet", method_source("greet", "b"), "b")
        .await
        .unwrap();
    rt.define_method(c.id, "greet", method_source("greet", "c"), "c")
        .await
        .unwrap();
    rt.define_method(c.id, "g0", method_source("g0", "c"), "c overrides genesis")
        .await
        .unwrap();

    let va = rt.chain_view(a.id).await.unwrap();
    let vx = rt.chain_view(x.id).await.unwrap();
    assert_eq!(va.chain_names(), vec!["a", "b", "genesis", "c"]);
    assert_eq!(vx.chain_names(), vec!["x", "c", "genesis", "b"]);
    assert_eq!(va.resolve(&"greet".parse().unwrap()).unwrap().doc, "b");
    assert_eq!(vx.resolve(&"greet".parse().unwrap()).unwrap().doc, "c");
    // Depth-first: for a, genesis (through b) comes before c, so genesis's g0 wins.
    assert_eq!(
        va.resolve(&"g0".parse().unwrap()).unwrap().object_id,
        rt.root()
    );
    assert_eq!(vx.resolve(&"g0".parse().unwrap()).unwrap().object_id, c.id);
    // Each selector counts once, whoever defines it.
    assert_eq!(va.methods.len(), 51);
    assert_eq!(va.methods.keys().count(), 51);
    assert_eq!(vx.methods.values().count(), 51);
    assert_eq!(va.own().map(|t| t.len()), Some(0));

    // Both views hold the very same tables, and the same methods: nothing is copied.
    let table = |v: &aura_core::ChainView, name: &str| {
        v.chain().find(|t| t.name() == name).unwrap() as *const aura_core::MethodTable
    };
    for name in ["genesis", "b", "c"] {
        assert!(std::ptr::eq(table(&va, name), table(&vx, name)), "{name}");
    }
    let g1 = |v: &aura_core::ChainView| v.resolve(&"g1".parse().unwrap()).unwrap().clone();
    assert!(Arc::ptr_eq(&g1(&va), &g1(&vx)));
    let stats = rt.cache_stats();
    assert_eq!((stats.views, stats.tables), (2, 5), "{stats:?}");

    // A write to one shared ancestor is seen through both chains.
    rt.define_method(c.id, "greet", method_source("greet", "c2"), "c2")
        .await
        .unwrap();
    assert_eq!(rt.resolve(a.id, "greet").await.unwrap().unwrap().doc, "b");
    assert_eq!(rt.resolve(x.id, "greet").await.unwrap().unwrap().doc, "c2");
    rt.set_parents(a.id, vec![c.id]).await.unwrap();
    assert_eq!(rt.resolve(a.id, "greet").await.unwrap().unwrap().doc, "c2");
    assert_eq!(
        rt.chain_view(a.id).await.unwrap().chain_names(),
        vec!["a", "c", "genesis"]
    );
}

#[tokio::test]
async fn a_redefinition_is_seen_through_a_cached_view() {
    let (sb, seen) = recording_sandbox(|_| outcome(json!("ok")));
    let rt = runtime_with(sb).await;
    let leaf = rt.create_object(NewObject::named("leaf")).await.unwrap();
    let area = |v: &str| format!("def area(self):\n    return self.helper() + {v:?}\n");
    rt.define_method(rt.root(), "area", area("v1"), "v1")
        .await
        .unwrap();
    rt.define_method(rt.root(), "helper", method_source("helper", "h1"), "")
        .await
        .unwrap();
    rt.send(leaf.id, "area", vec![]).await.unwrap();
    let before = rt.chain_view(leaf.id).await.unwrap();
    let hits = rt.cache_stats().hits;
    assert!(Arc::ptr_eq(&before, &rt.chain_view(leaf.id).await.unwrap()));
    assert!(
        rt.cache_stats().hits > hits,
        "the second read is a cache hit"
    );

    // Redefining on the root, and on a helper, reaches the leaf's next call at once.
    rt.define_method(rt.root(), "area", area("v2"), "v2")
        .await
        .unwrap();
    rt.define_method(rt.root(), "helper", method_source("helper", "h2"), "")
        .await
        .unwrap();
    rt.send(leaf.id, "area", vec![]).await.unwrap();
    let calls = seen.lock().unwrap().clone();
    let last = calls.last().unwrap();
    assert!(last.method.source.contains("v2"), "{}", last.method.source);
    assert!(last.helpers.iter().any(|h| h.source.contains("h2")));
    // A view already handed out stays a consistent snapshot of what it saw.
    assert_eq!(before.resolve(&"area".parse().unwrap()).unwrap().doc, "v1");
    assert_eq!(
        rt.resolve(leaf.id, "area").await.unwrap().unwrap().doc,
        "v2"
    );
}

#[tokio::test]
async fn the_caches_stay_within_their_bounds_and_resolve_the_same() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let mut config = Config::default();
    config.cache.views = 4;
    config.cache.tables = 6;
    let rt = runtime_configured(sb, config).await;
    rt.define_method(rt.root(), "area", method_source("area", "root"), "root")
        .await
        .unwrap();
    let mut objects = Vec::new();
    for i in 0..20 {
        let o = rt
            .create_object(NewObject::named(format!("o{i}")))
            .await
            .unwrap();
        if i % 5 == 0 {
            rt.define_method(o.id, "area", method_source("area", "own"), "own")
                .await
                .unwrap();
        }
        objects.push(o);
    }
    for _ in 0..2 {
        for (i, o) in objects.iter().enumerate() {
            let m = rt.resolve(o.id, "area").await.unwrap().unwrap();
            assert_eq!(m.doc, if i % 5 == 0 { "own" } else { "root" });
            let stats = rt.cache_stats();
            assert!(stats.views <= 4 && stats.tables <= 6, "{stats:?}");
        }
    }
    assert!(rt.cache_stats().evictions > 0);

    // A byte budget smaller than the root's table keeps that one table alone.
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let mut config = Config::default();
    config.cache.table_bytes = 1;
    let rt = runtime_configured(sb, config).await;
    rt.define_method(rt.root(), "area", method_source("area", "root"), "root")
        .await
        .unwrap();
    let o = rt.create_object(NewObject::named("o")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(rt.resolve(o.id, "area").await.unwrap().unwrap().doc, "root");
        assert!(rt.cache_stats().tables <= 1);
    }
}

#[tokio::test]
async fn writes_made_behind_the_runtimes_back_are_found_on_a_miss() {
    let (sb, seen) = recording_sandbox(|_| outcome(json!(42)));
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert!(rt.resolve(obj.id, "answer").await.unwrap().is_none());
    // Another writer (say, another process) adds the method straight into the store.
    rt.store()
        .put_method(aura_store::NewMethod {
            object_id: obj.id,
            selector: "answer".parse().unwrap(),
            source: "def answer(self):\n    return 42\n".into(),
            tests: String::new(),
            doc: String::new(),
            provenance: aura_store::Provenance::Manual,
            calls: None,
        })
        .await
        .unwrap();
    assert_eq!(rt.send(obj.id, "answer", vec![]).await.unwrap(), json!(42));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_ancestor_written_behind_the_runtimes_back_is_found_on_a_miss() {
    let (sb, seen) = recording_sandbox(|_| outcome(json!(7)));
    let rt = runtime_with(sb).await;
    let base = rt.create_object(NewObject::named("base")).await.unwrap();
    let leaf = rt
        .create_object(NewObject::named("leaf").with_parents([base.id]))
        .await
        .unwrap();
    let other = rt.create_object(NewObject::named("other")).await.unwrap();
    assert!(rt.resolve(leaf.id, "seven").await.unwrap().is_none());
    assert!(rt.resolve(other.id, "seven").await.unwrap().is_none());
    // Another writer adds the method to an ancestor, not to the receiver.
    rt.store()
        .put_method(aura_store::NewMethod {
            object_id: base.id,
            selector: "seven".parse().unwrap(),
            source: "def seven(self):\n    return 7\n".into(),
            tests: String::new(),
            doc: String::new(),
            provenance: aura_store::Provenance::Manual,
            calls: None,
        })
        .await
        .unwrap();
    assert_eq!(rt.send(leaf.id, "seven", vec![]).await.unwrap(), json!(7));
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Nothing else changed, so what does not pass through `base` stays cached.
    let views = rt.cache_stats().views;
    assert!(views >= 2, "{:?}", rt.cache_stats());
}

#[tokio::test]
async fn a_cycle_in_parents_is_refused_and_changes_nothing() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let a = rt.create_object(NewObject::named("a")).await.unwrap();
    let b = rt
        .create_object(NewObject::named("b").with_parents([a.id]))
        .await
        .unwrap();
    let c = rt
        .create_object(NewObject::named("c").with_parents([b.id]))
        .await
        .unwrap();
    assert!(matches!(
        rt.set_parents(a.id, vec![c.id]).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        rt.set_parents(a.id, vec![a.id]).await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(rt.object(a.id).await.unwrap().parents, vec![rt.root()]);
    assert!(matches!(
        rt.delete_object(rt.root()).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn send_passes_slots_args_and_helpers_and_commits_slot_changes() {
    let (sb, seen) = recording_sandbox(|req| {
        let mut out = outcome(json!(req.args[0].as_i64().unwrap() * 2));
        out.slot_changes.insert("last".into(), req.args[0].clone());
        out
    });
    let rt = runtime_with(sb).await;
    let base = rt.create_object(NewObject::named("base")).await.unwrap();
    rt.define_method(base.id, "helper", "def helper(self):\n    return 1\n", "")
        .await
        .unwrap();
    let mut slots = Map::new();
    slots.insert("unit".into(), json!("cm"));
    let obj = rt
        .create_object(
            NewObject::named("calc")
                .with_parents([base.id])
                .with_slots(slots),
        )
        .await
        .unwrap();
    rt.define_method(
        obj.id,
        "double",
        "def double(self, x):\n    return x * 2 * self.helper()\n",
        "",
    )
    .await
    .unwrap();

    assert_eq!(
        rt.send(obj.id, "double", vec![json!(21)]).await.unwrap(),
        json!(42)
    );
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.method.selector, "double");
    assert_eq!(req.slots.get("unit"), Some(&json!("cm")));
    assert_eq!(
        req.helpers
            .iter()
            .map(|h| h.selector.as_str())
            .collect::<Vec<_>>(),
        vec!["helper"]
    );
    let after = rt.object(obj.id).await.unwrap();
    assert_eq!(after.slots.get("last"), Some(&json!(21)));
    assert_eq!(after.slots.get("unit"), Some(&json!("cm")));
    assert_eq!(after.rev, obj.rev + 1);
}

#[tokio::test]
async fn a_lost_slot_race_reruns_the_call_on_fresh_slots() {
    // The sandbox increments `n`; a concurrent writer bumps the object between the
    // read and the write of the first attempt, so the first write is stale.
    let rt_cell: Arc<Mutex<Option<(Runtime, aura_store::ObjectId)>>> = Arc::default();
    let cell = rt_cell.clone();
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let (sb, _) = recording_sandbox(move |req| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        if *n == 1 {
            // Interfere: another writer updates the object now (on a separate thread,
            // since we are inside the mock's synchronous callback).
            let (rt, id) = cell.lock().unwrap().clone().unwrap();
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(rt.set_slot(id, "other", json!(true)))
                    .unwrap();
            })
            .join()
            .unwrap();
        }
        let current = req.slots.get("n").and_then(Value::as_i64).unwrap_or(0);
        let mut out = outcome(json!(current + 1));
        out.slot_changes.insert("n".into(), json!(current + 1));
        out
    });
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("counter")).await.unwrap();
    rt.define_method(obj.id, "bump", "def bump(self):\n    pass\n", "")
        .await
        .unwrap();
    *rt_cell.lock().unwrap() = Some((rt.clone(), obj.id));
    assert_eq!(rt.send(obj.id, "bump", vec![]).await.unwrap(), json!(1));
    assert_eq!(
        *calls.lock().unwrap(),
        2,
        "the stale first attempt is re-run"
    );
    let after = rt.object(obj.id).await.unwrap();
    assert_eq!(after.slots.get("n"), Some(&json!(1)));
    assert_eq!(
        after.slots.get("other"),
        Some(&json!(true)),
        "the other writer's change is kept"
    );
}

#[tokio::test]
async fn exceptions_and_limits_become_errors_and_change_no_slots() {
    let (sb, _) = recording_sandbox(|req| {
        let mut out = outcome(Value::Null);
        out.value = None;
        out.slot_changes.insert("touched".into(), json!(1));
        if req.method.selector == "boom" {
            out.ended = EndReason::Exception;
            out.error = Some(GuestError {
                type_name: "ZeroDivisionError".into(),
                message: "division by zero".into(),
                traceback: "Traceback…".into(),
            });
        } else {
            out.ended = EndReason::Timeout;
        }
        out
    });
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    rt.define_method(obj.id, "boom", "def boom(self):\n    return 1/0\n", "")
        .await
        .unwrap();
    rt.define_method(
        obj.id,
        "spin",
        "def spin(self):\n    while True: pass\n",
        "",
    )
    .await
    .unwrap();
    match rt.send(obj.id, "boom", vec![]).await.unwrap_err() {
        Error::MethodRaised { selector, error } => {
            assert_eq!(selector, "boom");
            assert_eq!(error.type_name, "ZeroDivisionError");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rt.send(obj.id, "spin", vec![]).await,
        Err(Error::Stopped {
            reason: EndReason::Timeout,
            ..
        })
    ));
    assert!(rt
        .object(obj.id)
        .await
        .unwrap()
        .slots
        .get("touched")
        .is_none());
}

#[tokio::test]
async fn hostile_methods_are_rejected_by_the_guard_and_not_stored() {
    let (sb, _) = recording_sandbox(|_| outcome(Value::Null));
    let rt = runtime_with(sb).await;
    let obj = rt.create_object(NewObject::named("files")).await.unwrap();
    let err = rt
        .define_method(
            obj.id,
            "ls",
            "import os\ndef ls(self):\n    return os.listdir('.')\n",
            "",
        )
        .await
        .unwrap_err();
    match err {
        Error::Rejected { selector, verdict } => {
            assert_eq!(selector, "ls");
            assert!(!verdict.accepted);
            assert!(verdict.violations.iter().any(|v| v.line == 1));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(rt.method_versions(obj.id, "ls").await.unwrap().is_empty());
    assert!(matches!(
        rt.send(obj.id, "ls", vec![]).await,
        Err(Error::DoesNotUnderstand { .. })
    ));
}
