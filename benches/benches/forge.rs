//! Forge: BABS curating a golden dataset from 10 000 audit events.
//!
//! The trail is a `SqliteStore` file (WAL) holding 10 000 `learn.*` events shaped as
//! aura-core's learn cycle writes them: 6 000 `learn.committed` (a full four-persona
//! packet each, ~3 KB of JSON; one in ten repeats an earlier cycle), 3 000
//! `learn.attempt_failed` and 1 000 `learn.refused`. One iteration = `curate` for one
//! persona: page through the trail (1 000 events a page), select, rebuild prompts,
//! scrub, deduplicate, split, write `train.jsonl`, `validation.jsonl` and
//! `manifest.json`. Criterion reports the time per curation and events per second.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use aura_forge::{curate, CurationConfig, EventKind};
use aura_store::{NewAuditEvent, ObjectId, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

const EVENTS: u64 = 10_000;

fn candidate(i: u64) -> Value {
    json!({
        "source": format!("def method_{i}(self, x):\n    total = 0\n    for k in range(x):\n        total += k * {i}\n    return total"),
        "tests": format!("def test_method_{i}():\n    assert obj.method_{i}(3) == {}", 3 * i),
        "doc": format!("Sums k*{i} for k below x."),
        "rationale": "A loop is clear and exact for small x; see /home/dev/notes.txt.",
    })
}

fn packet(i: u64, cand: &Value) -> Value {
    let contribution = |persona: &str, text: String, structured: Option<&Value>| {
        json!({"persona": persona, "model": "SmolLM2-135M-Instruct", "text": text,
               "structured": structured, "error": null, "attempts": 1,
               "usage": {"prompt_tokens": 300, "completion_tokens": 80, "prompt_ms": 40, "generation_ms": 900},
               "model_us": 950000, "step_us": 960000})
    };
    let round = |after: Value, text: String| {
        json!({"after": after, "query": format!("method_{i} sum"), "error": null, "elapsed_us": 120,
               "evidence": [{"id": format!("n{i}"), "text": text, "source": "memory:method", "score": 1.5}]})
    };
    json!({
        "started_at": "2025-01-01T00:00:00Z",
        "mandate": {"selector": format!("method_{i}"), "args": [3], "object_name": "calc",
                    "request_text": format!("teach yourself method {i}; API_TOKEN=abcdef{i}"),
                    "slots": {"precision": 2, "owner": "dev"},
                    "known_methods": [{"name": "double", "doc": "Doubles x."}], "feedback": []},
        "mode": "full", "context": null,
        "contributions": [
            contribution("BRICK", format!("Parts of method_{i}: a loop, a sum, a return."), None),
            contribution("ROBIN", "{…}".into(), Some(cand)),
            contribution("BABS", format!("Memory has double; method_{i} should accept 0. Path /work/x/{i}"), None),
            contribution("ALFRED", "{…}".into(), Some(cand)),
        ],
        "grounding": [round(Value::Null, "double: returns 2*x".into()), round(json!("BRICK"), format!("sum {i}")),
                      round(json!("ROBIN"), "range is exclusive".into()), round(json!("BABS"), "loops".into())],
        "verdicts": [], "decided_by": "ALFRED", "candidate": cand, "cem": null,
        "timing": {"total_us": 4000000, "model_us": 3800000, "context_us": 0, "grounding_us": 500, "check_us": 0, "orchestration_us": 1000},
    })
}

async fn seed(store: &SqliteStore) {
    let object = Some(ObjectId::new());
    let mut tx = store.begin().await.unwrap();
    for n in 0..EVENTS {
        let event = match n % 10 {
            0..=5 => {
                // One in ten committed cycles repeats an earlier one (a duplicate).
                let i = if n % 100 == 3 { n - 1 } else { n };
                let cand = candidate(i);
                NewAuditEvent::new(
                    EventKind::LearnCommitted,
                    object,
                    json!({
                        "selector": format!("method_{i}"), "attempt": 1, "request": format!("teach yourself method {i}"),
                        "candidate": cand, "tests": [{"name": format!("test_method_{i}"), "passed": true, "message": null}],
                        "packet": packet(i, &cand),
                    }),
                )
            }
            6..=8 => {
                let cand = candidate(n);
                NewAuditEvent::new(
                    EventKind::LearnAttemptFailed,
                    object,
                    json!({
                        "selector": format!("method_{n}"), "attempt": 1,
                        "failure": {"stage": "guard", "rules": ["call.open"], "message": "open is not allowed"},
                        "packet": packet(n, &cand),
                    }),
                )
            }
            _ => NewAuditEvent::new(
                EventKind::LearnRefused,
                object,
                json!({"selector": format!("method_{n}"), "attempts": 3, "rules": ["call.open"]}),
            ),
        };
        tx.append_event(event).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn curation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("aura-bench-forge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = runtime.block_on(async {
        let store = SqliteStore::open(dir.join("trail.db")).await.unwrap();
        seed(&store).await;
        store
    });
    let mut group = c.benchmark_group("forge");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(EVENTS));
    for persona in ["babs", "alfred"] {
        let config = CurationConfig::for_persona(persona);
        let out = dir.join(persona);
        group.bench_function(format!("curate_10k_events/{persona}"), |b| {
            b.to_async(&runtime)
                .iter(|| async { curate(&store, &config, &out).await.unwrap() })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, curation);
criterion_main!(benches);
