//! Audits Python files and prints one JSON verdict per file.
//!
//! ```text
//! cargo run -q -p aura-guard --example audit -- [--selector NAME | --shape SHAPE] FILE...
//! ```
//!
//! Without `--selector` the shape check asks for at least one top-level function
//! whose first parameter is `self`. Always exits 0 once the arguments are valid
//! (an unreadable file is reported as a verdict with a `syntax` violation).
#![allow(clippy::print_stdout)]

use aura_guard::{Guard, Policy, Rule, Shape, Verdict, Violation};

const HELP: &str = "\
audit: static audit of Python sources with aura-guard

USAGE:
    cargo run -q -p aura-guard --example audit -- [OPTIONS] FILE...

OPTIONS:
    --selector NAME   the file must define the method 'def NAME(self, ...)'
    --shape SHAPE     any-method (default), tests, or module (rules only)
    -h, --help        print this help

OUTPUT (one JSON line per file, exit status 0):
    {\"file\":...,\"accepted\":true|false,\"violations\":[{\"rule\":...,\"line\":...,\"col\":...,\"message\":...}]}
";

fn main() {
    let mut shape = Shape::AnyMethod;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return;
            }
            "--selector" => match args.next() {
                Some(selector) => shape = Shape::Method { selector },
                None => usage("--selector needs a NAME"),
            },
            "--shape" => match args.next().as_deref() {
                Some("any-method") => shape = Shape::AnyMethod,
                Some("tests") => shape = Shape::Tests,
                Some("module") => shape = Shape::Module,
                _ => usage("--shape needs one of: any-method, tests, module"),
            },
            "--" => files.extend(args.by_ref()),
            _ if arg.starts_with('-') && arg.len() > 1 => usage(&format!("unknown option {arg}")),
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        usage("no FILE given");
    }
    let guard = Guard::new(Policy::default());
    for file in files {
        let verdict = match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(source) => guard.audit_shape(&source, &shape),
                Err(_) => unreadable("the file is not valid UTF-8"),
            },
            Err(e) => unreadable(&format!("the file cannot be read: {e}")),
        };
        let line = Line {
            file: &file,
            accepted: verdict.accepted,
            violations: &verdict.violations,
        };
        match serde_json::to_string(&line) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("audit: {file}: {e}"),
        }
    }
}

/// One output line; fields in the documented order.
#[derive(serde::Serialize)]
struct Line<'a> {
    file: &'a str,
    accepted: bool,
    violations: &'a [Violation],
}

fn unreadable(why: &str) -> Verdict {
    Verdict {
        accepted: false,
        violations: vec![Violation {
            rule: Rule::Syntax,
            line: 1,
            col: 1,
            message: format!("line 1: {why}"),
        }],
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("audit: {problem}\n\n{HELP}");
    std::process::exit(2);
}
