//! `SqliteStore` against the whole conformance suite (in memory and on a WAL file), plus
//! what only a file store has: several processes, reopening, schema versions.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aura_store::{
    conformance, AuditQuery, DynStore, Error, NewAuditEvent, NewObject, ObjectId, SqliteStore,
    Store, StoreExt,
};
use serde_json::{json, Map, Value};

fn slots(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    conformance::run_all(|| async {
        let store: DynStore = Arc::new(SqliteStore::open_in_memory().await.expect("open"));
        store
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_wal_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let mut n = 0;
    conformance::run_all(|| {
        n += 1;
        let path = root.join(format!("store-{n}.db"));
        async move {
            let store: DynStore = Arc::new(SqliteStore::open(&path).await.expect("open"));
            store
        }
    })
    .await;
}

/// The same on a store that runs every call on the blocking pool (`spawn_blocking`), where
/// a call's future can be dropped while SQLite is still working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_spawn_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let mut n = 0;
    conformance::run_all(|| {
        n += 1;
        let path = root.join(format!("store-{n}.db"));
        async move {
            let store = SqliteStore::builder(&path)
                .spawn_blocking(true)
                .build()
                .await
                .expect("open");
            let store: DynStore = Arc::new(store);
            store
        }
    })
    .await;
}

/// Every check also holds on one shared store, and on a current-thread runtime.
#[tokio::test(flavor = "current_thread")]
async fn conformance_on_one_shared_store_current_thread() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    conformance::run_all_on(&store).await;
}

#[tokio::test]
async fn a_file_store_runs_in_wal_mode_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("aura.db");
    let id = {
        let store = SqliteStore::open(&path).await.expect("open");
        assert!(store.capabilities().multi_process);
        let object = store
            .create_object(NewObject::named("kept").with_slots(slots(json!({"n": 1}))))
            .await
            .expect("create");
        object.id
    };
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, SqliteStore::SCHEMA_VERSION);
    drop(conn);

    let store = SqliteStore::open(&path).await.expect("reopen");
    let object = store.get_object(id).await.expect("still there");
    assert_eq!(object.slots["n"], json!(1));
}

#[tokio::test]
async fn a_newer_schema_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).await.expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", SqliteStore::SCHEMA_VERSION + 1)
        .expect("bump version");
    drop(conn);
    match SqliteStore::open(&path).await {
        Err(Error::Unavailable(message)) => {
            assert!(message.contains("newer"), "the message says why: {message}");
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute_batch("CREATE TABLE t(x); PRAGMA user_version = 1;")
        .expect("foreign schema");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path).await,
        Err(Error::Unavailable(_))
    ));

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).expect("junk");
    assert!(
        SqliteStore::open(&junk).await.is_err(),
        "a non-database file is refused"
    );
}

#[tokio::test]
async fn a_missing_directory_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no/such/dir/aura.db");
    assert!(matches!(
        SqliteStore::open(&path).await,
        Err(Error::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_another_then_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("busy.db");
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_millis(200))
        .build()
        .await
        .expect("open");
    // Another connection (as another process would) takes the write lock and keeps it.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let blocked = store.create_object(NewObject::named("blocked")).await;
    assert!(
        matches!(blocked, Err(Error::Timeout(_))),
        "got {:?}",
        blocked.map(|_| ())
    );
    conn.execute_batch("ROLLBACK").expect("unlock");
    store
        .create_object(NewObject::named("unblocked"))
        .await
        .expect("writes go through once the lock is free");

    // In-process: a second transaction waits for the first, then times out.
    let held = store.begin().await.expect("begin");
    assert!(matches!(store.begin().await, Err(Error::Timeout(_))));
    drop(held);
    let tx = store.begin().await.expect("begin after release");
    tx.commit().await.expect("commit");
}

/// A full disk, played by the store's size cap: the write that does not fit is a clear
/// `Unavailable`, every write acknowledged before it is intact, the file passes SQLite's
/// integrity check, and writes resume once deletes free space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_the_write_loses_nothing_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("full.db");
    let store = SqliteStore::builder(&path)
        .max_bytes(256 << 10)
        .build()
        .await
        .expect("open");
    let filler = "x".repeat(2000);
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let object = NewObject::named(format!("o{}", acknowledged.len()))
            .with_slots(slots(json!({ "filler": filler })));
        match store.create_object(object).await {
            Ok(o) => acknowledged.push(o),
            Err(e) => break e,
        }
        assert!(acknowledged.len() < 1000, "the cap never bit");
    };
    assert!(
        matches!(&refusal, Error::Unavailable(m) if m.contains("full")),
        "{refusal:?}"
    );
    assert!(acknowledged.len() > 10, "{} fitted", acknowledged.len());
    // A transaction that cannot fit commits nothing of itself either.
    let mut tx = store.begin().await.expect("begin");
    let mut failed = false;
    for i in 0..50 {
        let object =
            NewObject::named(format!("tx{i}")).with_slots(slots(json!({ "filler": filler })));
        if tx.create_object(object).await.is_err() {
            failed = true;
            break;
        }
    }
    if failed {
        tx.rollback().await.expect("rollback");
    } else {
        assert!(tx.commit().await.is_err(), "50 more objects fitted");
    }
    assert!(store.find_object("tx0").await.expect("find").is_none());
    for o in &acknowledged {
        let read = store
            .get_object(o.id)
            .await
            .expect("acknowledged write kept");
        assert_eq!(read.slots["filler"], json!(filler));
    }
    let check = rusqlite::Connection::open(&path).expect("raw open");
    let verdict: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok");
    // Freed space is reused: after deletes, writes go through again.
    for o in acknowledged.iter().take(10) {
        store.delete_object(o.id).await.expect("delete");
    }
    store
        .create_object(NewObject::named("after").with_slots(slots(json!({ "filler": filler }))))
        .await
        .expect("writes resume once space is freed");
}

/// Set in the child that [`a_read_only_store_is_refused_at_startup_with_the_reason`]
/// starts inside a read-only mount: the directory holding the store.
const READ_ONLY_DIR: &str = "AURA_TEST_READ_ONLY_DIR";

/// A store on a read-only mount is refused when it opens, with the reason, rather than
/// at its first write. As root, file modes stop no write, so the test needs a real
/// read-only mount: it runs itself again in a private mount namespace (util-linux's
/// `unshare`) with the store's directory bound read-only over itself.
#[tokio::test]
async fn a_read_only_store_is_refused_at_startup_with_the_reason() {
    if let Ok(dir) = std::env::var(READ_ONLY_DIR) {
        let dir = Path::new(&dir);
        let existing = SqliteStore::open(dir.join("aura.db")).await.map(|_| ());
        assert!(
            matches!(&existing, Err(Error::Unavailable(m)) if m.contains("can only be read")),
            "{existing:?}"
        );
        let missing = SqliteStore::open(dir.join("new.db")).await.map(|_| ());
        assert!(
            matches!(&missing, Err(Error::Unavailable(m)) if m.contains("read-only file system")),
            "{missing:?}"
        );
        return;
    }
    if !is_root() || which("unshare").is_none() {
        eprintln!("skipped: a read-only mount needs root and util-linux's unshare");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("aura.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        store
            .create_object(NewObject::named("kept"))
            .await
            .expect("create");
    }
    let before = std::fs::read(&path).expect("read the file");
    let name = format!(
        "{}::a_read_only_store_is_refused_at_startup_with_the_reason",
        module_path!().split_once("::").map_or("", |(_, m)| m)
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$0" "$0" && exec "$1" --exact "$2" --nocapture"#)
        .arg(dir.path())
        .arg(std::env::current_exe().expect("the test binary"))
        .arg(&name)
        .env(READ_ONLY_DIR, dir.path())
        .output()
        .expect("run unshare");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("1 passed"), "the child ran no test: {log}");
    assert_eq!(std::fs::read(&path).expect("read again"), before);
    assert!(!dir.path().join("new.db").exists());
}

/// Whether this process runs as root (uid 0), from /proc: no libc binding needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// `program` on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn a_failed_operation_keeps_the_transaction_usable() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let taken = store
        .create_object(NewObject::named("taken"))
        .await
        .expect("create");
    let mut tx = store.begin().await.expect("begin");
    let first = tx
        .create_object(NewObject::named("first"))
        .await
        .expect("create");
    assert!(matches!(
        tx.create_object(NewObject::named("taken")).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        tx.create_object(NewObject::named("bad").with_parents([ObjectId::new()]))
            .await,
        Err(Error::NotFound { .. })
    ));
    tx.commit().await.expect("commit");
    assert!(store.get_object(first.id).await.is_ok());
    assert!(store.find_object("bad").await.expect("find").is_none());
    assert!(store.get_object(taken.id).await.is_ok());
}

// ---------------------------------------------------------------------------------------
// Several processes on one file

const CHILD_ENV: &str = "AURA_STORE_TEST_CHILD_DB";
const OPS_PER_PROCESS: usize = 300;

/// One process's share of the work: objects, events, and increments of a shared counter.
async fn write_share(path: &Path, role: &str) {
    let store = SqliteStore::open(path)
        .await
        .expect("open in a writer process");
    let counter = store
        .find_object("shared-counter")
        .await
        .expect("find")
        .expect("the parent made the counter");
    for i in 0..OPS_PER_PROCESS {
        let mut tx = store.begin().await.expect("begin");
        let object = tx
            .create_object(NewObject::named(format!("{role}-{i}")))
            .await
            .expect("create");
        tx.append_event(NewAuditEvent::new(
            "mp.write",
            Some(counter.id),
            json!({"role": role, "i": i, "object": object.id}),
        ))
        .await
        .expect("event");
        tx.commit().await.expect("commit");
        loop {
            let current = store.get_object(counter.id).await.expect("get counter");
            let n = current.slots["n"].as_u64().unwrap_or(0);
            match store
                .update_slots(counter.id, current.rev, slots(json!({"n": n + 1})))
                .await
            {
                Ok(_) => break,
                Err(Error::Conflict(_)) => continue,
                Err(e) => panic!("{role}: increment failed: {e}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_write_one_file() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let path = PathBuf::from(path);
        let store = SqliteStore::open(&path).await.expect("child open");
        store
            .create_object(NewObject::named("child-ready"))
            .await
            .expect("signal readiness");
        write_share(&path, "child").await;
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let counter = store
        .create_object(NewObject::named("shared-counter").with_slots(slots(json!({"n": 0}))))
        .await
        .expect("counter");

    let exe = std::env::current_exe().expect("test binary");
    // The test's name in this binary: its module path without the crate's.
    let test_name = concat!(module_path!(), "::two_processes_write_one_file");
    let test_name = test_name
        .split_once("::")
        .map_or(test_name, |(_, rest)| rest);
    let mut child = tokio::process::Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .spawn()
        .expect("spawn the child process");
    // Start writing once the child is running, so that both really write at once.
    let started = std::time::Instant::now();
    while store
        .find_object("child-ready")
        .await
        .expect("find")
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child process never started writing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    write_share(&path, "parent").await;
    let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
        .await
        .expect("the child finishes")
        .expect("wait");
    assert!(status.success(), "the child process failed: {status}");

    // Every write of both processes landed.
    for role in ["parent", "child"] {
        for i in 0..OPS_PER_PROCESS {
            assert!(
                store
                    .find_object(&format!("{role}-{i}"))
                    .await
                    .expect("find")
                    .is_some(),
                "{role}-{i} is missing"
            );
        }
    }
    let end = store.get_object(counter.id).await.expect("counter");
    assert_eq!(
        end.slots["n"],
        json!(2 * OPS_PER_PROCESS),
        "no increment lost"
    );
    let mut events = 0;
    let mut after = None;
    let mut last_role: Option<String> = None;
    let mut switches = 0;
    loop {
        let page = store
            .query_audit(&AuditQuery {
                object_id: Some(counter.id),
                after,
                limit: Some(100),
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        for event in &page.events {
            let role = event.payload["role"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if last_role.as_deref() != Some(role.as_str()) {
                switches += 1;
            }
            last_role = Some(role);
        }
        events += page.events.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(events, 2 * OPS_PER_PROCESS);
    eprintln!("the two processes' commits interleaved {switches} times");
    drop(store);

    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
}
