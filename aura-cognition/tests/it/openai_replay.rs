//! `OpenAiModel` against recorded HTTP exchanges (tests/fixtures/openai/*.json) served by
//! a local mock server. Each fixture says in `source` where it comes from (recorded from
//! llama-cpp-python, or transcribed from OpenAI's, vLLM's or LM Studio's documented
//! shapes) and holds, per exchange, the exact request the adapter must send and the
//! server's answer. Every mock matches its recorded body, and each test checks the
//! requests the server received, in order.
#![cfg(feature = "openai")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{opts, sky};
use aura_cognition::{
    conformance, ChatRequest, DynLanguageModel, Error, FinishReason, LanguageModel, OpenAiModel,
    OpenAiModelBuilder, StreamChunk, ASSUMED_CONTEXT_LENGTH,
};
use futures::StreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openai")
        .join(format!("{name}.json"));
    let f: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert!(
        f["source"].as_str().is_some_and(|s| !s.is_empty()),
        "{name}: every fixture says where it comes from"
    );
    f
}

/// The exchanges of the fixtures `names`, in order.
fn exchanges(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .flat_map(|n| fixture(n)["exchanges"].as_array().unwrap().clone())
        .collect()
}

fn sse_body(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| match e.as_str() {
            Some(raw) => format!("data: {raw}\n\n"),
            None => format!("data: {e}\n\n"),
        })
        .collect()
}

fn response(ex: &Value) -> ResponseTemplate {
    let r = &ex["response"];
    let mut t = ResponseTemplate::new(r["status"].as_u64().unwrap() as u16);
    if let Some(headers) = r["headers"].as_object() {
        for (k, v) in headers {
            t = t.insert_header(k.as_str(), v.as_str().unwrap());
        }
    }
    if let Some(events) = r["sse"].as_array() {
        t.set_body_raw(sse_body(events), "text/event-stream")
    } else if let Some(text) = r["text"].as_str() {
        t.set_body_raw(text, "text/plain")
    } else {
        t.set_body_json(r["json"].clone())
    }
}

/// Mounts `exs` in order: each answers its own method, path and (exact JSON) body; an
/// exchange with `times` answers that many requests, then gives way to the next.
async fn mount(server: &MockServer, exs: &[Value]) {
    for ex in exs {
        let req = &ex["request"];
        let mut mock = Mock::given(method(req["method"].as_str().unwrap()))
            .and(path(req["path"].as_str().unwrap()));
        if !req["body"].is_null() {
            mock = mock.and(body_json(req["body"].clone()));
        }
        let mut mock = mock.respond_with(response(ex));
        if let Some(n) = ex["times"].as_u64() {
            mock = mock.up_to_n_times(n);
        }
        mock.mount(server).await;
    }
}

/// A mock server that replays the fixtures `names`.
async fn replay(names: &[&str]) -> (MockServer, Vec<Value>) {
    let server = MockServer::start().await;
    let exs = exchanges(names);
    mount(&server, &exs).await;
    (server, exs)
}

/// The server received exactly `expected` (method, path, body and the recorded headers;
/// no Authorization where none was recorded), in order.
async fn assert_sent(server: &MockServer, expected: &[&Value]) {
    let received = server.received_requests().await.unwrap();
    let seen: Vec<String> = received
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        received.len(),
        expected.len(),
        "requests received: {seen:?}"
    );
    for (i, (got, ex)) in received.iter().zip(expected).enumerate() {
        let want = &ex["request"];
        assert_eq!(
            got.method.as_str(),
            want["method"].as_str().unwrap(),
            "request {i}"
        );
        assert_eq!(
            got.url.path(),
            want["path"].as_str().unwrap(),
            "request {i}"
        );
        if want["body"].is_null() {
            assert!(got.body.is_empty(), "request {i}: unexpected body");
        } else {
            let body: Value = serde_json::from_slice(&got.body).unwrap();
            assert_eq!(body, want["body"], "request {i}: body");
        }
        let auth = got
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            auth.as_deref(),
            want["headers"]["authorization"].as_str(),
            "request {i}: Authorization"
        );
    }
}

/// A builder for `model` on the mock server, blind to the environment, not retrying.
fn at(server: &MockServer, model: &str) -> OpenAiModelBuilder {
    OpenAiModelBuilder::with_lookup(format!("{}/v1", server.uri()), model, |_| None)
        .retries(0, Duration::from_millis(1))
}

/// `gpt-4o-mini` on OpenAI's recordings, which carry the test key.
fn openai_at(server: &MockServer) -> OpenAiModel {
    at(server, "gpt-4o-mini")
        .api_key("sk-test")
        .build()
        .unwrap()
}

/// The text pieces of a recorded stream, in order.
fn deltas(ex: &Value) -> Vec<String> {
    ex["response"]["sse"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| match e.as_str() {
            Some("[DONE]") => None,
            Some(raw) => Some(serde_json::from_str::<Value>(raw).unwrap()),
            None => Some(e.clone()),
        })
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .filter(|s| !s.is_empty())
        .collect()
}

async fn collect(
    mut s: futures::stream::BoxStream<'static, aura_cognition::Result<StreamChunk>>,
) -> Vec<aura_cognition::Result<StreamChunk>> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.push(c);
    }
    out
}

/// The mean of per-token vectors (llama-cpp-python's embedding shape).
fn mean(rows: &Value) -> Vec<f64> {
    let rows = rows.as_array().unwrap();
    let n = rows[0].as_array().unwrap().len();
    (0..n)
        .map(|d| rows.iter().map(|r| r[d].as_f64().unwrap()).sum::<f64>() / rows.len() as f64)
        .collect()
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

// ---- chat ----------------------------------------------------------------------------

#[tokio::test]
async fn llamacpp_chat_is_read_with_its_finish_and_usage() {
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_chat"]).await;
    let m = at(&server, "smollm2")
        .deterministic_seed(true)
        .build()
        .unwrap();
    assert!(m.capabilities().deterministic_seed);
    let r = m
        .chat(sky().with_options(opts(0.0, 7, 24, &[])))
        .await
        .unwrap();
    let recorded = &exs[1]["response"]["json"];
    assert_eq!(
        r.text,
        recorded["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    assert!(r
        .text
        .starts_with("The sky appears blue because of a process called Rayleigh"));
    assert_eq!(r.model, "smollm2");
    assert_eq!(r.finish, FinishReason::Length);
    assert_eq!(r.usage.prompt_tokens, 26);
    assert_eq!(r.usage.completion_tokens, 24);
    assert!(r.structured.is_none());
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn openai_chat_sends_the_key_and_checks_the_model_once() {
    let (server, exs) = replay(&["openai_models", "openai_chat"]).await;
    let m = openai_at(&server);
    for _ in 0..2 {
        let r = m
            .chat(sky().with_options(opts(0.5, 42, 64, &[])))
            .await
            .unwrap();
        assert!(r.text.ends_with("Rayleigh scattering."), "{}", r.text);
        assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(r.finish, FinishReason::Stop);
        assert_eq!(r.usage.prompt_tokens, 24);
        assert_eq!(r.usage.completion_tokens, 19);
    }
    // /models is asked once, before the first completion; the bearer goes on every call.
    assert_sent(&server, &[&exs[0], &exs[1], &exs[1]]).await;
}

#[tokio::test]
async fn the_key_can_come_from_the_settings_lookup() {
    let (server, exs) = replay(&["openai_models", "openai_chat"]).await;
    let m = OpenAiModelBuilder::with_lookup(format!("{}/v1", server.uri()), "gpt-4o-mini", |k| {
        (k == "AURA_OPENAI_API_KEY").then(|| "sk-test".to_string())
    })
    .build()
    .unwrap();
    m.chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap();
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

// ---- streaming -----------------------------------------------------------------------

#[tokio::test]
async fn openai_stream_gives_pieces_then_done_with_the_final_usage_chunk() {
    let (server, exs) = replay(&["openai_models", "openai_chat_stream"]).await;
    let m = openai_at(&server);
    let chunks = collect(
        m.chat_stream(sky().with_options(opts(0.5, 42, 64, &[])))
            .await
            .unwrap(),
    )
    .await;
    let chunks: Vec<StreamChunk> = chunks.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks[..3],
        [
            StreamChunk::Text("Rayleigh".into()),
            StreamChunk::Text(" scattering".into()),
            StreamChunk::Text(".".into()),
        ]
    );
    assert_eq!(chunks.len(), 4, "{chunks:?}");
    let StreamChunk::Done(done) = &chunks[3] else {
        panic!("no Done: {chunks:?}")
    };
    assert_eq!(done.text, "Rayleigh scattering.");
    assert_eq!(done.finish, FinishReason::Stop);
    assert_eq!(done.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(done.usage.prompt_tokens, 24);
    assert_eq!(done.usage.completion_tokens, 3);
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn llamacpp_stream_without_usage_counts_its_pieces() {
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_chat_stream"]).await;
    let m = at(&server, "smollm2").build().unwrap();
    let chunks = collect(
        m.chat_stream(sky().with_options(opts(0.0, 7, 8, &[])))
            .await
            .unwrap(),
    )
    .await;
    let chunks: Vec<StreamChunk> = chunks.into_iter().map(Result::unwrap).collect();
    let pieces = deltas(&exs[1]);
    assert_eq!(pieces.len(), 8);
    let texts: Vec<StreamChunk> = pieces.iter().cloned().map(StreamChunk::Text).collect();
    assert_eq!(chunks[..8], texts[..]);
    assert_eq!(chunks.len(), 9, "{chunks:?}");
    let StreamChunk::Done(done) = &chunks[8] else {
        panic!("no Done: {chunks:?}")
    };
    assert_eq!(done.text, pieces.concat());
    assert_eq!(done.text, "The sky appears blue because of a process");
    assert_eq!(done.finish, FinishReason::Length);
    assert_eq!(done.model, "smollm2");
    assert_eq!(done.usage.completion_tokens, 8, "one piece is one token");
    assert_eq!(done.usage.prompt_tokens, 0, "the server did not say");
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn a_stop_sequence_is_cut_from_the_stream_not_sent() {
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_chat_stop"]).await;
    assert!(exs[1]["request"]["body"].get("stop").is_none());
    let whole = deltas(&exs[1]).concat();
    let expected = &whole[..whole.find('.').unwrap()];
    assert!(
        expected.ends_with("between light and air molecules"),
        "{expected}"
    );
    let m = at(&server, "smollm2").build().unwrap();
    let r = m
        .chat(sky().with_options(opts(0.0, 7, 32, &["."])))
        .await
        .unwrap();
    assert_eq!(r.text, expected);
    assert_eq!(r.finish, FinishReason::StopSequence);
    assert_sent(&server, &[&exs[0], &exs[1]]).await;

    // Streamed: no piece carries the stop, and Done holds the same text.
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_chat_stop"]).await;
    let m = at(&server, "smollm2").build().unwrap();
    let chunks = collect(
        m.chat_stream(sky().with_options(opts(0.0, 7, 32, &["."])))
            .await
            .unwrap(),
    )
    .await;
    let chunks: Vec<StreamChunk> = chunks.into_iter().map(Result::unwrap).collect();
    let (last, pieces) = chunks.split_last().unwrap();
    let StreamChunk::Done(done) = last else {
        panic!("no Done last: {chunks:?}")
    };
    let text: String = pieces
        .iter()
        .map(|c| match c {
            StreamChunk::Text(t) => t.as_str(),
            other => panic!("a second Done: {other:?}"),
        })
        .collect();
    assert_eq!(text, expected);
    assert_eq!(done.text, expected);
    assert_eq!(done.finish, FinishReason::StopSequence);
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn a_stream_cut_short_is_an_error_not_a_short_reply() {
    let mut exs = exchanges(&["llamacpp_models", "llamacpp_chat_stream"]);
    // The recorded stream without its finish_reason chunk and [DONE]: the connection
    // just ends mid-reply.
    let events = exs[1]["response"]["sse"].as_array_mut().unwrap();
    events.truncate(events.len() - 2);
    assert!(events
        .iter()
        .all(|e| e.as_str().unwrap().contains("\"finish_reason\": null")));
    let server = MockServer::start().await;
    mount(&server, &exs).await;
    let m = at(&server, "smollm2").build().unwrap();
    let chunks = collect(
        m.chat_stream(sky().with_options(opts(0.0, 7, 8, &[])))
            .await
            .unwrap(),
    )
    .await;
    let (last, pieces) = chunks.split_last().unwrap();
    assert!(matches!(last, Err(Error::Unavailable(_))), "{chunks:?}");
    assert!(
        pieces.iter().all(|c| matches!(c, Ok(StreamChunk::Text(_)))),
        "{chunks:?}"
    );
    // chat() with a stop (which streams) fails too.
    let e = m
        .chat(sky().with_options(opts(0.0, 7, 8, &["\n\n"])))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn a_stream_with_a_finish_reason_but_no_done_marker_is_whole() {
    let mut exs = exchanges(&["llamacpp_models", "llamacpp_chat_stream"]);
    let events = exs[1]["response"]["sse"].as_array_mut().unwrap();
    assert_eq!(events.pop(), Some(json!("[DONE]")));
    let server = MockServer::start().await;
    mount(&server, &exs).await;
    let m = at(&server, "smollm2").build().unwrap();
    let chunks = collect(
        m.chat_stream(sky().with_options(opts(0.0, 7, 8, &[])))
            .await
            .unwrap(),
    )
    .await;
    let Some(Ok(StreamChunk::Done(done))) = chunks.last() else {
        panic!("no Done: {chunks:?}")
    };
    assert_eq!(done.text, "The sky appears blue because of a process");
    assert_eq!(done.finish, FinishReason::Length);
}

// ---- structured output ---------------------------------------------------------------

#[tokio::test]
async fn openai_json_schema_reply_is_validated() {
    let (server, exs) = replay(&["openai_models", "openai_structured"]).await;
    let schema = exs[1]["request"]["body"]["response_format"]["json_schema"]["schema"].clone();
    let m = openai_at(&server);
    let r = m
        .chat(
            sky()
                .with_schema(schema)
                .with_options(opts(0.0, 7, 64, &[])),
        )
        .await
        .unwrap();
    let want = json!({"answer": "Rayleigh scattering", "confident": true});
    assert_eq!(r.structured, Some(want.clone()));
    assert_eq!(serde_json::from_str::<Value>(&r.text).unwrap(), want);
    assert_eq!(r.finish, FinishReason::Stop);
    assert_sent(&server, &[&exs[0], &exs[1]]).await;

    // The same reply against a schema it breaks: json_schema was honoured, so the server
    // is not asked again (no repair round).
    let strict = json!({"properties": {"answer": {"type": "integer"}}, "required": ["answer"], "type": "object"});
    let mut exs = exs;
    exs[1]["request"]["body"]["response_format"]["json_schema"]["schema"] = strict.clone();
    let server = MockServer::start().await;
    mount(&server, &exs).await;
    let m = openai_at(&server);
    let e = m
        .chat(
            sky()
                .with_schema(strict)
                .with_options(opts(0.0, 7, 64, &[])),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOutput(_)), "{e:?}");
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn llamacpp_refusing_json_schema_gets_json_object_from_then_on() {
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_structured"]).await;
    let schema = exs[1]["request"]["body"]["response_format"]["json_schema"]["schema"].clone();
    assert_eq!(exs[1]["response"]["status"], 500);
    assert_eq!(
        exs[2]["request"]["body"]["response_format"]["type"],
        "json_object"
    );
    let m = at(&server, "smollm2").build().unwrap();
    let want = json!({
        "answer": "The sky blue is a classic example of how science can be both fascinating and confusing. In reality, the answer lies in the context of human perception.",
        "confident": false
    });
    for _ in 0..2 {
        let r = m
            .chat(
                sky()
                    .with_schema(schema.clone())
                    .with_options(opts(0.0, 7, 64, &[])),
            )
            .await
            .unwrap();
        assert_eq!(r.structured, Some(want.clone()));
        assert_eq!(r.usage.prompt_tokens, 83);
        assert_eq!(r.usage.completion_tokens, 42);
    }
    // The refusal is remembered: the second call goes straight to json_object.
    assert_sent(&server, &[&exs[0], &exs[1], &exs[2], &exs[2]]).await;
}

#[tokio::test]
async fn a_reply_that_breaks_the_schema_gets_one_repair_round_then_invalid_output() {
    let (server, exs) = replay(&["llamacpp_models", "llamacpp_structured_repair"]).await;
    let schema = exs[1]["request"]["body"]["response_format"]["json_schema"]["schema"].clone();
    let repair = &exs[3]["request"]["body"]["messages"];
    assert_eq!(
        repair.as_array().unwrap().len(),
        4,
        "reply and complaint appended"
    );
    assert_eq!(repair[2]["role"], "assistant");
    assert_eq!(repair[2]["content"], "{\"year\":2019}");
    assert!(repair[3]["content"].as_str().unwrap().contains("minimum"));
    let m = at(&server, "smollm2").build().unwrap();
    let e = m
        .chat(
            ChatRequest::new(
                "You are a helpful assistant.",
                "In what year did Apollo 11 land on the Moon?",
            )
            .with_schema(schema)
            .with_options(opts(0.0, 7, 32, &[])),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidOutput(m) if m.contains("3000")),
        "{e:?}"
    );
    assert_sent(&server, &[&exs[0], &exs[1], &exs[2], &exs[3]]).await;
}

#[tokio::test]
async fn lmstudio_takes_json_schema_and_is_never_asked_for_json_object() {
    let (server, exs) = replay(&["lmstudio_models", "lmstudio_structured"]).await;
    assert_eq!(
        exs[2]["response"]["status"], 400,
        "LM Studio refuses json_object"
    );
    let schema = exs[1]["request"]["body"]["response_format"]["json_schema"]["schema"].clone();
    let m = at(&server, "qwen2.5-7b-instruct").build().unwrap();
    for _ in 0..2 {
        let r = m
            .chat(
                sky()
                    .with_schema(schema.clone())
                    .with_options(opts(0.0, 7, 64, &[])),
            )
            .await
            .unwrap();
        assert_eq!(
            r.structured,
            Some(json!({"answer": "Rayleigh scattering", "confident": true}))
        );
    }
    assert_sent(&server, &[&exs[0], &exs[1], &exs[1]]).await;
}

// ---- embeddings ----------------------------------------------------------------------

#[tokio::test]
async fn openai_embeddings_come_back_in_input_order() {
    let (server, exs) = replay(&["openai_embed"]).await;
    let data = exs[0]["response"]["json"]["data"].as_array().unwrap();
    assert_ne!(data[0]["index"], 0, "the fixture is shuffled");
    let m = at(&server, "gpt-4o-mini")
        .embed_model("text-embedding-3-small")
        .api_key("sk-test")
        .build()
        .unwrap();
    let v = m
        .embed(&["alpha".into(), "beta".into(), "gamma".into()])
        .await
        .unwrap();
    assert_eq!(v.len(), 3);
    for (i, got) in v.iter().enumerate() {
        let item = data.iter().find(|d| d["index"] == i).unwrap();
        let want: Vec<f64> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_close(got, &want);
    }
    assert_sent(&server, &[&exs[0]]).await;
}

#[tokio::test]
async fn llamacpp_per_token_vectors_are_mean_pooled() {
    let (server, exs) = replay(&["llamacpp_embed"]).await;
    let rows = &exs[0]["response"]["json"]["data"][0]["embedding"];
    assert_eq!(rows.as_array().unwrap().len(), 3, "one vector per token");
    let m = at(&server, "smollm2").build().unwrap();
    let v = m.embed(&["the cat sat".into()]).await.unwrap();
    assert_eq!(v.len(), 1);
    assert_close(&v[0], &mean(rows));
    assert_sent(&server, &[&exs[0]]).await;
}

#[tokio::test]
async fn llamacpp_per_token_batches_are_asked_one_text_at_a_time() {
    let (server, exs) = replay(&["llamacpp_embed_batch"]).await;
    let m = at(&server, "smollm2").build().unwrap();
    let texts = ["the cat sat".to_string(), "on the mat".to_string()];
    let v = m.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 2);
    assert_close(
        &v[0],
        &mean(&exs[1]["response"]["json"]["data"][0]["embedding"]),
    );
    assert_close(
        &v[1],
        &mean(&exs[2]["response"]["json"]["data"][0]["embedding"]),
    );
    // The batch's second text differs from the same text sent alone (the recording shows
    // why): the single answers are the ones kept.
    let batched = mean(&exs[0]["response"]["json"]["data"][1]["embedding"]);
    assert!(v[1]
        .iter()
        .zip(&batched)
        .any(|(a, b)| (f64::from(*a) - b).abs() > 1e-3));
    // Remembered: the next batch goes one text at a time from the start.
    let again = m.embed(&texts).await.unwrap();
    assert_eq!(again, v);
    assert_sent(&server, &[&exs[0], &exs[1], &exs[2], &exs[1], &exs[2]]).await;
}

// ---- retries and errors --------------------------------------------------------------

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_ms_the_server_asks() {
    let (server, exs) = replay(&["openai_models", "openai_rate_limited"]).await;
    // A backoff of an hour, over the timeout, would forbid the retry: only the header's
    // 10 ms lets it happen.
    let m = at(&server, "gpt-4o-mini")
        .api_key("sk-test")
        .retries(2, Duration::from_secs(3600))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let r = m
        .chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap();
    assert_eq!(r.text, "Rayleigh scattering.");
    assert_sent(&server, &[&exs[0], &exs[1], &exs[2]]).await;
}

#[tokio::test]
async fn a_429_is_retried_after_a_retry_after_in_seconds() {
    let mut exs = exchanges(&["openai_models", "openai_rate_limited"]);
    exs[1]["response"]["headers"] = json!({"retry-after": "0"});
    let server = MockServer::start().await;
    mount(&server, &exs).await;
    let m = at(&server, "gpt-4o-mini")
        .api_key("sk-test")
        .retries(2, Duration::from_secs(3600))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    m.chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap();
    assert_sent(&server, &[&exs[0], &exs[1], &exs[2]]).await;
}

#[tokio::test]
async fn a_429_without_retries_left_is_unavailable() {
    let (server, exs) = replay(&["openai_models", "openai_rate_limited"]).await;
    let m = openai_at(&server);
    let e = m
        .chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("Rate limit reached")),
        "{e:?}"
    );
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

#[tokio::test]
async fn a_503_that_outlasts_the_retries_is_unavailable() {
    let (server, exs) = replay(&["openai_models", "openai_overloaded"]).await;
    let m = at(&server, "gpt-4o-mini")
        .api_key("sk-test")
        .retries(2, Duration::from_millis(1))
        .build()
        .unwrap();
    let e = m
        .chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("overloaded")),
        "{e:?}"
    );
    // The first try and two retries.
    assert_sent(&server, &[&exs[0], &exs[1], &exs[1], &exs[1]]).await;
}

#[tokio::test]
async fn a_refused_key_names_the_setting() {
    let (server, exs) = replay(&["openai_invalid_key"]).await;
    let m = OpenAiModelBuilder::with_lookup(format!("{}/v1", server.uri()), "gpt-4o-mini", |k| {
        (k == "AURA_OPENAI_API_KEY").then(|| "sk-wrong".to_string())
    })
    .build()
    .unwrap();
    let e = m.chat(sky()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Backend { message, .. }
            if message.contains("AURA_OPENAI_API_KEY") && message.contains("Incorrect API key")),
        "{e:?}"
    );
    let e = m.info().await.unwrap_err();
    assert!(e.to_string().contains("AURA_OPENAI_API_KEY"), "{e:?}");
    assert_sent(&server, &[&exs[0], &exs[0]]).await;
}

#[tokio::test]
async fn a_model_missing_from_models_is_model_not_found() {
    // OpenAI's list lacks the name.
    let (server, exs) = replay(&["openai_models"]).await;
    let m = at(&server, "gpt-4o-mini-typo")
        .api_key("sk-test")
        .build()
        .unwrap();
    conformance::missing_model(Ok(Arc::new(m) as DynLanguageModel)).await;
    // info(), then chat()'s check; no completion is asked for.
    assert_sent(&server, &[&exs[0], &exs[0]]).await;

    // llama-cpp-python answers any model name with its own model: only /models tells.
    let (server, exs) = replay(&["llamacpp_models"]).await;
    let m = at(&server, "no-such-model").build().unwrap();
    conformance::missing_model(Ok(Arc::new(m) as DynLanguageModel)).await;
    assert_sent(&server, &[&exs[0], &exs[0]]).await;
}

#[tokio::test]
async fn openai_model_not_found_on_chat_is_model_not_found() {
    let (server, exs) = replay(&["openai_model_not_found"]).await;
    let m = at(&server, "gpt-4-32k").api_key("sk-test").build().unwrap();
    let e = m
        .chat(sky().with_options(opts(0.5, 42, 64, &[])))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ModelNotFound(_)), "{e:?}");
    // Without /models, info() says it cannot tell rather than guessing.
    let e = m.info().await.unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    assert_sent(&server, &[&exs[0], &exs[1], &exs[0]]).await;
}

/// Sends `request` to a server replaying `fixtures` (its `/models` and one refusal) and
/// checks the refusal is read as a context-window error with these figures.
async fn context_case(
    fixtures: [&str; 2],
    model: &str,
    request: ChatRequest,
    figures: (usize, usize),
) {
    let (server, exs) = replay(&fixtures).await;
    // The OpenAI recordings carry the bearer token the others lack.
    let mut model = at(&server, model);
    if fixtures[0].starts_with("openai") {
        model = model.api_key("sk-test");
    }
    let e = model.build().unwrap().chat(request).await.unwrap_err();
    assert!(
        matches!(e, Error::ContextTooLong { tokens, limit } if (tokens, limit) == figures),
        "{fixtures:?}: {e:?}"
    );
    assert_sent(&server, &[&exs[0], &exs[1]]).await;
}

fn report(max_tokens: u32) -> ChatRequest {
    ChatRequest::new(
        "You are a helpful assistant.",
        "Summarise the attached report.",
    )
    .with_options(opts(0.0, 7, max_tokens, &[]))
}

#[tokio::test]
async fn openai_context_length_error_is_context_too_long() {
    let request = sky().with_options(opts(0.5, 42, 64, &[]));
    context_case(
        ["openai_models", "openai_context_too_long"],
        "gpt-4o-mini",
        request,
        (130_211, 128_000),
    )
    .await;
}

#[tokio::test]
async fn vllm_context_length_error_is_context_too_long() {
    let model = "HuggingFaceTB/SmolLM2-135M-Instruct";
    context_case(
        ["vllm_models", "vllm_context_too_long"],
        model,
        report(100),
        (2100, 2048),
    )
    .await;
}

/// Recent vLLM names `max_tokens` first when the prompt fits but prompt + max_tokens does
/// not: the window is 2048, the request 1600 + 512.
#[tokio::test]
async fn vllm_max_tokens_too_large_is_context_too_long_with_the_right_figures() {
    let model = "HuggingFaceTB/SmolLM2-135M-Instruct";
    context_case(
        ["vllm_models", "vllm_max_tokens_too_large"],
        model,
        report(512),
        (2112, 2048),
    )
    .await;
}

#[tokio::test]
async fn llamacpp_context_length_error_is_context_too_long() {
    let request = ChatRequest::new("You are a helpful assistant.", "word ".repeat(2100))
        .with_options(opts(0.0, 7, 16, &[]));
    context_case(
        ["llamacpp_models", "llamacpp_context_too_long"],
        "smollm2",
        request,
        (2137, 2048),
    )
    .await;
}

/// A 401 on /embeddings is a refused key, wherever the server listens: a missing
/// endpoint is told by the reply's status, not by "404" in a text that holds the base
/// URL (which, on this port, has "404" in it).
#[tokio::test]
async fn a_refused_key_on_embeddings_is_not_a_missing_endpoint_on_any_port() {
    let Some(listener) =
        (40400..40500).find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
    else {
        return; // no free port with "404" in it; nothing to show
    };
    let server = MockServer::builder().listener(listener).start().await;
    assert!(server.uri().contains("404"), "{}", server.uri());
    let mut ex = exchanges(&["openai_embed"]).remove(0);
    ex["request"]["headers"]["authorization"] = json!("Bearer sk-wrong");
    ex["response"] = exchanges(&["openai_invalid_key"])[0]["response"].clone();
    mount(&server, std::slice::from_ref(&ex)).await;
    let m = at(&server, "gpt-4o-mini")
        .embed_model("text-embedding-3-small")
        .api_key("sk-wrong")
        .build()
        .unwrap();
    let e = m
        .embed(&["alpha".into(), "beta".into(), "gamma".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Backend { message, .. } if message.contains("AURA_OPENAI_API_KEY")),
        "{e:?}"
    );
    assert_sent(&server, &[&ex]).await;
}

// ---- info ----------------------------------------------------------------------------

#[tokio::test]
async fn vllm_max_model_len_is_the_context_length() {
    let (server, exs) = replay(&["vllm_models"]).await;
    let m = at(&server, "HuggingFaceTB/SmolLM2-135M-Instruct")
        .build()
        .unwrap();
    let info = m.info().await.unwrap();
    assert_eq!(info.name, "HuggingFaceTB/SmolLM2-135M-Instruct");
    assert_eq!(info.context_length, 2048);
    assert_eq!(info.details["context_length_source"], "server");
    assert_eq!(info.details["owned_by"], "vllm");
    // A configured window wins over the server's.
    let m = at(&server, "HuggingFaceTB/SmolLM2-135M-Instruct")
        .context_length(1024)
        .build()
        .unwrap();
    let info = m.info().await.unwrap();
    assert_eq!(info.context_length, 1024);
    assert_eq!(info.details["context_length_source"], "configured");
    assert_sent(&server, &[&exs[0], &exs[0]]).await;
}

#[tokio::test]
async fn a_server_that_does_not_say_gets_the_assumed_or_configured_window() {
    for (name, model) in [
        ("lmstudio_models", "qwen2.5-7b-instruct"),
        ("llamacpp_models", "smollm2"),
    ] {
        let (server, _) = replay(&[name]).await;
        let info = at(&server, model).build().unwrap().info().await.unwrap();
        assert_eq!(info.context_length, ASSUMED_CONTEXT_LENGTH, "{name}");
        assert_eq!(info.details["context_length_source"], "assumed", "{name}");
        let info = at(&server, model)
            .context_length(32_768)
            .build()
            .unwrap()
            .info()
            .await
            .unwrap();
        assert_eq!(info.context_length, 32_768, "{name}");
    }
}

// ---- no server -----------------------------------------------------------------------

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = OpenAiModelBuilder::with_lookup(format!("http://127.0.0.1:{port}/v1"), "m", |_| None)
        .build()
        .unwrap();
    let e = m.chat(sky()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let e = m.chat_stream(sky()).await.err().unwrap();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let e = m.info().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let e = m.embed(&["x".into()]).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn builder_trims_the_url() {
    let m = OpenAiModel::builder("http://127.0.0.1:9/v1/ ", "m")
        .build()
        .unwrap();
    assert_eq!(m.base_url(), "http://127.0.0.1:9/v1");
    assert_eq!(m.model_name(), "m");
}
