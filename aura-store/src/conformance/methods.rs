//! Methods: versions and rollback.

use super::*;

/// Method versions count 1, 2, 3…; the current one is the newest.
pub async fn methods_are_versioned(store: &dyn Store) {
    let object = create(store, "methods").await;
    let empty = store.list_methods(object.id).await.expect("list");
    assert!(empty.is_empty());
    assert_eq!(
        store
            .get_method(object.id, &selector("fib"))
            .await
            .expect("get"),
        None,
        "an unknown selector on a known object is None"
    );
    assert!(store
        .method_versions(object.id, &selector("fib"))
        .await
        .expect("versions")
        .is_empty());

    for n in 1..=3u32 {
        let put = store
            .put_method(method(
                object.id,
                "fib",
                &format!("def fib(self, n):\n    return {n}\n"),
            ))
            .await
            .expect("put");
        assert_eq!(put.version, n);
    }
    let learned = Provenance::Learned {
        event: Some(EventId::new()),
        models: vec!["brick".into(), "robin".into()],
    };
    let calls = Some(vec![selector("fib"), selector("shout")]);
    let other = store
        .put_method(NewMethod {
            provenance: learned.clone(),
            calls: calls.clone(),
            ..method(
                object.id,
                "greet",
                "def greet(self):\n    return self.shout(self.fib(2))\n",
            )
        })
        .await
        .expect("put greet");
    assert_eq!(other.version, 1, "versions count per selector");
    assert_eq!(other.provenance, learned);
    assert_eq!(other.calls, calls, "the call graph is stored as given");

    let current = store
        .get_method(object.id, &selector("fib"))
        .await
        .expect("get")
        .expect("fib exists");
    assert_eq!(current.version, 3);
    assert!(current.source.contains("return 3"));
    assert_eq!(current.object_id, object.id);
    assert_eq!(current.provenance, Provenance::Manual);
    assert_eq!(
        current.calls, None,
        "an unrecorded call graph stays unrecorded"
    );

    let listed = store.list_methods(object.id).await.expect("list");
    let mut by_selector: Vec<(String, u32)> = listed
        .iter()
        .map(|m| (m.selector.to_string(), m.version))
        .collect();
    by_selector.sort();
    assert_eq!(
        by_selector,
        vec![("fib".into(), 3), ("greet".into(), 1)],
        "current versions only"
    );
    assert_eq!(
        store
            .get_method(object.id, &selector("greet"))
            .await
            .expect("get")
            .expect("greet"),
        other
    );

    let versions = store
        .method_versions(object.id, &selector("fib"))
        .await
        .expect("versions");
    assert_eq!(
        versions.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(*versions.last().expect("v3"), current);
    // Methods live on their object only: a child does not list its parent's methods.
    let child = create_with_parents(store, "methods-child", &[object.id]).await;
    assert!(store.list_methods(child.id).await.expect("list").is_empty());
    assert_eq!(
        store
            .get_method(child.id, &selector("fib"))
            .await
            .expect("get"),
        None
    );
}

/// Rolling back stores the old version again as a new one, marked as a rollback.
pub async fn method_rollback_adds_a_version(store: &dyn Store) {
    let object = create(store, "rollback").await;
    for n in 1..=3 {
        store
            .put_method(NewMethod {
                calls: (n == 1).then(|| vec![selector("helper")]),
                ..method(
                    object.id,
                    "answer",
                    &format!("def answer(self):\n    return {n}\n"),
                )
            })
            .await
            .expect("put");
    }
    let restored = store
        .rollback_method(object.id, &selector("answer"), 1)
        .await
        .expect("rollback");
    assert_eq!(restored.version, 4, "a rollback is a new version");
    assert_eq!(
        restored.provenance,
        Provenance::Rollback { from_version: 1 }
    );
    assert!(restored.source.contains("return 1"));
    assert_eq!(
        restored.calls,
        Some(vec![selector("helper")]),
        "a rollback restores the version's call graph with its source"
    );
    let current = store
        .get_method(object.id, &selector("answer"))
        .await
        .expect("get")
        .expect("answer");
    assert_eq!(current, restored);
    assert_err!(
        store
            .rollback_method(object.id, &selector("answer"), 99)
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .rollback_method(object.id, &selector("nothing"), 1)
            .await,
        Error::NotFound { .. }
    );
    let next = store
        .put_method(method(
            object.id,
            "answer",
            "def answer(self):\n    return 5\n",
        ))
        .await
        .expect("put after rollback");
    assert_eq!(next.version, 5, "versions are never reused");
    let versions = store
        .method_versions(object.id, &selector("answer"))
        .await
        .expect("versions");
    assert_eq!(
        versions.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
}
