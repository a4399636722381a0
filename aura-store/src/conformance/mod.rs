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
// The checks, one module per concern (`ALL` above lists them in the order they run).

mod audit;
mod memory;
mod methods;
mod objects;
mod text;
mod transactions;

pub use audit::*;
pub use memory::*;
pub use methods::*;
pub use objects::*;
pub use text::*;
pub use transactions::*;
