//! Transactions: all or nothing, their own writes visible, and rollback on error, panic and cancellation.

use super::*;

/// One unit of work: invisible until commit, then visible whole.
pub async fn transaction_commits_all_or_nothing(store: &dyn Store) {
    let name = unique("unit");
    let mut tx = store.begin().await.expect("begin");
    let object = tx
        .create_object(NewObject::named(&name))
        .await
        .expect("create");
    let m = tx
        .put_method(method(
            object.id,
            "learned",
            "def learned(self):\n    return 1\n",
        ))
        .await
        .expect("put method");
    let event = tx
        .append_event(NewAuditEvent::new(
            "method.committed",
            Some(object.id),
            json!({"v": 1}),
        ))
        .await
        .expect("event");
    let memory = tx
        .add_memory_node(NewMemoryNode::new("method", unique("learned")))
        .await
        .expect("node");
    tx.add_link(link(NodeRef::Node(memory.id), NodeRef::Object(object.id)))
        .await
        .expect("link");

    // Not visible outside the transaction yet.
    assert_eq!(store.find_object(&name).await.expect("find"), None);
    assert_err!(
        store.get_memory_node(memory.id).await,
        Error::NotFound { .. }
    );

    tx.commit().await.expect("commit");
    assert_eq!(store.get_object(object.id).await.expect("get").name, name);
    assert_eq!(
        store
            .get_method(object.id, &selector("learned"))
            .await
            .expect("get")
            .expect("method"),
        m
    );
    assert_eq!(all_events(store, object.id).await, vec![event]);
    assert_eq!(
        store.get_memory_node(memory.id).await.expect("node"),
        memory
    );
    let near = store
        .neighbours(NodeRef::Object(object.id), 1, 10)
        .await
        .expect("neighbours");
    assert_eq!(near.len(), 1);

    // An empty transaction commits and one that only reads rolls back.
    store
        .begin()
        .await
        .expect("begin")
        .commit()
        .await
        .expect("empty commit");
    let mut reader = store.begin().await.expect("begin");
    reader.get_object(object.id).await.expect("read in tx");
    reader.rollback().await.expect("rollback");
}

/// A transaction reads its own writes.
pub async fn transaction_sees_its_own_writes(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    let object = tx
        .create_object(NewObject::named(unique("own")).with_slots(slots(json!({"n": 1}))))
        .await
        .expect("create");
    assert_eq!(
        tx.get_object(object.id).await.expect("read own write"),
        object
    );
    let updated = tx
        .update_object(
            object.id,
            1,
            ObjectPatch {
                slots: Some(slots(json!({"n": 2}))),
                parents: None,
            },
        )
        .await
        .expect("update own write");
    assert_eq!(
        tx.get_object(object.id).await.expect("read").slots["n"],
        json!(2)
    );
    assert_err!(
        tx.update_object(object.id, 1, ObjectPatch::default()).await,
        Error::Conflict(_)
    );
    tx.commit().await.expect("commit");
    assert_eq!(store.get_object(object.id).await.expect("get"), updated);
}

/// Work that fails part-way — rolled back explicitly, or simply dropped — writes nothing.
pub async fn rollback_on_error(store: &dyn Store) {
    let existing = create(store, "rb-existing").await;

    // A unit of work that returns an error after some writes; the caller drops the transaction.
    async fn unit_of_work(store: &dyn Store, name: &str, parent: ObjectId) -> crate::Result<()> {
        let mut tx = store.begin().await?;
        let object = tx.create_object(NewObject::named(name)).await?;
        tx.put_method(method(object.id, "half", "def half(self):\n    pass\n"))
            .await?;
        tx.append_event(NewAuditEvent::new(
            "learn.attempt",
            Some(object.id),
            json!({}),
        ))
        .await?;
        tx.update_object(
            parent,
            1,
            ObjectPatch {
                slots: Some(slots(json!({"touched": true}))),
                parents: None,
            },
        )
        .await?;
        // A stale revision: the `?` returns early and the transaction is dropped.
        tx.update_object(parent, 1, ObjectPatch::default()).await?;
        tx.commit().await
    }
    let name = unique("rb-dropped");
    assert_err!(
        unit_of_work(store, &name, existing.id).await,
        Error::Conflict(_)
    );
    assert_eq!(store.find_object(&name).await.expect("find"), None);
    assert_eq!(store.get_object(existing.id).await.expect("get"), existing);

    // Explicit rollback.
    let name = unique("rb-explicit");
    let mut tx = store.begin().await.expect("begin");
    let object = tx
        .create_object(NewObject::named(&name))
        .await
        .expect("create");
    tx.append_event(NewAuditEvent::new(
        "learn.attempt",
        Some(object.id),
        json!({}),
    ))
    .await
    .expect("event");
    tx.put_facet(Facet {
        name: name.clone(),
        persona: "brick".into(),
        base_model: "m".into(),
        adapter_path: "/a".into(),
        metrics: json!({}),
        created_at: chrono::Utc::now(),
    })
    .await
    .expect("facet");
    tx.rollback().await.expect("rollback");
    assert_eq!(store.find_object(&name).await.expect("find"), None);
    assert!(all_events(store, object.id).await.is_empty());
    assert_err!(store.get_facet(&name).await, Error::NotFound { .. });

    // The store takes new work afterwards.
    let after = create(store, "rb-after").await;
    assert_eq!(store.get_object(after.id).await.expect("get"), after);
}

/// A task that panics while holding a transaction writes nothing, and the store goes on.
pub async fn rollback_on_panic(store: &dyn Store) {
    let existing = create(store, "panic-existing").await;
    let name = unique("panic");
    let tx = store.begin().await.expect("begin");
    let task_name = name.clone();
    let parent = existing.id;
    let task = tokio::spawn(async move {
        let mut tx = tx;
        let object = tx
            .create_object(NewObject::named(task_name))
            .await
            .expect("create");
        tx.append_event(NewAuditEvent::new(
            "learn.attempt",
            Some(object.id),
            json!({}),
        ))
        .await
        .expect("event");
        tx.update_object(
            parent,
            1,
            ObjectPatch {
                slots: Some(slots(json!({"touched": true}))),
                parents: None,
            },
        )
        .await
        .expect("update");
        panic!("deliberate panic while holding a transaction (the conformance suite expects it)");
    });
    let joined = task.await;
    assert!(
        joined.as_ref().is_err_and(|e| e.is_panic()),
        "the task panicked"
    );
    assert_eq!(
        store.find_object(&name).await.expect("find"),
        None,
        "nothing was written"
    );
    assert_eq!(store.get_object(existing.id).await.expect("get"), existing);
    // The writer is free again.
    let updated = tokio::time::timeout(
        Duration::from_secs(10),
        store.update_slots(existing.id, 1, slots(json!({"after": "panic"}))),
    )
    .await
    .expect("the store takes writes again after a panic")
    .expect("update");
    assert_eq!(updated.rev, 2);
}

/// A transaction whose future is dropped mid-call writes nothing, and the store goes on.
pub async fn rollback_on_cancellation(store: &dyn Store) {
    let name = unique("cancelled");
    {
        let mut tx = store.begin().await.expect("begin");
        tx.create_object(NewObject::named(&name))
            .await
            .expect("create");
        // Start a write and abandon it at its first suspension point.
        let abandoned = tokio::time::timeout(
            Duration::ZERO,
            tx.add_memory_node(NewMemoryNode::new("note", "abandoned")),
        )
        .await;
        drop(abandoned);
        drop(tx);
    }
    assert_eq!(store.find_object(&name).await.expect("find"), None);
    let after = tokio::time::timeout(
        Duration::from_secs(10),
        store.create_object(NewObject::named(unique("after-cancel"))),
    )
    .await
    .expect("the store takes writes again after a cancelled transaction")
    .expect("create");
    assert_eq!(after.rev, 1);
}
