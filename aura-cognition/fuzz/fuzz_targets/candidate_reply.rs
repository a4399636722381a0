//! Fuzzes the learn cycle's reading of a model's code reply: the candidate found in it
//! (code fences, bare code or JSON) and the guard's normalisation into a method. Any
//! panic is a bug, and whatever normalisation accepts must pass the guard's audit.
#![no_main]

use aura_cognition::MethodCandidate;
use aura_guard::Guard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(candidate) = MethodCandidate::from_reply(text) else {
        return;
    };
    let guard = Guard::default();
    if let Ok(normalized) = guard.normalize(&candidate.source, "m") {
        let _ = guard.audit_method(&normalized.source, "m");
    }
});
