//! Objects: round trips, names, parents, revisions, concurrent writers, cycles, deletion, and unknown ids.

use super::*;

/// The backend names itself and accepts at least 1 MiB documents.
pub async fn capabilities_are_declared(store: &dyn Store) {
    let caps = store.capabilities();
    assert!(!caps.backend.is_empty(), "capabilities name the backend");
    assert!(
        caps.max_document_bytes >= 1024 * 1024,
        "a store accepts at least 1 MiB documents (declared {})",
        caps.max_document_bytes
    );
}

/// Create, get, find and list objects.
pub async fn objects_round_trip(store: &dyn Store) {
    let name = unique("round-trip");
    let created = store
        .create_object(NewObject::named(&name).with_slots(slots(
            json!({"n": 1, "tags": ["a", "b"], "nested": {"x": null}}),
        )))
        .await
        .expect("create");
    assert_eq!(created.name, name);
    assert_eq!(created.rev, 1, "a new object is at revision 1");
    assert!(created.parents.is_empty());
    assert_eq!(created.slots["tags"], json!(["a", "b"]));
    assert_eq!(created.created_at, created.updated_at);

    let read = store.get_object(created.id).await.expect("get");
    assert_eq!(read, created, "get returns what create returned");
    let found = store.find_object(&name).await.expect("find");
    assert_eq!(found, Some(created.clone()));
    assert_eq!(
        store.find_object(&unique("nobody")).await.expect("find"),
        None
    );

    let given = ObjectId::new();
    let with_id = store
        .create_object(NewObject {
            id: Some(given),
            ..NewObject::named(unique("given-id"))
        })
        .await
        .expect("create with a given id");
    assert_eq!(with_id.id, given);

    let third = create(store, "third").await;
    let all = all_objects(store).await;
    let position = |id: ObjectId| all.iter().position(|o| o.id == id).expect("listed object");
    assert!(
        position(created.id) < position(given),
        "listed oldest first"
    );
    assert!(position(given) < position(third.id), "listed oldest first");
    let none = store
        .list_objects(Page {
            offset: 0,
            limit: 0,
        })
        .await
        .expect("list");
    assert!(none.is_empty(), "a page of 0 is empty");
}

/// Names are unique and validated; a refused create writes nothing.
pub async fn object_names_are_unique_and_checked(store: &dyn Store) {
    let first = create(store, "unique").await;
    assert_err!(
        store.create_object(NewObject::named(&first.name)).await,
        Error::Conflict(_)
    );
    assert_err!(
        store
            .create_object(NewObject {
                id: Some(first.id),
                ..NewObject::named(unique("same-id"))
            })
            .await,
        Error::Conflict(_)
    );
    for bad in [
        "",
        "   ",
        "line\nbreak",
        "nul\0char",
        &"x".repeat(MAX_NAME_LEN + 1),
    ] {
        assert_err!(
            store.create_object(NewObject::named(bad)).await,
            Error::Invalid(_)
        );
    }
    // The first object is untouched.
    assert_eq!(store.get_object(first.id).await.expect("get"), first);
}

/// Parents keep their order; a missing parent is refused and nothing is written.
pub async fn parents_are_ordered_and_must_exist(store: &dyn Store) {
    let a = create(store, "parent-a").await;
    let b = create(store, "parent-b").await;
    let c = create(store, "parent-c").await;
    let child = create_with_parents(store, "child", &[c.id, a.id, b.id]).await;
    assert_eq!(child.parents, vec![c.id, a.id, b.id]);
    assert_eq!(
        store.get_object(child.id).await.expect("get").parents,
        vec![c.id, a.id, b.id],
        "parents are kept in delegation order"
    );

    let orphan = unique("orphan");
    assert_err!(
        store
            .create_object(NewObject::named(&orphan).with_parents([a.id, ObjectId::new()]))
            .await,
        Error::NotFound { .. }
    );
    assert_eq!(
        store.find_object(&orphan).await.expect("find"),
        None,
        "nothing written"
    );
    assert_err!(
        store
            .create_object(NewObject::named(unique("twice")).with_parents([a.id, a.id]))
            .await,
        Error::Invalid(_)
    );

    let updated = store
        .update_object(
            child.id,
            child.rev,
            ObjectPatch {
                slots: None,
                parents: Some(vec![b.id]),
            },
        )
        .await
        .expect("reparent");
    assert_eq!(updated.parents, vec![b.id]);
    assert_eq!(updated.rev, 2);
    assert_err!(
        store
            .update_object(
                child.id,
                updated.rev,
                ObjectPatch {
                    slots: None,
                    parents: Some(vec![ObjectId::new()]),
                },
            )
            .await,
        Error::NotFound { .. }
    );
    assert_eq!(store.get_object(child.id).await.expect("get"), updated);
}

/// Updates bump the revision; a stale revision is a conflict that changes nothing.
pub async fn updates_check_the_revision(store: &dyn Store) {
    let object = store
        .create_object(NewObject::named(unique("rev")).with_slots(slots(json!({"n": 0}))))
        .await
        .expect("create");
    let v2 = store
        .update_slots(object.id, 1, slots(json!({"n": 1, "s": "x"})))
        .await
        .expect("update at rev 1");
    assert_eq!(v2.rev, 2);
    assert_eq!(
        v2.slots,
        slots(json!({"n": 1, "s": "x"})),
        "slots are replaced"
    );
    assert!(v2.updated_at >= object.updated_at);
    assert_eq!(v2.created_at, object.created_at);
    assert_eq!(store.get_object(object.id).await.expect("get"), v2);

    assert_err!(
        store
            .update_slots(object.id, 1, slots(json!({"n": 99})))
            .await,
        Error::Conflict(_)
    );
    assert_err!(
        store
            .update_slots(object.id, 7, slots(json!({"n": 99})))
            .await,
        Error::Conflict(_)
    );
    assert_eq!(
        store.get_object(object.id).await.expect("get"),
        v2,
        "a stale write changes nothing"
    );
    let v3 = store
        .update_object(object.id, 2, ObjectPatch::default())
        .await
        .expect("empty patch");
    assert_eq!(v3.rev, 3, "every write bumps the revision");
    assert_eq!(v3.slots, v2.slots);
}

/// Two writers that read the same revision: exactly one wins, every time.
pub async fn stale_revision_exactly_one_writer_wins(store: &dyn Store) {
    let object = create(store, "race").await;
    let mut rev = object.rev;
    for round in 0..10 {
        let (a, b) = futures::join!(
            store.update_slots(
                object.id,
                rev,
                slots(json!({"writer": "a", "round": round}))
            ),
            store.update_slots(
                object.id,
                rev,
                slots(json!({"writer": "b", "round": round}))
            ),
        );
        let winner = match (a, b) {
            (Ok(w), Err(Error::Conflict(_))) | (Err(Error::Conflict(_)), Ok(w)) => w,
            (a, b) => panic!(
                "round {round}: expected exactly one winner, got {:?} and {:?}",
                a.map(|o| o.rev),
                b.map(|o| o.rev)
            ),
        };
        assert_eq!(winner.rev, rev + 1);
        let now = store.get_object(object.id).await.expect("get");
        assert_eq!(now, winner, "the store holds the winner's write");
        rev = winner.rev;
    }
}

/// Many concurrent writers: every write lands, no increment is lost.
pub async fn concurrent_writers_lose_nothing(store: &dyn Store) {
    const WRITERS: usize = 8;
    const EACH: usize = 8;
    let counter = store
        .create_object(NewObject::named(unique("counter")).with_slots(slots(json!({"n": 0}))))
        .await
        .expect("create counter");
    let prefix = unique("writer");
    let work = (0..WRITERS).map(|w| {
        let prefix = prefix.clone();
        async move {
            let mut conflicts = 0u32;
            for i in 0..EACH {
                store
                    .create_object(NewObject::named(format!("{prefix}-{w}-{i}")))
                    .await
                    .expect("concurrent create");
                loop {
                    let current = store.get_object(counter.id).await.expect("get counter");
                    let n = current.slots["n"].as_u64().expect("n is a number");
                    match store
                        .update_slots(counter.id, current.rev, slots(json!({"n": n + 1})))
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict(_)) => conflicts += 1,
                        Err(e) => panic!("concurrent update failed: {e}"),
                    }
                }
            }
            conflicts
        }
    });
    let conflicts: u32 = join_all(work).await.into_iter().sum();
    let total = WRITERS * EACH;
    let end = store.get_object(counter.id).await.expect("get counter");
    assert_eq!(
        end.slots["n"],
        json!(total),
        "no increment lost ({conflicts} conflicts retried)"
    );
    assert_eq!(end.rev, total as u64 + 1);
    for w in 0..WRITERS {
        for i in 0..EACH {
            assert!(
                store
                    .find_object(&format!("{prefix}-{w}-{i}"))
                    .await
                    .expect("find")
                    .is_some(),
                "object {w}-{i} landed"
            );
        }
    }
}

/// Self, direct and indirect parent cycles are refused with `Invalid`; nothing changes.
pub async fn parent_cycles_are_rejected(store: &dyn Store) {
    // Self, at creation.
    let id = ObjectId::new();
    let name = unique("self-parent");
    assert_err!(
        store
            .create_object(NewObject {
                id: Some(id),
                ..NewObject::named(&name).with_parents([id])
            })
            .await,
        Error::Invalid(_) | Error::NotFound { .. }
    );
    assert_eq!(store.find_object(&name).await.expect("find"), None);

    let a = create(store, "cycle-a").await;
    let b = create_with_parents(store, "cycle-b", &[a.id]).await;
    let c = create_with_parents(store, "cycle-c", &[b.id]).await;
    let reparent = |parents: Vec<ObjectId>| ObjectPatch {
        slots: None,
        parents: Some(parents),
    };
    // Self, by update.
    assert_err!(
        store.update_object(a.id, a.rev, reparent(vec![a.id])).await,
        Error::Invalid(_)
    );
    // Direct: a <- b, so a cannot delegate to b.
    assert_err!(
        store.update_object(a.id, a.rev, reparent(vec![b.id])).await,
        Error::Invalid(_)
    );
    // Indirect: a <- b <- c, so a cannot delegate to c (even behind an innocent parent).
    let other = create(store, "cycle-other").await;
    assert_err!(
        store
            .update_object(a.id, a.rev, reparent(vec![other.id, c.id]))
            .await,
        Error::Invalid(_)
    );
    assert_eq!(
        store.get_object(a.id).await.expect("get"),
        a,
        "a refused write changes nothing"
    );
    // A diamond is not a cycle.
    let d = create_with_parents(store, "diamond", &[b.id, a.id]).await;
    assert_eq!(d.parents, vec![b.id, a.id]);
    let c2 = store
        .update_object(c.id, c.rev, reparent(vec![b.id, other.id]))
        .await
        .expect("a new parent that forms no cycle");
    assert_eq!(c2.parents, vec![b.id, other.id]);
}

/// Delete is refused while others delegate to the object; it removes the object's methods.
pub async fn delete_respects_delegation(store: &dyn Store) {
    let parent = create(store, "del-parent").await;
    let child = create_with_parents(store, "del-child", &[parent.id]).await;
    store
        .put_method(method(
            parent.id,
            "greet",
            "def greet(self):\n    return 'hi'\n",
        ))
        .await
        .expect("put method");
    assert_err!(store.delete_object(parent.id).await, Error::Conflict(_));
    assert!(
        store.get_object(parent.id).await.is_ok(),
        "a refused delete changes nothing"
    );
    assert!(store
        .get_method(parent.id, &selector("greet"))
        .await
        .expect("get method")
        .is_some());

    store
        .update_object(
            child.id,
            child.rev,
            ObjectPatch {
                slots: None,
                parents: Some(vec![]),
            },
        )
        .await
        .expect("drop the parent");
    store.delete_object(parent.id).await.expect("delete");
    assert_err!(store.get_object(parent.id).await, Error::NotFound { .. });
    assert_err!(
        store.get_method(parent.id, &selector("greet")).await,
        Error::NotFound { .. }
    );
    assert_err!(store.list_methods(parent.id).await, Error::NotFound { .. });
    assert_err!(store.delete_object(parent.id).await, Error::NotFound { .. });
    assert_eq!(store.find_object(&parent.name).await.expect("find"), None);
    // The name is free again.
    store
        .create_object(NewObject::named(&parent.name))
        .await
        .expect("reuse a deleted object's name");
    // A leaf can always go.
    store.delete_object(child.id).await.expect("delete leaf");
}

/// Every call naming an unknown id is `NotFound`.
pub async fn unknown_ids_are_not_found(store: &dyn Store) {
    let ghost = ObjectId::new();
    let ghost_node = NodeId::new();
    let sel = selector("ghost");
    assert_err!(store.get_object(ghost).await, Error::NotFound { .. });
    assert_err!(store.get_method(ghost, &sel).await, Error::NotFound { .. });
    assert_err!(store.list_methods(ghost).await, Error::NotFound { .. });
    assert_err!(
        store.method_versions(ghost, &sel).await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.get_memory_node(ghost_node).await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.neighbours(NodeRef::Node(ghost_node), 2, 10).await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.neighbours(NodeRef::Object(ghost), 2, 10).await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.get_facet("ghost-facet-that-does-not-exist").await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .query_audit(&AuditQuery {
                after: Some(EventId::new()),
                ..AuditQuery::default()
            })
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.update_slots(ghost, 1, Map::new()).await,
        Error::NotFound { .. }
    );
    assert_err!(store.delete_object(ghost).await, Error::NotFound { .. });
    assert_err!(
        store
            .put_method(method(ghost, "ghost", "def ghost(self):\n    pass\n"))
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store.rollback_method(ghost, &sel, 1).await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .add_link(link(NodeRef::Node(ghost_node), NodeRef::Object(ghost)))
            .await,
        Error::NotFound { .. }
    );
    let mut tx = store.begin().await.expect("begin");
    assert_err!(tx.get_object(ghost).await, Error::NotFound { .. });
    // A NotFound inside a transaction does not spoil it.
    let object = tx
        .create_object(NewObject::named(unique("after-not-found")))
        .await
        .expect("create after NotFound");
    tx.commit().await.expect("commit");
    assert!(store.get_object(object.id).await.is_ok());
}
