//! Registration, promotion and rollback on a SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aura_forge::curate::SplitFile;
use aura_forge::{
    is_promotion_record, promote, promoted_facet, register, rollback, serving, Error, Evaluation,
    EventKind, FacetRegistration, LearnComparison, LearnRate, Learning, Manifest, TrainedAdapter,
};
use aura_store::{AuditQuery, SqliteStore, Store};
use serde_json::json;

fn manifest() -> Manifest {
    let split = |file: &str, n: usize| SplitFile {
        file: file.into(),
        examples: n,
        sha256: "00".repeat(32),
        sources: vec![],
    };
    Manifest {
        format: aura_forge::curate::FORMAT.into(),
        curator: "BABS".into(),
        persona: "babs".into(),
        source_events: vec![],
        train: split("train.jsonl", 8),
        validation: split("validation.jsonl", 2),
        split_rule: String::new(),
        counts: Default::default(),
    }
}

fn registration(name: &str, val_after: f64, probe_after: f64) -> FacetRegistration {
    FacetRegistration {
        name: name.into(),
        persona: "babs".into(),
        base_model: "models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        adapter: TrainedAdapter {
            adapter_path: format!("data/forge/{name}/adapter.gguf"),
            metrics: json!({
                "validation_loss_before": 2.0, "validation_loss_after": val_after,
                "probe_loss_before": 3.0, "probe_loss_after": probe_after,
                "seconds_per_step": 1.5,
            }),
        },
        dataset_dir: "data/forge/babs-dataset".into(),
        manifest: manifest(),
        learning: None,
    }
}

fn rate(requests: u32, learned: u32, wrong: u32) -> LearnRate {
    LearnRate {
        requests,
        learned,
        wrong,
    }
}

/// A facet likelier than its base (it passes on loss) with the given learn rates
/// against the serving model's 13/65 (6 wrong) held out and 29/45 (3 wrong) everyday.
fn learned(name: &str, held_out: LearnRate, everyday: LearnRate) -> FacetRegistration {
    FacetRegistration {
        learning: Some(Learning {
            held_out: LearnComparison {
                serving: rate(65, 13, 6),
                facet: held_out,
            },
            everyday: LearnComparison {
                serving: rate(45, 29, 3),
                facet: everyday,
            },
        }),
        ..registration(name, 1.0, 2.0)
    }
}

async fn kinds(store: &SqliteStore) -> Vec<String> {
    let page = store
        .query_audit(&AuditQuery {
            kind: Some("forge.*".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    page.events.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn register_records_the_facet_and_its_event_together() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let facet = register(&store, registration("babs:grounding-v1", 1.0, 2.5))
        .await
        .unwrap();
    let stored = store.get_facet("babs:grounding-v1").await.unwrap();
    assert_eq!(stored, facet);
    assert_eq!(stored.metrics["status"], "candidate");
    assert_eq!(stored.metrics["training"]["seconds_per_step"], 1.5);
    assert_eq!(
        stored.metrics["dataset"]["manifest"]["train"]["examples"],
        8
    );
    assert_eq!(stored.metrics["evaluation"]["facet_validation_loss"], 1.0);
    assert_eq!(kinds(&store).await, [EventKind::ForgeRegistered.as_str()]);
    // A bad name writes nothing.
    for bad in [
        "grounding-v1",
        "robin:x",
        "babs:",
        "babs:a b",
        "promoted:babs",
    ] {
        assert!(
            matches!(
                register(&store, registration(bad, 1.0, 1.0)).await,
                Err(Error::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(store.list_facets().await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_a_facet_at_least_as_good_as_its_base_is_promoted_and_rollback_restores() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    register(&store, registration("babs:v1", 1.5, 3.0))
        .await
        .unwrap(); // ties on probes: passes
    register(&store, registration("babs:v2", 1.0, 2.0))
        .await
        .unwrap();
    register(&store, registration("babs:worse-probes", 1.0, 3.2))
        .await
        .unwrap();
    register(&store, registration("babs:worse-validation", 2.1, 2.0))
        .await
        .unwrap();
    assert!(promoted_facet(&store, "babs").await.unwrap().is_none());

    for name in ["babs:worse-probes", "babs:worse-validation"] {
        match promote(&store, name).await {
            Err(Error::Rejected(msg)) => assert!(msg.contains("does worse than its base"), "{msg}"),
            other => panic!("{name}: expected Rejected, got {other:?}"),
        }
    }
    assert!(promoted_facet(&store, "babs").await.unwrap().is_none());

    promote(&store, "babs:v1").await.unwrap();
    promote(&store, "babs:v2").await.unwrap();
    let current = promoted_facet(&store, "babs").await.unwrap().unwrap();
    assert_eq!(current.name, "babs:v2");
    assert_eq!(current.metrics["status"], "promoted");
    assert_eq!(
        serving(&store).await.unwrap()["babs"].as_deref(),
        Some("babs:v2")
    );
    assert_eq!(serving(&store).await.unwrap()["robin"], None);
    let record = store
        .list_facets()
        .await
        .unwrap()
        .into_iter()
        .find(|f| is_promotion_record(f) && f.persona == "babs")
        .unwrap();
    assert_eq!(record.adapter_path, "data/forge/babs:v2/adapter.gguf");
    assert_eq!(record.metrics["history"], json!(["babs:v1"]));

    let restored = rollback(&store, "babs").await.unwrap().unwrap();
    assert_eq!(restored.name, "babs:v1");
    assert_eq!(
        promoted_facet(&store, "babs").await.unwrap().unwrap().name,
        "babs:v1"
    );
    assert_eq!(
        store.get_facet("babs:v2").await.unwrap().metrics["status"],
        "rolled_back"
    );
    assert!(
        rollback(&store, "babs").await.unwrap().is_none(),
        "back to the base model"
    );
    assert!(promoted_facet(&store, "babs").await.unwrap().is_none());
    // Nothing left to undo: a conflict with the registry's state, not a bad request.
    assert!(matches!(
        rollback(&store, "babs").await,
        Err(Error::Store(aura_store::Error::Conflict(_)))
    ));
    assert_eq!(
        kinds(&store)
            .await
            .iter()
            .filter(|k| k.as_str() != EventKind::ForgeRegistered.as_str())
            .collect::<Vec<_>>(),
        [
            EventKind::ForgePromoted.as_str(),
            EventKind::ForgePromoted.as_str(),
            EventKind::ForgeRolledBack.as_str(),
            EventKind::ForgeRolledBack.as_str()
        ]
    );
}

#[test]
fn the_rule_needs_every_figure() {
    let e = Evaluation {
        base_validation_loss: 2.0,
        facet_validation_loss: 2.0,
        base_probe_loss: 3.0,
        facet_probe_loss: f64::NAN,
        learning: None,
    };
    assert!(!e.passes());
    assert!(Evaluation {
        facet_probe_loss: 3.0,
        ..e
    }
    .passes());
    assert!(Evaluation::from_training_metrics(&json!({"validation_loss_before": 1.0})).is_none());
}

#[tokio::test]
async fn with_learn_rates_a_facet_must_learn_more_with_no_more_wrong_methods_on_both_sets() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    // Each of these is likelier than its base; each loses on learning somewhere.
    let refused = [
        // The 2026-12-03 round: far more held-out learns, but more wrong methods, and
        // fewer everyday learns.
        ("alfred:more-wrong", rate(65, 27, 14), rate(45, 26, 10)),
        ("alfred:everyday-lost", rate(65, 20, 6), rate(45, 28, 3)),
        ("alfred:held-out-tied", rate(65, 13, 6), rate(45, 31, 3)),
        (
            "alfred:everyday-more-wrong",
            rate(65, 20, 6),
            rate(45, 31, 4),
        ),
        ("alfred:other-requests", rate(60, 20, 6), rate(45, 31, 3)),
    ];
    for (name, held_out, everyday) in refused {
        let reg = FacetRegistration {
            persona: "alfred".into(),
            ..learned(name, held_out, everyday)
        };
        register(&store, reg).await.unwrap();
        match promote(&store, name).await {
            Err(Error::Rejected(msg)) => {
                assert!(msg.contains("does not learn better"), "{name}: {msg}");
                assert!(msg.contains(&held_out.to_string()), "{name}: {msg}");
            }
            other => panic!("{name}: expected Rejected, got {other:?}"),
        }
    }
    assert!(promoted_facet(&store, "alfred").await.unwrap().is_none());

    let better = FacetRegistration {
        persona: "alfred".into(),
        ..learned("alfred:better", rate(65, 20, 5), rate(45, 30, 3))
    };
    register(&store, better).await.unwrap();
    let facet = promote(&store, "alfred:better").await.unwrap();
    let evaluation = Evaluation::of_facet(&facet).unwrap();
    assert_eq!(evaluation.learning.unwrap().held_out.facet, rate(65, 20, 5));
    assert_eq!(
        promoted_facet(&store, "alfred")
            .await
            .unwrap()
            .unwrap()
            .name,
        "alfred:better"
    );

    // Loss still counts: learning better does not excuse an unlikelier facet.
    let unlikely = FacetRegistration {
        persona: "alfred".into(),
        ..learned("alfred:unlikely", rate(65, 30, 0), rate(45, 40, 0))
    };
    let unlikely = FacetRegistration {
        adapter: registration("alfred:unlikely", 2.5, 2.0).adapter,
        ..unlikely
    };
    register(&store, unlikely).await.unwrap();
    match promote(&store, "alfred:unlikely").await {
        Err(Error::Rejected(msg)) => assert!(msg.contains("does worse than its base"), "{msg}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
}
