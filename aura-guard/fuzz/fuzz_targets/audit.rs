//! Fuzzes the whole audit (parser, walker, format reader, shape check) with arbitrary
//! UTF-8. The first byte picks the shape (`audit_input.rs`), so each execution is one
//! audit and every shape is reached. Any panic or stack overflow is a bug.
#![no_main]

mod audit_input;

use aura_guard::Guard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((src, shape)) = audit_input::shaped(data) {
        let v = Guard::default().audit_shape(src, &shape);
        assert_eq!(v.accepted, v.violations.is_empty());
    }
});
