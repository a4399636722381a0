//! Structured calls with one repair round: the parse/validation error is fed back once.

use std::time::Instant;

use serde_json::Value;

use crate::{ChatMessage, ChatRequest, DynLanguageModel, Error, Result, Usage};

/// What a structured call produced, successful or not.
pub(crate) struct StructuredCall<T> {
    pub result: Result<(T, Value)>,
    pub text: String,
    pub model: String,
    pub attempts: u32,
    pub usage: Usage,
    pub model_us: u64,
}

/// Reads JSON from a reply: the backend's parsed value, or the text (code fences and
/// chatter around the outermost object are tolerated).
pub(crate) fn loose_json(
    structured: Option<&Value>,
    text: &str,
) -> std::result::Result<Value, String> {
    if let Some(v) = structured {
        return Ok(v.clone());
    }
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Ok(v);
    }
    match (t.find('{'), t.rfind('}')) {
        (Some(a), Some(b)) if a < b => {
            serde_json::from_str(&t[a..=b]).map_err(|e| format!("the reply is not valid JSON: {e}"))
        }
        _ => Err("the reply contains no JSON object".into()),
    }
}

fn add_usage(total: &mut Usage, u: &Usage) {
    total.prompt_tokens += u.prompt_tokens;
    total.completion_tokens += u.completion_tokens;
    total.prompt_ms += u.prompt_ms;
    total.generation_ms += u.generation_ms;
}

/// Asks `model` for JSON, validates it with `validate`, and on failure asks once more
/// with the error fed back. `what` names the call in the final error.
pub(crate) async fn chat_structured<T>(
    model: &DynLanguageModel,
    request: ChatRequest,
    what: &str,
    validate: impl Fn(&Value) -> std::result::Result<T, String>,
) -> StructuredCall<T> {
    let mut call = StructuredCall {
        result: Err(Error::InvalidOutput(String::new())),
        text: String::new(),
        model: String::new(),
        attempts: 0,
        usage: Usage::default(),
        model_us: 0,
    };
    let mut request = request;
    let mut last_error = String::new();
    for round in 0..2 {
        if round == 1 {
            if !call.text.is_empty() {
                request
                    .messages
                    .push(ChatMessage::assistant(call.text.clone()));
            }
            request.messages.push(ChatMessage::user(format!(
                "That reply was invalid: {last_error}. Reply again with only the corrected JSON object."
            )));
        }
        call.attempts += 1;
        let started = Instant::now();
        let reply = model.chat(request.clone()).await;
        call.model_us += started.elapsed().as_micros() as u64;
        match reply {
            Ok(resp) => {
                add_usage(&mut call.usage, &resp.usage);
                call.model = resp.model.clone();
                call.text = resp.text.clone();
                match loose_json(resp.structured.as_ref(), &resp.text).and_then(|v| {
                    let t = validate(&v)?;
                    Ok((t, v))
                }) {
                    Ok(ok) => {
                        call.result = Ok(ok);
                        return call;
                    }
                    Err(e) => last_error = e,
                }
            }
            Err(Error::InvalidOutput(e)) => {
                call.text.clear();
                last_error = e;
            }
            Err(other) => {
                call.result = Err(other);
                return call;
            }
        }
    }
    call.result = Err(Error::InvalidOutput(format!(
        "{what}: still invalid after one repair round: {last_error}"
    )));
    call
}
