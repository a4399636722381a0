//! The fuzzers' corpora as regression tests: every input cargo-fuzz kept, minimised and
//! packed (a crash, once fixed, is added to its target's corpus), runs again on every
//! test run, without the fuzzer.
#![allow(clippy::expect_used)] // test fixtures: a broken corpus should fail loudly

use std::path::PathBuf;

use aura_guard::{Guard, Shape};

fn corpus(crate_dir: &str, target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let file = root
        .join("..")
        .join(crate_dir)
        .join("fuzz")
        .join(format!("{target}.corpus.gz"));
    let inputs = unpack(&file);
    assert!(
        inputs.len() >= 100,
        "{}: only {} inputs",
        file.display(),
        inputs.len()
    );
    inputs
}

/// The packed corpus (`scripts/fuzz-corpus.py`): gzip over records of a 4-byte
/// little-endian length and the input.
fn unpack(file: &std::path::Path) -> Vec<Vec<u8>> {
    use std::io::Read;
    let packed = std::fs::File::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
    inputs
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

/// The model replies the `candidate_reply` target kept, normalised as code.
#[test]
fn the_candidate_corpus_normalises_without_panicking() {
    let guard = Guard::default();
    for input in corpus("aura-cognition", "candidate_reply") {
        if let Ok(text) = std::str::from_utf8(&input) {
            if let Ok(n) = guard.normalize(text, "m") {
                let _ = guard.audit_method(&n.source, "m");
            }
        }
    }
}
