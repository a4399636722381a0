//! The learn cycle on the real SQLite store and the real jail, with a scripted model
//! standing in for the personas (deterministic; the real-model run is separate).
#![allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::sync::Arc;

use aura_cognition::{CascadeMode, ChatRequest, ScriptedModel};
use aura_core::forge::{EventKind, Stage};
use aura_core::store::{NewObject, Object, Provenance, Store};
use aura_core::{Config, Error, LearnRequest, Reply, Runtime};
use aura_store::SqliteStore;
use serde_json::{json, Value};

const GOOD_FIB: &str = "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n";
const WRONG_FIB: &str = "def fibonacci(self, n):\n    return n\n";
const FIB_TESTS: &str = "def test_ten():\n    assert obj.fibonacci(10) == 55\n\ndef test_zero():\n    assert obj.fibonacci(0) == 0\n";

fn candidate(source: &str, tests: &str) -> String {
    json!({"source": source, "tests": tests, "doc": "the n-th Fibonacci number", "rationale": "iterative"})
        .to_string()
}

async fn runtime(model: ScriptedModel, mode: CascadeMode) -> (Runtime, Arc<SqliteStore>) {
    let mut config = Config::default();
    config.cascade_mode = Some(mode);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    runtime_with(model, config).await
}

async fn runtime_with(model: ScriptedModel, config: Config) -> (Runtime, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let rt = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(model))
        .build()
        .await
        .unwrap();
    (rt, store)
}

#[tokio::test]
async fn a_missed_message_is_learned_tested_committed_and_answered() {
    let model = ScriptedModel::new([candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, store) = runtime(model.clone(), CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();

    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    // Learned once, then answered from the store without asking the model again.
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(12)])
            .await
            .unwrap(),
        json!(144)
    );
    assert_eq!(model.requests().len(), 1);

    let versions = rt.method_versions(calc.id, "fibonacci").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert!(matches!(versions[0].provenance, Provenance::Learned { .. }));
    // The committed tests are the examples the reply asserted, checked again.
    assert!(versions[0].tests.contains("assert obj.fibonacci(10) == 55"));
    assert!(versions[0].tests.contains("assert obj.fibonacci(0) == 0"));
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str())
            .await
            .len(),
        1
    );
    assert!(
        common::events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str())
            .await
            .is_empty()
    );
    let hits = store.search_memory("fibonacci", 10).await.unwrap();
    assert!(
        hits.iter().any(|h| h.node.kind == "method"),
        "the method is in graph memory"
    );
}

#[tokio::test]
async fn a_candidate_that_fails_its_own_asserts_is_out_and_the_next_sample_is_kept() {
    let model = ScriptedModel::new([
        candidate(WRONG_FIB, FIB_TESTS),
        candidate(GOOD_FIB, FIB_TESTS),
    ]);
    let (rt, store) = runtime(model.clone(), CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let learned = rt
        .learn(
            calc.id,
            LearnRequest {
                selector: "fibonacci".into(),
                request_text: "teach yourself to calculate the fibonacci sequence".into(),
                args: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(learned.attempts, 2);
    assert_eq!(learned.tests_passed, 2);
    // The second sample is drawn with the next seed, not told about the first.
    let (first, second) = (&model.requests()[0], &model.requests()[1]);
    assert_eq!(first.messages, second.messages);
    assert_ne!(first.options.seed, second.options.seed);
    let failed = common::events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str()).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].payload["failure"]["stage"], "own tests");
    let message = failed[0].payload["failure"]["message"].as_str().unwrap();
    assert!(message.contains("(10) == 55"), "{message}");
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
}

#[tokio::test]
async fn hostile_code_is_refused_with_rule_ids_and_nothing_but_the_trail_is_written() {
    let hostile = candidate(
        "import os\ndef list_files(self):\n    return os.listdir('.')\n",
        "def test_it():\n    assert obj.list_files() is not None\n",
    );
    let model = ScriptedModel::new([hostile.clone(), hostile.clone(), hostile]);
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    config.learn_samples = 3;
    let (rt, store) = runtime_with(model, config).await;
    let files = rt.create_object(NewObject::named("files")).await.unwrap();
    let memory_before = store
        .search_memory("list files os", 100)
        .await
        .unwrap()
        .len();

    let err = rt
        .learn(
            files.id,
            LearnRequest {
                selector: "list_files".into(),
                request_text:
                    "teach yourself to list the files in the current directory using the os module"
                        .into(),
                args: vec![],
            },
        )
        .await
        .unwrap_err();
    match &err {
        Error::Refused {
            selector,
            attempts,
            failures,
        } => {
            assert_eq!(selector, "list_files");
            assert_eq!(*attempts, 3);
            // Each candidate's failure, then the search's own verdict.
            let (search, candidates) = failures.split_last().unwrap();
            assert_eq!(search.stage, Stage::Search);
            assert_eq!(candidates.len(), 3);
            assert!(
                candidates
                    .iter()
                    .all(|f| f.stage == Stage::Guard && !f.rules.is_empty()),
                "{failures:?}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(
        err.to_string().contains("os"),
        "the refusal names the reason: {err}"
    );
    assert!(rt
        .method_versions(files.id, "list_files")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .search_memory("list files os", 100)
            .await
            .unwrap()
            .len(),
        memory_before
    );
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str())
            .await
            .len(),
        3
    );
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::LearnRefused.as_str())
            .await
            .len(),
        1
    );
    assert_eq!(
        rt.object(files.id).await.unwrap().rev,
        files.rev,
        "the object is untouched"
    );
}

#[tokio::test]
async fn garbage_from_the_model_is_an_attempt_not_a_crash() {
    // Replies without code are candidates that failed; the search draws again.
    let model = ScriptedModel::new([
        "this is not json at all".to_string(),
        "{\"still\": broken".to_string(),
        candidate(GOOD_FIB, FIB_TESTS),
    ]);
    let (rt, store) = runtime(model, CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    let failed = common::events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str()).await;
    assert!(!failed.is_empty());
    assert!(failed
        .iter()
        .all(|e| e.payload["failure"]["stage"] == "model"));
}

#[tokio::test]
async fn concurrent_misses_of_one_selector_commit_one_method() {
    let model = ScriptedModel::from_fn(|_req: &ChatRequest| Ok(candidate(GOOD_FIB, FIB_TESTS)));
    let (rt, _store) = runtime(model, CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let calls = (0..4).map(|i| {
        let rt = rt.clone();
        tokio::spawn(async move { rt.send(calc.id, "fibonacci", vec![json!(10 + i)]).await })
    });
    let results: Vec<Value> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(results, vec![json!(55), json!(89), json!(144), json!(233)]);
    assert_eq!(
        rt.method_versions(calc.id, "fibonacci")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_full_cascade_records_every_persona_in_the_committed_packet() {
    // Every persona gets the same scripted reply; the cascade decides what to keep.
    let model = ScriptedModel::from_fn(|req: &ChatRequest| {
        Ok(if writes_code(req) {
            candidate(GOOD_FIB, FIB_TESTS)
        } else {
            "Compute iteratively.".into()
        })
    });
    let mut config = Config::default();
    config.early_exit = false;
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    let (rt, store) = runtime_with(model, config).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    let committed = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str()).await;
    assert_eq!(
        personas_of(&committed[0].payload["packet"]),
        ["BRICK", "ROBIN", "BABS", "ALFRED"]
    );
}

/// Whether `req` asks a candidate writer (ROBIN or ALFRED) for code.
fn writes_code(req: &ChatRequest) -> bool {
    let system = &req.messages[0].content;
    system.starts_with("You are ROBIN") || system.starts_with("You are ALFRED")
}

fn personas_of(packet: &Value) -> Vec<String> {
    packet["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["persona"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_passing_draft_ends_the_full_cascade_after_robin() {
    let model = ScriptedModel::from_fn(|req: &ChatRequest| {
        Ok(if writes_code(req) {
            candidate(GOOD_FIB, FIB_TESTS)
        } else {
            "Compute iteratively.".into()
        })
    });
    let (rt, store) = runtime(model.clone(), CascadeMode::Full).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    assert_eq!(model.requests().len(), 2, "BABS and ALFRED were not asked");
    let committed = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str()).await;
    let packet = &committed[0].payload["packet"];
    assert_eq!(personas_of(packet), ["BRICK", "ROBIN"]);
    assert_eq!(packet["decided_by"], json!("ROBIN"));
    assert_eq!(packet["verdicts"][0]["early_exit"], json!(true));
    assert_eq!(committed[0].payload["tests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failing_draft_is_shown_to_the_rest_of_the_cascade() {
    let model = ScriptedModel::new([
        "Compute iteratively.".to_string(),
        candidate(WRONG_FIB, FIB_TESTS),
        "The draft returns n itself; it must add the previous two numbers.".to_string(),
        candidate(GOOD_FIB, FIB_TESTS),
    ]);
    let (rt, store) = runtime(model.clone(), CascadeMode::Full).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
    let committed = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str()).await;
    let packet = &committed[0].payload["packet"];
    assert_eq!(personas_of(packet), ["BRICK", "ROBIN", "BABS", "ALFRED"]);
    assert_eq!(packet["decided_by"], json!("ALFRED"));
    let verdict = &packet["verdicts"][0];
    assert_eq!(verdict["early_exit"], json!(false));
    assert!(
        verdict["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("tests"),
        "the draft's failure is recorded: {verdict}"
    );
    assert!(
        common::events_of(store.as_ref(), EventKind::LearnAttemptFailed.as_str())
            .await
            .is_empty(),
        "a failed draft is not a failed attempt"
    );
}

#[tokio::test]
async fn asking_for_a_calculation_nobody_knows_learns_it_and_answers() {
    let model = ScriptedModel::new([candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, store) = runtime(model, CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let reply = rt
        .tell(calc.id, "calculate fibonacci for 10")
        .await
        .unwrap();
    assert_eq!(reply.value, Some(json!(55)), "{}", reply.text);
    assert!(!reply.refused);
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_calculation_that_cannot_be_learned_is_a_refused_reply() {
    let hostile = candidate(
        "import os\ndef fibonacci(self, n):\n    return len(os.listdir('.'))\n",
        FIB_TESTS,
    );
    let model = ScriptedModel::new([hostile.clone(), hostile.clone(), hostile]);
    let (rt, store) = runtime(model, CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let reply = rt
        .tell(calc.id, "calculate fibonacci for 10")
        .await
        .unwrap();
    assert!(reply.refused, "{}", reply.text);
    assert!(
        reply.text.contains("import"),
        "the rule id is named: {}",
        reply.text
    );
    assert!(store.list_methods(calc.id).await.unwrap().is_empty());
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::ConversationRefused.as_str())
            .await
            .len(),
        1
    );
}

/// The user prompt of the model's last request.
fn last_prompt(model: &ScriptedModel) -> String {
    model
        .requests()
        .last()
        .and_then(|r| r.messages.last())
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// The oracle runtime of [`runtime`], drawing at most two samples per learn.
async fn two_sample_runtime(model: ScriptedModel) -> (Runtime, Arc<SqliteStore>) {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_agreement = 1;
    config.learn_samples = 2;
    runtime_with(model, config).await
}

/// An off-by-one fibonacci (fibonacci(10) gives 89) whose own assert agrees with it,
/// so the oracle search commits it.
fn wrong_fib() -> String {
    candidate(
        "def fibonacci(self, n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "def test_three():\n    assert obj.fibonacci(3) == 3\n",
    )
}

/// An oracle runtime whose object `calc` was taught "the fibonacci sequence" from
/// `model`'s first candidate, and the reply to that teach.
async fn taught_fibonacci(model: ScriptedModel) -> (Runtime, Object, Reply) {
    let (rt, _store) = runtime(model, CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let taught = rt
        .tell(
            calc.id,
            "teach yourself to calculate the fibonacci sequence",
        )
        .await
        .unwrap();
    assert!(!taught.refused, "{}", taught.text);
    (rt, calc, taught)
}

#[tokio::test]
async fn an_integer_beyond_64_bits_is_answered_and_checked_with_every_digit() {
    let model = ScriptedModel::new([candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, calc, _) = taught_fibonacci(model).await;
    let answer = rt
        .tell(calc.id, "calculate fibonacci for 100")
        .await
        .unwrap();
    assert!(
        answer
            .text
            .contains("fibonacci(100) = 354224848179261915075"),
        "{}",
        answer.text
    );
    assert_eq!(answer.value, Some(json!({"$int": "354224848179261915075"})));
    // The person's example with the same digits agrees: nothing is relearned.
    let agreed = rt
        .tell(calc.id, "fibonacci(100) == 354224848179261915075")
        .await
        .unwrap();
    assert!(
        agreed
            .text
            .contains("fibonacci(100) = 354224848179261915075")
            && !agreed.text.contains("relearned"),
        "{}",
        agreed.text
    );
    let versions = rt.method_versions(calc.id, "fibonacci").await.unwrap();
    assert_eq!(versions.len(), 1);
}

#[tokio::test]
async fn an_example_that_contradicts_a_method_relearns_it_as_a_new_version() {
    let model = ScriptedModel::new([wrong_fib(), candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, calc, taught) = taught_fibonacci(model.clone()).await;
    // The reply shows what the method gives, so the person can catch it: every call
    // it shows is what the committed method returns.
    let (_, shown) = taught
        .text
        .split_once("\nIt gives ")
        .expect("the reply shows calls");
    let (shown, ask) = shown.split_once("; if one is wrong").expect("and asks");
    assert!(ask.contains("(`fibonacci("), "{}", taught.text);
    let calls: Vec<&str> = shown.split(", ").flat_map(|c| c.split(" and ")).collect();
    assert_eq!(calls.len(), 3, "{}", taught.text);
    for call in calls {
        let (call, value) = call.split_once(" == ").expect("call == value");
        let n: i64 = call
            .trim_start_matches("fibonacci(")
            .trim_end_matches(')')
            .parse()
            .expect("one whole number");
        let got = rt.send(calc.id, "fibonacci", vec![json!(n)]).await.unwrap();
        assert_eq!(got.to_string(), value, "{}", taught.text);
    }

    let corrected = rt.tell(calc.id, "fibonacci(10) == 55").await.unwrap();
    assert!(
        corrected
            .text
            .starts_with("fibonacci(10) gave 89, not 55, so I relearned"),
        "{}",
        corrected.text
    );
    assert_eq!(corrected.value, Some(json!(55)));
    assert!(
        corrected.text.contains("\nIt gives fibonacci("),
        "the new version's values are shown too: {}",
        corrected.text
    );
    let prompt = last_prompt(&model);
    assert!(
        prompt.contains("calculate the fibonacci sequence")
            && prompt.contains("fibonacci(10) == 55"),
        "the relearn starts from the first words and the example: {prompt}"
    );
    let versions = rt.method_versions(calc.id, "fibonacci").await.unwrap();
    assert_eq!(versions.len(), 2, "the wrong version is kept for rollback");
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(12)])
            .await
            .unwrap(),
        json!(144)
    );

    // The example now holds: the method is only called.
    let confirmed = rt.tell(calc.id, "fibonacci(10) == 55").await.unwrap();
    assert_eq!(confirmed.text, "fibonacci(10) = 55");
}

#[tokio::test]
async fn an_example_the_method_raises_on_relearns_it() {
    // A fibonacci that refuses 0 ("not a positive number"), then a right one.
    let raises_on_zero = candidate(
        "def fibonacci(self, n):\n    if n < 1:\n        raise ValueError('not a positive number')\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "def test_three():\n    assert obj.fibonacci(3) == 2\n",
    );
    let model = ScriptedModel::new([raises_on_zero, candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, calc, _) = taught_fibonacci(model).await;

    let corrected = rt.tell(calc.id, "fibonacci(0) == 0").await.unwrap();
    assert!(
        corrected.text.starts_with(
            "fibonacci(0) raised ValueError, not 0, so I relearned `fibonacci` from your example: version 2 gives 0"
        ),
        "{}",
        corrected.text
    );
    assert_eq!(corrected.value, Some(json!(0)));
    assert_eq!(
        rt.method_versions(calc.id, "fibonacci")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_refused_relearn_leaves_the_method_as_it_was() {
    // Both relearn samples give 89 again: the user's example refuses them.
    let model = ScriptedModel::new([wrong_fib(), wrong_fib(), wrong_fib()]);
    let (rt, store) = two_sample_runtime(model).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    rt.tell(
        calc.id,
        "teach yourself to calculate the fibonacci sequence",
    )
    .await
    .unwrap();
    let before = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str())
        .await
        .len();

    let reply = rt.tell(calc.id, "fibonacci(10) == 55").await.unwrap();
    assert!(reply.refused, "{}", reply.text);
    assert!(
        reply
            .text
            .starts_with("fibonacci(10) gave 89, not 55. I tried to learn `fibonacci`")
            && reply.text.ends_with("`fibonacci` stays as it was."),
        "{}",
        reply.text
    );
    assert_eq!(
        common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str())
            .await
            .len(),
        before
    );
    assert_eq!(
        rt.method_versions(calc.id, "fibonacci")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(89)
    );
}

#[tokio::test]
async fn a_bare_example_after_a_refused_teach_learns_from_both_turns() {
    let hostile = candidate(
        "import os\ndef fibonacci(self, n):\n    return len(os.listdir('.'))\n",
        FIB_TESTS,
    );
    let model = ScriptedModel::new([hostile.clone(), hostile, candidate(GOOD_FIB, FIB_TESTS)]);
    let (rt, _store) = two_sample_runtime(model.clone()).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let refused = rt
        .tell(
            calc.id,
            "teach yourself to calculate the fibonacci sequence",
        )
        .await
        .unwrap();
    assert!(refused.refused, "{}", refused.text);

    let learned = rt.tell(calc.id, "fibonacci(10) == 55").await.unwrap();
    assert!(
        learned.text.starts_with("I learned `fibonacci`"),
        "{}",
        learned.text
    );
    let prompt = last_prompt(&model);
    assert!(
        prompt.contains("calculate the fibonacci sequence")
            && prompt.contains("fibonacci(10) == 55"),
        "{prompt}"
    );
    assert_eq!(
        rt.send(calc.id, "fibonacci", vec![json!(10)])
            .await
            .unwrap(),
        json!(55)
    );
}

#[tokio::test]
async fn replies_say_values_in_python_as_the_person_writes_them() {
    let is_even = candidate(
        "def is_even(self, n):\n    return n % 2 == 0\n",
        "def test_two():\n    assert obj.is_even(2) == True\n",
    );
    let (rt, _store) = runtime(ScriptedModel::new([is_even]), CascadeMode::Single).await;
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();
    let taught = rt
        .tell(calc.id, "teach yourself to check whether a number is even")
        .await
        .unwrap();
    assert!(taught.text.contains("== False"), "{}", taught.text);
    let called = rt.tell(calc.id, "is_even(7) == False").await.unwrap();
    assert_eq!(called.text, "is_even(7) = False");
    assert_eq!(called.value, Some(json!(false)));
}

/// A greatest common divisor written out by hand, as a model writes it.
const EUCLID: &str = "```python\ndef greatest_common_divisor(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n```";

/// One learn of `selector` from `request` in single mode on a fresh store, with `samples`
/// drawn at most and `adjust` applied to the rest of the configuration.
async fn learn_single(
    model: ScriptedModel,
    samples: u32,
    adjust: impl FnOnce(&mut Config),
    selector: &str,
    request: &str,
) -> (Result<aura_core::Learned, Error>, Arc<SqliteStore>) {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_samples = samples;
    adjust(&mut config);
    let (rt, store) = runtime_with(model, config).await;
    let object = rt.create_object(NewObject::named("learner")).await.unwrap();
    let request = LearnRequest {
        selector: selector.into(),
        request_text: request.into(),
        args: vec![],
    };
    (rt.learn(object.id, request).await, store)
}

async fn learn_gcd(library: bool) -> (Result<aura_core::Learned, Error>, Arc<SqliteStore>) {
    learn_single(
        ScriptedModel::new([EUCLID]),
        1,
        |c| c.learn_library = library,
        "greatest_common_divisor",
        "teach yourself to compute the greatest common divisor of two numbers",
    )
    .await
}

#[tokio::test]
async fn a_standard_library_function_that_a_sample_agrees_with_is_committed() {
    // One sample alone is not enough (the default lead is 2) ...
    let (refused, _) = learn_gcd(false).await;
    assert!(
        matches!(refused, Err(Error::Refused { attempts: 1, .. })),
        "{refused:?}"
    );
    // ... but math.gcd, found by the request's words, behaves exactly like it on every
    // probe: two independent witnesses, and the library's code is what is committed.
    let (learned, store) = learn_gcd(true).await;
    let method = learned.unwrap().method;
    assert!(
        method.source.contains("math.gcd(a, b)"),
        "{}",
        method.source
    );
    let committed = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str()).await;
    let payload = &committed[0].payload;
    let reason = payload["packet"]["selection"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("calls math.gcd"), "{payload}");
    let proposed: Vec<&Value> = payload["candidates"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["library"].is_null())
        .collect();
    assert_eq!(proposed[0]["library"], "math.gcd");
}

const WORDS: &str = "```python\ndef count_words(text):\n    return len(text.split())\n```";
const LETTERS: &str = "```python\ndef count_words(text):\n    return len(text)\n```";

/// A reader that knows what a word count is: an assert whose answer is the number of
/// words in its string reads as likely, any other as unlikely.
fn reads_word_counts(_: &[aura_cognition::ChatMessage], reply: &str) -> f64 {
    let quoted = reply.split('"').nth(1).unwrap_or_default();
    let answer = reply
        .split("== ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if answer == Some(quoted.split_whitespace().count()) {
        -1.0
    } else {
        -9.0
    }
}

async fn learn_word_count(reading: bool) -> (Result<aura_core::Learned, Error>, Arc<SqliteStore>) {
    // One right sample, then three that share a misconception: 3 votes lead 1 by 2.
    let model = ScriptedModel::new([WORDS, LETTERS, LETTERS, LETTERS]).scoring(reads_word_counts);
    learn_single(
        model,
        4,
        |c| c.learn_reading = reading,
        "count_words",
        "teach yourself to count the words in a sentence",
    )
    .await
}

#[tokio::test]
async fn a_winner_the_models_reading_contradicts_is_not_committed() {
    // The vote alone commits the shared misconception ...
    let (learned, _) = learn_word_count(false).await;
    let method = learned.unwrap().method;
    assert!(method.source.contains("len(text)"), "{}", method.source);
    // ... the reading weighs `== 3` against `== 19` where the two behaviours part, finds
    // the rival's answers likelier, and the search refuses rather than commit it.
    let (refused, store) = learn_word_count(true).await;
    let Err(Error::Refused { failures, .. }) = &refused else {
        panic!("{refused:?}");
    };
    let reason = &failures.last().unwrap().message;
    assert!(
        reason.contains("the model's reading sides with another behaviour"),
        "{reason}"
    );
    assert!(
        reason.contains("likelier than the best behaviour's"),
        "{reason}"
    );
    let committed = common::events_of(store.as_ref(), EventKind::LearnCommitted.as_str()).await;
    assert!(committed.is_empty(), "{committed:?}");
}
