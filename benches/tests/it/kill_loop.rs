//! The kill loop's short tier, and its checker shown to find what it looks for.

use std::process::Command;

use aura_benches::kill_check::{check, Ack, Seen};
use aura_store::{NewMethod, NewObject, Provenance, SqliteStore, StoreExt};
use serde_json::json;

/// CI's tier of the documented 100-kill run: the real gateway killed five times under
/// concurrent writes, the store checked after each kill.
#[test]
fn a_short_kill_loop_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_kill_loop"))
        .args([
            "--kills", "5", "--min-ms", "300", "--max-ms", "1200", "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run kill_loop");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 kills") && stdout.contains("; 0 violations"),
        "{stdout}"
    );
    // Writes were acknowledged between the kills, so there was something to lose.
    let acked: usize = stdout
        .split("; ")
        .find(|part| part.contains("acknowledged writes"))
        .and_then(|part| part.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(acked > 10, "{stdout}");
}

/// A store with every kind of violation planted: the checker names each one.
#[tokio::test]
async fn the_checker_finds_planted_violations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).await.expect("store");
    let object = store
        .create_object(
            NewObject::named("real")
                .with_slots(json!({ "n": 2 }).as_object().cloned().unwrap_or_default()),
        )
        .await
        .expect("object");
    // A version written without the event that should come with it.
    store
        .put_method(NewMethod {
            object_id: object.id,
            selector: "orphan".parse().expect("selector"),
            source: "def orphan(self):\n    return 1\n".into(),
            tests: String::new(),
            doc: String::new(),
            provenance: Provenance::Manual,
            calls: Some(vec![]),
        })
        .await
        .expect("method");
    drop(store);

    let acks = [
        Ack::Object {
            name: "ghost".into(),
        },
        Ack::Slot {
            object: "real".into(),
            n: 5,
        },
        Ack::Method {
            object: "real".into(),
            selector: "orphan".into(),
            version: 2,
        },
        Ack::Turn {
            object: "real".into(),
            text: "calculate fibonacci for 3".into(),
        },
    ];
    let mut seen = Seen::default();
    seen.revs.insert("real".into(), (9, 2));
    let found = check(&path, &acks, &mut seen).expect("check");
    let text = found.join("\n");
    for expected in [
        ".orphan v1 ({\"kind\":\"manual\"})",
        "no event that wrote it",
        "went backwards: rev 9",
        "missing: Object { name: \"ghost\" }",
        "missing: Slot",
        "missing: Method",
        "missing: Turn",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(found.len(), 6, "{text}");
    // With nothing acknowledged and nothing seen before, only the orphan is left, and
    // the revisions read are remembered for the next check.
    let mut fresh = Seen::default();
    let left = check(&path, &[], &mut fresh).expect("check");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("orphan v1"), "{left:?}");
    assert_eq!(fresh.revs.get("real"), Some(&(1, 2)));
}
