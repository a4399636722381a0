//! The forge's curriculum is data with a manifest: it must match its hash, be large
//! enough, score something in every task, and stay disjoint from the everyday suite it
//! is measured against.

use std::collections::HashSet;

use aura_benches::suite;
use sha2::{Digest, Sha256};

fn data(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("data")
    .join(name)
}

#[test]
fn the_curriculum_matches_its_manifest() {
    let bytes = std::fs::read(data("curriculum.json")).expect("curriculum.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("curriculum.manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let digest = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        manifest["sha256"].as_str(),
        Some(digest.as_str()),
        "curriculum.json changed without its manifest: run scripts/curriculum.py"
    );
    let tasks = suite::load(&data("curriculum.json")).expect("curriculum");
    assert_eq!(manifest["tasks"].as_u64(), Some(tasks.len() as u64));
    assert!(tasks.len() >= 300, "{} tasks", tasks.len());
}

#[test]
fn every_task_has_usable_checks_and_a_split() {
    let tasks = suite::load(&data("curriculum.json")).expect("curriculum");
    let mut requests = HashSet::new();
    for t in &tasks {
        assert_eq!(t.defect(), None);
        assert!(requests.insert(&t.request), "duplicate task: {}", t.request);
        assert!(
            matches!(t.split.as_deref(), Some("train" | "held_out")),
            "{}: split {:?}",
            t.request,
            t.split
        );
    }
    let held_out = tasks
        .iter()
        .filter(|t| t.split.as_deref() == Some("held_out"))
        .count();
    assert!(
        held_out >= 40 && held_out < tasks.len() / 2,
        "{held_out} held out"
    );
}

#[test]
fn the_curriculum_is_disjoint_from_the_everyday_suite() {
    let tasks = suite::load(&data("curriculum.json")).expect("curriculum");
    let everyday = suite::load(&data("everyday.json")).expect("everyday suite");
    let names: HashSet<&str> = everyday.iter().map(|c| c.name.as_str()).collect();
    let requests: HashSet<&str> = everyday.iter().map(|c| c.request.as_str()).collect();
    for t in &tasks {
        assert!(
            !requests.contains(t.request.as_str()),
            "shared request: {}",
            t.request
        );
        assert!(
            !names.contains(t.name.as_str()),
            "shared task name: {}",
            t.name
        );
    }
}

#[test]
fn a_broken_task_is_named_not_scored() {
    let mut t = suite::Case {
        request: "teach yourself to double a number".into(),
        name: "double".into(),
        checks: vec![],
        split: None,
    };
    assert!(t.defect().is_some_and(|d| d.contains("no checks")));
    t.checks = vec![
        (vec![serde_json::json!(1)], serde_json::json!(2)),
        (
            vec![serde_json::json!(1), serde_json::json!(2)],
            serde_json::json!(2),
        ),
    ];
    assert!(t
        .defect()
        .is_some_and(|d| d.contains("numbers of arguments")));
}
