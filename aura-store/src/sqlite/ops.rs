//! The store's operations as plain synchronous functions over one connection.
//!
//! Each runs on a blocking thread, inside whatever transaction its caller opened.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::error::{backend, json, map};
use crate::model::*;
use crate::stored::{from_micros, micros_ceil, non_empty, now};
use crate::{Error, Result};

/// The largest JSON document (slots, payload, metadata, metrics) this backend accepts.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The most terms of a search query that are used.
const MAX_QUERY_TERMS: usize = 64;
/// The longest prefix the full-text index keeps (schema migration 5).
const MAX_INDEXED_PREFIX: usize = 6;

// ---------------------------------------------------------------------------------------
// Time, ids and JSON

fn parse_id<T: std::str::FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|e| backend(format!("a stored id is malformed: {e}")))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("{what} cannot be stored as JSON: {e}")))?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::Invalid(format!(
            "{what} is {} bytes of JSON, more than the {MAX_DOCUMENT_BYTES} this store accepts",
            text.len()
        )));
    }
    Ok(text)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(json)
}

// ---------------------------------------------------------------------------------------
// Objects

const OBJECT_COLUMNS: &str = "id, name, parents, slots, rev, created_us, updated_us";

fn object_from_row(
    row: &Row<'_>,
) -> rusqlite::Result<(String, String, String, String, i64, i64, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn build_object(raw: (String, String, String, String, i64, i64, i64)) -> Result<Object> {
    let (id, name, parents, slots, rev, created, updated) = raw;
    let parents: Vec<ObjectId> = from_json(&parents)?;
    let slots: Map<String, Value> = from_json(&slots)?;
    Ok(Object {
        id: parse_id(&id)?,
        name,
        parents,
        slots,
        rev: u64::try_from(rev).map_err(|_| backend("a stored revision is negative"))?,
        created_at: from_micros(created),
        updated_at: from_micros(updated),
    })
}

/// Reads one object, `NotFound` when absent.
pub(crate) fn get_object(conn: &Connection, id: ObjectId) -> Result<Object> {
    find_object_by(conn, "id", &id.to_string())?.ok_or_else(|| Error::not_found("object", id))
}

/// Reads one object by its name.
pub(crate) fn find_object(conn: &Connection, name: &str) -> Result<Option<Object>> {
    find_object_by(conn, "name", name)
}

fn find_object_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Object>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE {column} = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .map_err(map)?
        .query_row([value], object_from_row)
        .optional()
        .map_err(map)?;
    raw.map(build_object).transpose()
}

/// Lists objects in creation order.
pub(crate) fn list_objects(conn: &Connection, page: Page) -> Result<Vec<Object>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects ORDER BY seq LIMIT ?1 OFFSET ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(params![page.limit, page.offset], object_from_row)
        .map_err(map)?;
    rows.map(|r| r.map_err(map).and_then(build_object))
        .collect()
}

fn object_exists(conn: &Connection, id: ObjectId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM objects WHERE id = ?1")
        .map_err(map)?
        .exists([id.to_string()])
        .map_err(map)
}

fn node_exists(conn: &Connection, id: NodeId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM memory_nodes WHERE id = ?1")
        .map_err(map)?
        .exists([id.to_string()])
        .map_err(map)
}

/// Checks a parent list for `child`: no duplicates, no self, every parent exists, no cycle.
fn check_parents(conn: &Connection, child: ObjectId, parents: &[ObjectId]) -> Result<()> {
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
        if !object_exists(conn, *parent)? {
            return Err(Error::not_found("object", parent));
        }
    }
    if parents.is_empty() {
        return Ok(());
    }
    // A cycle forms exactly when `child` is already an ancestor of one of the new parents.
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE ancestors(id) AS (
                 SELECT ?1
                 UNION
                 SELECT p.parent FROM object_parents p JOIN ancestors a ON p.child = a.id
             )
             SELECT 1 FROM ancestors WHERE id = ?2 LIMIT 1",
        )
        .map_err(map)?;
    for parent in parents {
        if stmt
            .exists(params![parent.to_string(), child.to_string()])
            .map_err(map)?
        {
            return Err(Error::Invalid(format!(
                "making {parent} a parent of {child} would form a delegation cycle \
                 ({child} is already an ancestor of {parent})"
            )));
        }
    }
    Ok(())
}

fn write_parents(
    conn: &Connection,
    child: ObjectId,
    parents: &[ObjectId],
    replace: bool,
) -> Result<()> {
    if replace {
        conn.prepare_cached("DELETE FROM object_parents WHERE child = ?1")
            .map_err(map)?
            .execute([child.to_string()])
            .map_err(map)?;
    }
    let mut stmt = conn
        .prepare_cached("INSERT INTO object_parents (child, position, parent) VALUES (?1, ?2, ?3)")
        .map_err(map)?;
    for (position, parent) in parents.iter().enumerate() {
        stmt.execute(params![
            child.to_string(),
            position as i64,
            parent.to_string()
        ])
        .map_err(map)?;
    }
    Ok(())
}

/// Creates an object.
pub(crate) fn create_object(conn: &Connection, new: NewObject) -> Result<Object> {
    validate_object_name(&new.name)?;
    let id = new.id.unwrap_or_default();
    if object_exists(conn, id)? {
        return Err(Error::Conflict(format!(
            "an object with id {id} already exists"
        )));
    }
    let name_taken = conn
        .prepare_cached("SELECT 1 FROM objects WHERE name = ?1")
        .map_err(map)?
        .exists([&new.name])
        .map_err(map)?;
    if name_taken {
        return Err(Error::Conflict(format!(
            "an object named {:?} already exists",
            new.name
        )));
    }
    check_parents(conn, id, &new.parents)?;
    let slots = to_json(&new.slots, "the slots")?;
    let parents = to_json(&new.parents, "the parent list")?;
    let at = now();
    conn.prepare_cached(
        "INSERT INTO objects (id, name, parents, slots, rev, created_us, updated_us)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
    )
    .map_err(map)?
    .execute(params![
        id.to_string(),
        new.name,
        parents,
        slots,
        at.timestamp_micros()
    ])
    .map_err(map)?;
    write_parents(conn, id, &new.parents, false)?;
    Ok(Object {
        id,
        name: new.name,
        parents: new.parents,
        slots: new.slots,
        rev: 1,
        created_at: at,
        updated_at: at,
    })
}

/// Changes an object if it is still at `expected_rev`.
pub(crate) fn update_object(
    conn: &Connection,
    id: ObjectId,
    expected_rev: u64,
    patch: ObjectPatch,
) -> Result<Object> {
    let mut object = get_object(conn, id)?;
    if object.rev != expected_rev {
        return Err(Error::Conflict(format!(
            "object {id} is at revision {}, not the expected {expected_rev}: it changed since it \
             was read",
            object.rev
        )));
    }
    if let Some(parents) = patch.parents {
        check_parents(conn, id, &parents)?;
        write_parents(conn, id, &parents, true)?;
        object.parents = parents;
    }
    if let Some(slots) = patch.slots {
        object.slots = slots;
    }
    let slots = to_json(&object.slots, "the slots")?;
    let parents = to_json(&object.parents, "the parent list")?;
    let at = now();
    let rev = i64::try_from(expected_rev)
        .map_err(|_| Error::Invalid(format!("revision {expected_rev} is out of range")))?;
    let changed = conn
        .prepare_cached(
            "UPDATE objects SET slots = ?1, parents = ?2, rev = rev + 1, updated_us = ?3
             WHERE id = ?4 AND rev = ?5",
        )
        .map_err(map)?
        .execute(params![
            slots,
            parents,
            at.timestamp_micros(),
            id.to_string(),
            rev
        ])
        .map_err(map)?;
    if changed != 1 {
        return Err(Error::Conflict(format!(
            "object {id} changed while it was being updated"
        )));
    }
    object.rev += 1;
    object.updated_at = at;
    Ok(object)
}

/// Deletes an object, its methods, its parent list and its links.
pub(crate) fn delete_object(conn: &Connection, id: ObjectId) -> Result<()> {
    if !object_exists(conn, id)? {
        return Err(Error::not_found("object", id));
    }
    let children: Vec<String> = conn
        .prepare_cached("SELECT child FROM object_parents WHERE parent = ?1 ORDER BY child LIMIT 3")
        .map_err(map)?
        .query_map([id.to_string()], |row| row.get(0))
        .map_err(map)?
        .collect::<rusqlite::Result<_>>()
        .map_err(map)?;
    if !children.is_empty() {
        return Err(Error::Conflict(format!(
            "object {id} cannot be deleted while other objects delegate to it (for example {})",
            children.join(", ")
        )));
    }
    let key = id.to_string();
    conn.prepare_cached(
        "DELETE FROM context_links
         WHERE (from_type = 'object' AND from_id = ?1) OR (to_type = 'object' AND to_id = ?1)",
    )
    .map_err(map)?
    .execute([&key])
    .map_err(map)?;
    // Methods and the parent list go by ON DELETE CASCADE.
    conn.prepare_cached("DELETE FROM methods WHERE object_id = ?1")
        .map_err(map)?
        .execute([&key])
        .map_err(map)?;
    conn.prepare_cached("DELETE FROM objects WHERE id = ?1")
        .map_err(map)?
        .execute([&key])
        .map_err(map)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Methods

const METHOD_COLUMNS: &str = "m.object_id, m.selector, m.source, m.tests, m.doc, m.version, \
     m.provenance, m.created_us, m.calls";

type RawMethod = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
);

fn method_from_row(row: &Row<'_>) -> rusqlite::Result<RawMethod> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn build_method(raw: RawMethod) -> Result<Method> {
    let (object_id, selector, source, tests, doc, version, provenance, created, calls) = raw;
    Ok(Method {
        object_id: parse_id(&object_id)?,
        selector: Selector::new(selector)
            .map_err(|e| backend(format!("a stored selector is invalid: {e}")))?,
        source,
        tests,
        doc,
        version: u32::try_from(version).map_err(|_| backend("a stored version is out of range"))?,
        provenance: from_json(&provenance)?,
        calls: calls.as_deref().map(from_json).transpose()?,
        created_at: from_micros(created),
    })
}

fn require_object(conn: &Connection, id: ObjectId) -> Result<()> {
    if object_exists(conn, id)? {
        Ok(())
    } else {
        Err(Error::not_found("object", id))
    }
}

/// The current version of one method.
pub(crate) fn get_method(
    conn: &Connection,
    object: ObjectId,
    selector: &Selector,
) -> Result<Option<Method>> {
    require_object(conn, object)?;
    let sql = format!(
        "SELECT {METHOD_COLUMNS} FROM methods m WHERE m.object_id = ?1 AND m.selector = ?2
         ORDER BY m.version DESC LIMIT 1"
    );
    let raw = conn
        .prepare_cached(&sql)
        .map_err(map)?
        .query_row(
            params![object.to_string(), selector.as_str()],
            method_from_row,
        )
        .optional()
        .map_err(map)?;
    raw.map(build_method).transpose()
}

/// The current version of every method of an object.
pub(crate) fn list_methods(conn: &Connection, object: ObjectId) -> Result<Vec<Method>> {
    require_object(conn, object)?;
    let sql = format!(
        "SELECT {METHOD_COLUMNS} FROM methods m
         WHERE m.object_id = ?1 AND m.version = (
             SELECT MAX(v.version) FROM methods v
             WHERE v.object_id = m.object_id AND v.selector = m.selector)
         ORDER BY m.selector"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map([object.to_string()], method_from_row)
        .map_err(map)?;
    rows.map(|r| r.map_err(map).and_then(build_method))
        .collect()
}

/// Every version of one method, oldest first.
pub(crate) fn method_versions(
    conn: &Connection,
    object: ObjectId,
    selector: &Selector,
) -> Result<Vec<Method>> {
    require_object(conn, object)?;
    let sql = format!(
        "SELECT {METHOD_COLUMNS} FROM methods m WHERE m.object_id = ?1 AND m.selector = ?2
         ORDER BY m.version"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(
            params![object.to_string(), selector.as_str()],
            method_from_row,
        )
        .map_err(map)?;
    rows.map(|r| r.map_err(map).and_then(build_method))
        .collect()
}

/// Stores the next version of a method.
pub(crate) fn put_method(conn: &Connection, new: NewMethod) -> Result<Method> {
    require_object(conn, new.object_id)?;
    let provenance = to_json(&new.provenance, "the provenance")?;
    let calls = new
        .calls
        .as_ref()
        .map(|c| to_json(c, "the call graph"))
        .transpose()?;
    let next: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM methods WHERE object_id = ?1 AND selector = ?2",
        )
        .map_err(map)?
        .query_row(
            params![new.object_id.to_string(), new.selector.as_str()],
            |row| row.get(0),
        )
        .map_err(map)?;
    let version = u32::try_from(next)
        .map_err(|_| Error::Invalid("too many versions of one method".into()))?;
    let at = now();
    conn.prepare_cached(
        "INSERT INTO methods (object_id, selector, version, source, tests, doc, provenance, created_us, calls)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(map)?
    .execute(params![
        new.object_id.to_string(),
        new.selector.as_str(),
        next,
        new.source,
        new.tests,
        new.doc,
        provenance,
        at.timestamp_micros(),
        calls
    ])
    .map_err(map)?;
    Ok(Method {
        object_id: new.object_id,
        selector: new.selector,
        source: new.source,
        tests: new.tests,
        doc: new.doc,
        version,
        provenance: new.provenance,
        calls: new.calls,
        created_at: at,
    })
}

/// Stores an earlier version again as the newest one.
pub(crate) fn rollback_method(
    conn: &Connection,
    object: ObjectId,
    selector: &Selector,
    version: u32,
) -> Result<Method> {
    require_object(conn, object)?;
    let sql = format!(
        "SELECT {METHOD_COLUMNS} FROM methods m
         WHERE m.object_id = ?1 AND m.selector = ?2 AND m.version = ?3"
    );
    let old = conn
        .prepare_cached(&sql)
        .map_err(map)?
        .query_row(
            params![object.to_string(), selector.as_str(), version],
            method_from_row,
        )
        .optional()
        .map_err(map)?
        .map(build_method)
        .transpose()?
        .ok_or_else(|| {
            Error::not_found("method version", format!("{object}.{selector} v{version}"))
        })?;
    put_method(
        conn,
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
}

// ---------------------------------------------------------------------------------------
// Memory graph

const NODE_COLUMNS: &str = "id, kind, text, embedding, meta, created_us";

type RawNode = (String, String, String, Option<Vec<u8>>, String, i64);

fn node_from_row(row: &Row<'_>) -> rusqlite::Result<RawNode> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn build_node(raw: RawNode) -> Result<MemoryNode> {
    let (id, kind, text, embedding, meta, created) = raw;
    let embedding = match embedding {
        None => None,
        Some(bytes) => {
            if bytes.len() % 4 != 0 {
                return Err(backend("a stored embedding has a ragged length"));
            }
            Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
    };
    Ok(MemoryNode {
        id: parse_id(&id)?,
        kind,
        text,
        embedding,
        meta: from_json(&meta)?,
        created_at: from_micros(created),
    })
}

/// Reads one memory node.
pub(crate) fn get_memory_node(conn: &Connection, id: NodeId) -> Result<MemoryNode> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id = ?1");
    conn.prepare_cached(&sql)
        .map_err(map)?
        .query_row([id.to_string()], node_from_row)
        .optional()
        .map_err(map)?
        .map(build_node)
        .transpose()?
        .ok_or_else(|| Error::not_found("memory node", id))
}

/// Adds a memory node.
pub(crate) fn add_memory_node(conn: &Connection, new: NewMemoryNode) -> Result<MemoryNode> {
    non_empty(&new.kind, "a memory node's kind")?;
    let id = new.id.unwrap_or_default();
    if node_exists(conn, id)? {
        return Err(Error::Conflict(format!(
            "a memory node with id {id} already exists"
        )));
    }
    if new.text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::Invalid(format!(
            "a memory node's text is at most {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let meta = to_json(&new.meta, "the node's metadata")?;
    let embedding: Option<Vec<u8>> = new
        .embedding
        .as_ref()
        .map(|v| v.iter().flat_map(|f| f.to_le_bytes()).collect());
    let at = now();
    conn.prepare_cached(
        "INSERT INTO memory_nodes (id, kind, text, embedding, meta, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(map)?
    .execute(params![
        id.to_string(),
        new.kind,
        new.text,
        embedding,
        meta,
        at.timestamp_micros()
    ])
    .map_err(map)?;
    Ok(MemoryNode {
        id,
        kind: new.kind,
        text: new.text,
        embedding: new.embedding,
        meta: new.meta,
        created_at: at,
    })
}

fn ref_parts(r: NodeRef) -> (&'static str, String) {
    match r {
        NodeRef::Node(id) => ("node", id.to_string()),
        NodeRef::Object(id) => ("object", id.to_string()),
    }
}

fn require_ref(conn: &Connection, r: NodeRef) -> Result<()> {
    match r {
        NodeRef::Node(id) if !node_exists(conn, id)? => Err(Error::not_found("memory node", id)),
        NodeRef::Object(id) if !object_exists(conn, id)? => Err(Error::not_found("object", id)),
        _ => Ok(()),
    }
}

/// Adds a link (or, for an existing link of the same ends and kind, sets its weight).
pub(crate) fn add_link(conn: &Connection, link: ContextLink) -> Result<()> {
    non_empty(&link.kind, "a link's kind")?;
    if !link.weight.is_finite() {
        return Err(Error::Invalid(format!(
            "a link's weight must be a finite number (got {})",
            link.weight
        )));
    }
    require_ref(conn, link.from)?;
    require_ref(conn, link.to)?;
    let (from_type, from_id) = ref_parts(link.from);
    let (to_type, to_id) = ref_parts(link.to);
    conn.prepare_cached(
        "INSERT INTO context_links (from_type, from_id, to_type, to_id, kind, weight)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (from_type, from_id, to_type, to_id, kind) DO UPDATE SET weight = excluded.weight",
    )
    .map_err(map)?
    .execute(params![from_type, from_id, to_type, to_id, link.kind, link.weight])
    .map_err(map)?;
    Ok(())
}

/// Breadth-first walk of the memory graph from `from`, both directions, through nodes and
/// objects alike; returns memory nodes only, each once at its smallest depth, nearest first
/// (and, at one depth, along the heaviest links first).
pub(crate) fn neighbours(
    conn: &Connection,
    from: NodeRef,
    depth: u32,
    limit: u32,
) -> Result<Vec<Neighbour>> {
    require_ref(conn, from)?;
    let limit = limit as usize;
    let mut found: Vec<(String, u32)> = Vec::new();
    if depth == 0 || limit == 0 {
        return Ok(Vec::new());
    }
    let start = ref_parts(from);
    let mut visited: HashSet<(String, String)> = HashSet::new();
    visited.insert((start.0.to_string(), start.1.clone()));
    let mut frontier = vec![(start.0.to_string(), start.1)];
    let mut stmt = conn
        .prepare_cached(
            "SELECT to_type, to_id, weight FROM context_links WHERE from_type = ?1 AND from_id = ?2
             UNION ALL
             SELECT from_type, from_id, weight FROM context_links WHERE to_type = ?1 AND to_id = ?2
             ORDER BY 3 DESC",
        )
        .map_err(map)?;
    'walk: for level in 1..=depth {
        let mut next = Vec::new();
        for (kind, id) in &frontier {
            let mut rows = stmt.query(params![kind, id]).map_err(map)?;
            while let Some(row) = rows.next().map_err(map)? {
                let kind: String = row.get(0).map_err(map)?;
                let id: String = row.get(1).map_err(map)?;
                if visited.insert((kind.clone(), id.clone())) {
                    if kind == "node" {
                        found.push((id.clone(), level));
                        if found.len() >= limit {
                            break 'walk;
                        }
                    }
                    next.push((kind, id));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    let sql = format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id = ?1");
    let mut node_stmt = conn.prepare_cached(&sql).map_err(map)?;
    let mut out = Vec::with_capacity(found.len());
    for (id, level) in found {
        if let Some(raw) = node_stmt
            .query_row([&id], node_from_row)
            .optional()
            .map_err(map)?
        {
            out.push(Neighbour {
                node: build_node(raw)?,
                depth: level,
            });
        }
    }
    Ok(out)
}

/// Turns what a user typed into a safe FTS5 query: each whitespace-separated word becomes a
/// quoted phrase (so no character of it is FTS5 syntax), words of three or more characters
/// also match as prefixes, and the words are OR-ed so that bm25 ranks by how many match.
/// `None` when nothing searchable is left.
pub(crate) fn fts_query(query: &str) -> Option<String> {
    let quote = |word: &str| format!("\"{}\"", word.replace('"', "\"\""));
    let terms: Vec<String> = query
        .split(char::is_whitespace)
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .take(MAX_QUERY_TERMS)
        .map(|word| {
            let alphanumeric = word.chars().filter(|c| c.is_alphanumeric()).count();
            if alphanumeric < 3 {
                quote(&word)
            } else if alphanumeric == word.chars().count() && alphanumeric > MAX_INDEXED_PREFIX {
                // A plain word longer than the longest prefix index: the word itself
                // (so it ranks first) or anything starting with its indexed prefix,
                // which the index answers at once instead of merging every longer term.
                let prefix: String = word.chars().take(MAX_INDEXED_PREFIX).collect();
                format!("{} OR {}*", quote(&word), quote(&prefix))
            } else {
                quote(&word) + "*"
            }
        })
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" OR "))
    }
}

/// How many of the newest matching memory nodes a search ranks.
pub(crate) const SEARCH_CANDIDATES: u32 = 1000;

/// Ranked full-text search over memory nodes (bm25; a higher score is better), among the
/// newest [`SEARCH_CANDIDATES`] matches.
pub(crate) fn search_memory(conn: &Connection, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
    let Some(fts) = fts_query(query) else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Only the newest SEARCH_CANDIDATES matches are ranked: ranking every match would
    // make a search cost grow with the whole memory, since a few common words match a
    // large share of it. FTS5 walks its matches newest first and stops there.
    let mut stmt = conn
        .prepare_cached(
            "SELECT n.id, n.kind, n.text, n.embedding, n.meta, n.created_us, c.rank
             FROM (SELECT rowid, bm25(memory_fts) AS rank FROM memory_fts
                   WHERE memory_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?3) c
             JOIN memory_nodes n ON n.seq = c.rowid
             ORDER BY c.rank, n.seq
             LIMIT ?2",
        )
        .map_err(map)?;
    let rows = stmt
        .query_map(params![fts, limit, SEARCH_CANDIDATES], |row| {
            Ok((node_from_row(row)?, row.get::<_, f64>(6)?))
        })
        .map_err(map)?;
    rows.map(|r| {
        let (raw, rank) = r.map_err(map)?;
        Ok(SearchHit {
            node: build_node(raw)?,
            score: -rank,
        })
    })
    .collect()
}

// ---------------------------------------------------------------------------------------
// Audit trail

/// Appends an audit event (its object need not exist: the trail outlives what it records).
pub(crate) fn append_event(conn: &Connection, new: NewAuditEvent) -> Result<AuditEvent> {
    non_empty(&new.kind, "an event's kind")?;
    let payload = to_json(&new.payload, "the event's payload")?;
    let id = EventId::new();
    let at = now();
    conn.prepare_cached(
        "INSERT INTO audit_events (id, at_us, kind, object_id, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(map)?
    .execute(params![
        id.to_string(),
        at.timestamp_micros(),
        new.kind,
        new.object_id.map(|o| o.to_string()),
        payload
    ])
    .map_err(map)?;
    Ok(AuditEvent {
        id,
        at,
        kind: new.kind,
        object_id: new.object_id,
        payload: new.payload,
    })
}

/// Reads a page of the audit trail, oldest first.
pub(crate) fn query_audit(conn: &Connection, query: &AuditQuery) -> Result<AuditPage> {
    let mut sql = String::from(
        "SELECT seq, id, at_us, kind, object_id, payload FROM audit_events WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(object) = query.object_id {
        args.push(object.to_string().into());
        sql.push_str(&format!(" AND object_id = ?{}", args.len()));
    }
    if let Some(kind) = &query.kind {
        if let Some(prefix) = kind.strip_suffix('*') {
            if !prefix.is_empty() {
                // A range the kind index answers, rather than a test of every event:
                // [prefix, prefix + U+10FFFF) holds exactly the kinds that start with
                // the prefix, but for a kind whose next character is U+10FFFF itself
                // (a permanent noncharacter, which no kind has a use for).
                args.push(prefix.to_string().into());
                args.push(format!("{prefix}{}", char::MAX).into());
                sql.push_str(&format!(
                    " AND kind >= ?{} AND kind < ?{}",
                    args.len() - 1,
                    args.len()
                ));
            }
        } else {
            args.push(kind.clone().into());
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
    }
    if let Some(since) = query.since {
        args.push(micros_ceil(since).into());
        sql.push_str(&format!(" AND at_us >= ?{}", args.len()));
    }
    if let Some(until) = query.until {
        args.push(micros_ceil(until).into());
        sql.push_str(&format!(" AND at_us < ?{}", args.len()));
    }
    if let Some(after) = query.after {
        let seq: i64 = conn
            .prepare_cached("SELECT seq FROM audit_events WHERE id = ?1")
            .map_err(map)?
            .query_row([after.to_string()], |row| row.get(0))
            .optional()
            .map_err(map)?
            .ok_or_else(|| Error::not_found("audit event", after))?;
        args.push(seq.into());
        sql.push_str(&format!(" AND seq > ?{}", args.len()));
    }
    let size = query.page_size();
    args.push((i64::from(size) + 1).into());
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len()));

    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, String>(5)?,
            ))
        })
        .map_err(map)?;
    let mut events = Vec::new();
    for row in rows {
        let (id, at, kind, object_id, payload) = row.map_err(map)?;
        events.push(AuditEvent {
            id: parse_id(&id)?,
            at: from_micros(at),
            kind,
            object_id: object_id.as_deref().map(parse_id).transpose()?,
            payload: from_json(&payload)?,
        });
    }
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

type RawFacet = (String, String, String, String, String, i64);

fn build_facet(raw: RawFacet) -> Result<Facet> {
    let (name, persona, base_model, adapter_path, metrics, created) = raw;
    Ok(Facet {
        name,
        persona,
        base_model,
        adapter_path,
        metrics: from_json(&metrics)?,
        created_at: from_micros(created),
    })
}

/// Registers a facet, replacing one of the same name.
pub(crate) fn put_facet(conn: &Connection, mut facet: Facet) -> Result<Facet> {
    non_empty(&facet.name, "a facet's name")?;
    let metrics = to_json(&facet.metrics, "the facet's metrics")?;
    facet.created_at = from_micros(facet.created_at.timestamp_micros());
    conn.prepare_cached(
        "INSERT INTO facets (name, persona, base_model, adapter_path, metrics, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET persona = excluded.persona,
             base_model = excluded.base_model, adapter_path = excluded.adapter_path,
             metrics = excluded.metrics, created_us = excluded.created_us",
    )
    .map_err(map)?
    .execute(params![
        facet.name,
        facet.persona,
        facet.base_model,
        facet.adapter_path,
        metrics,
        facet.created_at.timestamp_micros()
    ])
    .map_err(map)?;
    Ok(facet)
}

const FACET_SELECT: &str =
    "SELECT name, persona, base_model, adapter_path, metrics, created_us FROM facets";

fn facet_from_row(row: &Row<'_>) -> rusqlite::Result<RawFacet> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

/// Reads one facet.
pub(crate) fn get_facet(conn: &Connection, name: &str) -> Result<Facet> {
    let sql = format!("{FACET_SELECT} WHERE name = ?1");
    conn.prepare_cached(&sql)
        .map_err(map)?
        .query_row([name], facet_from_row)
        .optional()
        .map_err(map)?
        .map(build_facet)
        .transpose()?
        .ok_or_else(|| Error::not_found("facet", name))
}

/// Lists every facet by name.
pub(crate) fn list_facets(conn: &Connection) -> Result<Vec<Facet>> {
    let sql = format!("{FACET_SELECT} ORDER BY name");
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt.query_map([], facet_from_row).map_err(map)?;
    rows.map(|r| r.map_err(map).and_then(build_facet)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_every_word() {
        assert_eq!(fts_query(""), None);
        assert_eq!(fts_query("  *** () \" "), None);
        assert_eq!(
            fts_query("fib AND \"x\" NEAR(a b)"),
            Some("\"fib\"* OR \"AND\"* OR \"\"\"x\"\"\" OR \"NEAR(a\"* OR \"b)\"".into())
        );
        assert_eq!(
            fts_query("fibonacci sequence"),
            Some("\"fibonacci\" OR \"fibona\"* OR \"sequence\" OR \"sequen\"*".into()),
            "long plain words are searched as themselves or by their indexed prefix"
        );
    }
}
