//! Fuzzes the planner's reading of a model's reply: the JSON object found in the text
//! (fences and chatter tolerated) and the plan's own checks. Any panic is a bug; a plan
//! it accepts names an identifier the store accepts as a selector.
#![no_main]

use aura_cognition::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Plan::Learn { selector, .. } | Plan::Invoke { selector, .. }) =
            Plan::from_reply(text)
        {
            assert!(!selector.is_empty());
        }
    }
});
