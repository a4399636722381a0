//! Fuzzes the whole audit (parser, walker, format reader, shape check) with
//! arbitrary UTF-8 under every shape. Any panic or stack overflow is a bug.
#![no_main]

use aura_guard::{Guard, Shape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let guard = Guard::default();
        for shape in [
            Shape::Module,
            Shape::AnyMethod,
            Shape::Tests,
            Shape::Method {
                selector: "m".to_owned(),
            },
        ] {
            let v = guard.audit_shape(src, &shape);
            assert_eq!(v.accepted, v.violations.is_empty());
        }
    }
});
