//! `OpenAiModel` against a real OpenAI-compatible server: llama-cpp-python's server on
//! loopback serving the embedded SmolLM2 GGUF (installed by `scripts/setup.sh test`), or
//! the server `AURA_TEST_OPENAI_URL` names. Skipped, saying why, when neither is there.
#![cfg(all(feature = "openai", feature = "local"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aura_cognition::{
    conformance, ChatRequest, DynLanguageModel, Error, FallbackModel, GenerationOptions,
    LanguageModel, LocalModel, OpenAiModel, OpenAiTestServer,
};

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

fn adapter(server: &OpenAiTestServer) -> OpenAiModel {
    OpenAiModel::builder(server.url(), server.model())
        .deterministic_seed(true)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

#[tokio::test]
async fn conformance_suite_live() {
    let _turn = crate::MODEL_TURN.lock().await;
    let Some(server) = OpenAiTestServer::start(&root()) else {
        return;
    };
    let m = adapter(&server);
    conformance::run_all(&m).await;
    // llama-cpp-python answers any model name with its own model; the adapter does not.
    let missing = OpenAiModel::builder(server.url(), "no-such-model")
        .build()
        .unwrap();
    conformance::missing_model(Ok(Arc::new(missing) as DynLanguageModel)).await;
}

#[tokio::test]
async fn a_prompt_over_the_context_window_is_context_too_long() {
    let _turn = crate::MODEL_TURN.lock().await;
    let Some(server) = OpenAiTestServer::start(&root()) else {
        return;
    };
    let long = "word ".repeat(3000);
    let e = adapter(&server)
        .chat(ChatRequest::new("Summarise.", long))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::ContextTooLong { tokens, limit: 2048 } if tokens > 2048),
        "{e:?}"
    );
}

/// The server is killed while it writes a long reply: the fallback answers the call,
/// and later calls go straight to the fallback for the cool-down.
#[tokio::test]
async fn a_server_killed_mid_reply_hands_over_to_the_fallback() {
    let _turn = crate::MODEL_TURN.lock().await;
    let Some(mut server) = OpenAiTestServer::start(&root()) else {
        return;
    };
    let primary: DynLanguageModel = Arc::new(adapter(&server));
    let local: DynLanguageModel = Arc::new(
        LocalModel::builder()
            .model_path(root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
            .build()
            .unwrap(),
    );
    let m = Arc::new(FallbackModel::new(
        vec![primary.clone(), local],
        Duration::from_secs(600),
    ));
    let story = ChatRequest::new("You are a storyteller.", "Tell me a very long story.")
        .with_options(GenerationOptions {
            temperature: 0.0,
            seed: Some(1),
            max_tokens: 400,
            stop: Vec::new(),
        });
    // The primary answers while it is up.
    let short = ChatRequest::new("Be brief.", "Say hello.").with_options(GenerationOptions {
        max_tokens: 4,
        ..GenerationOptions::default()
    });
    let r = m.chat(short.clone()).await.unwrap();
    assert_eq!(r.model, "smollm2", "served by the server while it is up");
    let call = tokio::spawn({
        let m = m.clone();
        let story = story.clone();
        async move { m.chat(story).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !call.is_finished(),
        "the story finished before the kill; make it longer"
    );
    server.kill();
    let r = call.await.unwrap().expect("the fallback answers the call");
    assert_ne!(r.model, "smollm2", "the reply came from the killed server");
    assert!(!r.text.is_empty());
    // The dead server is not asked again within its cool-down.
    let e = primary.chat(short.clone()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let r = m.chat(short).await.unwrap();
    assert_ne!(r.model, "smollm2");
}
