//! The fuzzers' corpora as regression tests: every input cargo-fuzz kept, minimised and
//! packed (a crash, once fixed, is added to its target's corpus), runs again on every
//! test run through its target's body, without the fuzzer. Here, because this crate
//! sees every crate the targets exercise: the guard, the cognition crate, the gateway.
#![allow(clippy::expect_used)] // test fixtures: a broken corpus should fail loudly

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use aura_cognition::{ContextIngestor, MethodCandidate, Plan};
use aura_core::Runtime;
use aura_guard::{Guard, Shape};
use aura_sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};
use aura_store::SqliteStore;
use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;

/// The packed corpus of `crate_dir/fuzz/<target>.corpus.gz` (`scripts/fuzz-corpus.py`):
/// gzip over records of a 4-byte little-endian length and the input.
fn corpus(crate_dir: &str, target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let file = root
        .join("..")
        .join(crate_dir)
        .join("fuzz")
        .join(format!("{target}.corpus.gz"));
    let packed = std::fs::File::open(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .read_to_end(&mut bytes)
        .expect("a gzip file");
    let mut inputs = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        assert!(tail.len() >= len, "{}: a truncated record", file.display());
        let (input, tail) = tail.split_at(len);
        inputs.push(input.to_vec());
        rest = tail;
    }
    assert!(
        inputs.len() >= 100,
        "{}: only {} inputs",
        file.display(),
        inputs.len()
    );
    inputs
}

/// The UTF-8 inputs of a corpus (the reply targets skip the others).
fn texts(crate_dir: &str, target: &str) -> Vec<String> {
    corpus(crate_dir, target)
        .into_iter()
        .filter_map(|input| String::from_utf8(input).ok())
        .collect()
}

/// The `audit` target's body: the first byte picks the shape.
#[test]
fn the_audit_corpus_audits_without_panicking() {
    let guard = Guard::default();
    for input in corpus("aura-guard", "audit") {
        let Some((&pick, rest)) = input.split_first() else {
            continue;
        };
        let Ok(src) = std::str::from_utf8(rest) else {
            continue;
        };
        let shape = match pick % 4 {
            0 => Shape::Module,
            1 => Shape::AnyMethod,
            2 => Shape::Tests,
            _ => Shape::Method {
                selector: "m".to_owned(),
            },
        };
        let v = guard.audit_shape(src, &shape);
        assert_eq!(v.accepted, v.violations.is_empty(), "{src:?}");
    }
}

/// The `plan_reply` target's body.
#[test]
fn the_plan_corpus_reads_without_panicking() {
    let mut plans = 0;
    for text in texts("aura-cognition", "plan_reply") {
        if let Ok(Plan::Learn { selector, .. } | Plan::Invoke { selector, .. }) =
            Plan::from_reply(&text)
        {
            assert!(!selector.is_empty(), "{text:?}");
            plans += 1;
        }
    }
    assert!(plans > 0, "the corpus holds readable plans");
}

/// The `candidate_reply` target's body: the candidate read from the reply, then the
/// guard's normalisation and audit.
#[test]
fn the_candidate_corpus_reads_and_normalises_without_panicking() {
    let guard = Guard::default();
    let mut read = 0;
    for text in texts("aura-cognition", "candidate_reply") {
        let Ok(candidate) = MethodCandidate::from_reply(&text) else {
            continue;
        };
        read += 1;
        if let Ok(normalized) = guard.normalize(&candidate.source, "m") {
            let _ = guard.audit_method(&normalized.source, "m");
        }
    }
    assert!(read > 0, "the corpus holds readable candidates");
}

/// The `request` target's sandbox: never there, so a call is refused as `Unavailable`.
#[derive(Debug)]
struct Absent;

#[async_trait::async_trait]
impl Sandbox for Absent {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("absent")
    }
    async fn execute(&self, _: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        Err(aura_sandbox::Error::Unavailable(
            "fuzzing: no sandbox".into(),
        ))
    }
}

/// The `request` target's body: the input as a request through the whole router, over
/// an in-memory store, no sandbox, no model and no context providers. No 5xx but 503.
#[tokio::test]
async fn the_request_corpus_gets_no_server_error() {
    let runtime = Runtime::builder()
        .store(Arc::new(
            SqliteStore::open_in_memory().await.expect("store"),
        ))
        .sandbox(Arc::new(Absent))
        .without_model()
        .without_forge()
        .context(Arc::new(ContextIngestor::builder().build()))
        .build()
        .await
        .expect("runtime");
    let router = aura_gateway::router(runtime, aura_gateway::GatewayConfig::default());
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    let mut sent = 0;
    for input in corpus("aura-gateway", "request") {
        // [method and content-type byte] path-and-query '\n' body
        let Some((&pick, rest)) = input.split_first() else {
            continue;
        };
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (target, body) = rest.split_at(split);
        let body = body.get(1..).unwrap_or_default().to_vec();
        let Ok(target) = std::str::from_utf8(target) else {
            continue;
        };
        let mut request = Request::builder().method(methods[usize::from(pick % 5)].clone());
        if pick & 0x80 == 0 {
            request = request.header("content-type", "application/json");
        }
        let uri = format!("/{}", target.trim_start_matches('/'));
        let Ok(request) = request.uri(uri).body(Body::from(body)) else {
            continue;
        };
        let status = router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible")
            .status();
        assert!(
            !status.is_server_error() || status.as_u16() == 503,
            "{target:?} got {status}"
        );
        sent += 1;
    }
    assert!(sent >= 100, "only {sent} inputs were requests");
}
