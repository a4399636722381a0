//! `learn_suite --answer`: a missed request's second chance, told one hidden check as
//! an example and scored on the others.
#![allow(clippy::expect_used)] // a jail that cannot be built should fail the test loudly

use std::sync::Arc;

use aura_benches::suite::{self, Case, Status};
use aura_core::cognition::{CascadeMode, DynLanguageModel, ScriptedModel};
use aura_core::sandbox::{DynSandbox, JailSandbox};
use aura_core::Config;
use serde_json::json;

const OFF_BY_ONE: &str = "```python\ndef fibonacci(n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nassert fibonacci(3) == 3\n```";
const RIGHT: &str = "```python\ndef fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nassert fibonacci(10) == 55\n```";

fn case() -> Case {
    Case {
        request: "teach yourself to calculate the fibonacci sequence".into(),
        name: "fibonacci".into(),
        checks: vec![(vec![json!(10)], json!(55)), (vec![json!(12)], json!(144))],
        split: None,
    }
}

async fn outcome(replies: &[&str]) -> (suite::Outcome, Option<(Status, String, String)>) {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_agreement = 1; // one sample that passes its own assert is enough
    config.learn_samples = 1;
    let model: DynLanguageModel = Arc::new(ScriptedModel::new(replies.iter().copied()));
    let jail = JailSandbox::builder()
        .build()
        .expect("the jail sandbox builds");
    let sandbox: DynSandbox = Arc::new(jail);
    let case = case();
    let first = suite::run_case(&config, &model, &sandbox, &case).await;
    let second = suite::answer(&first, &case)
        .await
        .map(|(status, example, detail, _)| (status, example, detail));
    (first, second)
}

#[tokio::test]
async fn a_wrong_method_told_one_check_is_relearned_and_scored_on_the_others() {
    let (first, second) = outcome(&[OFF_BY_ONE, RIGHT]).await;
    assert_eq!(first.status, Status::Wrong, "{}", first.detail);
    let (status, example, detail) = second.expect("a miss gets its second chance");
    assert_eq!(example, "fibonacci(10) == 55");
    assert_eq!(status, Status::Correct, "{detail}");
}

#[tokio::test]
async fn a_refused_relearn_still_counts_the_wrong_method_it_leaves() {
    let (first, second) = outcome(&[OFF_BY_ONE, OFF_BY_ONE]).await;
    assert_eq!(first.status, Status::Wrong);
    let (status, _, detail) = second.expect("a miss gets its second chance");
    assert_eq!(status, Status::Wrong, "not a refusal: {detail}");
}

#[tokio::test]
async fn a_correct_learn_needs_no_answer() {
    let (first, second) = outcome(&[RIGHT]).await;
    assert_eq!(first.status, Status::Correct, "{}", first.detail);
    assert!(second.is_none());
}
