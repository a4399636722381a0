//! A call ships the method and what it can reach, not the whole library on the chain;
//! run in the real jail, so a helper left behind would fail the call.
#![allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aura_core::store::{NewObject, StoreExt};
use aura_core::{Config, Runtime};
use aura_sandbox::{ExecOutcome, ExecRequest, JailSandbox, Sandbox, SandboxCapabilities};
use aura_store::{NewMethod, Provenance, SqliteStore};
use serde_json::json;

/// The jail, remembering which helpers each call shipped.
#[derive(Debug)]
struct Shipped {
    jail: JailSandbox,
    helpers: Mutex<Vec<Vec<String>>>,
}

impl Shipped {
    /// The helpers the last call shipped, sorted.
    fn last(&self) -> Vec<String> {
        let mut last = self.helpers.lock().unwrap().last().cloned().unwrap();
        last.sort();
        last
    }
}

#[async_trait]
impl Sandbox for Shipped {
    fn capabilities(&self) -> SandboxCapabilities {
        self.jail.capabilities()
    }

    async fn execute(&self, request: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        let names = request.helpers.iter().map(|h| h.selector.clone()).collect();
        self.helpers.lock().unwrap().push(names);
        self.jail.execute(request).await
    }
}

async fn runtime() -> (Runtime, Arc<Shipped>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(dir.path().join("aura.sqlite"))
            .await
            .unwrap(),
    );
    std::mem::forget(dir); // kept for the life of the test process
    let shipped = Arc::new(Shipped {
        jail: common::jail(),
        helpers: Mutex::default(),
    });
    let rt = Runtime::builder()
        .config(Config::default())
        .store(store)
        .without_model()
        .sandbox(shipped.clone())
        .build()
        .await
        .unwrap();
    (rt, shipped)
}

/// `count` methods on genesis that nothing calls.
async fn library(rt: &Runtime, count: usize) {
    for i in 0..count {
        rt.define_method(
            rt.root(),
            &format!("unrelated_{i}"),
            format!("def unrelated_{i}(self):\n    return {i}\n"),
            "",
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_call_ships_only_what_it_reaches_along_the_chain() {
    let (rt, shipped) = runtime().await;
    library(&rt, 30).await;
    let base = rt.create_object(NewObject::named("base")).await.unwrap();
    let leaf = rt
        .create_object(NewObject::named("leaf").with_parents([base.id]))
        .await
        .unwrap();
    // total → tax (on the parent) → rate (on genesis); tax also reads a literal getattr.
    rt.define_method(rt.root(), "rate", "def rate(self):\n    return 2\n", "")
        .await
        .unwrap();
    rt.define_method(
        base.id,
        "tax",
        "def tax(self, x):\n    return x * self.rate() + getattr(self, 'fee')()\n",
        "",
    )
    .await
    .unwrap();
    rt.define_method(base.id, "fee", "def fee(self):\n    return 1\n", "")
        .await
        .unwrap();
    rt.define_method(
        leaf.id,
        "total",
        "def total(self, xs):\n    return self.tax(sum(xs))\n",
        "",
    )
    .await
    .unwrap();

    let total = rt.resolve(leaf.id, "total").await.unwrap().unwrap();
    assert_eq!(total.calls, Some(vec!["tax".parse().unwrap()]));
    assert_eq!(
        rt.send(leaf.id, "total", vec![json!([1, 2, 3])])
            .await
            .unwrap(),
        json!(13)
    );
    assert_eq!(shipped.last(), ["fee", "rate", "tax"]);

    // A method that calls nothing ships nothing, however large the library.
    assert_eq!(rt.send(leaf.id, "rate", vec![]).await.unwrap(), json!(2));
    assert!(shipped.last().is_empty());
}

#[tokio::test]
async fn a_helper_defined_or_redefined_later_is_found() {
    let (rt, shipped) = runtime().await;
    let obj = rt.create_object(NewObject::named("shop")).await.unwrap();
    // The caller first: its helper does not exist yet.
    rt.define_method(
        obj.id,
        "price",
        "def price(self, n):\n    return n * self.unit()\n",
        "",
    )
    .await
    .unwrap();
    let missing = rt.send(obj.id, "price", vec![json!(3)]).await;
    assert!(missing.is_err(), "{missing:?}");

    // Defined later, on an ancestor: the next call reaches it.
    rt.define_method(rt.root(), "unit", "def unit(self):\n    return 5\n", "")
        .await
        .unwrap();
    assert_eq!(
        rt.send(obj.id, "price", vec![json!(3)]).await.unwrap(),
        json!(15)
    );
    // Redefined nearer, on the receiver, and calling a further helper: both are shipped.
    rt.define_method(
        obj.id,
        "unit",
        "def unit(self):\n    return self.base_unit() + 1\n",
        "",
    )
    .await
    .unwrap();
    rt.define_method(
        rt.root(),
        "base_unit",
        "def base_unit(self):\n    return 9\n",
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        rt.send(obj.id, "price", vec![json!(3)]).await.unwrap(),
        json!(30)
    );
    assert_eq!(shipped.last(), ["base_unit", "unit"]);
}

#[tokio::test]
async fn a_method_without_a_recorded_call_graph_ships_everything() {
    let (rt, shipped) = runtime().await;
    library(&rt, 5).await;
    let obj = rt.create_object(NewObject::named("legacy")).await.unwrap();
    rt.define_method(rt.root(), "two", "def two(self):\n    return 2\n", "")
        .await
        .unwrap();
    // Stored the way versions from before call graphs are read back: `calls` unknown.
    rt.store()
        .put_method(NewMethod {
            object_id: obj.id,
            selector: "four".parse().unwrap(),
            source: "def four(self):\n    return self.two() * 2\n".into(),
            tests: String::new(),
            doc: String::new(),
            provenance: Provenance::Manual,
            calls: None,
        })
        .await
        .unwrap();
    rt.invalidate(obj.id);
    assert_eq!(rt.send(obj.id, "four", vec![]).await.unwrap(), json!(4));
    let every: Vec<String> = (0..5)
        .map(|i| format!("unrelated_{i}"))
        .chain(["two".to_owned()])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(shipped.last(), every);

    // A reached helper without a call graph makes the whole closure conservative too.
    rt.define_method(
        obj.id,
        "eight",
        "def eight(self):\n    return self.four() * 2\n",
        "",
    )
    .await
    .unwrap();
    assert_eq!(rt.send(obj.id, "eight", vec![]).await.unwrap(), json!(8));
    assert!(shipped.last().contains(&"four".to_owned()));
    assert!(shipped.last().contains(&"unrelated_3".to_owned()));
}

#[tokio::test]
async fn a_rollback_restores_the_call_graph_of_the_version_it_restores() {
    let (rt, shipped) = runtime().await;
    let obj = rt.create_object(NewObject::named("calc")).await.unwrap();
    rt.define_method(obj.id, "one", "def one(self):\n    return 1\n", "")
        .await
        .unwrap();
    rt.define_method(obj.id, "f", "def f(self):\n    return self.one() + 1\n", "")
        .await
        .unwrap();
    rt.define_method(obj.id, "f", "def f(self):\n    return 10\n", "")
        .await
        .unwrap();
    assert_eq!(rt.send(obj.id, "f", vec![]).await.unwrap(), json!(10));
    assert!(shipped.last().is_empty());
    rt.rollback_method(obj.id, "f", 1).await.unwrap();
    assert_eq!(rt.send(obj.id, "f", vec![]).await.unwrap(), json!(2));
    assert_eq!(shipped.last(), ["one"]);
}
