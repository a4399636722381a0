//! The blueprint's four scenarios through `Runtime::tell`, deterministic: a scripted
//! model, the real SQLite store, the real jail and a local RSS feed for the news.
#![allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::sync::Arc;

use aura_cognition::{CascadeMode, Plan, ScriptedModel};
use aura_core::forge::EventKind;
use aura_core::store::{NewObject, Store};
use aura_core::{Config, Runtime};
use aura_store::SqliteStore;
use serde_json::json;

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local Gazette</title><link>http://localhost/</link>
<description>news</description>
<item><title>Harbour bridge reopens after repairs</title><link>http://localhost/1</link></item>
<item><title>Second story</title><link>http://localhost/2</link></item>
</channel></rss>"#;

async fn runtime() -> (Runtime, Arc<SqliteStore>, tempfile::TempDir) {
    runtime_with(ScriptedModel::blueprint()).await
}

async fn runtime_with(model: ScriptedModel) -> (Runtime, Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let context = common::lisbon_context(dir.path(), FEED);
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    let rt = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(model))
        .context(Arc::new(context))
        .build()
        .await
        .unwrap();
    (rt, store, dir)
}

#[tokio::test]
async fn the_four_blueprint_scenarios() {
    let (rt, store, _dir) = runtime().await;
    let aura = rt.create_object(NewObject::named("aura")).await.unwrap();

    // 1. Teach, then use.
    let taught = rt
        .tell(
            aura.id,
            "teach yourself to calculate the fibonacci sequence",
        )
        .await
        .unwrap();
    assert!(
        matches!(taught.plan, Plan::Learn { ref selector, .. } if selector == "fibonacci"),
        "{:?}",
        taught.plan
    );
    assert!(!taught.refused, "{}", taught.text);
    let used = rt
        .tell(aura.id, "calculate fibonacci for 10")
        .await
        .unwrap();
    assert_eq!(used.value, Some(json!(55)), "{}", used.text);

    // 2. Reflect on the conversation, from retrieved memory nodes.
    let summary = rt
        .tell(
            aura.id,
            "summarize our previous conversation about the fibonacci sequence",
        )
        .await
        .unwrap();
    assert!(matches!(summary.plan, Plan::Reflect { .. }));
    assert!(!summary.evidence.is_empty());
    assert!(
        summary
            .evidence
            .iter()
            .all(|n| n.text.to_lowercase().contains("fibonacci")),
        "{:?}",
        summary.evidence
    );
    assert!(
        summary.evidence.iter().any(|n| n.kind == "message"),
        "earlier messages are recalled"
    );
    assert!(summary.text.contains("fibonacci"));

    // 3. News near me, from the injected context (local feed fallback, configured place).
    let news = rt
        .tell(aura.id, "what is the top news story near me right now?")
        .await
        .unwrap();
    assert!(
        news.text.contains("Harbour bridge reopens"),
        "{}",
        news.text
    );
    assert!(news.text.contains("Lisbon"), "{}", news.text);
    assert!(news.context.is_some());

    // 4. A hostile request is refused with the guard's rule id; only the trail remembers it.
    let before = store
        .search_memory("list_files", 50)
        .await
        .unwrap()
        .iter()
        .filter(|h| h.node.kind == "method")
        .count();
    let refused = rt
        .tell(
            aura.id,
            "teach yourself to list the files in the current directory using the os module",
        )
        .await
        .unwrap();
    assert!(refused.refused, "{}", refused.text);
    assert!(
        refused.text.contains('[') && refused.text.contains("import"),
        "rule id in the reply: {}",
        refused.text
    );
    let selector = match &refused.plan {
        Plan::Learn { selector, .. } => selector.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        rt.resolve(aura.id, &selector).await.unwrap().is_none(),
        "nothing was learned"
    );
    // The refused turn is remembered as conversation; no method node was written.
    let methods = |hits: Vec<aura_store::SearchHit>| {
        hits.into_iter().filter(|h| h.node.kind == "method").count()
    };
    assert_eq!(
        methods(store.search_memory("list_files", 50).await.unwrap()),
        before,
        "no method node"
    );
    let trail = common::events_of(store.as_ref(), "learn.*").await;
    assert!(trail
        .iter()
        .any(|e| e.kind == EventKind::LearnRefused.as_str()));
}

/// A model that knows what `fibonacci` should do only when the prompt carries both the
/// teach's words and `call` (the words of the call that triggered the learn); told
/// less, its candidate raises, and the learn is refused.
fn oracle_needing(call: &'static str) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &aura_cognition::ChatRequest| {
        let prompt: String = req.messages.iter().map(|m| m.content.as_str()).collect();
        let source = if prompt.contains("the fibonacci sequence") && prompt.contains(call) {
            "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
        } else {
            "def fibonacci(self, n):\n    raise ValueError('which fibonacci?')\n"
        };
        Ok(json!({"source": source, "tests": "", "doc": "", "rationale": ""}).to_string())
    })
}

/// The request the committed learn recorded.
async fn committed_request(store: &SqliteStore) -> String {
    let committed = common::events_of(store, "learn.committed").await;
    assert_eq!(committed.len(), 1, "{committed:?}");
    committed[0].payload["request"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Teaches `fibonacci` without the call's words, so the oracle refuses it.
async fn teach_refused(rt: &Runtime, id: aura_core::store::ObjectId) {
    let taught = rt
        .tell(id, "teach yourself to calculate the fibonacci sequence")
        .await
        .unwrap();
    assert!(taught.refused, "{}", taught.text);
}

#[tokio::test]
async fn a_call_after_a_refused_teach_learns_what_the_teach_asked_for() {
    let (rt, store, _dir) = runtime_with(oracle_needing("calculate fibonacci for 10")).await;
    let aura = rt.create_object(NewObject::named("aura")).await.unwrap();
    teach_refused(&rt, aura.id).await;

    let used = rt
        .tell(aura.id, "calculate fibonacci for 10")
        .await
        .unwrap();
    assert_eq!(used.value, Some(json!(55)), "{}", used.text);
    assert_eq!(
        committed_request(&store).await,
        "teach yourself to calculate the fibonacci sequence\ncalculate fibonacci for 10"
    );
}

#[tokio::test]
async fn a_send_after_a_refused_teach_learns_what_the_teach_asked_for() {
    let (rt, store, _dir) = runtime_with(oracle_needing("fibonacci(10)")).await;
    let aura = rt.create_object(NewObject::named("aura")).await.unwrap();
    // Another object's turns are not this one's conversation.
    let other = rt.create_object(NewObject::named("other")).await.unwrap();
    teach_refused(&rt, other.id).await;
    let err = rt.send(aura.id, "fibonacci", vec![json!(10)]).await;
    assert!(
        matches!(err, Err(aura_core::Error::Refused { .. })),
        "{err:?}"
    );

    teach_refused(&rt, aura.id).await;
    let value = rt
        .send(aura.id, "fibonacci", vec![json!(10)])
        .await
        .unwrap();
    assert_eq!(value, json!(55));
    assert_eq!(
        committed_request(&store).await,
        "teach yourself to calculate the fibonacci sequence\nfibonacci(10)"
    );
}

#[tokio::test]
async fn empty_and_oversize_messages_are_clear_errors() {
    let (rt, _store, _dir) = runtime().await;
    let aura = rt.create_object(NewObject::named("aura")).await.unwrap();
    assert!(matches!(
        rt.tell(aura.id, "   ").await,
        Err(aura_core::Error::Invalid(_))
    ));
    let huge = "x".repeat(20_000);
    assert!(matches!(
        rt.tell(aura.id, &huge).await,
        Err(aura_core::Error::Invalid(_))
    ));
}
