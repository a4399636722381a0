//! `OllamaModel` against recorded HTTP exchanges (tests/fixtures/ollama/*.json) served
//! by a local mock server. Each fixture holds the exact request body the adapter must
//! send and a response in the format of Ollama's API documentation.
#![cfg(feature = "ollama")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{opts, sky};
use aura_cognition::{
    conformance, DynLanguageModel, Error, FinishReason, LanguageModel, OllamaCreateRequest,
    OllamaKeepAlive, OllamaModel, StreamChunk,
};
use futures::StreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/ollama")
    .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn response(f: &Value) -> ResponseTemplate {
    let r = &f["response"];
    let status = r["status"].as_u64().unwrap() as u16;
    if let Some(lines) = r["ndjson"].as_array() {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        ResponseTemplate::new(status).set_body_raw(body, "application/x-ndjson")
    } else {
        ResponseTemplate::new(status).set_body_json(r["json"].clone())
    }
}

/// A mock server that replays `names` (one exchange per path and method).
async fn replay(names: &[&str]) -> (MockServer, Vec<Value>) {
    let server = MockServer::start().await;
    let mut fixtures = Vec::new();
    for name in names {
        let f = fixture(name);
        Mock::given(method(f["request"]["method"].as_str().unwrap()))
            .and(path(f["request"]["path"].as_str().unwrap()))
            .respond_with(response(&f))
            .mount(&server)
            .await;
        fixtures.push(f);
    }
    (server, fixtures)
}

/// The request bodies the server received are exactly the recorded ones.
async fn assert_requests(server: &MockServer, fixtures: &[Value]) {
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), fixtures.len(), "number of requests");
    for (req, f) in received.iter().zip(fixtures) {
        assert_eq!(
            req.method.as_str(),
            f["request"]["method"].as_str().unwrap()
        );
        assert_eq!(req.url.path(), f["request"]["path"].as_str().unwrap());
        let expected = &f["request"]["body"];
        if expected.is_null() {
            assert!(
                req.body.is_empty(),
                "unexpected body for {}",
                req.url.path()
            );
        } else {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(&body, expected, "request body for {}", req.url.path());
        }
    }
}

fn model(server: &MockServer) -> OllamaModel {
    OllamaModel::builder()
        .host(server.uri())
        .model("smollm2:135m")
        .build()
        .unwrap()
}

#[tokio::test]
async fn chat_streams_text_then_done() {
    let (server, fx) = replay(&["chat_stream"]).await;
    let m = OllamaModel::builder()
        .host(server.uri())
        .model("smollm2:135m")
        .keep_alive(OllamaKeepAlive::For(Duration::from_secs(300)))
        .build()
        .unwrap();
    let mut s = m
        .chat_stream(sky().with_options(opts(0.0, 7, 32, &[])))
        .await
        .unwrap();
    let mut chunks = Vec::new();
    while let Some(c) = s.next().await {
        chunks.push(c.unwrap());
    }
    assert_eq!(
        chunks[..3],
        [
            StreamChunk::Text("Rayleigh".into()),
            StreamChunk::Text(" scattering".into()),
            StreamChunk::Text(".".into())
        ]
    );
    let StreamChunk::Done(done) = &chunks[3] else {
        panic!("no Done: {chunks:?}")
    };
    assert_eq!(chunks.len(), 4);
    assert_eq!(done.text, "Rayleigh scattering.");
    assert_eq!(done.finish, FinishReason::Stop);
    assert_eq!(done.usage.prompt_tokens, 26);
    assert_eq!(done.usage.completion_tokens, 3);
    assert_eq!(done.usage.prompt_ms, 342);
    assert_eq!(done.model, "smollm2:135m");
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn chat_with_a_schema_sends_format_and_validates() {
    let (server, fx) = replay(&["chat_structured"]).await;
    let schema = fx[0]["request"]["body"]["format"].clone();
    let r = model(&server)
        .chat(
            sky()
                .with_schema(schema)
                .with_options(opts(0.0, 7, 64, &[])),
        )
        .await
        .unwrap();
    assert_eq!(
        r.structured,
        Some(json!({"answer": "Rayleigh scattering", "confident": true}))
    );
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn a_reply_that_breaks_the_schema_is_invalid_output() {
    let (server, _) = replay(&["chat_structured"]).await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]});
    let e = model(&server)
        .chat(
            sky()
                .with_schema(schema)
                .with_options(opts(0.0, 7, 64, &[])),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOutput(_)), "{e:?}");
}

#[tokio::test]
async fn stop_sequences_are_applied_by_the_adapter() {
    let (server, fx) = replay(&["chat_stop"]).await;
    let r = model(&server)
        .chat(sky().with_options(opts(0.0, 7, 32, &["."])))
        .await
        .unwrap();
    assert_eq!(r.text, "Light scatters");
    assert_eq!(r.finish, FinishReason::StopSequence);
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn a_missing_model_is_model_not_found() {
    let (server, fx) = replay(&["chat_missing_model", "show_missing_model"]).await;
    let m = OllamaModel::builder()
        .host(server.uri())
        .model("nope:latest")
        .build()
        .unwrap();
    // Order: info() (show), then chat() — matches the conformance check.
    conformance::missing_model(Ok(Arc::new(m) as DynLanguageModel)).await;
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 2);
    assert_requests(&server, &[fx[1].clone(), fx[0].clone()]).await;
}

#[tokio::test]
async fn info_comes_from_show() {
    let (server, fx) = replay(&["show"]).await;
    let info = model(&server).info().await.unwrap();
    assert_eq!(info.name, "smollm2:135m");
    assert_eq!(info.context_length, 8192);
    assert_eq!(info.embedding_dim, Some(576));
    assert_eq!(info.details["architecture"], "llama");
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn embed_uses_api_embed() {
    let (server, fx) = replay(&["embed"]).await;
    let v = model(&server)
        .embed(&["the cat sat on the mat".into(), "fibonacci numbers".into()])
        .await
        .unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].len(), 4);
    assert!((v[1][1] - 0.060_424_69).abs() < 1e-6);
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn generate_completes_a_raw_prompt() {
    let (server, fx) = replay(&["generate"]).await;
    let r = model(&server)
        .generate("Why is the sky blue?", &opts(0.5, 3, 16, &["\n\n"]), None)
        .await
        .unwrap();
    assert_eq!(r.text, "The sky is blue because of Rayleigh scattering.");
    assert_eq!(r.usage.completion_tokens, 11);
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn lists_and_pulls_models_with_progress() {
    let (server, fx) = replay(&["tags", "pull"]).await;
    let m = model(&server);
    let models = m.list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].name, "smollm2:135m");
    assert_eq!(models[0].size, 270_898_672);
    let mut seen = Vec::new();
    m.pull("smollm2:135m", |p| seen.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[2].completed, Some(270_898_672));
    assert_eq!(seen.last().unwrap().status, "success");
    assert_requests(&server, &fx).await;
}

#[tokio::test]
async fn uploads_a_blob_and_creates_a_model_from_an_adapter() {
    let (server, fx) = replay(&["create"]).await;
    let digest = fx[0]["request"]["body"]["adapters"]["adapter.gguf"]
        .as_str()
        .unwrap()
        .to_string();
    // The blob is not there yet (HEAD → 404), so it is uploaded (POST → 201).
    Mock::given(method("HEAD"))
        .and(path(format!("/api/blobs/{digest}")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/blobs/{digest}")))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let dir = std::env::temp_dir().join(format!("aura-ollama-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("adapter.gguf");
    std::fs::write(&file, b"AURA test adapter\n").unwrap();
    let m = model(&server);
    let uploaded = m.upload_blob(&file).await.unwrap();
    assert_eq!(uploaded, digest);
    let mut request = OllamaCreateRequest {
        model: "aura-brick:v1".into(),
        from: Some("smollm2:135m".into()),
        system: Some("You are BRICK.".into()),
        ..OllamaCreateRequest::default()
    };
    request.adapters.insert("adapter.gguf".into(), uploaded);
    let mut statuses = Vec::new();
    m.create_model(&request, |p| statuses.push(p.status.clone()))
        .await
        .unwrap();
    assert_eq!(statuses.last().map(String::as_str), Some("success"));
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0].method.as_str(), "HEAD");
    assert_eq!(received[1].method.as_str(), "POST");
    assert_eq!(received[1].body, b"AURA test adapter\n");
    let body: Value = serde_json::from_slice(&received[2].body).unwrap();
    assert_eq!(body, fx[0]["request"]["body"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 9 (discard) on loopback: nothing listens there.
    let m = OllamaModel::builder()
        .host("http://127.0.0.1:9")
        .build()
        .unwrap();
    let e = m.chat(sky()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let e = m.info().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let m = OllamaModel::builder()
        .host(server.uri())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = m.chat(sky()).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
}
