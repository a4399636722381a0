//! The reachability audit: the proof that the API allowlist is closed.
//!
//! Runs `tests/audit/reachability.py` in the sandbox's interpreter (`AURA_SANDBOX_PYTHON`,
//! else `/usr/bin/python3`, with the jail's `-I -S`): from every allowed name of every
//! allowed module and every allowed builtin it walks every public attribute path up to
//! three attributes deep and fails on any path that reaches a module outside the
//! allowlist, a denied builtin, a function that opens files, sockets or processes, a
//! code/frame/traceback object, or a class factory that takes a namespace. Run with
//! `--nocapture` to see every path walked.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test fixtures: a broken fixture should fail loudly

use std::process::Command;

use aura_guard::{Guard, Rule};
use serde::Deserialize;

#[derive(Deserialize)]
struct Report {
    walked: usize,
    roots: usize,
    findings: Vec<Finding>,
    accepted: Vec<Accepted>,
}

#[derive(Deserialize, Debug)]
struct Finding {
    path: String,
    kind: String,
    what: String,
}

#[derive(Deserialize, Debug)]
struct Accepted {
    path: String,
    reason: String,
}

fn run_audit(extra: &[&str]) -> (Report, Vec<String>) {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let python = std::env::var("AURA_SANDBOX_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/python3".to_owned());
    let out = Command::new(&python)
        .args(["-I", "-S", "-W", "ignore"])
        .arg(dir.join("tests/audit/reachability.py"))
        .arg(dir.join("data/module_api.json"))
        .arg(dir.join("data/api_curation.json"))
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("the sandbox's interpreter {python} did not run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the audit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let last = lines.pop().expect("the audit printed its report");
    (serde_json::from_str(&last).expect("report JSON"), lines)
}

/// A method that reaches `path` (`enum.bltns` or a builtin's `str.maketrans`).
fn probe(path: &str) -> String {
    let root = path.split('.').next().unwrap_or(path);
    let data: serde_json::Value =
        serde_json::from_str(aura_guard::module_api_json()).expect("data");
    let module = data["modules"]
        .as_object()
        .expect("modules")
        .keys()
        .filter(|m| path.starts_with(&format!("{m}.")))
        .max_by_key(|m| m.len())
        .cloned();
    match module {
        Some(m) => format!("import {m}\n\ndef probe(self):\n    return {path}\n"),
        None => format!(
            "def probe(self):\n    return {root}{}\n",
            &path[root.len()..]
        ),
    }
}

#[test]
fn the_allowlist_is_closed_to_depth_three() {
    let (report, paths) = run_audit(&[]);
    for p in &paths {
        println!("walked {p}");
    }
    println!(
        "reachability audit: {} roots, {} paths walked, {} findings, {} curated exceptions",
        report.roots,
        report.walked,
        report.findings.len(),
        report.accepted.len()
    );
    assert_eq!(paths.len(), report.walked);
    assert!(report.roots >= 600, "{} roots", report.roots);
    assert!(
        report.findings.is_empty(),
        "allowed names reach what methods may not have:\n{:#?}",
        report.findings
    );
    // Each curated exception says how its namespace use is kept out; check it.
    let guard = Guard::default();
    for a in &report.accepted {
        println!("accepted {}: {}", a.path, a.reason);
        let src = if a.path == "type" {
            "def probe(self):\n    return type('X', (), {'run': len})\n".to_owned()
        } else {
            let (m, c) = a.path.split_once('.').expect("module.name");
            format!(
                "import {m}\n\ndef probe(self):\n    return {m}.{c}('E', {{'__repr__': len}})\n"
            )
        };
        let v = guard.audit_method(&src, "probe");
        assert!(
            v.has(Rule::NameDenied) || v.has(Rule::DunderName),
            "{}: the namespace use is not rejected:\n{src}\n{v}",
            a.path
        );
    }
}

#[test]
fn the_old_rule_reached_escapes_that_the_allowlist_rejects() {
    // Every public name of each allowed module, as the guard allowed before.
    let (report, _) = run_audit(&["--whole-modules"]);
    let paths: Vec<&str> = report.findings.iter().map(|f| f.path.as_str()).collect();
    println!("with whole modules: {} findings: {paths:?}", paths.len());
    for must in [
        "enum.bltns",
        "typing.types",
        "dataclasses.make_dataclass",
        "enum.EnumMeta",
    ] {
        assert!(paths.contains(&must), "{must} not found: {paths:?}");
    }
    let guard = Guard::default();
    for f in &report.findings {
        let src = probe(&f.path);
        let v = guard.audit_method(&src, "probe");
        assert!(
            !v.accepted,
            "{} ({} {}) is accepted by the guard:\n{src}",
            f.path, f.kind, f.what
        );
    }
}
