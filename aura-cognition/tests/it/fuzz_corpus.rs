//! The fuzzers' corpora as regression tests: every reply cargo-fuzz kept, minimised and
//! packed (a crash, once fixed, is added to its target's corpus), is read again on every
//! test run, without the fuzzer.
#![allow(clippy::expect_used)] // test fixtures: a broken corpus should fail loudly

use std::path::PathBuf;

use aura_cognition::{MethodCandidate, Plan};

fn corpus(target: &str) -> Vec<String> {
    use std::io::Read;
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let file = root.join("fuzz").join(format!("{target}.corpus.gz"));
    let packed = std::fs::File::open(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .read_to_end(&mut bytes)
        .expect("a gzip file");
    // Records of a 4-byte little-endian length and the input (scripts/fuzz-corpus.py).
    let mut inputs = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (input, tail) = tail.split_at((u32::from_le_bytes(*len) as usize).min(tail.len()));
        inputs.extend(String::from_utf8(input.to_vec()).ok());
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

#[test]
fn the_plan_corpus_reads_without_panicking() {
    let mut plans = 0;
    for text in corpus("plan_reply") {
        if let Ok(Plan::Learn { selector, .. } | Plan::Invoke { selector, .. }) =
            Plan::from_reply(&text)
        {
            assert!(!selector.is_empty(), "{text:?}");
            plans += 1;
        }
    }
    assert!(plans > 0, "the corpus holds readable plans");
}

#[test]
fn the_candidate_corpus_reads_without_panicking() {
    let found = corpus("candidate_reply")
        .iter()
        .filter(|text| MethodCandidate::from_reply(text).is_ok())
        .count();
    assert!(found > 0, "the corpus holds readable candidates");
}
