//! The versioned schema: an ordered list of migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use super::error::map;
use crate::{Error, Result};

/// `PRAGMA application_id` of an AURA store ("AURA" in ASCII).
pub(crate) const APPLICATION_ID: i32 = 0x4155_5241;

/// The migrations, in order: migration `i` brings the schema from version `i` to `i + 1`.
///
/// Never edit a migration that has shipped; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: objects, their parents and their methods.
    r#"
    CREATE TABLE objects (
        seq        INTEGER PRIMARY KEY,
        id         TEXT    NOT NULL UNIQUE,
        name       TEXT    NOT NULL UNIQUE,
        parents    TEXT    NOT NULL DEFAULT '[]',
        slots      TEXT    NOT NULL DEFAULT '{}',
        rev        INTEGER NOT NULL CHECK (rev >= 1),
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL
    );
    CREATE TABLE object_parents (
        child    TEXT    NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        parent   TEXT    NOT NULL REFERENCES objects(id),
        PRIMARY KEY (child, position),
        UNIQUE (child, parent)
    ) WITHOUT ROWID;
    CREATE INDEX object_parents_by_parent ON object_parents(parent);
    CREATE TABLE methods (
        object_id  TEXT    NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
        selector   TEXT    NOT NULL,
        version    INTEGER NOT NULL CHECK (version >= 1),
        source     TEXT    NOT NULL,
        tests      TEXT    NOT NULL,
        doc        TEXT    NOT NULL,
        provenance TEXT    NOT NULL,
        created_us INTEGER NOT NULL,
        PRIMARY KEY (object_id, selector, version)
    ) WITHOUT ROWID;
    "#,
    // 2: the memory graph, with its full-text index.
    r#"
    CREATE TABLE memory_nodes (
        seq        INTEGER PRIMARY KEY,
        id         TEXT    NOT NULL UNIQUE,
        kind       TEXT    NOT NULL,
        text       TEXT    NOT NULL,
        embedding  BLOB,
        meta       TEXT    NOT NULL DEFAULT 'null',
        created_us INTEGER NOT NULL
    );
    CREATE VIRTUAL TABLE memory_fts USING fts5(
        text,
        content = 'memory_nodes',
        content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memory_nodes_fts_insert AFTER INSERT ON memory_nodes BEGIN
        INSERT INTO memory_fts(rowid, text) VALUES (new.seq, new.text);
    END;
    CREATE TRIGGER memory_nodes_fts_delete AFTER DELETE ON memory_nodes BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    END;
    CREATE TABLE context_links (
        seq       INTEGER PRIMARY KEY,
        from_type TEXT    NOT NULL CHECK (from_type IN ('node', 'object')),
        from_id   TEXT    NOT NULL,
        to_type   TEXT    NOT NULL CHECK (to_type IN ('node', 'object')),
        to_id     TEXT    NOT NULL,
        kind      TEXT    NOT NULL,
        weight    REAL    NOT NULL,
        UNIQUE (from_type, from_id, to_type, to_id, kind)
    );
    CREATE INDEX context_links_by_to ON context_links(to_type, to_id);
    "#,
    // 3: the audit trail and the facets registry.
    r#"
    CREATE TABLE audit_events (
        seq       INTEGER PRIMARY KEY,
        id        TEXT    NOT NULL UNIQUE,
        at_us     INTEGER NOT NULL,
        kind      TEXT    NOT NULL,
        object_id TEXT,
        payload   TEXT    NOT NULL
    );
    CREATE INDEX audit_events_by_object ON audit_events(object_id, seq);
    CREATE INDEX audit_events_by_kind ON audit_events(kind, seq);
    CREATE INDEX audit_events_by_time ON audit_events(at_us, seq);
    CREATE TABLE facets (
        name         TEXT    PRIMARY KEY,
        persona      TEXT    NOT NULL,
        base_model   TEXT    NOT NULL,
        adapter_path TEXT    NOT NULL,
        metrics      TEXT    NOT NULL,
        created_us   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 4: each method version's call graph (a JSON array of selectors); NULL for the
    // versions stored before it was recorded.
    r#"
    ALTER TABLE methods ADD COLUMN calls TEXT;
    "#,
    // 5: the full-text index gains prefix indexes for 2 to 6 characters, so a prefix
    // query ("fibona"*) reads one doclist instead of merging every matching term's.
    r#"
    DROP TRIGGER memory_nodes_fts_insert;
    DROP TRIGGER memory_nodes_fts_delete;
    DROP TABLE memory_fts;
    CREATE VIRTUAL TABLE memory_fts USING fts5(
        text,
        content = 'memory_nodes',
        content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3 4 5 6'
    );
    INSERT INTO memory_fts(memory_fts) VALUES ('rebuild');
    CREATE TRIGGER memory_nodes_fts_insert AFTER INSERT ON memory_nodes BEGIN
        INSERT INTO memory_fts(rowid, text) VALUES (new.seq, new.text);
    END;
    CREATE TRIGGER memory_nodes_fts_delete AFTER DELETE ON memory_nodes BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    END;
    "#,
];

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads the file's schema version.
pub(crate) fn current_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(map)?;
    u32::try_from(v).map_err(|_| {
        Error::Unavailable(format!(
            "the database reports a negative schema version ({v}); it is not an AURA store"
        ))
    })
}

/// Brings the schema up to [`SCHEMA_VERSION`] with the first `target` migrations, in one
/// write transaction; refuses a file written by a newer AURA or by another application.
pub(crate) fn migrate_to(conn: &Connection, target: u32) -> Result<u32> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(map)?;
    let result = (|| {
        let version = current_version(conn)?;
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(map)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Unavailable(format!(
                "the database has schema version {version}, newer than the {SCHEMA_VERSION} this \
                 build of aura-store understands; open it with a newer AURA"
            )));
        }
        if version > 0 && app_id != APPLICATION_ID {
            return Err(Error::Unavailable(format!(
                "the database has schema version {version} but is not an AURA store \
                 (application_id {app_id:#x})"
            )));
        }
        if version == 0 {
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(map)?;
        }
        for (index, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .take(target as usize)
            .skip(version as usize)
        {
            conn.execute_batch(sql).map_err(map)?;
            conn.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(map)?;
            tracing::info!(target: "Store", to = index + 1, "applied schema migration");
        }
        current_version(conn)
    })();
    match result {
        Ok(v) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(map(e))
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
