//! The fuzzers' corpora as regression tests: every input cargo-fuzz kept, minimised and
//! packed (a crash, once fixed, is added to its target's corpus), runs again on every
//! test run through its target's body, without the fuzzer. Here, because this crate
//! sees every crate the targets exercise: the guard, the cognition crate, the gateway.
#![allow(clippy::expect_used)] // test fixtures: a broken corpus should fail loudly

use std::io::Read;
use std::path::PathBuf;

use aura_cognition::{MethodCandidate, Plan};
use aura_guard::Guard;
use tower::ServiceExt;

// Each target's own reading of an input, compiled here as it is there.
#[path = "../../../aura-guard/fuzz/fuzz_targets/audit_input.rs"]
mod audit_input;
#[path = "../../../aura-gateway/fuzz/fuzz_targets/request_input.rs"]
mod request_input;

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
    let mut audited = 0;
    for input in corpus("aura-guard", "audit") {
        let Some((src, shape)) = audit_input::shaped(&input) else {
            continue;
        };
        let v = guard.audit_shape(src, &shape);
        assert_eq!(v.accepted, v.violations.is_empty(), "{src:?}");
        audited += 1;
    }
    assert!(audited > 0, "the corpus holds auditable inputs");
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
            let v = guard.audit_method(&normalized.source, "m");
            assert_eq!(v.accepted, v.violations.is_empty(), "{text:?}");
        }
    }
    assert!(read > 0, "the corpus holds readable candidates");
}

/// The `request` target's body: the input as a request through the whole router, over
/// an in-memory store, no sandbox, no model and no context providers. No 5xx but 503.
#[tokio::test]
async fn the_request_corpus_gets_no_server_error() {
    let router = request_input::fresh_router().await;
    let mut sent = 0;
    for input in corpus("aura-gateway", "request") {
        let Some(request) = request_input::request(&input) else {
            continue;
        };
        let target = request.uri().to_string();
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
