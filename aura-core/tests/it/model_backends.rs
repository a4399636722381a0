//! Backends chosen by settings: malformed values stop startup, each persona is served by
//! its own setting, and learn cycles run through a real OpenAI-compatible server
//! (llama-cpp-python's, started by the test; skipped, saying why, when it is missing).
#![cfg(all(feature = "openai", feature = "local-model"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;

use aura_cognition::{CascadeMode, OpenAiTestServer, Persona, ScriptedModel};
use aura_core::forge::EventKind;
use aura_core::store::{NewObject, Store};
use aura_core::{CheckStatus, Config, Error, LearnRequest, Runtime};
use aura_store::SqliteStore;

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

#[tokio::test]
async fn a_malformed_model_setting_stops_startup_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.store_path = dir.path().join("aura.sqlite");
    for (key, value, says) in [
        ("AURA_MODEL_ROBIN", "vllm:qwen", "unknown backend"),
        (
            "AURA_MODEL",
            "openai:http://127.0.0.1:8080/v1",
            "names no model",
        ),
        (
            "AURA_MODEL_BABS",
            "local:/no/such/model.gguf",
            "cannot open",
        ),
        ("AURA_MODEL_NOBODY", "ollama:llama3", "not a model setting"),
    ] {
        let e = Runtime::builder()
            .config(config.clone())
            .model_setting(key, value)
            .build()
            .await
            .expect_err(value);
        assert!(matches!(e, Error::Invalid(_)), "{key}={value}: {e:?}");
        let text = e.to_string();
        assert!(
            text.contains(key) && text.contains(says),
            "{key}={value}: {text}"
        );
        assert!(
            !config.store_path.exists(),
            "{key}={value}: the store was created"
        );
    }
}

#[tokio::test]
async fn each_persona_is_served_by_its_own_setting_and_health_says_which() {
    let dead = "openai:http://127.0.0.1:9/v1#qwen";
    let rt = Runtime::builder()
        .config(Config::default())
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(ScriptedModel::from_fn(|_| Ok("hi".into()))))
        .model_setting("AURA_MODEL_BABS", format!("{dead},ollama:llama3"))
        .model_setting("alfred", dead)
        .build()
        .await
        .unwrap();
    let cascade = rt.cascade().unwrap();
    let backend = |p: Persona| cascade.persona(p).unwrap().model.describe();
    assert_eq!(backend(Persona::Robin), "scripted");
    assert_eq!(backend(Persona::Alfred), dead);
    assert!(backend(Persona::Babs).starts_with(&format!("{dead},ollama:llama3 at ")));
    let health = rt.health().await;
    let models = &health.checks.models;
    assert_eq!(models["ROBIN"].status, CheckStatus::Ok);
    assert_eq!(models["ROBIN"].detail["backend"], "scripted");
    // Nothing listens on port 9: the persona is unavailable, and health names the backend.
    assert_eq!(models["ALFRED"].status, CheckStatus::Unavailable);
    assert!(
        models["ALFRED"].detail.as_str().unwrap().starts_with(dead),
        "{:?}",
        models["ALFRED"].detail
    );
}

fn learn_config() -> Config {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_samples = 4;
    config.learn_seed = Some(7);
    config
}

/// The cycle commits a method that passed its checks in the jail, or refuses with every
/// attempt's reason and nothing but the trail written.
async fn assert_whole_or_nothing(
    rt: &Runtime,
    store: &dyn Store,
    object: aura_core::store::ObjectId,
    outcome: aura_core::Result<aura_core::Learned>,
) -> bool {
    let committed = common::events_of(store, EventKind::LearnCommitted.as_str()).await;
    match outcome {
        Ok(learned) => {
            let stored = store.list_methods(object).await.unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].source, learned.method.source);
            assert_eq!(committed.len(), 1);
            match rt.send(object, "double", vec![serde_json::json!(4)]).await {
                Ok(_) | Err(Error::MethodRaised { .. }) | Err(Error::Stopped { .. }) => {}
                Err(e) => panic!("calling the learned method failed unexpectedly: {e}"),
            }
            true
        }
        Err(Error::Refused { failures, .. }) => {
            for f in &failures {
                println!("refused: {}: {}", f.stage, f.message);
            }
            assert!(!failures.is_empty() && failures.iter().all(|f| !f.message.is_empty()));
            assert!(store.list_methods(object).await.unwrap().is_empty());
            assert!(committed.is_empty());
            false
        }
        Err(e) => panic!("the cycle must commit or refuse, not fail: {e}"),
    }
}

fn double() -> LearnRequest {
    LearnRequest {
        selector: "double".into(),
        request_text: "teach yourself to double a number: double(4) is 8".into(),
        args: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learn_cycle_runs_through_an_openai_compatible_server() {
    let Some(server) = OpenAiTestServer::start(&root()) else {
        return;
    };
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let rt = Runtime::builder()
        .config(learn_config())
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model_setting("AURA_MODEL", server.spec())
        .build()
        .await
        .unwrap();
    assert_eq!(rt.model().unwrap().describe(), server.spec());
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let outcome = rt.learn(calc.id, double()).await;
    let learned = assert_whole_or_nothing(&rt, store.as_ref(), calc.id, outcome).await;
    println!("learned through {}: {learned}", server.spec());
}

/// The server dies during the cycle: the embedded model behind it in the setting takes
/// over, and the cycle still commits a whole method or nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_learn_hands_over_to_the_fallback() {
    let Some(mut server) = OpenAiTestServer::start(&root()) else {
        return;
    };
    let local = aura_cognition::default_model_path();
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let rt = Runtime::builder()
        .config(learn_config())
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model_setting(
            "AURA_MODEL",
            format!("{},local:{}", server.spec(), local.display()),
        )
        .build()
        .await
        .unwrap();
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let learn = tokio::spawn({
        let rt = rt.clone();
        async move { rt.learn(calc.id, double()).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    server.kill();
    let outcome = learn.await.unwrap();
    assert_whole_or_nothing(&rt, store.as_ref(), calc.id, outcome).await;
    // The cycle went on after the kill only through the fallback.
    let health = rt.health().await;
    assert_eq!(health.checks.models["ALFRED"].status, CheckStatus::Ok);
}
