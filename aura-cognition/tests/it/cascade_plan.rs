//! Metacognitive plans: the rule-based pre-parser on the blueprint's requests and the
//! model path with its one repair round.
#![cfg(feature = "test-utils")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aura_cognition::plan::{derive_selector, rule_plan, PlanExample};
use aura_cognition::{Error, Plan, PlanContext, Planner, ScriptedModel};
use serde_json::json;

fn known() -> PlanContext {
    PlanContext::with_selectors(["fibonacci", "list_files"])
}

#[tokio::test]
async fn blueprint_requests_are_planned_by_the_rules() {
    // A model that must never be asked.
    let model = ScriptedModel::new(Vec::<String>::new());
    let planner = Planner::new(Arc::new(model.clone()));

    let learn = planner
        .plan(
            "Teach yourself to calculate the fibonacci sequence",
            &PlanContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        learn,
        Plan::Learn {
            selector: "fibonacci".into(),
            description: "calculate the fibonacci sequence".into(),
            examples: vec![],
        }
    );

    let invoke = planner
        .plan("Calculate fibonacci for 10", &known())
        .await
        .unwrap();
    assert_eq!(
        invoke,
        Plan::Invoke {
            selector: "fibonacci".into(),
            arguments: vec![json!(10)],
        }
    );
    assert_eq!(
        planner.plan("fibonacci of 10", &known()).await.unwrap(),
        invoke
    );
    assert_eq!(
        planner
            .plan("compute fibonacci(10)", &known())
            .await
            .unwrap(),
        invoke
    );

    let reflect = planner
        .plan(
            "Summarize our previous conversation about the fibonacci sequence",
            &known(),
        )
        .await
        .unwrap();
    assert_eq!(
        reflect,
        Plan::Reflect {
            question: "Summarize our previous conversation about the fibonacci sequence".into()
        }
    );

    let news = planner
        .plan("What is the top news story near me right now?", &known())
        .await
        .unwrap();
    assert_eq!(
        news,
        Plan::Answer {
            text: "What is the top news story near me right now?".into(),
            needs_context: true,
        }
    );

    let files = planner
        .plan(
            "teach yourself to list the files in the current directory using the os module",
            &known(),
        )
        .await
        .unwrap();
    match files {
        Plan::Learn {
            selector,
            description,
            ..
        } => {
            assert_eq!(selector, "list_files");
            assert!(description.contains("os module"));
        }
        other => panic!("expected learn, got {other:?}"),
    }
    assert!(model.requests().is_empty(), "the rules answered everything");
}

#[test]
fn a_command_names_a_method_to_learn_but_a_question_does_not() {
    let none = PlanContext::default();
    assert_eq!(
        rule_plan("calculate fibonacci for 10", &none),
        Some(Plan::Invoke {
            selector: "fibonacci".into(),
            arguments: vec![json!(10)]
        }),
        "a miss is a message to learn"
    );
    assert_eq!(
        rule_plan("compute the square root of 16", &none),
        Some(Plan::Invoke {
            selector: "square_root".into(),
            arguments: vec![json!(16)]
        })
    );
    assert_eq!(rule_plan("what is the weather in Paris", &none), None);
    assert_eq!(
        rule_plan("calculate the fibonacci sequence", &none),
        None,
        "no arguments"
    );
    assert_eq!(
        rule_plan(
            "calculate how much i would need to save every single month for 10",
            &none
        ),
        None,
        "not a short method name"
    );
}

#[test]
fn invoke_prefers_a_known_selector() {
    assert_eq!(
        rule_plan("calculate fibonacci for 3 and 4", &known()),
        Some(Plan::Invoke {
            selector: "fibonacci".into(),
            arguments: vec![json!(3), json!(4)]
        })
    );
    assert_eq!(
        derive_selector("calculate the fibonacci sequence").as_deref(),
        Some("fibonacci")
    );
    assert_eq!(rule_plan("hello there", &known()), None);
}

#[tokio::test]
async fn other_messages_go_to_the_model() {
    let reply = json!({
        "kind": "learn",
        "selector": "greet",
        "description": "say hello to a name",
        "examples": [{"args": ["Ann"], "expected": "Hello, Ann!"}]
    });
    let model = ScriptedModel::new([reply.to_string()]);
    let planner = Planner::new(Arc::new(model.clone()));
    let plan = planner
        .plan("I'd like you to be able to greet people by name", &known())
        .await
        .unwrap();
    assert_eq!(
        plan,
        Plan::Learn {
            selector: "greet".into(),
            description: "say hello to a name".into(),
            examples: vec![PlanExample {
                args: vec![json!("Ann")],
                expected: json!("Hello, Ann!")
            }],
        }
    );
    let req = &model.requests()[0];
    assert!(req.schema.is_some());
    assert!(req.messages[1]
        .content
        .contains("Known methods: fibonacci, list_files"));
}

#[tokio::test]
async fn invalid_json_gets_one_repair_round() {
    let model = ScriptedModel::new([
        "I think you want to learn something".to_string(),
        json!({"kind": "reflect", "question": "what did I ask yesterday?"}).to_string(),
    ]);
    let planner = Planner::new(Arc::new(model.clone()));
    let plan = planner.plan("hmm, yesterday?", &known()).await.unwrap();
    assert_eq!(
        plan,
        Plan::Reflect {
            question: "what did I ask yesterday?".into()
        }
    );
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let feedback = &reqs[1].messages.last().unwrap().content;
    assert!(
        feedback.starts_with("That reply was invalid:"),
        "{feedback}"
    );
    assert!(feedback.contains("not JSON"), "{feedback}");
}

#[tokio::test]
async fn a_plan_that_fails_validation_is_repaired_too() {
    let model = ScriptedModel::new([
        json!({"kind": "invoke", "selector": "Fibonacci Numbers", "arguments": [10]}).to_string(),
        json!({"kind": "invoke", "selector": "fibonacci", "arguments": [10]}).to_string(),
    ]);
    let planner = Planner::new(Arc::new(model.clone())).without_rules();
    let plan = planner.plan("fib 10 please", &known()).await.unwrap();
    assert_eq!(
        plan,
        Plan::Invoke {
            selector: "fibonacci".into(),
            arguments: vec![json!(10)]
        }
    );
    assert!(model.requests()[1]
        .messages
        .last()
        .unwrap()
        .content
        .contains("Python identifier"));
}

#[tokio::test]
async fn invalid_twice_is_a_clear_error() {
    let model = ScriptedModel::new(["nope", "{\"kind\": \"dance\"}"]);
    let planner = Planner::new(Arc::new(model));
    match planner.plan("do a little dance", &known()).await {
        Err(Error::InvalidOutput(msg)) => {
            assert!(
                msg.starts_with("plan: still invalid after one repair round"),
                "{msg}"
            );
            assert!(msg.contains("dance"), "{msg}");
        }
        other => panic!("expected InvalidOutput, got {other:?}"),
    }
}

#[tokio::test]
async fn rules_only_planner_refuses_unknown_messages() {
    let planner = Planner::rules_only();
    match planner.plan("do a little dance", &known()).await {
        Err(Error::Unavailable(why)) => assert!(why.contains("no language model"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
