//! The behaviour suite every [`LanguageModel`] backend runs (feature `conformance`).
//!
//! Each check is a plain async function over `&dyn LanguageModel` that panics with a
//! clear message when the backend misbehaves; [`run_all`] runs every check that the
//! backend's [`ModelCapabilities`] say applies. Checks work with any model, however
//! small: they compare the backend with itself (same seed → same reply; a reply cut
//! at a stop sequence taken from that same reply) rather than expect particular words.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test suite: panics are its reports

use futures::StreamExt;
use serde_json::{json, Value};

use crate::model::*;
use crate::schema::validate;
use crate::{Error, Result};

fn greedy(max_tokens: u32) -> GenerationOptions {
    GenerationOptions {
        temperature: 0.0,
        seed: Some(1),
        max_tokens,
        stop: Vec::new(),
    }
}

/// `info()` names the model and its context window.
pub async fn info(model: &dyn LanguageModel) {
    let info = model.info().await.expect("info() of an available model");
    assert!(!info.name.is_empty(), "info().name is empty");
    assert!(info.context_length > 0, "info().context_length is 0");
}

/// A chat gets a non-empty reply with sensible usage figures.
pub async fn chat(model: &dyn LanguageModel) {
    let request = ChatRequest::new(
        "You are a helpful assistant. Answer briefly.",
        "What is the capital of France?",
    )
    .with_options(greedy(32));
    let r = model.chat(request).await.expect("chat()");
    assert!(!r.text.trim().is_empty(), "chat() replied with nothing");
    assert!(!r.model.is_empty(), "chat() reply names no model");
    assert!(r.structured.is_none(), "no schema, yet structured output");
    assert!(r.usage.prompt_tokens > 0, "usage.prompt_tokens is 0");
    assert!(
        r.usage.completion_tokens > 0,
        "usage.completion_tokens is 0"
    );
    assert!(
        r.usage.completion_tokens <= 32 || r.finish != FinishReason::Length,
        "more tokens than max_tokens"
    );
    // A whole conversation (system, user, assistant, user) is accepted too.
    let mut request = ChatRequest::new("Answer briefly.", "Name a colour.");
    request.messages.push(ChatMessage::assistant(r.text.trim()));
    request
        .messages
        .push(ChatMessage::user("Name another one."));
    request.options = greedy(16);
    let r = model.chat(request).await.expect("chat() with history");
    assert!(
        !r.text.trim().is_empty(),
        "chat() with history replied with nothing"
    );
    // `max_tokens` is honoured.
    let r = model
        .chat(
            ChatRequest::new("You are a storyteller.", "Tell me a long story.")
                .with_options(greedy(5)),
        )
        .await
        .expect("chat() with max_tokens 5");
    assert!(
        r.usage.completion_tokens <= 5,
        "max_tokens 5 gave {} tokens",
        r.usage.completion_tokens
    );
    if r.usage.completion_tokens == 5 {
        assert_eq!(
            r.finish,
            FinishReason::Length,
            "a reply cut at max_tokens must say Length"
        );
    }
}

/// A stop sequence cuts the reply just before it, and the reply says so.
pub async fn stop_sequences(model: &dyn LanguageModel) {
    let request = ChatRequest::new(
        "You are a helpful assistant.",
        "Write three sentences about the sea.",
    )
    .with_options(greedy(32));
    // The reference reply is the second of two: a server that reuses its cached prompt
    // (llama-cpp-python) evaluates a repeated prompt differently from a new one, and that
    // float-level difference can change even a greedy reply. The second call is made in
    // the same state as the call with the stop sequence that follows it.
    model.chat(request.clone()).await.expect("chat()");
    let full = model.chat(request.clone()).await.expect("chat()").text;
    // A stop sequence taken from the middle of the reply itself.
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    assert!(
        chars.len() >= 8,
        "reply too short to test stop sequences: {full:?}"
    );
    let start = chars[chars.len() / 2].0;
    let end = chars.get(chars.len() / 2 + 3).map_or(full.len(), |c| c.0);
    let stop = full[start..end].to_string();
    let expected = &full[..full.find(&stop).unwrap_or(start)];
    let mut with_stop = request;
    with_stop.options.stop = vec!["\u{0}never\u{0}".into(), stop.clone()];
    let r = model
        .chat(with_stop)
        .await
        .expect("chat() with a stop sequence");
    assert_eq!(
        r.text, expected,
        "stop sequence {stop:?} did not cut {full:?} right"
    );
    assert_eq!(
        r.finish,
        FinishReason::StopSequence,
        "finish for a stop sequence"
    );
}

/// The same seed gives the same reply, also when sampling with a temperature.
pub async fn seed_determinism(model: &dyn LanguageModel) {
    if !model.capabilities().deterministic_seed {
        return;
    }
    let request = ChatRequest::new("You are a poet.", "Write a short poem about rain.")
        .with_options(GenerationOptions {
            temperature: 0.9,
            seed: Some(4242),
            max_tokens: 32,
            stop: Vec::new(),
        });
    let a = model
        .chat(request.clone())
        .await
        .expect("chat() with a seed");
    // Something else in between, so a backend cannot just replay its last reply.
    let _ = model
        .chat(ChatRequest::new("Be brief.", "Say hello.").with_options(greedy(4)))
        .await
        .expect("chat()");
    let b = model.chat(request).await.expect("chat() with a seed");
    assert_eq!(a.text, b.text, "same seed, different replies");
}

/// Schemas the structured-output check uses: the shapes AURA's personas ask for.
pub fn sample_schemas() -> Vec<Value> {
    vec![
        json!({
            "type": "object",
            "properties": {
                "answer": {"type": "string", "maxLength": 40},
                "confidence": {"type": "number"},
                "certain": {"type": "boolean"}
            },
            "required": ["answer", "confidence", "certain"]
        }),
        json!({
            "type": "object",
            "properties": {
                "selector": {"type": "string", "enum": ["fibonacci", "factorial", "reverse"]},
                "arity": {"type": "integer"},
                "steps": {"type": "array", "items": {"type": "string", "maxLength": 30}, "minItems": 1, "maxItems": 3}
            },
            "required": ["selector", "arity", "steps"]
        }),
        json!({
            "type": "object",
            "properties": {
                "method": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": 20},
                        "source": {"type": "string", "maxLength": 80}
                    },
                    "required": ["name", "source"]
                },
                "tests": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 2}
            },
            "required": ["method", "tests"]
        }),
    ]
}

/// A reply to a request with a schema always carries JSON valid against it.
pub async fn structured_output(model: &dyn LanguageModel) {
    if !model.capabilities().structured_output {
        return;
    }
    let prompts = [
        "Is water wet? Reply in JSON.",
        "Plan a method that computes fibonacci numbers. Reply in JSON.",
        "Write a Python method that doubles a number, with tests. Reply in JSON.",
    ];
    // Greedy for the first schema, sampling with a temperature for the others.
    for (i, schema) in sample_schemas().into_iter().enumerate() {
        let (temperature, seed) = if i == 0 {
            (0.0, 1)
        } else {
            (0.8, 7 + i as u64)
        };
        let request = ChatRequest::new("You reply only with JSON.", prompts[i])
            .with_schema(schema.clone())
            .with_options(GenerationOptions {
                temperature,
                seed: Some(seed),
                max_tokens: 256,
                stop: Vec::new(),
            });
        let r = model
            .chat(request)
            .await
            .unwrap_or_else(|e| panic!("structured chat (schema {i}, t={temperature}): {e}"));
        let value = r
            .structured
            .unwrap_or_else(|| panic!("schema {i}: no structured value in the reply"));
        validate(&schema, &value).unwrap_or_else(|e| panic!("schema {i}: {e}: {value}"));
        let reparsed: Value = serde_json::from_str(r.text.trim())
            .unwrap_or_else(|e| panic!("schema {i}: text is not the JSON: {e}"));
        assert_eq!(reparsed, value, "schema {i}: text and structured differ");
    }
    // An unusable schema is a request error, not a model error.
    let bad = ChatRequest::new("s", "u").with_schema(json!({"type": 12}));
    assert!(
        matches!(model.chat(bad).await, Err(Error::Invalid(_))),
        "an unusable schema must be Error::Invalid"
    );
}

/// Embeddings: one vector per text, all of the advertised dimension, deterministic.
pub async fn embeddings(model: &dyn LanguageModel) {
    if !model.capabilities().embeddings {
        return;
    }
    let dim = model.info().await.expect("info()").embedding_dim;
    let texts: Vec<String> = [
        "the cat sat on the mat",
        "fibonacci numbers",
        "the cat sat on the mat",
    ]
    .map(String::from)
    .to_vec();
    let v = model.embed(&texts).await.expect("embed()");
    assert_eq!(v.len(), 3, "one vector per text");
    let n = v[0].len();
    assert!(n > 0, "empty embedding");
    if let Some(dim) = dim {
        assert_eq!(
            n as u32, dim,
            "embedding size differs from info().embedding_dim"
        );
    }
    assert!(
        v.iter().all(|e| e.len() == n),
        "embeddings of different sizes"
    );
    assert!(
        v.iter().flatten().all(|x| x.is_finite()),
        "non-finite embedding values"
    );
    assert!(v[0].iter().any(|x| *x != 0.0), "all-zero embedding");
    let close = v[0].iter().zip(&v[2]).all(|(a, b)| (a - b).abs() < 1e-4);
    assert!(close, "the same text embedded twice differs");
    assert!(
        model.embed(&[]).await.expect("embed([])").is_empty(),
        "embed([]) must be empty"
    );
}

/// Scoring: a finite log-probability of at most 0 over at least one token, the same
/// twice, and the model's own greedy reply likelier per token than that reply's
/// characters reversed. A backend that cannot score says `Unsupported`.
pub async fn scoring(model: &dyn LanguageModel) {
    let request = ChatRequest::new("You are a helpful assistant.", "Name three colours.")
        .with_options(greedy(12));
    let messages = request.messages.clone();
    if !model.capabilities().scoring {
        assert!(
            matches!(
                model.score(&messages, "red").await,
                Err(Error::Unsupported(_))
            ),
            "a backend that does not score must say Error::Unsupported"
        );
        return;
    }
    let greedy_reply = model.chat(request).await.expect("chat()").text;
    let fluent = greedy_reply.trim();
    assert!(!fluent.is_empty(), "the greedy reply is empty");
    let (sum, count) = model.score(&messages, fluent).await.expect("score()");
    assert!(
        sum.is_finite() && sum <= 0.0,
        "score {sum} is not a log-probability"
    );
    assert!(count >= 1, "a reply scores over at least one token");
    let (again, _) = model.score(&messages, fluent).await.expect("score() again");
    assert!(
        (sum - again).abs() < 1e-3,
        "the same reply scored {sum}, then {again}"
    );
    let garbled: String = fluent.chars().rev().collect();
    let (g_sum, g_count) = model.score(&messages, &garbled).await.expect("score()");
    assert!(
        sum / count as f64 > g_sum / g_count.max(1) as f64,
        "the greedy reply {fluent:?} is no likelier per token than {garbled:?}"
    );
}

/// Streaming: text pieces in order, then one `Done` whose text is their concatenation.
pub async fn streaming(model: &dyn LanguageModel) {
    if !model.capabilities().streaming {
        return;
    }
    let request = ChatRequest::new("You are a helpful assistant.", "Count from one to five.")
        .with_options(greedy(16));
    let mut stream = model
        .chat_stream(request.clone())
        .await
        .expect("chat_stream()");
    let mut pieces = String::new();
    let mut done = None;
    let mut n_text = 0;
    while let Some(chunk) = stream.next().await {
        match chunk.expect("stream chunk") {
            StreamChunk::Text(t) => {
                assert!(done.is_none(), "text after Done");
                pieces.push_str(&t);
                n_text += 1;
            }
            StreamChunk::Done(r) => {
                assert!(done.is_none(), "two Done chunks");
                done = Some(r);
            }
        }
    }
    let done = done.expect("the stream ended without Done");
    assert!(n_text > 0, "no text chunks before Done");
    assert_eq!(
        done.text, pieces,
        "Done.text is not the concatenation of the chunks"
    );
    // Greedy streaming and greedy chat agree.
    let whole = model.chat(request).await.expect("chat()");
    assert_eq!(whole.text, done.text, "stream and chat replies differ");
}

/// A backend configured with a model that does not exist says `ModelNotFound`, either
/// when it is built (`built` is that result) or on its first `info()`/`chat()`.
pub async fn missing_model(built: Result<DynLanguageModel>) {
    let model = match built {
        Err(Error::ModelNotFound(_)) => return,
        Err(e) => panic!("a missing model must be Error::ModelNotFound, got {e:?}"),
        Ok(m) => m,
    };
    let e = model.info().await.expect_err("info() of a missing model");
    assert!(
        matches!(e, Error::ModelNotFound(_)),
        "info(): expected ModelNotFound, got {e:?}"
    );
    let e = model
        .chat(ChatRequest::new("s", "hello"))
        .await
        .expect_err("chat() with a missing model");
    assert!(
        matches!(e, Error::ModelNotFound(_)),
        "chat(): expected ModelNotFound, got {e:?}"
    );
}

/// Runs every check the backend's capabilities call for (not [`missing_model`], which
/// needs a differently configured backend).
pub async fn run_all(model: &dyn LanguageModel) {
    info(model).await;
    chat(model).await;
    stop_sequences(model).await;
    seed_determinism(model).await;
    structured_output(model).await;
    embeddings(model).await;
    scoring(model).await;
    streaming(model).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripted_model_passes_what_it_can() {
        let m = crate::ScriptedModel::from_fn(|_| Ok("hello there, general kenobi".into()));
        info(&m).await;
        stop_sequences(&m).await;
        seed_determinism(&m).await;
        embeddings(&m).await;
        scoring(&m).await;
        streaming(&m).await;
    }
}
