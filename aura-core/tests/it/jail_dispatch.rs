//! Dispatch end to end on the embedded defaults: SQLite store and the namespace jail.
#![allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::sync::Arc;

use aura_core::store::NewObject;
use aura_core::{Config, Error, Runtime};
use aura_store::SqliteStore;
use serde_json::json;

async fn runtime() -> Runtime {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(dir.path().join("aura.sqlite"))
            .await
            .unwrap(),
    );
    // Keep the directory for the life of the test process.
    std::mem::forget(dir);
    let sandbox = common::jail();
    Runtime::builder()
        .config(Config::default())
        .store(store)
        .without_model()
        .sandbox(Arc::new(sandbox))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_method_inherited_from_a_parent_runs_in_the_jail_and_writes_slots() {
    let rt = runtime().await;
    let math = rt.create_object(NewObject::named("math")).await.unwrap();
    rt.define_method(
        math.id,
        "fibonacci",
        "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    self.last = a\n    return a\n",
        "",
    )
    .await
    .unwrap();
    rt.define_method(
        math.id,
        "fib_plus",
        "def fib_plus(self, n, k):\n    return self.fibonacci(n) + k\n",
        "",
    )
    .await
    .unwrap();
    let calc = rt
        .create_object(NewObject::named("calc").with_parents([math.id]))
        .await
        .unwrap();

    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    assert_eq!(rt.slot(calc.id, "last").await.unwrap(), Some(json!(55)));
    assert_eq!(
        rt.slot(math.id, "last").await.unwrap(),
        None,
        "slots land on the receiver"
    );
    assert_eq!(
        rt.send(calc.id, "fib_plus", vec![json!(10), json!(1)])
            .await
            .unwrap(),
        json!(56)
    );

    rt.define_method(
        math.id,
        "broken",
        "def broken(self):\n    return 1 / 0\n",
        "",
    )
    .await
    .unwrap();
    match rt.send(calc.id, "broken", vec![]).await.unwrap_err() {
        Error::MethodRaised { error, .. } => assert_eq!(error.type_name, "ZeroDivisionError"),
        other => panic!("{other:?}"),
    }
}
