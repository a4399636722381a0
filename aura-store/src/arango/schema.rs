//! The schema, created idempotently: database (OneShard), collections, indexes, analyzers,
//! the ArangoSearch view and the named graph.
//!
//! Each step is one request of ArangoDB's HTTP API, sent through arangors' session (which
//! carries the credentials); "already exists" answers count as success, so running the
//! setup again — or from several processes at once — is harmless.

use arangors::client::reqwest::ReqwestClient;
use arangors::client::ClientExt;
use arangors::{Connection, Database};
use serde_json::{json, Value};

use super::error::{backend, from_server, num, Context};
use crate::{Error, Result};

/// Document collections.
pub(crate) const DOCUMENT_COLLECTIONS: [&str; 5] =
    ["Objects", "Methods", "MemoryNodes", "AuditEvents", "Facets"];
/// Edge collections.
pub(crate) const EDGE_COLLECTIONS: [&str; 1] = ["ContextLinks"];
/// Every collection a transaction may touch (declared when it begins).
pub(crate) const ALL_COLLECTIONS: [&str; 6] = [
    "Objects",
    "Methods",
    "MemoryNodes",
    "ContextLinks",
    "AuditEvents",
    "Facets",
];
/// The ArangoSearch view over memory nodes.
pub(crate) const VIEW: &str = "MemoryView";
/// The named graph of memory nodes and objects.
pub(crate) const GRAPH: &str = "ContextGraph";

/// An error answer that may mean "already there".
struct Failure {
    status: u16,
    error_num: u16,
    message: String,
}

/// Sends one request and reads the JSON answer; an `"error": true` answer is a [`Failure`].
async fn send(
    session: &ReqwestClient,
    timeout: std::time::Duration,
    ctx: &Context,
    url: url::Url,
    body: &Value,
) -> Result<std::result::Result<Value, Failure>> {
    let call = session.post(url, body.to_string());
    let response = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Err(super::error::map(ctx, e)),
        Err(_) => {
            return Err(Error::Timeout(format!(
                "ArangoDB at {} did not answer within {timeout:?}",
                ctx.url
            )))
        }
    };
    let status = response.status().as_u16();
    let value: Value = serde_json::from_str(response.body()).unwrap_or(Value::Null);
    let is_error = value
        .get("error")
        .and_then(Value::as_bool)
        .unwrap_or(status >= 400);
    if !is_error {
        return Ok(Ok(value));
    }
    let error_num = value
        .get("errorNum")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(0);
    let message = value
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned();
    Ok(Err(Failure {
        status,
        error_num,
        message,
    }))
}

/// Accepts success or one of the `benign` error numbers; anything else is an error.
fn accept(
    ctx: &Context,
    result: std::result::Result<Value, Failure>,
    benign: &[u16],
) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(f) if benign.contains(&f.error_num) => Ok(()),
        Err(f) => Err(from_server(ctx, f.status, f.error_num, &f.message)),
    }
}

fn join(base: &url::Url, path: &str) -> Result<url::Url> {
    base.join(path)
        .map_err(|e| backend(format!("cannot build the URL for {path}: {e}")))
}

/// Creates the database when missing, with OneShard sharding where the server supports it
/// (a single server ignores the option; a cluster started with
/// `--cluster.force-one-shard=true` forces it anyway).
pub(crate) async fn ensure_database(
    conn: &Connection,
    ctx: &Context,
    timeout: std::time::Duration,
) -> Result<()> {
    let session = conn.session();
    let url = join(conn.url(), "_api/database")?;
    let body = json!({ "name": ctx.database, "options": { "sharding": "single" } });
    match send(&session, timeout, ctx, url, &body).await? {
        Ok(_) => {
            tracing::info!(target: "Store", database = %ctx.database, "created ArangoDB database");
            Ok(())
        }
        Err(f) if f.error_num == num::DUPLICATE_NAME => Ok(()),
        // A user without rights on `_system` cannot create databases: the database may well
        // exist already, which opening it will tell.
        Err(f) if f.status == 403 || (f.status != 401 && f.error_num == num::FORBIDDEN) => {
            tracing::debug!(target: "Store", "may not create databases; assuming {:?} exists", ctx.database);
            Ok(())
        }
        Err(f) => Err(from_server(ctx, f.status, f.error_num, &f.message)),
    }
}

/// Creates every collection, index, analyzer, the view and the graph that are missing.
pub(crate) async fn ensure_schema(
    db: &Database<ReqwestClient>,
    ctx: &Context,
    timeout: std::time::Duration,
) -> Result<()> {
    let session = db.session();
    let base = db.url().clone();
    let post = |path: &'static str, body: Value| {
        let session = session.clone();
        let base = base.clone();
        async move {
            let url = join(&base, path)?;
            send(&session, timeout, ctx, url, &body).await
        }
    };

    for name in DOCUMENT_COLLECTIONS {
        let r = post("_api/collection", json!({ "name": name, "type": 2 })).await?;
        accept(ctx, r, &[num::DUPLICATE_NAME])?;
    }
    for name in EDGE_COLLECTIONS {
        let r = post("_api/collection", json!({ "name": name, "type": 3 })).await?;
        accept(ctx, r, &[num::DUPLICATE_NAME])?;
    }

    // Creating an index that exists with the same definition answers 200 with that index.
    let indexes: [(&str, &str, Value, bool); 9] = [
        ("Objects", "aura_object_name", json!(["name"]), true),
        (
            "Objects",
            "aura_object_parents",
            json!(["parents[*]"]),
            false,
        ),
        (
            "Objects",
            "aura_object_created",
            json!(["created_us"]),
            false,
        ),
        (
            "Methods",
            "aura_method_version",
            json!(["object_id", "selector", "version"]),
            true,
        ),
        (
            "ContextLinks",
            "aura_link_ends",
            json!(["_from", "_to", "kind"]),
            true,
        ),
        (
            "AuditEvents",
            "aura_event_object",
            json!(["object_id"]),
            false,
        ),
        ("AuditEvents", "aura_event_kind", json!(["kind"]), false),
        ("AuditEvents", "aura_event_at", json!(["at_us"]), false),
        ("Facets", "aura_facet_name", json!(["name"]), true),
    ];
    for (collection, name, fields, unique) in indexes {
        let url = join(&base, "_api/index")?;
        let mut url = url;
        url.query_pairs_mut().append_pair("collection", collection);
        let body =
            json!({ "type": "persistent", "name": name, "fields": fields, "unique": unique });
        let r = send(&session, timeout, ctx, url, &body).await?;
        accept(ctx, r, &[])?;
    }

    // Two analyzers over the same words: `aura_prefix` indexes each word and its prefixes of
    // 3..=64 characters (edge n-grams), `aura_words` splits a query into plain words; so a
    // query word matches whole words, and words of 3+ characters also match as prefixes —
    // the behaviour of the SQLite store's FTS5 queries. Lower-cased, accents removed, no
    // stemming (the store holds text in many languages).
    let words = json!({ "locale": "en", "case": "lower", "accent": false, "stemming": false });
    let mut prefix = words.clone();
    if let Some(p) = prefix.as_object_mut() {
        p.insert(
            "edgeNgram".into(),
            json!({ "min": 3, "max": 64, "preserveOriginal": true }),
        );
    }
    for (name, properties) in [("aura_words", words), ("aura_prefix", prefix)] {
        let body = json!({
            "name": name,
            "type": "text",
            "properties": properties,
            "features": ["frequency", "norm", "position"],
        });
        let r = post("_api/analyzer", body).await?;
        accept(ctx, r, &[])?;
    }

    let view = json!({
        "name": VIEW,
        "type": "arangosearch",
        "links": {
            "MemoryNodes": { "fields": { "text": { "analyzers": ["aura_prefix"] } } }
        }
    });
    let r = post("_api/view", view).await?;
    accept(ctx, r, &[num::DUPLICATE_NAME])?;

    let graph = json!({
        "name": GRAPH,
        "edgeDefinitions": [{
            "collection": "ContextLinks",
            "from": ["MemoryNodes", "Objects"],
            "to": ["MemoryNodes", "Objects"],
        }]
    });
    let r = post("_api/gharial", graph).await?;
    accept(ctx, r, &[num::GRAPH_DUPLICATE, num::DUPLICATE_NAME])?;
    tracing::debug!(target: "Store", database = %ctx.database, "ArangoDB schema is in place");
    Ok(())
}
