//! Every escape in tests/redteam/escapes.py and tests/redteam/api_escapes.py is
//! rejected, by the expected rule.

use aura_guard::{Guard, Policy, Rule, Shape};

struct Case {
    id: String,
    rule: Rule,
    technique: String,
    source: String,
}

fn corpus() -> Vec<Case> {
    let mut cases = parse(include_str!("../redteam/escapes.py"));
    cases.extend(parse(include_str!("../redteam/api_escapes.py")));
    cases
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("# === ") {
            let parts: Vec<&str> = header.trim().splitn(3, " | ").collect();
            assert_eq!(parts.len(), 3, "bad header: {line}");
            let rule = Rule::from_id(parts[1].trim())
                .unwrap_or_else(|| panic!("unknown rule in header: {line}"));
            cases.push(Case {
                id: parts[0].trim().to_owned(),
                rule,
                technique: parts[2].trim().to_owned(),
                source: String::new(),
            });
        } else if let Some(case) = cases.last_mut() {
            case.source.push_str(line);
        }
    }
    cases
}

#[test]
fn corpus_is_large_and_labelled() {
    let cases = corpus();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let api = parse(include_str!("../redteam/api_escapes.py"));
    assert!(api.len() >= 20, "only {} API cases", api.len());
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "duplicate case ids");
    for c in &cases {
        assert!(!c.technique.is_empty(), "{} has no technique", c.id);
        assert!(!c.source.trim().is_empty(), "{} has no source", c.id);
    }
}

#[test]
fn every_escape_is_rejected_by_the_expected_rule() {
    let guard = Guard::new(Policy::default());
    let mut failures = Vec::new();
    for c in corpus() {
        let shape = if c.id.starts_with("module-") {
            Shape::Module
        } else {
            Shape::AnyMethod
        };
        let verdict = guard.audit_shape(&c.source, &shape);
        if verdict.accepted {
            failures.push(format!("{} ({}): ACCEPTED", c.id, c.technique));
        } else if !verdict.has(c.rule) {
            failures.push(format!(
                "{} ({}): rejected, but not by {}:\n{}",
                c.id, c.technique, c.rule, verdict
            ));
        }
        // Messages carry their line and the JSON form is stable.
        for v in &verdict.violations {
            assert!(v.line >= 1 && v.col >= 1, "{}: {v:?}", c.id);
            assert!(
                v.message.starts_with(&format!("line {}: ", v.line)),
                "{}: {v:?}",
                c.id
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_is_exercised_by_the_corpus() {
    let cases = corpus();
    for rule in Rule::ALL {
        assert!(
            cases.iter().any(|c| c.rule == rule),
            "no red-team case expects {rule}"
        );
    }
}
