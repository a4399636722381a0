//! The store's operations, each a few AQL queries run either on the database (reads) or
//! inside one stream transaction (the writes of a [`crate::Transaction`]).
//!
//! The semantics mirror the SQLite backend: the same validation, the same errors, the same
//! orderings. Documents keep times as whole microseconds (`*_us`), like the SQLite store,
//! so times round-trip exactly and sort as numbers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use arangors::client::reqwest::ReqwestClient;
use arangors::transaction::Transaction as Trx;
use arangors::{AqlQuery, Database};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::aql::{self, Aql};
use super::error::{backend, json as json_error, map, Context};
use crate::model::*;
use crate::stored::{from_micros, micros_ceil, non_empty, now};
use crate::{Error, Result};

/// The largest JSON document (slots, payload, metadata, metrics) this backend accepts.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Bind variables of one query: fixed names, any values.
pub(crate) type Vars = Vec<(&'static str, Value)>;

/// Where queries run: on the database, or inside a stream transaction.
pub(crate) enum Target<'a> {
    /// Outside any transaction (each query sees a consistent snapshot of its own).
    Db(&'a Database<ReqwestClient>),
    /// Inside a stream transaction (its requests carry the `x-arango-trx-id` header).
    Trx(&'a Trx<ReqwestClient>),
}

/// Runs queries for one operation, with the store's timeout and error context.
pub(crate) struct Runner<'a> {
    pub target: Target<'a>,
    pub ctx: &'a Context,
    pub timeout: std::time::Duration,
    /// Set when the server or the transport failed (not when a check of ours refused):
    /// a transaction must not commit after that.
    pub failed: AtomicBool,
}

impl Runner<'_> {
    /// Runs one AQL query with bind variables and reads every result row.
    pub(crate) async fn query<T: DeserializeOwned>(&self, aql: &Aql, vars: Vars) -> Result<Vec<T>> {
        let bind: HashMap<&str, Value> = vars.into_iter().collect();
        let query = AqlQuery::builder()
            .query(aql.text())
            .bind_vars(bind)
            .build();
        let call = async {
            match self.target {
                Target::Db(db) => db.aql_query::<Value>(query).await,
                Target::Trx(trx) => trx.aql_query::<Value>(query).await,
            }
        };
        let rows = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                self.failed.store(true, Ordering::Relaxed);
                return Err(map(self.ctx, e));
            }
            Err(_) => {
                self.failed.store(true, Ordering::Relaxed);
                return Err(Error::Timeout(format!(
                    "ArangoDB at {} did not answer within {:?}",
                    self.ctx.url, self.timeout
                )));
            }
        };
        rows.into_iter()
            .map(|row| serde_json::from_value(row).map_err(json_error))
            .collect()
    }

    /// Runs a query that returns exactly one row.
    async fn one<T: DeserializeOwned>(&self, aql: &Aql, vars: Vars) -> Result<T> {
        self.query(aql, vars)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| backend("a query that returns one row returned none"))
    }
}

// ---------------------------------------------------------------------------------------
// Time, ids and JSON

fn parse_id<T: std::str::FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|e| backend(format!("a stored id is malformed: {e}")))
}

/// Serialises `value` for a bind variable, refusing documents over the size limit.
fn to_value<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Value> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("{what} cannot be stored as JSON: {e}")))?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::Invalid(format!(
            "{what} is {} bytes of JSON, more than the {MAX_DOCUMENT_BYTES} this store accepts",
            text.len()
        )));
    }
    serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("{what}: {e}")))
}

/// A row of the "does the object exist, and what does it hold" queries.
#[derive(Deserialize)]
struct Exists<T> {
    exists: bool,
    methods: Vec<T>,
}

// ---------------------------------------------------------------------------------------
// Objects

/// An object as stored in `Objects` (`_key` is the object's id).
#[derive(Serialize, Deserialize)]
struct ObjectDoc {
    #[serde(rename = "_key")]
    key: String,
    /// ArangoDB's own revision, used for the optimistic check on replace.
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    arango_rev: Option<String>,
    name: String,
    parents: Vec<ObjectId>,
    slots: Map<String, Value>,
    rev: u64,
    created_us: i64,
    updated_us: i64,
}

impl ObjectDoc {
    fn into_object(self) -> Result<Object> {
        Ok(Object {
            id: parse_id(&self.key)?,
            name: self.name,
            parents: self.parents,
            slots: self.slots,
            rev: self.rev,
            created_at: from_micros(self.created_us),
            updated_at: from_micros(self.updated_us),
        })
    }
}

fn object_handle(id: ObjectId) -> String {
    format!("Objects/{id}")
}

async fn object_doc(run: &Runner<'_>, id: ObjectId) -> Result<ObjectDoc> {
    run.query::<ObjectDoc>(&aql::GET_OBJECT, vec![("key", json!(id.to_string()))])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("object", id))
}

/// Reads one object.
pub(crate) async fn get_object(run: &Runner<'_>, id: ObjectId) -> Result<Object> {
    object_doc(run, id).await?.into_object()
}

/// Finds an object by name.
pub(crate) async fn find_object(run: &Runner<'_>, name: &str) -> Result<Option<Object>> {
    run.query::<ObjectDoc>(&aql::FIND_OBJECT, vec![("name", json!(name))])
        .await?
        .into_iter()
        .next()
        .map(ObjectDoc::into_object)
        .transpose()
}

/// Lists objects, oldest first.
pub(crate) async fn list_objects(run: &Runner<'_>, page: Page) -> Result<Vec<Object>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    run.query::<ObjectDoc>(
        &aql::LIST_OBJECTS,
        vec![("offset", json!(page.offset)), ("limit", json!(page.limit))],
    )
    .await?
    .into_iter()
    .map(ObjectDoc::into_object)
    .collect()
}

#[derive(Deserialize)]
struct ParentsRow {
    key: String,
    parents: Vec<ObjectId>,
}

/// Checks a parent list for `child`: no duplicates, no self, every parent exists, no cycle.
async fn check_parents(run: &Runner<'_>, child: ObjectId, parents: &[ObjectId]) -> Result<()> {
    let mut seen = HashSet::new();
    for parent in parents {
        if *parent == child {
            return Err(Error::Invalid(format!(
                "object {child} cannot list itself as a parent (a delegation cycle)"
            )));
        }
        if !seen.insert(*parent) {
            return Err(Error::Invalid(format!(
                "parent {parent} is listed twice; each parent appears once"
            )));
        }
    }
    if parents.is_empty() {
        return Ok(());
    }
    // A cycle forms exactly when `child` is already an ancestor of one of the new parents:
    // walk the ancestors level by level (one query per level), remembering which new
    // parent each came from, for the message.
    let mut origin: HashMap<String, ObjectId> =
        parents.iter().map(|p| (p.to_string(), *p)).collect();
    let mut frontier: Vec<String> = parents.iter().map(ToString::to_string).collect();
    let mut first_level = true;
    let child_key = child.to_string();
    while !frontier.is_empty() {
        let rows: Vec<ParentsRow> = run
            .query(&aql::PARENTS_OF, vec![("keys", json!(frontier))])
            .await?;
        if first_level {
            let found: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
            if let Some(missing) = parents
                .iter()
                .find(|p| !found.contains(p.to_string().as_str()))
            {
                return Err(Error::not_found("object", missing));
            }
            first_level = false;
        }
        let mut next = Vec::new();
        for row in rows {
            let from = origin.get(&row.key).copied().unwrap_or(child);
            for ancestor in row.parents {
                let key = ancestor.to_string();
                if key == child_key {
                    return Err(Error::Invalid(format!(
                        "making {from} a parent of {child} would form a delegation cycle \
                         ({child} is already an ancestor of {from})"
                    )));
                }
                if !origin.contains_key(&key) {
                    origin.insert(key.clone(), from);
                    next.push(key);
                }
            }
        }
        frontier = next;
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateCheck {
    id_taken: bool,
    name_taken: bool,
}

/// Creates an object.
pub(crate) async fn create_object(run: &Runner<'_>, new: NewObject) -> Result<Object> {
    validate_object_name(&new.name)?;
    let id = new.id.unwrap_or_default();
    let check: CreateCheck = run
        .one(
            &aql::CREATE_CHECK,
            vec![("key", json!(id.to_string())), ("name", json!(new.name))],
        )
        .await?;
    if check.id_taken {
        return Err(Error::Conflict(format!(
            "an object with id {id} already exists"
        )));
    }
    if check.name_taken {
        return Err(Error::Conflict(format!(
            "an object named {:?} already exists",
            new.name
        )));
    }
    check_parents(run, id, &new.parents).await?;
    let at = now();
    let doc = ObjectDoc {
        key: id.to_string(),
        arango_rev: None,
        name: new.name,
        parents: new.parents,
        slots: new.slots,
        rev: 1,
        created_us: at.timestamp_micros(),
        updated_us: at.timestamp_micros(),
    };
    let doc = to_value(&doc, "the object")?;
    let stored: ObjectDoc = run.one(&aql::INSERT_OBJECT, vec![("doc", doc)]).await?;
    stored.into_object()
}

/// Changes an object if it is still at `expected_rev`.
pub(crate) async fn update_object(
    run: &Runner<'_>,
    id: ObjectId,
    expected_rev: u64,
    patch: ObjectPatch,
) -> Result<Object> {
    let mut doc = object_doc(run, id).await?;
    if doc.rev != expected_rev {
        return Err(Error::Conflict(format!(
            "object {id} is at revision {}, not the expected {expected_rev}: it changed since it \
             was read",
            doc.rev
        )));
    }
    if let Some(parents) = patch.parents {
        check_parents(run, id, &parents).await?;
        doc.parents = parents;
    }
    if let Some(slots) = patch.slots {
        doc.slots = slots;
    }
    doc.rev = expected_rev
        .checked_add(1)
        .ok_or_else(|| Error::Invalid(format!("revision {expected_rev} is out of range")))?;
    doc.updated_us = now().timestamp_micros();
    // `_rev` stays the one just read: ArangoDB refuses the replace (error 1200, a Conflict)
    // if another writer changed the document in between.
    let doc = to_value(&doc, "the object")?;
    let stored: ObjectDoc = run.one(&aql::REPLACE_OBJECT, vec![("doc", doc)]).await?;
    stored.into_object()
}

/// Deletes an object, its methods and its links; refused while others delegate to it.
pub(crate) async fn delete_object(run: &Runner<'_>, id: ObjectId) -> Result<()> {
    object_doc(run, id).await?;
    let key = id.to_string();
    let children: Vec<String> = run
        .query(&aql::CHILDREN_OF, vec![("key", json!(key))])
        .await?;
    if !children.is_empty() {
        return Err(Error::Conflict(format!(
            "object {id} cannot be deleted while other objects delegate to it (for example {})",
            children.join(", ")
        )));
    }
    run.query::<Value>(
        &aql::DELETE_OBJECT,
        vec![("key", json!(key)), ("handle", json!(object_handle(id)))],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Methods

/// A method version as stored in `Methods`.
#[derive(Serialize, Deserialize)]
struct MethodDoc {
    object_id: ObjectId,
    selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    source: String,
    tests: String,
    doc: String,
    provenance: Provenance,
    /// Absent on versions stored before call graphs were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calls: Option<Vec<Selector>>,
    created_us: i64,
}

impl MethodDoc {
    fn into_method(self) -> Result<Method> {
        Ok(Method {
            object_id: self.object_id,
            selector: Selector::new(self.selector)
                .map_err(|e| backend(format!("a stored selector is invalid: {e}")))?,
            source: self.source,
            tests: self.tests,
            doc: self.doc,
            version: self
                .version
                .ok_or_else(|| backend("a stored method has no version"))?,
            provenance: self.provenance,
            calls: self.calls,
            created_at: from_micros(self.created_us),
        })
    }
}

fn method_vars(object: ObjectId, selector: &Selector) -> Vars {
    vec![
        ("object", json!(object.to_string())),
        ("selector", json!(selector.as_str())),
    ]
}

async fn methods_of(
    run: &Runner<'_>,
    query: &Aql,
    object: ObjectId,
    vars: Vars,
) -> Result<Vec<Method>> {
    let row: Exists<MethodDoc> = run.one(query, vars).await?;
    if !row.exists {
        return Err(Error::not_found("object", object));
    }
    row.methods
        .into_iter()
        .map(MethodDoc::into_method)
        .collect()
}

/// The current version of one method.
pub(crate) async fn get_method(
    run: &Runner<'_>,
    object: ObjectId,
    selector: &Selector,
) -> Result<Option<Method>> {
    let found = methods_of(run, &aql::GET_METHOD, object, method_vars(object, selector)).await?;
    Ok(found.into_iter().next())
}

/// The current version of every method of an object, by selector.
pub(crate) async fn list_methods(run: &Runner<'_>, object: ObjectId) -> Result<Vec<Method>> {
    let mut found = methods_of(
        run,
        &aql::LIST_METHODS,
        object,
        vec![("object", json!(object.to_string()))],
    )
    .await?;
    // Sorted here, byte-wise like SQLite, not by AQL's locale-aware string order.
    found.sort_by(|a, b| a.selector.as_str().cmp(b.selector.as_str()));
    Ok(found)
}

/// Every version of one method, oldest first.
pub(crate) async fn method_versions(
    run: &Runner<'_>,
    object: ObjectId,
    selector: &Selector,
) -> Result<Vec<Method>> {
    methods_of(
        run,
        &aql::METHOD_VERSIONS,
        object,
        method_vars(object, selector),
    )
    .await
}

/// Stores the next version of a method.
pub(crate) async fn put_method(run: &Runner<'_>, new: NewMethod) -> Result<Method> {
    let doc = MethodDoc {
        object_id: new.object_id,
        selector: new.selector.as_str().to_owned(),
        version: None,
        source: new.source,
        tests: new.tests,
        doc: new.doc,
        provenance: new.provenance,
        calls: new.calls,
        created_us: now().timestamp_micros(),
    };
    let mut vars = method_vars(new.object_id, &new.selector);
    vars.push(("method", to_value(&doc, "the method")?));
    let stored: Vec<MethodDoc> = run.query(&aql::PUT_METHOD, vars).await?;
    stored
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("object", new.object_id))?
        .into_method()
}

/// Stores an earlier version again as the newest one.
pub(crate) async fn rollback_method(
    run: &Runner<'_>,
    object: ObjectId,
    selector: &Selector,
    version: u32,
) -> Result<Method> {
    let mut vars = method_vars(object, selector);
    vars.push(("version", json!(version)));
    let old = methods_of(run, &aql::METHOD_VERSION, object, vars)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::not_found("method version", format!("{object}.{selector} v{version}"))
        })?;
    put_method(
        run,
        NewMethod {
            object_id: object,
            selector: selector.clone(),
            source: old.source,
            tests: old.tests,
            doc: old.doc,
            provenance: Provenance::Rollback {
                from_version: version,
            },
            calls: old.calls,
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Memory graph

/// A memory node as stored in `MemoryNodes` (`_key` is the node's id).
#[derive(Serialize, Deserialize)]
struct NodeDoc {
    #[serde(rename = "_key")]
    key: String,
    kind: String,
    text: String,
    embedding: Option<Vec<f32>>,
    meta: Value,
    created_us: i64,
}

impl NodeDoc {
    fn into_node(self) -> Result<MemoryNode> {
        Ok(MemoryNode {
            id: parse_id(&self.key)?,
            kind: self.kind,
            text: self.text,
            embedding: self.embedding,
            meta: self.meta,
            created_at: from_micros(self.created_us),
        })
    }
}

/// The document handle (`Collection/key`) of either end of a link.
pub(crate) fn handle(r: NodeRef) -> String {
    match r {
        NodeRef::Node(id) => format!("MemoryNodes/{id}"),
        NodeRef::Object(id) => object_handle(id),
    }
}

fn ref_not_found(r: NodeRef) -> Error {
    match r {
        NodeRef::Node(id) => Error::not_found("memory node", id),
        NodeRef::Object(id) => Error::not_found("object", id),
    }
}

/// Reads one memory node.
pub(crate) async fn get_memory_node(run: &Runner<'_>, id: NodeId) -> Result<MemoryNode> {
    run.query::<NodeDoc>(&aql::GET_NODE, vec![("key", json!(id.to_string()))])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("memory node", id))?
        .into_node()
}

/// Adds a memory node.
pub(crate) async fn add_memory_node(run: &Runner<'_>, new: NewMemoryNode) -> Result<MemoryNode> {
    non_empty(&new.kind, "a memory node's kind")?;
    if new.text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::Invalid(format!(
            "a memory node's text is at most {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    // JSON has no NaN or infinity: such an embedding could not be read back.
    if new
        .embedding
        .as_ref()
        .is_some_and(|v| v.iter().any(|f| !f.is_finite()))
    {
        return Err(Error::Invalid(
            "an embedding must hold finite numbers only".into(),
        ));
    }
    let id = new.id.unwrap_or_default();
    let at = now();
    let doc = NodeDoc {
        key: id.to_string(),
        kind: new.kind,
        text: new.text,
        embedding: new.embedding,
        meta: new.meta,
        created_us: at.timestamp_micros(),
    };
    let value = to_value(&doc, "the memory node")?;
    let written: Vec<String> = run
        .query(
            &aql::ADD_NODE,
            vec![("key", json!(doc.key)), ("node", value)],
        )
        .await?;
    if written.is_empty() {
        return Err(Error::Conflict(format!(
            "a memory node with id {id} already exists"
        )));
    }
    doc.into_node()
}

#[derive(Deserialize)]
struct LinkCheck {
    from_ok: bool,
    to_ok: bool,
}

/// Adds a link (or, for an existing link of the same ends and kind, sets its weight).
pub(crate) async fn add_link(run: &Runner<'_>, link: ContextLink) -> Result<()> {
    non_empty(&link.kind, "a link's kind")?;
    if !link.weight.is_finite() {
        return Err(Error::Invalid(format!(
            "a link's weight must be a finite number (got {})",
            link.weight
        )));
    }
    let check: LinkCheck = run
        .one(
            &aql::ADD_LINK,
            vec![
                ("from", json!(handle(link.from))),
                ("to", json!(handle(link.to))),
                ("kind", json!(link.kind)),
                ("weight", json!(link.weight)),
            ],
        )
        .await?;
    if !check.from_ok {
        return Err(ref_not_found(link.from));
    }
    if !check.to_ok {
        return Err(ref_not_found(link.to));
    }
    Ok(())
}

#[derive(Deserialize)]
struct NeighbourRow {
    node: NodeDoc,
    depth: u32,
}

#[derive(Deserialize)]
struct NeighboursRow {
    found: bool,
    hits: Vec<NeighbourRow>,
}

/// Memory nodes within `depth` hops of `from`, nearest first (an AQL breadth-first traversal
/// of the named graph).
pub(crate) async fn neighbours(
    run: &Runner<'_>,
    from: NodeRef,
    depth: u32,
    limit: u32,
) -> Result<Vec<Neighbour>> {
    let start = json!(handle(from));
    if depth == 0 || limit == 0 {
        let exists: bool = run.one(&aql::VERTEX_EXISTS, vec![("start", start)]).await?;
        return if exists {
            Ok(Vec::new())
        } else {
            Err(ref_not_found(from))
        };
    }
    let row: NeighboursRow = run
        .one(
            &aql::NEIGHBOURS,
            vec![
                ("start", start),
                ("depth", json!(depth)),
                ("limit", json!(limit)),
            ],
        )
        .await?;
    if !row.found {
        return Err(ref_not_found(from));
    }
    row.hits
        .into_iter()
        .map(|hit| {
            Ok(Neighbour {
                node: hit.node.into_node()?,
                depth: hit.depth,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct HitRow {
    node: NodeDoc,
    score: f64,
}

/// Ranked text search over memory nodes (BM25 through the ArangoSearch view).
pub(crate) async fn search_memory(
    run: &Runner<'_>,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    // Nothing searchable (no letter or digit): no query at all, as in the SQLite store.
    if limit == 0 || !query.chars().any(char::is_alphanumeric) {
        return Ok(Vec::new());
    }
    let rows: Vec<HitRow> = run
        .query(
            &aql::SEARCH,
            vec![("query", json!(query)), ("limit", json!(limit))],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(SearchHit {
                node: row.node.into_node()?,
                score: row.score,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Audit trail

/// An event as stored in `AuditEvents` (`_key` is the event's time-ordered id).
#[derive(Serialize, Deserialize)]
struct EventDoc {
    #[serde(rename = "_key")]
    key: String,
    at_us: i64,
    kind: String,
    object_id: Option<ObjectId>,
    payload: Value,
}

impl EventDoc {
    fn into_event(self) -> Result<AuditEvent> {
        Ok(AuditEvent {
            id: parse_id(&self.key)?,
            at: from_micros(self.at_us),
            kind: self.kind,
            object_id: self.object_id,
            payload: self.payload,
        })
    }
}

/// Appends an audit event (its object need not exist: the trail outlives what it records).
pub(crate) async fn append_event(run: &Runner<'_>, new: NewAuditEvent) -> Result<AuditEvent> {
    non_empty(&new.kind, "an event's kind")?;
    let doc = EventDoc {
        key: EventId::new().to_string(),
        at_us: now().timestamp_micros(),
        kind: new.kind,
        object_id: new.object_id,
        payload: new.payload,
    };
    let value = to_value(&doc, "the event")?;
    run.one::<String>(&aql::APPEND_EVENT, vec![("event", value)])
        .await?;
    doc.into_event()
}

/// Reads a page of the audit trail, oldest first.
pub(crate) async fn query_audit(run: &Runner<'_>, query: &AuditQuery) -> Result<AuditPage> {
    let mut aql = Aql::new(aql::AUDIT_START);
    let mut vars: Vars = Vec::new();
    if let Some(object) = query.object_id {
        aql = aql.then(aql::AUDIT_BY_OBJECT);
        vars.push(("object", json!(object.to_string())));
    }
    if let Some(kind) = &query.kind {
        if let Some(prefix) = kind.strip_suffix('*') {
            if !prefix.is_empty() {
                aql = aql.then(aql::AUDIT_BY_PREFIX);
                vars.push(("prefix", json!(prefix)));
            }
        } else {
            aql = aql.then(aql::AUDIT_BY_KIND);
            vars.push(("kind", json!(kind)));
        }
    }
    if let Some(since) = query.since {
        aql = aql.then(aql::AUDIT_SINCE);
        vars.push(("since", json!(micros_ceil(since))));
    }
    if let Some(until) = query.until {
        aql = aql.then(aql::AUDIT_UNTIL);
        vars.push(("until", json!(micros_ceil(until))));
    }
    if let Some(after) = query.after {
        let key = after.to_string();
        let exists: bool = run
            .one(&aql::EVENT_EXISTS, vec![("key", json!(key))])
            .await?;
        if !exists {
            return Err(Error::not_found("audit event", after));
        }
        aql = aql.then(aql::AUDIT_AFTER);
        vars.push(("after", json!(key)));
    }
    let size = query.page_size();
    aql = aql.then(aql::AUDIT_END);
    vars.push(("count", json!(u64::from(size) + 1)));
    let mut events = run
        .query::<EventDoc>(&aql, vars)
        .await?
        .into_iter()
        .map(EventDoc::into_event)
        .collect::<Result<Vec<_>>>()?;
    let more = events.len() > size as usize;
    events.truncate(size as usize);
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { events, next })
}

// ---------------------------------------------------------------------------------------
// Facets

/// A facet as stored in `Facets` (unique by `name`).
#[derive(Serialize, Deserialize)]
struct FacetDoc {
    name: String,
    persona: String,
    base_model: String,
    adapter_path: String,
    metrics: Value,
    created_us: i64,
}

impl FacetDoc {
    fn into_facet(self) -> Facet {
        Facet {
            name: self.name,
            persona: self.persona,
            base_model: self.base_model,
            adapter_path: self.adapter_path,
            metrics: self.metrics,
            created_at: from_micros(self.created_us),
        }
    }
}

/// Registers a facet, replacing one of the same name.
pub(crate) async fn put_facet(run: &Runner<'_>, facet: Facet) -> Result<Facet> {
    non_empty(&facet.name, "a facet's name")?;
    let doc = FacetDoc {
        name: facet.name,
        persona: facet.persona,
        base_model: facet.base_model,
        adapter_path: facet.adapter_path,
        metrics: facet.metrics,
        created_us: facet.created_at.timestamp_micros(),
    };
    let value = to_value(&doc, "the facet")?;
    run.one::<FacetDoc>(
        &aql::PUT_FACET,
        vec![("name", json!(doc.name)), ("facet", value)],
    )
    .await?;
    Ok(doc.into_facet())
}

/// Reads one facet.
pub(crate) async fn get_facet(run: &Runner<'_>, name: &str) -> Result<Facet> {
    run.query::<FacetDoc>(&aql::GET_FACET, vec![("name", json!(name))])
        .await?
        .into_iter()
        .next()
        .map(FacetDoc::into_facet)
        .ok_or_else(|| Error::not_found("facet", name))
}

/// Lists every facet by name (byte-wise, like SQLite).
pub(crate) async fn list_facets(run: &Runner<'_>) -> Result<Vec<Facet>> {
    let mut facets: Vec<Facet> = run
        .query::<FacetDoc>(&aql::LIST_FACETS, Vec::new())
        .await?
        .into_iter()
        .map(FacetDoc::into_facet)
        .collect();
    facets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(facets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_over_the_limit_are_invalid() {
        let big = "x".repeat(MAX_DOCUMENT_BYTES + 1);
        assert!(matches!(to_value(&big, "it"), Err(Error::Invalid(_))));
    }
}
