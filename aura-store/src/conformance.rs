//! The behaviour suite every [`Store`] backend runs.
//!
//! Each check is a plain `pub async fn name(store: &dyn Store)` that panics on a broken
//! contract. [`ALL`] lists every check; [`run_all`] runs the whole list, each check on a
//! fresh store from a factory, and [`run_all_on`] runs it on one store (every check only
//! relies on records it creates itself, so a shared store works too).
//!
//! A backend that cannot do something says so in [`Store::capabilities`]; the checks that
//! need that capability then print what they leave out, instead of failing or passing
//! silently.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use aura_store::{conformance, DynStore, SqliteStore};
//!
//! conformance::run_all(|| async {
//!     let store: DynStore = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
//!     store
//! })
//! .await;
//! # }
//! ```

// Panicking is how a behaviour check reports a broken contract.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Map, Value};

use crate::model::*;
use crate::port::{DynStore, Store, StoreExt};
use crate::Error;

/// A boxed check, borrowed from the store it runs on.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One named check of the suite.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's name (its function's name).
    pub name: &'static str,
    /// Runs the check.
    pub run: for<'a> fn(&'a dyn Store) -> CheckFuture<'a>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check of the suite, in the order [`run_all`] runs them.
        pub const ALL: &[Check] = &[
            $(Check { name: stringify!($name), run: |store| Box::pin($name(store)) }),*
        ];
    };
}

checks!(
    capabilities_are_declared,
    objects_round_trip,
    object_names_are_unique_and_checked,
    parents_are_ordered_and_must_exist,
    updates_check_the_revision,
    stale_revision_exactly_one_writer_wins,
    concurrent_writers_lose_nothing,
    parent_cycles_are_rejected,
    delete_respects_delegation,
    methods_are_versioned,
    method_rollback_adds_a_version,
    transaction_commits_all_or_nothing,
    transaction_sees_its_own_writes,
    rollback_on_error,
    rollback_on_panic,
    rollback_on_cancellation,
    memory_nodes_and_links,
    neighbours_walk_breadth_first,
    search_is_ranked,
    search_survives_hostile_queries,
    unicode_text_round_trips,
    hostile_text_round_trips,
    large_slot_values_round_trip,
    many_memory_nodes_stay_fast,
    audit_trail_filters,
    audit_pagination_covers_every_event_once,
    facets_registry,
    unknown_ids_are_not_found,
);

/// Runs every check in [`ALL`], each on a fresh store made by `new_store`.
pub async fn run_all<F, Fut>(mut new_store: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = DynStore>,
{
    for check in ALL {
        let store = new_store().await;
        run_one(check, store.as_ref()).await;
    }
}

/// Runs every check in [`ALL`] on one store.
pub async fn run_all_on(store: &dyn Store) {
    for check in ALL {
        run_one(check, store).await;
    }
}

async fn run_one(check: &Check, store: &dyn Store) {
    eprintln!(
        "store conformance [{}]: {} ...",
        store.capabilities().backend,
        check.name
    );
    let started = Instant::now();
    (check.run)(store).await;
    eprintln!(
        "store conformance [{}]: {} ok ({:?})",
        store.capabilities().backend,
        check.name,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Asserts that a result is the given error variant.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "expected Err({}), got {:?} (at {}:{})",
                stringify!($pattern),
                other.map(|_| "Ok(..)"),
                file!(),
                line!()
            ),
        }
    };
}

/// A name no other check (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn slots(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("slots must be a JSON object, not {other}"),
    }
}

fn selector(name: &str) -> Selector {
    Selector::new(name).expect("valid selector")
}

fn method(object: ObjectId, name: &str, source: &str) -> NewMethod {
    NewMethod {
        object_id: object,
        selector: selector(name),
        source: source.to_string(),
        tests: format!("def test_{name}(obj):\n    assert True\n"),
        doc: format!("{name}, for the conformance suite"),
        provenance: Provenance::Manual,
        calls: None,
    }
}

async fn create(store: &dyn Store, name: &str) -> Object {
    store
        .create_object(NewObject::named(unique(name)))
        .await
        .expect("create object")
}

async fn create_with_parents(store: &dyn Store, name: &str, parents: &[ObjectId]) -> Object {
    store
        .create_object(NewObject::named(unique(name)).with_parents(parents.iter().copied()))
        .await
        .expect("create object with parents")
}

async fn node(store: &dyn Store, text: &str) -> MemoryNode {
    store
        .add_memory_node(NewMemoryNode::new("note", text))
        .await
        .expect("add memory node")
}

fn link(from: NodeRef, to: NodeRef) -> ContextLink {
    ContextLink {
        from,
        to,
        kind: "about".into(),
        weight: 1.0,
    }
}

/// Every object in the store, oldest first.
async fn all_objects(store: &dyn Store) -> Vec<Object> {
    let mut all = Vec::new();
    loop {
        let page = store
            .list_objects(Page {
                offset: all.len() as u32,
                limit: 500,
            })
            .await
            .expect("list objects");
        let done = page.len() < 500;
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// Every audit event about `object`, oldest first.
async fn all_events(store: &dyn Store, object: ObjectId) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query_audit(&AuditQuery {
                object_id: Some(object),
                after,
                limit: Some(MAX_AUDIT_PAGE),
                ..AuditQuery::default()
            })
            .await
            .expect("query audit");
        events.extend(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => return events,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checks

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

/// Memory nodes round-trip; links need both ends to exist.
pub async fn memory_nodes_and_links(store: &dyn Store) {
    let object = create(store, "memory-owner").await;
    let full = store
        .add_memory_node(NewMemoryNode {
            id: Some(NodeId::new()),
            kind: "concept".into(),
            text: "the fibonacci sequence".into(),
            embedding: Some(vec![0.25, -1.5, 3.0e-7, f32::MAX]),
            meta: json!({"source": "conformance", "n": [1, 2]}),
        })
        .await
        .expect("add node");
    assert_eq!(store.get_memory_node(full.id).await.expect("get"), full);
    let plain = node(store, "a plain note").await;
    assert_eq!(plain.embedding, None);
    assert_eq!(
        store.get_memory_node(plain.id).await.expect("get").meta,
        Value::Null
    );
    assert_err!(
        store
            .add_memory_node(NewMemoryNode {
                id: Some(full.id),
                ..NewMemoryNode::new("note", "duplicate id")
            })
            .await,
        Error::Conflict(_)
    );

    store
        .add_link(link(NodeRef::Node(full.id), NodeRef::Node(plain.id)))
        .await
        .expect("node to node");
    store
        .add_link(link(NodeRef::Object(object.id), NodeRef::Node(full.id)))
        .await
        .expect("object to node");
    // Adding the same link again is not an error.
    store
        .add_link(ContextLink {
            weight: 2.0,
            ..link(NodeRef::Node(full.id), NodeRef::Node(plain.id))
        })
        .await
        .expect("same link again");
    assert_err!(
        store
            .add_link(link(NodeRef::Node(full.id), NodeRef::Node(NodeId::new())))
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .add_link(link(
                NodeRef::Object(ObjectId::new()),
                NodeRef::Node(full.id)
            ))
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .add_link(ContextLink {
                weight: f64::NAN,
                ..link(NodeRef::Node(full.id), NodeRef::Node(plain.id))
            })
            .await,
        Error::Invalid(_)
    );
    let near = store
        .neighbours(NodeRef::Object(object.id), 2, 10)
        .await
        .expect("neighbours");
    let got: Vec<(NodeId, u32)> = near.iter().map(|n| (n.node.id, n.depth)).collect();
    assert_eq!(got, vec![(full.id, 1), (plain.id, 2)]);
    assert_eq!(near[0].node, full);
}

/// Neighbours: both directions, nearest first, each node once at its least depth,
/// bounded by depth and limit, safe on cycles, passing through objects.
pub async fn neighbours_walk_breadth_first(store: &dyn Store) {
    // a -> b -> c -> d -> a (a cycle), e -> a (incoming), b -> f, object o -> d, o -> g.
    let mut ids = HashMap::new();
    for name in ["a", "b", "c", "d", "e", "f", "g"] {
        ids.insert(name, node(store, &format!("node {name}")).await.id);
    }
    let n = |name: &str| NodeRef::Node(ids[name]);
    let o = create(store, "graph-object").await;
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("d", "a"),
        ("e", "a"),
        ("b", "f"),
    ] {
        store.add_link(link(n(from), n(to))).await.expect("link");
    }
    store
        .add_link(link(NodeRef::Object(o.id), n("d")))
        .await
        .expect("link");
    store
        .add_link(link(NodeRef::Object(o.id), n("g")))
        .await
        .expect("link");

    let walk = |depth: u32, limit: u32| async move {
        store
            .neighbours(n("a"), depth, limit)
            .await
            .expect("neighbours")
            .into_iter()
            .map(|nb| (nb.node.id, nb.depth))
            .collect::<Vec<_>>()
    };
    let depth_of = |found: &[(NodeId, u32)], name: &str| {
        found
            .iter()
            .find(|(id, _)| *id == ids[name])
            .map(|(_, d)| *d)
    };

    assert!(walk(0, 10).await.is_empty(), "depth 0 finds nothing");
    let one = walk(1, 10).await;
    let set: HashSet<NodeId> = one.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        set,
        HashSet::from([ids["b"], ids["d"], ids["e"]]),
        "both directions"
    );
    assert!(one.iter().all(|(_, d)| *d == 1));

    let all = walk(10, 100).await;
    assert_eq!(
        all.len(),
        6,
        "every other node once, the start excluded: {all:?}"
    );
    let unique_ids: HashSet<NodeId> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(unique_ids.len(), all.len(), "each node once");
    assert!(
        !unique_ids.contains(&ids["a"]),
        "the start is not its own neighbour"
    );
    assert_eq!(depth_of(&all, "c"), Some(2));
    assert_eq!(depth_of(&all, "f"), Some(2));
    // g hangs off the object o, which hangs off d: a -> d (1) -> o (2) -> g (3).
    assert_eq!(depth_of(&all, "g"), Some(3), "walks through objects");
    let depths: Vec<u32> = all.iter().map(|(_, d)| *d).collect();
    let mut sorted = depths.clone();
    sorted.sort();
    assert_eq!(depths, sorted, "nearest first");

    let limited = walk(10, 2).await;
    assert_eq!(limited.len(), 2, "bounded by the limit");
    assert!(
        limited.iter().all(|(_, d)| *d == 1),
        "the nearest come first"
    );
    assert!(walk(2, 0).await.is_empty(), "a limit of 0 finds nothing");

    let lonely = node(store, "lonely").await;
    assert!(store
        .neighbours(NodeRef::Node(lonely.id), 3, 10)
        .await
        .expect("neighbours")
        .is_empty());
}

/// Search ranks better matches first and honours the limit; an empty query finds nothing.
pub async fn search_is_ranked(store: &dyn Store) {
    let caps = store.capabilities();
    if !caps.full_text_search {
        eprintln!(
            "store conformance [{}]: search_is_ranked: no full_text_search capability; \
             checking only that search does not fail",
            caps.backend
        );
        let _ = store.search_memory("anything", 5).await;
        return;
    }
    let word = format!("zq{}", uuid::Uuid::new_v4().simple());
    let strong = node(store, &format!("{word} {word} {word} recursion")).await;
    let weak = node(
        store,
        &format!("a long note that mentions {word} once among many other words about other things"),
    )
    .await;
    let unrelated = node(store, "nothing relevant here").await;
    let hits = store.search_memory(&word, 10).await.expect("search");
    let found: Vec<NodeId> = hits.iter().map(|h| h.node.id).collect();
    assert_eq!(
        found,
        vec![strong.id, weak.id],
        "best match first, non-matches left out"
    );
    assert!(hits[0].score >= hits[1].score, "scores fall");
    assert_eq!(hits[0].node, strong);
    assert!(!found.contains(&unrelated.id));

    let hits = store.search_memory(&word, 1).await.expect("search");
    assert_eq!(hits.len(), 1, "bounded by the limit");
    assert!(store
        .search_memory(&word, 0)
        .await
        .expect("search")
        .is_empty());
    for empty in ["", "   ", "\t\n"] {
        assert!(
            store
                .search_memory(empty, 10)
                .await
                .expect("search")
                .is_empty(),
            "an empty query finds nothing"
        );
    }
    // Case does not matter.
    let hits = store
        .search_memory(&word.to_uppercase(), 10)
        .await
        .expect("search");
    assert_eq!(hits.len(), 2);
}

/// Hostile search text (quotes, operators, SQL) never makes search fail.
pub async fn search_survives_hostile_queries(store: &dyn Store) {
    let word = format!("hx{}", uuid::Uuid::new_v4().simple());
    let target = node(
        store,
        &format!("it's {word}; \"quoted\" (parens) col:umn a*b NEAR/2 -minus ^caret DROP TABLE"),
    )
    .await;
    let hostile = [
        "\"",
        "'",
        "\"unbalanced",
        "''",
        "a AND",
        "OR",
        "AND OR NOT",
        "NEAR(",
        "NEAR(a b, 2)",
        "*",
        "^",
        "a*",
        "text:foo",
        "{text}: foo",
        "(((",
        ")))",
        "-",
        "+",
        "'; DROP TABLE memory_nodes; --",
        "\"; DELETE FROM objects; --",
        "\0",
        "nul\0inside",
        "\\",
        "%_%",
        "🦀🦀🦀",
        "\u{202e}rtl",
        "a\u{301}",
    ];
    for q in hostile {
        if let Err(e) = store.search_memory(q, 10).await {
            panic!("search for {q:?} failed: {e}");
        }
    }
    let long = "x\" OR ".repeat(5_000);
    store
        .search_memory(&long, 10)
        .await
        .expect("a long hostile query");
    if store.capabilities().full_text_search {
        let with_syntax = format!("\"{word}\" AND (NOT");
        let hits = store.search_memory(&with_syntax, 10).await.expect("search");
        assert!(
            hits.iter().any(|h| h.node.id == target.id),
            "the plain word inside hostile text is still found"
        );
    }
    // Nothing was dropped.
    assert_eq!(store.get_memory_node(target.id).await.expect("get"), target);
}

/// Unicode names, slots, memory text and searches round-trip.
pub async fn unicode_text_round_trips(store: &dyn Store) {
    let names = [
        "Grüße, Köln",
        "日本語のオブジェクト",
        "Ελληνικά",
        "עברית مرحبا",
        "emoji 🦀🧠✨",
        "combining e\u{301} vs é",
        "zero\u{200b}width",
    ];
    for base in names {
        let name = format!("{base} {}", uuid::Uuid::new_v4().simple());
        let value = json!({"text": base, "ключ": ["值", "🎉", "\u{10FFFF}"]});
        let mut s = slots(value);
        s.insert(base.to_string(), json!(base));
        let object = store
            .create_object(NewObject::named(&name).with_slots(s.clone()))
            .await
            .expect("create unicode");
        assert_eq!(object.name, name);
        let read = store.get_object(object.id).await.expect("get");
        assert_eq!(read.slots, s);
        assert_eq!(read.name, name);
        assert_eq!(
            store.find_object(&name).await.expect("find").map(|o| o.id),
            Some(object.id)
        );
    }
    // "é" composed and decomposed are different names (no silent normalisation).
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let composed = store
        .create_object(NewObject::named(format!("caf\u{e9} {tag}")))
        .await
        .expect("composed");
    let decomposed = store
        .create_object(NewObject::named(format!("cafe\u{301} {tag}")))
        .await
        .expect("decomposed is a different name");
    assert_ne!(composed.id, decomposed.id);

    let texts = [
        ("Straße", "Die Straße ist nass"),
        ("Привет", "Привет, мир"),
        ("日本語", "日本語 テキスト"),
        ("Ελληνικά", "γλώσσα Ελληνικά"),
    ];
    let mut ids = Vec::new();
    for (_, text) in texts {
        let full = format!("{text} 🦀 {tag}");
        let n = node(store, &full).await;
        assert_eq!(store.get_memory_node(n.id).await.expect("get").text, full);
        ids.push(n.id);
    }
    if store.capabilities().full_text_search {
        for ((word, _), id) in texts.iter().zip(&ids) {
            let hits = store.search_memory(word, 50).await.expect("unicode search");
            assert!(
                hits.iter().any(|h| h.node.id == *id),
                "searching {word:?} finds its node"
            );
        }
    }
}

/// Names and slots full of quotes, semicolons and SQL are stored exactly as given.
pub async fn hostile_text_round_trips(store: &dyn Store) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let hostile = [
        "Robert'); DROP TABLE objects;--",
        "\"; DELETE FROM methods; --",
        "a' OR '1'='1",
        "%_\\*?[]{}",
        "$1 ?1 :name @x",
        "NEAR(a b) AND \"x\" OR y*",
        "<script>alert(1)</script>",
    ];
    for text in hostile {
        let name = format!("{text} {tag}");
        let mut s = Map::new();
        s.insert(text.to_string(), json!(text));
        s.insert(
            "sql".into(),
            json!(format!("{text}; SELECT * FROM objects")),
        );
        let object = store
            .create_object(NewObject::named(&name).with_slots(s.clone()))
            .await
            .expect("create hostile");
        let read = store
            .find_object(&name)
            .await
            .expect("find")
            .expect("found");
        assert_eq!(read.id, object.id);
        assert_eq!(read.slots, s);
        let m = store
            .put_method(NewMethod {
                doc: text.to_string(),
                tests: text.to_string(),
                ..method(
                    object.id,
                    "echo",
                    &format!("def echo(self):\n    return {text:?}\n"),
                )
            })
            .await
            .expect("hostile method");
        assert_eq!(
            store
                .get_method(object.id, &selector("echo"))
                .await
                .expect("get"),
            Some(m)
        );
        let event = store
            .append_event(NewAuditEvent::new(
                text,
                Some(object.id),
                json!({"text": text}),
            ))
            .await
            .expect("hostile event kind");
        let page = store
            .query_audit(&AuditQuery {
                kind: Some(text.to_string()),
                object_id: Some(object.id),
                ..AuditQuery::default()
            })
            .await
            .expect("query by hostile kind");
        assert_eq!(page.events, vec![event]);
    }
    // Everything is still there.
    assert!(all_objects(store).await.len() >= hostile.len());
}

/// A 1 MiB slot value round-trips; a document over the declared maximum is `Invalid`.
pub async fn large_slot_values_round_trip(store: &dyn Store) {
    let big: String = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let object = store
        .create_object(NewObject::named(unique("big")).with_slots(slots(json!({"blob": big}))))
        .await
        .expect("create with 1 MiB slot");
    let read = store.get_object(object.id).await.expect("get");
    assert_eq!(read.slots["blob"].as_str().map(str::len), Some(big.len()));
    assert_eq!(read.slots, object.slots);
    let bigger = format!("{big}{big}");
    let updated = store
        .update_slots(
            object.id,
            1,
            slots(json!({"blob": bigger, "unicode": "ü".repeat(100_000)})),
        )
        .await
        .expect("update with 2 MiB");
    assert_eq!(store.get_object(object.id).await.expect("get"), updated);

    let max = store.capabilities().max_document_bytes;
    let too_big = "x".repeat(max + 1);
    assert_err!(
        store
            .update_slots(object.id, 2, slots(json!({ "blob": too_big })))
            .await,
        Error::Invalid(_)
    );
    assert_eq!(store.get_object(object.id).await.expect("get").rev, 2);
}

/// 10 000 memory nodes in one transaction; search and neighbours stay fast.
pub async fn many_memory_nodes_stay_fast(store: &dyn Store) {
    const NODES: usize = 10_000;
    let tag = format!("bulk{}", uuid::Uuid::new_v4().simple());
    let hub = create(store, "bulk-hub").await;
    let started = Instant::now();
    let mut tx = store.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let text = format!("{tag} note number {i} about topic{} and item{i}", i % 100);
        let n = tx
            .add_memory_node(NewMemoryNode::new("bulk", text))
            .await
            .expect("add");
        if let Some(previous) = ids.last() {
            tx.add_link(link(NodeRef::Node(*previous), NodeRef::Node(n.id)))
                .await
                .expect("chain link");
        }
        if i % 100 == 0 {
            tx.add_link(link(NodeRef::Object(hub.id), NodeRef::Node(n.id)))
                .await
                .expect("hub link");
        }
        ids.push(n.id);
    }
    tx.commit().await.expect("commit 10 000 nodes");
    let insert = started.elapsed();

    let started = Instant::now();
    let hits = store
        .search_memory(&format!("item{}", NODES / 2), 10)
        .await
        .expect("search");
    let search_one = started.elapsed();
    if store.capabilities().full_text_search {
        assert_eq!(hits.first().map(|h| h.node.id), Some(ids[NODES / 2]));
    }
    let started = Instant::now();
    let hits = store
        .search_memory(&format!("{tag} topic7"), 20)
        .await
        .expect("search");
    let search_many = started.elapsed();
    if store.capabilities().full_text_search {
        assert_eq!(hits.len(), 20);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    let started = Instant::now();
    let near = store
        .neighbours(NodeRef::Node(ids[NODES / 2]), 3, 50)
        .await
        .expect("neighbours");
    let walk = started.elapsed();
    assert!(!near.is_empty());
    let started = Instant::now();
    let wide = store
        .neighbours(NodeRef::Object(hub.id), 4, 200)
        .await
        .expect("neighbours of the hub");
    let walk_hub = started.elapsed();
    assert_eq!(wide.len(), 200);
    assert!(wide.windows(2).all(|w| w[0].depth <= w[1].depth));

    eprintln!(
        "store conformance: {NODES} nodes inserted in {insert:?}; search {search_one:?} / \
         {search_many:?}; neighbours {walk:?} / {walk_hub:?}"
    );
    let fast = Duration::from_secs(3);
    for (what, took) in [
        ("search", search_one),
        ("search", search_many),
        ("neighbours", walk),
        ("neighbours", walk_hub),
    ] {
        assert!(took < fast, "{what} over {NODES} nodes took {took:?}");
    }
}

/// The audit trail filters by object, kind (exact or `prefix*`) and time range, exactly.
pub async fn audit_trail_filters(store: &dyn Store) {
    let a = create(store, "audit-a").await;
    let b = create(store, "audit-b").await;
    let mut written = Vec::new();
    let kinds = [
        "learn.attempt",
        "learn.accepted",
        "guard.rejected",
        "learned",
        "learn.attempt",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        for object in [a.id, b.id] {
            let e = store
                .append_event(NewAuditEvent::new(*kind, Some(object), json!({"i": i})))
                .await
                .expect("append");
            assert_eq!(e.kind, *kind);
            written.push(e);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let loose = store
        .append_event(NewAuditEvent::new("learn.attempt", None, json!(null)))
        .await
        .expect("event without object");
    assert_eq!(loose.object_id, None);

    let of_a: Vec<AuditEvent> = written
        .iter()
        .filter(|e| e.object_id == Some(a.id))
        .cloned()
        .collect();
    assert_eq!(
        all_events(store, a.id).await,
        of_a,
        "by object, oldest first, as written"
    );

    let query = |kind: &str, since, until| AuditQuery {
        object_id: Some(a.id),
        kind: Some(kind.to_string()),
        since,
        until,
        ..AuditQuery::default()
    };
    let exact = store
        .query_audit(&query("learn.attempt", None, None))
        .await
        .expect("exact");
    assert_eq!(exact.events.len(), 2);
    assert!(exact.events.iter().all(|e| e.kind == "learn.attempt"));
    let prefix = store
        .query_audit(&query("learn.*", None, None))
        .await
        .expect("prefix");
    assert_eq!(
        prefix
            .events
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["learn.attempt", "learn.accepted", "learn.attempt"],
        "a prefix matches `learn.` but not `learned`"
    );
    let learn_any = store
        .query_audit(&query("learn*", None, None))
        .await
        .expect("prefix");
    assert_eq!(learn_any.events.len(), 4);
    let none = store
        .query_audit(&query("learn", None, None))
        .await
        .expect("exact");
    assert!(none.events.is_empty(), "without `*` the kind is exact");

    // Time ranges are exact: since inclusive, until exclusive.
    let since = of_a[1].at;
    let until = of_a[3].at;
    let expected: Vec<AuditEvent> = of_a
        .iter()
        .filter(|e| e.at >= since && e.at < until)
        .cloned()
        .collect();
    let ranged = store
        .query_audit(&AuditQuery {
            object_id: Some(a.id),
            since: Some(since),
            until: Some(until),
            ..AuditQuery::default()
        })
        .await
        .expect("range");
    assert_eq!(ranged.events, expected);
    assert!(ranged.events.contains(&of_a[1]) && !ranged.events.contains(&of_a[3]));
    let empty = store
        .query_audit(&AuditQuery {
            object_id: Some(a.id),
            since: Some(since),
            until: Some(since),
            ..AuditQuery::default()
        })
        .await
        .expect("empty range");
    assert!(empty.events.is_empty());
    let global = store
        .query_audit(&AuditQuery {
            since: Some(loose.at),
            kind: Some("learn.attempt".into()),
            limit: Some(MAX_AUDIT_PAGE),
            ..AuditQuery::default()
        })
        .await
        .expect("global");
    assert!(
        global.events.contains(&loose),
        "events without an object are kept"
    );
}

/// Paging with `after` returns every event exactly once, in order.
pub async fn audit_pagination_covers_every_event_once(store: &dyn Store) {
    let object = create(store, "audit-pages").await;
    let mut tx = store.begin().await.expect("begin");
    let mut written = Vec::new();
    for i in 0..250 {
        written.push(
            tx.append_event(NewAuditEvent::new(
                "page.test",
                Some(object.id),
                json!({"i": i}),
            ))
            .await
            .expect("append")
            .id,
        );
    }
    tx.commit().await.expect("commit");

    for size in [1u32, 7, 100, 250, 1000] {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = store
                .query_audit(&AuditQuery {
                    object_id: Some(object.id),
                    after,
                    limit: Some(size),
                    ..AuditQuery::default()
                })
                .await
                .expect("page");
            pages += 1;
            assert!(page.events.len() <= size as usize);
            seen.extend(page.events.iter().map(|e| e.id));
            match page.next {
                Some(next) => {
                    assert_eq!(Some(next), page.events.last().map(|e| e.id));
                    after = Some(next);
                }
                None => break,
            }
            assert!(pages <= 300, "paging terminates");
        }
        assert_eq!(
            seen, written,
            "page size {size}: every event once, oldest first"
        );
    }
    let clamped = store
        .query_audit(&AuditQuery {
            object_id: Some(object.id),
            limit: Some(0),
            ..AuditQuery::default()
        })
        .await
        .expect("limit 0");
    assert_eq!(clamped.events.len(), 1, "a limit of 0 is clamped to 1");
    let default = store
        .query_audit(&AuditQuery {
            object_id: Some(object.id),
            ..AuditQuery::default()
        })
        .await
        .expect("default");
    assert_eq!(default.events.len(), 100, "the default page is 100");
    assert!(default.next.is_some());
}

/// Facets: put replaces by name, get, list by name.
pub async fn facets_registry(store: &dyn Store) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let facet = |name: &str, persona: &str| Facet {
        name: format!("{name}-{tag}"),
        persona: persona.into(),
        base_model: "qwen2.5:0.5b".into(),
        adapter_path: "/adapters/x".into(),
        metrics: json!({"loss": 0.5, "samples": 120}),
        created_at: chrono::Utc::now(),
    };
    let b = store
        .put_facet(facet("b:grounding-v1", "babs"))
        .await
        .expect("put");
    let a = store
        .put_facet(facet("a:deconstruct-v1", "brick"))
        .await
        .expect("put");
    assert_eq!(store.get_facet(&b.name).await.expect("get"), b);
    let replacement = Facet {
        metrics: json!({"loss": 0.25}),
        adapter_path: "/adapters/y".into(),
        ..b.clone()
    };
    let replaced = store.put_facet(replacement).await.expect("replace");
    assert_eq!(store.get_facet(&b.name).await.expect("get"), replaced);
    assert_eq!(replaced.adapter_path, "/adapters/y");
    let mine: Vec<Facet> = store
        .list_facets()
        .await
        .expect("list")
        .into_iter()
        .filter(|f| f.name.ends_with(&tag))
        .collect();
    assert_eq!(mine, vec![a, replaced], "listed by name, one per name");
    assert_err!(
        store.get_facet(&unique("no-facet")).await,
        Error::NotFound { .. }
    );
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
