//! The kill loop's checker (`kill_loop`, issue #21): what a store must hold after its
//! server was killed, read from the SQLite file directly, as a second process would.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// A write the gateway acknowledged.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // each variant is what its name says
pub enum Ack {
    Object {
        name: String,
    },
    Method {
        object: String,
        selector: String,
        version: u64,
    },
    Turn {
        object: String,
        text: String,
    },
    Slot {
        object: String,
        n: i64,
    },
}

/// What the checker remembers between kills: each object's revision and `n`.
#[derive(Default)]
pub struct Seen {
    /// By object name: its revision and its `n` slot at the last check.
    pub revs: HashMap<String, (i64, i64)>,
}

/// Checks the store after a kill; returns the violations found (an error only when
/// the file cannot be read at all). Each table is read once, then checked in memory, so
/// a check stays fast as the acknowledged writes pile up.
pub fn check(path: &Path, acks: &[Ack], seen: &mut Seen) -> rusqlite::Result<Vec<String>> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let mut violations = Vec::new();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        violations.push(format!("integrity_check: {integrity}"));
    }

    let methods: Vec<(String, String, i64, String)> = db
        .prepare("SELECT object_id, selector, version, provenance FROM methods")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // The events that write versions: (id, kind, object, selector, version).
    type Written = (String, String, String, Option<String>, Option<i64>);
    let events: Vec<Written> = db
        .prepare(
            "SELECT id, kind, object_id, json_extract(payload, '$.selector'), \
             json_extract(payload, '$.version') FROM audit_events \
             WHERE kind IN ('learn.committed', 'method.defined', 'method.rolled_back')",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let by_version: HashSet<(&str, &str, &str, i64)> = events
        .iter()
        .filter_map(|(_, kind, object, selector, version)| {
            Some((
                kind.as_str(),
                object.as_str(),
                selector.as_deref()?,
                (*version)?,
            ))
        })
        .collect();
    let learned: HashMap<&str, (&str, Option<&str>)> = events
        .iter()
        .filter(|(_, kind, ..)| kind == "learn.committed")
        .map(|(id, _, object, selector, _)| (id.as_str(), (object.as_str(), selector.as_deref())))
        .collect();

    // Every version has the event that wrote it.
    let mut learned_versions = HashSet::new();
    let mut stored = HashSet::new();
    for (object, selector, version, provenance) in &methods {
        stored.insert((object.as_str(), selector.as_str(), *version));
        let provenance: Value = serde_json::from_str(provenance).unwrap_or(Value::Null);
        let found = match provenance["kind"].as_str() {
            Some("manual") => by_version.contains(&("method.defined", object, selector, *version)),
            Some("rollback") => {
                by_version.contains(&("method.rolled_back", object, selector, *version))
            }
            Some("learned") => provenance["event"].as_str().is_some_and(|id| {
                learned_versions.insert(id.to_owned());
                learned.get(id) == Some(&(object.as_str(), Some(selector.as_str())))
            }),
            _ => false,
        };
        if !found {
            violations.push(format!(
                "method {object}.{selector} v{version} ({provenance}) has no event that wrote it"
            ));
        }
    }
    // Every event that names a version names a stored one.
    for (id, kind, object, selector, version) in &events {
        let named = if kind == "learn.committed" {
            learned_versions.contains(id)
        } else {
            selector
                .as_deref()
                .zip(*version)
                .is_some_and(|(selector, version)| {
                    stored.contains(&(object.as_str(), selector, version))
                })
        };
        if !named {
            violations.push(format!(
                "{kind} event {id} names a version that is not stored"
            ));
        }
    }

    // Revisions and the bumped slot never go backwards.
    let objects: HashMap<String, (String, i64, i64)> = db
        .prepare("SELECT name, id, rev, json_extract(slots, '$.n') FROM objects")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                ),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (name, (rev, n)) in &seen.revs {
        match objects.get(name) {
            Some((_, r, m)) if r >= rev && m >= n => {}
            Some((_, r, m)) => violations.push(format!(
                "{name} went backwards: rev {rev} → {r}, n {n} → {m}"
            )),
            None => violations.push(format!("{name} disappeared")),
        }
    }
    seen.revs = objects
        .iter()
        .map(|(name, (_, rev, n))| (name.clone(), (*rev, *n)))
        .collect();

    // Every acknowledged write is there.
    let turns: HashSet<(String, String)> = db
        .prepare(
            "SELECT l.to_id, m.text FROM memory_nodes m JOIN context_links l \
             ON l.from_type = 'node' AND l.from_id = m.id AND l.to_type = 'object' \
             AND l.kind = 'said_to' WHERE m.kind = 'message'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let id_of = |name: &str| objects.get(name).map(|(id, ..)| id.as_str());
    for ack in acks {
        let present = match ack {
            Ack::Object { name } => objects.contains_key(name),
            Ack::Method {
                object,
                selector,
                version,
            } => id_of(object).is_some_and(|id| {
                i64::try_from(*version).is_ok_and(|v| stored.contains(&(id, selector.as_str(), v)))
            }),
            Ack::Turn { object, text } => {
                id_of(object).is_some_and(|id| turns.contains(&(id.to_owned(), text.clone())))
            }
            Ack::Slot { object, n } => objects.get(object).is_some_and(|(_, _, m)| m >= n),
        };
        if !present {
            violations.push(format!("acknowledged but missing: {ack:?}"));
        }
    }
    Ok(violations)
}
