//! Fuzzes the whole audit (parser, walker, format reader, shape check) with arbitrary
//! UTF-8. The first byte picks the shape, so each execution is one audit and every
//! shape is reached. Any panic or stack overflow is a bug.
#![no_main]

use aura_guard::{Guard, Shape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(rest) else {
        return;
    };
    let shape = match pick % 4 {
        0 => Shape::Module,
        1 => Shape::AnyMethod,
        2 => Shape::Tests,
        _ => Shape::Method {
            selector: "m".to_owned(),
        },
    };
    let v = Guard::default().audit_shape(src, &shape);
    assert_eq!(v.accepted, v.violations.is_empty());
});
