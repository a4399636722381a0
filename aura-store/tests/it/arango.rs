//! `ArangoStore` (feature `arangodb`): the whole conformance suite against a live server
//! when `AURA_TEST_ARANGO_URL` is set, and — always — every Store operation and every error
//! mapping against recorded HTTP exchanges replayed by a local HTTP server.
//!
//! The exchanges live in `tests/fixtures/arango/*.json` (see `regenerate.py` there): each
//! names the request (method, path, `x-arango-trx-id` header, AQL text, bind variables or
//! body; `"<any>"` matches a value the adapter generates) and the response ArangoDB's HTTP
//! API documentation gives for it. Every exchange of a fixture must be used exactly once.

#![cfg(feature = "arangodb")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use aura_store::{
    conformance, ArangoStore, AuditQuery, ContextLink, DynStore, Error, Facet, NewMemoryNode,
    NewMethod, NewObject, NodeId, NodeRef, ObjectId, ObjectPatch, Page, Provenance, Selector,
    Store, StoreExt,
};
use serde_json::{json, Map, Value};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const OBJ: &str = "0190f5d2-6c1e-7000-8000-000000000001";
const PARENT: &str = "0190f5d2-6c1e-7000-8000-000000000002";
const NODE: &str = "0190f5d2-6c1e-7000-8000-0000000000a1";
const NODE2: &str = "0190f5d2-6c1e-7000-8000-0000000000a2";
const EVENT: &str = "0190f5d2-6c1e-7000-8000-0000000000e1";
const EVENT2: &str = "0190f5d2-6c1e-7000-8000-0000000000e2";
const ANY: &str = "<any>";

// ---------------------------------------------------------------------------------------
// The live suite

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_live_server() {
    let Ok(url) = std::env::var("AURA_TEST_ARANGO_URL") else {
        eprintln!("skipped: set AURA_TEST_ARANGO_URL (and AURA_TEST_ARANGO_USER / AURA_TEST_ARANGO_PASS) to run the Store conformance suite on ArangoDB");
        return;
    };
    let user = std::env::var("AURA_TEST_ARANGO_USER").unwrap_or_else(|_| "root".into());
    let pass = std::env::var("AURA_TEST_ARANGO_PASS").unwrap_or_default();
    // Every check only relies on records it creates, so one fresh database serves them all.
    let database = format!("aura_conformance_{}", uuid::Uuid::new_v4().simple());
    let store = ArangoStore::builder(url)
        .user(user)
        .password(pass)
        .database(&database)
        .build()
        .await
        .expect("connect and set up the test database");
    store.ensure_schema().await.expect("setup is idempotent");
    let shared: DynStore = Arc::new(store);
    conformance::run_all(|| {
        let shared = shared.clone();
        async move { shared }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Replaying recorded exchanges

/// One recorded request, as a wiremock matcher.
struct Recorded {
    method: String,
    path: String,
    query_string: Option<String>,
    /// `Null`: the header must be absent; `"<any>"`: present; else its exact value.
    trx: Value,
    aql: Option<String>,
    bind_vars: Option<Value>,
    body: Option<Value>,
}

/// Whether `actual` fits `expected`, where the string `"<any>"` matches any value.
fn fits(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == ANY => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|actual| fits(v, actual)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| fits(e, a))
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Match for Recorded {
    fn matches(&self, request: &Request) -> bool {
        if request.method.as_str() != self.method || request.url.path() != self.path {
            return false;
        }
        if let Some(query) = &self.query_string {
            if request.url.query() != Some(query.as_str()) {
                return false;
            }
        }
        let trx = request
            .headers
            .get("x-arango-trx-id")
            .and_then(|v| v.to_str().ok());
        let trx_ok = match (&self.trx, trx) {
            (Value::Null, None) => true,
            (Value::String(s), Some(_)) if s == ANY => true,
            (Value::String(s), Some(actual)) => s == actual,
            _ => false,
        };
        if !trx_ok {
            return false;
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if let Some(aql) = &self.aql {
            let sent = body.get("query").and_then(Value::as_str).unwrap_or("");
            if squash(sent) != squash(aql) {
                return false;
            }
            let vars = body.get("bindVars").cloned().unwrap_or(json!({}));
            if !self.bind_vars.as_ref().is_none_or(|e| fits(e, &vars)) {
                return false;
            }
        }
        if let Some(expected) = &self.body {
            if !fits(expected, &body) {
                return false;
            }
        }
        true
    }
}

fn fixture(name: &str) -> Vec<Value> {
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/arango")
    .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["exchanges"].as_array().unwrap().clone()
}

/// Mounts every exchange of the named fixtures, in order, each to be used exactly once.
async fn mount(server: &MockServer, names: &[&str]) {
    for name in names {
        for exchange in fixture(name) {
            let request = &exchange["request"];
            let (path, query_string) = match request["path"].as_str().unwrap().split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (request["path"].as_str().unwrap().to_string(), None),
            };
            let matcher = Recorded {
                method: request["method"].as_str().unwrap().to_string(),
                path,
                query_string,
                trx: request["trx"].clone(),
                aql: request["query"].as_str().map(str::to_string),
                bind_vars: request.get("bindVars").cloned(),
                body: request.get("body").cloned(),
            };
            let response = &exchange["response"];
            let mut template = ResponseTemplate::new(response["status"].as_u64().unwrap() as u16)
                .set_body_json(response["body"].clone());
            if let Some(headers) = response["headers"].as_object() {
                for (k, v) in headers {
                    template = template.insert_header(k.as_str(), v.as_str().unwrap());
                }
            }
            Mock::given(matcher)
                .respond_with(template)
                .up_to_n_times(1)
                .expect(1)
                .named(format!("{name}: {} {}", request["method"], request["path"]))
                .mount(server)
                .await;
        }
    }
}

/// A server replaying the connection handshake and then the named fixtures.
async fn replay(names: &[&str]) -> (MockServer, ArangoStore) {
    let server = MockServer::start().await;
    mount(&server, &["connect"]).await;
    mount(&server, names).await;
    let store = ArangoStore::builder(server.uri())
        .user("root")
        .password("secret")
        .database("aura")
        .setup(false)
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("connect to the replayed server");
    (server, store)
}

/// Shows what reached the server when an expectation fails.
async fn received(server: &MockServer) -> String {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|r| {
            format!(
                "{} {} trx={:?} {}",
                r.method,
                r.url,
                r.headers.get("x-arango-trx-id"),
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn verify(server: &MockServer) {
    let log = received(server).await;
    eprintln!("requests received:\n{log}");
    server.verify().await;
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn slots(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Every operation

#[tokio::test]
async fn reads_objects() {
    let (server, store) = replay(&["objects_read"]).await;
    let object = store.get_object(id(OBJ)).await.unwrap();
    assert_eq!(object.name, "counter");
    assert_eq!(object.rev, 1);
    assert_eq!(object.slots["n"], json!(1));
    assert_eq!(object.created_at.timestamp_micros(), 1_718_000_000_000_000);
    assert_eq!(store.find_object("nobody").await.unwrap(), None);
    let listed = store
        .list_objects(Page {
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![id(OBJ), id(PARENT)]
    );
    // A page of 0 asks nothing of the server.
    assert!(store
        .list_objects(Page {
            offset: 0,
            limit: 0
        })
        .await
        .unwrap()
        .is_empty());
    verify(&server).await;
}

#[tokio::test]
async fn creates_an_object_in_a_stream_transaction() {
    let (server, store) = replay(&["create_object"]).await;
    let parent: ObjectId = id(PARENT);
    let created = store
        .create_object(NewObject {
            id: Some(id(OBJ)),
            ..NewObject::named("counter")
                .with_parents([parent])
                .with_slots(slots(json!({"n": 1})))
        })
        .await
        .unwrap();
    assert_eq!(created.id, id(OBJ));
    assert_eq!(created.parents, vec![parent]);
    assert_eq!(created.rev, 1);
    verify(&server).await;
}

#[tokio::test]
async fn a_taken_name_is_a_conflict_and_rollback_aborts() {
    let (server, store) = replay(&["create_object_name_taken"]).await;
    let mut tx = store.begin().await.unwrap();
    let taken = tx.create_object(NewObject::named("counter")).await;
    assert!(matches!(taken, Err(Error::Conflict(_))), "{taken:?}");
    tx.rollback().await.unwrap();
    verify(&server).await;
}

#[tokio::test]
async fn updates_and_deletes() {
    let (server, store) = replay(&["update_and_delete"]).await;
    let mut tx = store.begin().await.unwrap();
    let updated = tx
        .update_object(
            id(OBJ),
            1,
            ObjectPatch {
                slots: Some(slots(json!({"n": 2}))),
                parents: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.rev, 2);
    assert_eq!(updated.slots["n"], json!(2));
    tx.delete_object(id(OBJ)).await.unwrap();
    tx.commit().await.unwrap();
    verify(&server).await;
}

#[tokio::test]
async fn methods_are_versioned_and_rolled_back() {
    let (server, store) = replay(&["methods"]).await;
    let fib = Selector::new("fib").unwrap();
    let mut tx = store.begin().await.unwrap();
    let v1 = tx
        .put_method(NewMethod {
            object_id: id(OBJ),
            selector: fib.clone(),
            source: "def fib(self, n):\n    return self.step(n)\n".into(),
            tests: String::new(),
            doc: "fibonacci".into(),
            provenance: Provenance::Manual,
            calls: Some(vec![Selector::new("step").unwrap()]),
        })
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.calls, Some(vec![Selector::new("step").unwrap()]));
    let v2 = tx.rollback_method(id(OBJ), &fib, 1).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.provenance, Provenance::Rollback { from_version: 1 });
    assert_eq!(v2.calls, v1.calls, "a rollback restores the call graph too");
    tx.commit().await.unwrap();

    let current = store.get_method(id(OBJ), &fib).await.unwrap().unwrap();
    assert_eq!(current, v2);
    assert_eq!(store.list_methods(id(OBJ)).await.unwrap(), vec![v2.clone()]);
    let versions = store.method_versions(id(OBJ), &fib).await.unwrap();
    assert_eq!(
        versions.iter().map(|m| m.version).collect::<Vec<_>>(),
        [1, 2]
    );
    let missing = store.method_versions(id(PARENT), &fib).await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );

    // A method on an unknown object: the query writes nothing and the adapter says NotFound.
    let mut tx = store.begin().await.unwrap();
    let orphan = tx
        .put_method(NewMethod {
            object_id: id(PARENT),
            ..v1.clone().into_new()
        })
        .await;
    assert!(matches!(orphan, Err(Error::NotFound { .. })), "{orphan:?}");
    drop(tx);
    wait_for_abort(&server).await;
    verify(&server).await;
}

trait IntoNew {
    fn into_new(self) -> NewMethod;
}

impl IntoNew for aura_store::Method {
    fn into_new(self) -> NewMethod {
        NewMethod {
            object_id: self.object_id,
            selector: self.selector,
            source: self.source,
            tests: self.tests,
            doc: self.doc,
            provenance: self.provenance,
            calls: self.calls,
        }
    }
}

#[tokio::test]
async fn memory_graph_nodes_links_neighbours_and_search() {
    let (server, store) = replay(&["memory"]).await;
    let mut tx = store.begin().await.unwrap();
    let added = tx
        .add_memory_node(NewMemoryNode {
            id: Some(id(NODE2)),
            embedding: Some(vec![0.25, -1.5]),
            meta: json!({"source": "docs"}),
            ..NewMemoryNode::new("concept", "the fibonacci sequence")
        })
        .await
        .unwrap();
    assert_eq!(added.id, id(NODE2));
    let again = tx
        .add_memory_node(NewMemoryNode {
            id: Some(id(NODE2)),
            ..NewMemoryNode::new("concept", "duplicate")
        })
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    tx.add_link(ContextLink {
        from: NodeRef::Object(id(OBJ)),
        to: NodeRef::Node(id(NODE2)),
        kind: "about".into(),
        weight: 1.0,
    })
    .await
    .unwrap();
    let dangling = tx
        .add_link(ContextLink {
            from: NodeRef::Node(id(NODE2)),
            to: NodeRef::Node(id(NODE)),
            kind: "about".into(),
            weight: 1.0,
        })
        .await;
    assert!(
        matches!(
            dangling,
            Err(Error::NotFound {
                kind: "memory node",
                ..
            })
        ),
        "{dangling:?}"
    );
    // Refused before any request: NaN weights and empty kinds.
    let nan = tx
        .add_link(ContextLink {
            from: NodeRef::Node(id(NODE2)),
            to: NodeRef::Node(id(NODE)),
            kind: "about".into(),
            weight: f64::NAN,
        })
        .await;
    assert!(matches!(nan, Err(Error::Invalid(_))));
    tx.rollback().await.unwrap();

    let node = store.get_memory_node(id(NODE)).await.unwrap();
    assert_eq!(node.text, "the fibonacci sequence");
    assert_eq!(node.embedding, None);
    let near = store
        .neighbours(NodeRef::Object(id(OBJ)), 2, 10)
        .await
        .unwrap();
    assert_eq!(
        near.iter()
            .map(|n| (n.node.id, n.depth))
            .collect::<Vec<_>>(),
        vec![(id::<NodeId>(NODE2), 1), (id(NODE), 2)]
    );
    let none = store.neighbours(NodeRef::Node(id(NODE)), 0, 10).await;
    assert!(matches!(none, Err(Error::NotFound { .. })), "{none:?}");
    let hits = store.search_memory("Fibonacci", 5).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits[0].score >= hits[1].score);
    // Nothing searchable: no request at all.
    assert!(store.search_memory(" \"*( ", 5).await.unwrap().is_empty());
    verify(&server).await;
}

#[tokio::test]
async fn audit_trail_and_facets() {
    let (server, store) = replay(&["audit_and_facets"]).await;
    let facet = Facet {
        name: "babs:grounding-v1".into(),
        persona: "babs".into(),
        base_model: "qwen2.5:0.5b".into(),
        adapter_path: "/adapters/babs".into(),
        metrics: json!({"loss": 0.5}),
        created_at: chrono::DateTime::from_timestamp_micros(1_718_000_000_000_000).unwrap(),
    };
    let mut tx = store.begin().await.unwrap();
    let event = tx
        .append_event(aura_store::NewAuditEvent::new(
            "learn.attempt",
            Some(id(OBJ)),
            json!({"i": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(event.kind, "learn.attempt");
    assert_eq!(tx.put_facet(facet.clone()).await.unwrap(), facet);
    tx.commit().await.unwrap();

    let page = store
        .query_audit(&AuditQuery {
            object_id: Some(id(OBJ)),
            kind: Some("learn.*".into()),
            since: chrono::DateTime::from_timestamp_micros(1_718_000_000_000_000),
            after: Some(id(EVENT)),
            limit: Some(1),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "one more than the page is asked for");
    assert_eq!(page.next, Some(id(EVENT2)));
    let unknown = store
        .query_audit(&AuditQuery {
            after: Some(id(EVENT2)),
            ..AuditQuery::default()
        })
        .await;
    assert!(
        matches!(unknown, Err(Error::NotFound { .. })),
        "{unknown:?}"
    );

    assert_eq!(store.get_facet("babs:grounding-v1").await.unwrap(), facet);
    let missing = store.get_facet("nobody").await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    let names: Vec<String> = store
        .list_facets()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["babs:grounding-v1", "zeta"], "listed by name");
    verify(&server).await;
}

#[tokio::test]
async fn ensure_schema_is_idempotent() {
    let server = MockServer::start().await;
    mount(&server, &["ensure_schema"]).await;
    // Every step answers "already exists" (or returns the existing index/analyzer).
    let store = ArangoStore::builder(server.uri())
        .password("secret")
        .build()
        .await
        .expect("setup over an existing schema succeeds");
    assert_eq!(store.database(), "aura");
    verify(&server).await;
}

// ---------------------------------------------------------------------------------------
// Transactions end on the server

async fn wait_for_abort(server: &MockServer) {
    for _ in 0..100 {
        let requests = server.received_requests().await.unwrap_or_default();
        if requests
            .iter()
            .any(|r| r.method.as_str() == "DELETE" && r.url.path().contains("/_api/transaction/"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no abort reached the server:\n{}", received(server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_sends_the_abort() {
    let (server, store) = replay(&["dropped_transaction"]).await;
    let tx = store.begin().await.unwrap();
    drop(tx);
    wait_for_abort(&server).await;
    verify(&server).await;
}

#[tokio::test]
async fn a_transaction_dropped_by_a_panicking_task_sends_the_abort() {
    let (server, store) = replay(&["dropped_transaction"]).await;
    let tx = store.begin().await.unwrap();
    let task = tokio::spawn(async move {
        let _tx = tx;
        panic!("deliberate panic while holding a transaction");
    });
    assert!(task.await.is_err_and(|e| e.is_panic()));
    wait_for_abort(&server).await;
    verify(&server).await;
}

// ---------------------------------------------------------------------------------------
// Error mappings

#[tokio::test]
async fn a_stale_rev_is_a_conflict_and_the_transaction_aborts() {
    let (server, store) = replay(&["update_conflict"]).await;
    let mut tx = store.begin().await.unwrap();
    let stale = tx.update_object(id(OBJ), 1, ObjectPatch::default()).await;
    match stale {
        Err(Error::Conflict(message)) => assert!(message.contains("_rev"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // ArangoDB failed a write: the transaction cannot commit; commit aborts it.
    let commit = tx.commit().await;
    assert!(matches!(commit, Err(Error::Conflict(_))), "{commit:?}");
    verify(&server).await;
}

#[tokio::test]
async fn a_stale_port_revision_is_a_conflict_without_a_write() {
    let (server, store) = replay(&["update_stale_rev"]).await;
    let mut tx = store.begin().await.unwrap();
    // The recorded read finds revision 1: asking for revision 7 is refused before any write,
    // and the transaction stays usable (as in the SQLite store).
    let stale = tx.update_object(id(OBJ), 7, ObjectPatch::default()).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    tx.rollback().await.unwrap();
    verify(&server).await;
}

#[tokio::test]
async fn a_unique_index_violation_is_a_conflict() {
    let (server, store) = replay(&["create_object_unique_violation"]).await;
    let created = store
        .create_object(NewObject {
            id: Some(id(OBJ)),
            ..NewObject::named("counter")
        })
        .await;
    assert!(matches!(created, Err(Error::Conflict(_))), "{created:?}");
    wait_for_abort(&server).await;
    verify(&server).await;
}

#[tokio::test]
async fn a_missing_collection_says_to_set_up_the_schema() {
    let (server, store) = replay(&["collection_not_found"]).await;
    match store.get_object(id(OBJ)).await {
        Err(Error::Unavailable(message)) => {
            assert!(message.contains("ensure_schema"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    verify(&server).await;
}

async fn connect_error(fixture_name: &str) -> Error {
    let server = MockServer::start().await;
    mount(&server, &[fixture_name]).await;
    let result = ArangoStore::builder(server.uri())
        .user("root")
        .password("wrong")
        .database("aura")
        .setup(false)
        .build()
        .await;
    verify(&server).await;
    result.expect_err("the connection is refused")
}

#[tokio::test]
async fn bad_credentials_name_the_credentials() {
    match connect_error("connect_unauthorized").await {
        Error::Unavailable(message) => {
            assert!(message.contains("authentication failed"), "{message}");
            assert!(message.contains("ARANGO_PASS"), "{message}");
            assert!(!message.contains("wrong"), "the password is never shown");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_database_is_named() {
    match connect_error("connect_database_not_found").await {
        Error::Unavailable(message) => {
            assert!(
                message.contains("database \"aura\" does not exist"),
                "{message}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Bind a port, then free it: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = ArangoStore::builder(format!("127.0.0.1:{port}"))
        .setup(false)
        .timeout(Duration::from_secs(5))
        .build()
        .await;
    match result {
        Err(Error::Unavailable(message)) => assert!(message.contains("cannot reach"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let server = MockServer::start().await;
    mount(&server, &["connect"]).await;
    Mock::given(wiremock::matchers::path("/_db/aura/_api/cursor"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let store = ArangoStore::builder(server.uri())
        .setup(false)
        .timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let slow = store.get_object(id(OBJ)).await;
    assert!(matches!(slow, Err(Error::Timeout(_))), "{slow:?}");
}

// ---------------------------------------------------------------------------------------
// Bad input

#[tokio::test]
async fn hostile_text_travels_only_in_bind_variables() {
    let (server, store) = replay(&["hostile_text"]).await;
    let name = "Robert'); DROP TABLE objects;--";
    let slot = "\" RETURN 1 //";
    let text = "x\" } } FOR d IN Objects REMOVE d IN Objects //";
    let search = "@@Objects ` \" ' // REMOVE";
    let mut s = Map::new();
    s.insert(slot.into(), json!("@@Objects"));
    s.insert("@value".into(), json!("FILTER true"));
    let mut tx = store.begin().await.unwrap();
    tx.create_object(NewObject::named(name).with_slots(s))
        .await
        .unwrap();
    tx.add_memory_node(NewMemoryNode::new("note", text))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.search_memory(search, 10).await.unwrap();
    store.find_object(name).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let mut cursors = 0;
    for request in &requests {
        if !request.url.path().ends_with("/_api/cursor") {
            continue;
        }
        cursors += 1;
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let query = body["query"].as_str().unwrap();
        for hostile in [
            name,
            slot,
            text,
            search,
            "@value",
            "FILTER true",
            "REMOVE d",
        ] {
            assert!(
                !query.contains(hostile),
                "hostile text {hostile:?} reached the AQL text: {query}"
            );
        }
        let vars = body["bindVars"].to_string();
        assert!(!vars.is_empty(), "every value travels in bindVars: {body}");
    }
    assert_eq!(cursors, 5);
    let all_vars: String = requests
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|b| b["bindVars"].to_string())
        .collect();
    for hostile in [name, text, search] {
        let encoded = serde_json::to_string(hostile).unwrap();
        assert!(
            all_vars.contains(encoded.trim_matches('"')),
            "{hostile:?} was sent as a bind variable"
        );
    }
    verify(&server).await;
}
