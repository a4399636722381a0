//! From a model's code to a method: the shapes small models naturally write, turned
//! into AURA's calling convention with the parser, not with regexes.
//!
//! A model asked for `fibonacci` may write a plain function (`def fibonacci(n)`,
//! recursive calls included), a method (`def fibonacci(self, n)`), a close name
//! (`def fib(n)`), helpers beside it, asserts or `test_*` functions after it and a
//! `print(...)` or `if __name__ == "__main__":` block at the end. [`Guard::normalize`]
//! keeps the definitions and imports, mines the asserts for concrete examples
//! (`assert fib(10) == 55` → `fibonacci(10) == 55`), drops the rest, and writes the
//! method:
//!
//! - a method keeps its body; a close name is renamed, and so are its
//!   `self.<old>(…)` calls;
//! - a plain function keeps its body under the private name `_<selector>` (every
//!   reference to it renamed, so recursion and helpers still reach it), and a
//!   one-line method `def <selector>(self, <params>)` calls it.

use std::collections::BTreeSet;

use ruff_python_ast::visitor::{
    walk_except_handler, walk_expr, walk_parameter, walk_pattern, walk_stmt, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::parser::{self, ast, Ranged};
use crate::{Guard, Rule, Verdict};

/// One concrete example a reply asserts: `selector(*args) == expected`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The positional arguments.
    pub args: Vec<Value>,
    /// The value the call must return.
    pub expected: Value,
}

/// A reply turned into a method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalized {
    /// Source defining `def <selector>(self, …)`, with the reply's helpers and imports.
    pub source: String,
    /// The function name the model wrote.
    pub written_as: String,
    /// Whether the model wrote a plain function (no `self`), now wrapped.
    pub was_plain: bool,
    /// The method's parameters after `self`, as written.
    pub params: Vec<String>,
    /// How many of them a call must pass (those before the first default).
    pub required: usize,
    /// Examples mined from the reply's asserts, in the order written.
    pub examples: Vec<Example>,
    /// Top-level statements that were neither kept nor mined (prints, loops, …).
    pub dropped: usize,
    /// Where the reply was cut because of a syntax error there (see
    /// [`Guard::normalize`]): the first line dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_at_line: Option<usize>,
}

/// Why a reply could not become a method.
#[derive(Clone, Debug, PartialEq)]
pub enum NormalizeError {
    /// The guard refused the reply as written (its rule ids say why).
    Rejected(Verdict),
    /// The reply holds no usable function; the message says what was found.
    Unusable(String),
}

impl std::fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected(v) => write!(f, "the guard rejected the code: {v}"),
            Self::Unusable(m) => f.write_str(m),
        }
    }
}

impl Guard {
    /// Turns a model's code reply into a method named `selector` (see the module docs).
    ///
    /// The reply is audited as a module first, so nothing the guard refuses is ever
    /// rewritten and the tree is known to be within the policy's depth. The result
    /// still has to pass [`Guard::audit_method`], like any method.
    ///
    /// A small model often writes a sound function and then a broken test or line of
    /// prose after it. When the guard's only objection is a syntax error that starts
    /// after at least one complete top-level statement, the reply is cut before the
    /// statement holding the error and the part kept is audited and normalised like
    /// any reply ([`Normalized::cut_at_line`] says where). Any other refusal, or a cut
    /// that leaves no usable function, is the original verdict; a kept part the guard
    /// refuses for what it does is refused with that verdict.
    pub fn normalize(&self, code: &str, selector: &str) -> Result<Normalized, NormalizeError> {
        let mut n = self.normalize_reply(code, selector)?;
        let imports: String = self
            .missing_imports(&n.source)
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        if !imports.is_empty() {
            n.source = format!("{imports}\n{}", n.source);
        }
        Ok(n)
    }

    /// The imports the code needs but lacks. A small model often writes
    /// `math.pi * r ** 2`, `statistics.median(data)` or `-> List[int]` and forgets the
    /// import, as a person might; the fix is the one a person would make, and the
    /// method is audited again anyway:
    /// - a name read as `name.attr` that the guard allows as a module: `import name`;
    /// - a bare name that exactly one allowed module exports (`List`, `factorial`):
    ///   `from module import name`. A name two modules export (`pi` in `math` and
    ///   `cmath`) is ambiguous and left alone.
    ///
    /// A name the code binds anywhere (a parameter called `string`) or a builtin is
    /// never imported.
    fn missing_imports(&self, source: &str) -> Vec<String> {
        let parsed = parser::parse_module(source, 1);
        let mut names = Bindings::default();
        names.visit_body(&parsed.module.body);
        parser::dispose_module(parsed.module, source.len());
        let free = |name: &String| {
            !names.bound.contains(name)
                && !crate::api::DATA.builtins.contains(name)
                && !crate::api::DATA.denied_builtins.contains(name)
        };
        let modules: Vec<&String> = names
            .used_as_module
            .iter()
            .filter(|m| free(m) && self.policy.is_module_allowed(m))
            .collect();
        let exporter = |name: &str| {
            let mut found = self.policy.allowed_modules().filter(|m| {
                matches!(self.policy.module_access(m), Some(crate::ModuleAccess::Api(api)) if api.contains(name))
            });
            match (found.next(), found.next()) {
                (Some(only), None) => Some(only.to_owned()),
                _ => None,
            }
        };
        let from = names
            .used_bare
            .iter()
            .filter(|n| free(n) && !modules.contains(n))
            .filter_map(|n| exporter(n).map(|m| format!("from {m} import {n}")));
        modules
            .iter()
            .map(|m| format!("import {m}"))
            .chain(from)
            .collect()
    }

    fn normalize_reply(&self, code: &str, selector: &str) -> Result<Normalized, NormalizeError> {
        let verdict = self.audit(code);
        if verdict.accepted {
            return normalize_audited(code, selector).map_err(NormalizeError::Unusable);
        }
        let only_syntax = verdict.violations.iter().all(|v| v.rule == Rule::Syntax);
        let cut = verdict
            .violations
            .first()
            .filter(|_| only_syntax)
            .and_then(|first| before_line(code, first.line));
        let Some((kept, line)) = cut else {
            return Err(NormalizeError::Rejected(verdict));
        };
        // The part kept may be refused for what it does (`import os`): that is then
        // the reason, not the syntax error after it.
        let kept_verdict = self.audit(kept);
        if !kept_verdict.accepted {
            return Err(NormalizeError::Rejected(kept_verdict));
        }
        let mut n =
            normalize_audited(kept, selector).map_err(|_| NormalizeError::Rejected(verdict))?;
        n.cut_at_line = Some(line);
        n.dropped += 1;
        Ok(n)
    }
}

/// Parses audited code and normalises it.
fn normalize_audited(code: &str, selector: &str) -> Result<Normalized, String> {
    let parsed = parser::parse_module(code, 1);
    let result = normalize_module(code, &parsed.module.body, selector);
    parser::dispose_module(parsed.module, code.len());
    result
}

/// `code` up to the top-level statement that holds line `error_line` (1-based), and
/// the first line dropped: `None` when that is the first statement. The statement
/// starts at the last unindented line at or before the error's; a cut in the wrong
/// place only fails the audit that follows.
fn before_line(code: &str, error_line: u32) -> Option<(&str, usize)> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .take(usize::try_from(error_line).ok()?)
        .collect();
    let unindented =
        |&start: &usize| code[start..].starts_with(|c: char| !c.is_whitespace() && c != '#');
    let (line, &cut) = starts
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| unindented(s))?;
    (cut > 0).then(|| (&code[..cut], line + 1))
}

impl Guard {
    /// An example from a call and its value written as Python (`fib(10)`, `55`):
    /// `None` unless the call names one of `names` and everything is a literal.
    pub fn example(&self, call: &str, expected: &str, names: &[&str]) -> Option<Example> {
        if call.len() > 4096 || expected.len() > 4096 {
            return None;
        }
        let call = parser::parse_expression(call);
        let value = parser::parse_expression(expected);
        let example = if call.errors.is_empty() && value.errors.is_empty() {
            call_args(&call.expr, names).and_then(|args| {
                Some(Example {
                    args,
                    expected: literal(&value.expr)?,
                })
            })
        } else {
            None
        };
        parser::dispose_expr(call.expr, 4096);
        parser::dispose_expr(value.expr, 4096);
        example
    }
}

/// A text edit: replace `start..end` with `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn normalize_module(code: &str, body: &[ast::Stmt], selector: &str) -> Result<Normalized, String> {
    let mut kept: Vec<&ast::Stmt> = Vec::new();
    let mut functions: Vec<&ast::StmtFunctionDef> = Vec::new();
    let mut asserts: Vec<&ast::StmtAssert> = Vec::new();
    let mut dropped = 0;
    for (i, stmt) in body.iter().enumerate() {
        match stmt {
            ast::Stmt::FunctionDef(f) if f.name.as_str().starts_with("test") => {
                collect_asserts(&f.body, &mut asserts);
            }
            // A reply that repeats its function (say, in its test block) means the first.
            ast::Stmt::FunctionDef(f)
                if functions.iter().any(|g| g.name.as_str() == f.name.as_str()) =>
            {
                dropped += 1;
            }
            ast::Stmt::FunctionDef(f) => {
                functions.push(f);
                kept.push(stmt);
            }
            ast::Stmt::Import(_) | ast::Stmt::ImportFrom(_) | ast::Stmt::ClassDef(_) => {
                kept.push(stmt)
            }
            ast::Stmt::Assign(a) if a.value.is_literal_expr() => kept.push(stmt),
            ast::Stmt::Expr(e) if i == 0 && e.value.is_string_literal_expr() => kept.push(stmt),
            ast::Stmt::Assert(a) => asserts.push(a),
            ast::Stmt::If(s) => {
                // `if __name__ == "__main__":` and friends: mine, do not keep.
                collect_asserts(&s.body, &mut asserts);
                dropped += 1;
            }
            _ => dropped += 1,
        }
    }
    let main = pick_main(&functions, selector)?;
    let written_as = main.name.as_str().to_owned();
    let params = &main.parameters;
    let first = params
        .posonlyargs
        .iter()
        .chain(params.args.iter())
        .next()
        .map(|p| p.parameter.name.as_str());
    let was_plain = first != Some("self");
    let required = params
        .posonlyargs
        .iter()
        .chain(params.args.iter())
        .filter(|p| p.default.is_none())
        .count()
        - usize::from(!was_plain);

    let mut edits = Vec::new();
    let mut builtin_alias = None;
    let (method_params, wrapper) = if was_plain {
        let private = format!("_{selector}");
        let mut refs = NameRefs {
            name: &written_as,
            found: Vec::new(),
        };
        for stmt in &kept {
            refs.visit_stmt(stmt);
        }
        edits.push(edit(main.name.range(), private.clone()));
        // A function asked for under a builtin's name (`sum`) that calls that name
        // means the builtin: taken literally it would call itself forever. Such calls
        // go to the builtin, kept under an alias bound before the method shadows it.
        let target = if SHADOWED_BUILTINS.contains(&written_as.as_str()) && !refs.found.is_empty() {
            format!("_builtin_{written_as}")
        } else {
            private.clone()
        };
        edits.extend(refs.found.iter().map(|r| edit(*r, target.clone())));
        if target != private {
            builtin_alias = Some(format!("{target} = {written_as}\n\n"));
        }
        let (signature, call, names) = wrapper_signature(code, params);
        let wrapper = format!("\n\ndef {selector}(self{signature}):\n    return {private}({call})");
        (names, Some(wrapper))
    } else {
        if written_as != selector {
            let mut refs = SelfCalls {
                name: &written_as,
                found: Vec::new(),
            };
            refs.visit_body(&main.body);
            edits.push(edit(main.name.range(), selector.to_owned()));
            edits.extend(refs.found.into_iter().map(|r| edit(r, selector.to_owned())));
        }
        let names = params
            .iter_non_variadic_params()
            .skip(1)
            .map(|p| p.parameter.name.as_str().to_owned())
            .collect();
        (names, None)
    };

    let mut source = builtin_alias.unwrap_or_default();
    for stmt in &kept {
        let range = stmt.range();
        let (start, end) = (usize::from(range.start()), usize::from(range.end()));
        let mut text = code[start..end].to_owned();
        let mut inside: Vec<&Edit> = edits
            .iter()
            .filter(|e| e.start >= start && e.end <= end)
            .collect();
        inside.sort_by_key(|e| std::cmp::Reverse(e.start));
        for e in inside {
            text.replace_range(e.start - start..e.end - start, &e.text);
        }
        if !source.is_empty() && !source.ends_with("\n\n") {
            source.push_str(
                if matches!(stmt, ast::Stmt::FunctionDef(_) | ast::Stmt::ClassDef(_)) {
                    "\n\n"
                } else {
                    "\n"
                },
            );
        }
        source.push_str(&text);
    }
    if let Some(w) = wrapper {
        source.push_str(&w);
    }
    source.push('\n');

    let called = [written_as.as_str(), selector];
    let examples = asserts
        .iter()
        .filter_map(|a| example_of(&a.test, &called))
        .collect();
    Ok(Normalized {
        source,
        written_as,
        was_plain,
        params: method_params,
        required,
        examples,
        dropped,
        cut_at_line: None,
    })
}

/// Builtins a request may name a function after ("calculate the sum of a list" →
/// `sum`), whose name inside such a function means the builtin.
const SHADOWED_BUILTINS: [&str; 18] = [
    "abs",
    "all",
    "any",
    "divmod",
    "enumerate",
    "filter",
    "len",
    "map",
    "max",
    "min",
    "pow",
    "range",
    "reversed",
    "round",
    "sorted",
    "sum",
    "zip",
    "format",
];

fn edit(range: ruff_text_size::TextRange, text: String) -> Edit {
    Edit {
        start: usize::from(range.start()),
        end: usize::from(range.end()),
        text,
    }
}

/// Asserts anywhere in `body` (test functions nest them in loops and ifs).
fn collect_asserts<'a>(body: &'a [ast::Stmt], out: &mut Vec<&'a ast::StmtAssert>) {
    for stmt in body {
        match stmt {
            ast::Stmt::Assert(a) => out.push(a),
            ast::Stmt::If(s) => {
                collect_asserts(&s.body, out);
                for clause in &s.elif_else_clauses {
                    collect_asserts(&clause.body, out);
                }
            }
            ast::Stmt::For(s) => collect_asserts(&s.body, out),
            ast::Stmt::With(s) => collect_asserts(&s.body, out),
            _ => {}
        }
    }
}

/// The function the reply means: the one named `selector`, else the only one, else
/// the one whose name is closest to `selector`.
fn pick_main<'a>(
    functions: &[&'a ast::StmtFunctionDef],
    selector: &str,
) -> Result<&'a ast::StmtFunctionDef, String> {
    if let Some(f) = functions.iter().find(|f| f.name.as_str() == selector) {
        return Ok(f);
    }
    match functions {
        [] => Err(format!(
            "the reply defines no function: write `def {selector}(...)` in a Python code block"
        )),
        [only] => Ok(only),
        many => {
            let best = many
                .iter()
                .map(|f| (closeness(f.name.as_str(), selector), *f))
                .filter(|(score, _)| *score > 0)
                .max_by_key(|(score, _)| *score);
            best.map(|(_, f)| f).ok_or_else(|| {
                let names: Vec<&str> = many.iter().map(|f| f.name.as_str()).collect();
                format!(
                    "the reply defines {} but none is close to `{selector}`: name the function `{selector}`",
                    names.join(", ")
                )
            })
        }
    }
}

/// How alike two snake_case names are: shared words, where a word matches another
/// that it begins (`fib` ~ `fibonacci`, `vowel` ~ `vowels`) with at least 3 letters.
pub fn closeness(name: &str, selector: &str) -> usize {
    let words = |s: &str| -> Vec<String> {
        s.split('_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (a, b) = (words(name), words(selector));
    a.iter()
        .filter(|x| {
            b.iter().any(|y| {
                let (short, long) = if x.len() <= y.len() {
                    (x.as_str(), y.as_str())
                } else {
                    (y.as_str(), x.as_str())
                };
                short.len() >= 3 && long.starts_with(short)
            })
        })
        .count()
}

/// The wrapper's parameter list (after `self`), the call's arguments, and the names.
fn wrapper_signature(code: &str, params: &ast::Parameters) -> (String, String, Vec<String>) {
    let mut sig = Vec::new();
    let mut call = Vec::new();
    let mut names = Vec::new();
    let text = |r: ruff_text_size::TextRange| {
        code[usize::from(r.start())..usize::from(r.end())].to_owned()
    };
    for p in &params.posonlyargs {
        sig.push(text(p.range()));
        call.push(p.parameter.name.as_str().to_owned());
    }
    if !params.posonlyargs.is_empty() {
        sig.push("/".into());
    }
    for p in &params.args {
        sig.push(text(p.range()));
        call.push(p.parameter.name.as_str().to_owned());
    }
    if let Some(v) = &params.vararg {
        sig.push(format!("*{}", v.name.as_str()));
        call.push(format!("*{}", v.name.as_str()));
    } else if !params.kwonlyargs.is_empty() {
        sig.push("*".into());
    }
    for p in &params.kwonlyargs {
        sig.push(text(p.range()));
        let n = p.parameter.name.as_str();
        call.push(format!("{n}={n}"));
    }
    if let Some(k) = &params.kwarg {
        sig.push(format!("**{}", k.name.as_str()));
        call.push(format!("**{}", k.name.as_str()));
    }
    for p in params.iter_non_variadic_params() {
        names.push(p.parameter.name.as_str().to_owned());
    }
    let sig = if sig.is_empty() {
        String::new()
    } else {
        format!(", {}", sig.join(", "))
    };
    (sig, call.join(", "), names)
}

/// Every `Name` expression that refers to `name`.
struct NameRefs<'n> {
    name: &'n str,
    found: Vec<ruff_text_size::TextRange>,
}

impl<'a> Visitor<'a> for NameRefs<'_> {
    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        if let ast::Expr::Name(n) = expr {
            if n.id.as_str() == self.name {
                self.found.push(n.range());
            }
        }
        walk_expr(self, expr);
    }
}

/// The names a module binds anywhere (definitions, parameters, imports, assignment
/// and loop targets, `except … as`, patterns, `global`), the names it reads as the
/// object of an attribute (`math` in `math.pi`) and the names it reads at all.
#[derive(Default)]
struct Bindings {
    bound: BTreeSet<String>,
    used_as_module: BTreeSet<String>,
    used_bare: BTreeSet<String>,
}

impl<'a> Visitor<'a> for Bindings {
    fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
        match stmt {
            ast::Stmt::FunctionDef(f) => {
                self.bound.insert(f.name.to_string());
            }
            ast::Stmt::ClassDef(c) => {
                self.bound.insert(c.name.to_string());
            }
            ast::Stmt::Global(g) => self.bound.extend(g.names.iter().map(ToString::to_string)),
            ast::Stmt::Nonlocal(n) => self.bound.extend(n.names.iter().map(ToString::to_string)),
            ast::Stmt::Import(i) => self.bound.extend(i.names.iter().map(alias_binding)),
            ast::Stmt::ImportFrom(i) => self.bound.extend(i.names.iter().map(alias_binding)),
            _ => {}
        }
        walk_stmt(self, stmt);
    }

    fn visit_parameter(&mut self, parameter: &'a ast::Parameter) {
        self.bound.insert(parameter.name.to_string());
        walk_parameter(self, parameter);
    }

    fn visit_except_handler(&mut self, handler: &'a ast::ExceptHandler) {
        let ast::ExceptHandler::ExceptHandler(h) = handler;
        if let Some(name) = &h.name {
            self.bound.insert(name.to_string());
        }
        walk_except_handler(self, handler);
    }

    fn visit_pattern(&mut self, pattern: &'a ast::Pattern) {
        let name = match pattern {
            ast::Pattern::MatchAs(p) => p.name.as_ref(),
            ast::Pattern::MatchStar(p) => p.name.as_ref(),
            ast::Pattern::MatchMapping(p) => p.rest.as_ref(),
            _ => None,
        };
        if let Some(name) = name {
            self.bound.insert(name.to_string());
        }
        walk_pattern(self, pattern);
    }

    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        match expr {
            ast::Expr::Name(n) if n.ctx != ast::ExprContext::Load => {
                self.bound.insert(n.id.to_string());
            }
            ast::Expr::Name(n) => {
                self.used_bare.insert(n.id.to_string());
            }
            ast::Expr::Attribute(a) => {
                if let ast::Expr::Name(n) = &*a.value {
                    self.used_as_module.insert(n.id.to_string());
                }
            }
            _ => {}
        }
        walk_expr(self, expr);
    }
}

/// The name an import binds: `import a.b` binds `a`, `import a as b` binds `b`.
fn alias_binding(alias: &ast::Alias) -> String {
    alias.asname.as_ref().map_or_else(
        || alias.name.split('.').next().unwrap_or_default().to_owned(),
        ToString::to_string,
    )
}

/// Every `self.<name>` attribute (a method calling itself by its old name).
struct SelfCalls<'n> {
    name: &'n str,
    found: Vec<ruff_text_size::TextRange>,
}

impl<'a> Visitor<'a> for SelfCalls<'_> {
    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        if let ast::Expr::Attribute(a) = expr {
            if a.attr.as_str() == self.name
                && matches!(&*a.value, ast::Expr::Name(n) if n.id.as_str() == "self")
            {
                self.found.push(a.attr.range());
            }
        }
        walk_expr(self, expr);
    }
}

/// `assert f(x) == y`, `assert y == f(x)`, `assert f(x)`, `assert not f(x)`,
/// `assert f(x) is None/True/False`, where `f` is one of `names` (plain, `obj.f` or
/// `self.f`) and every argument and the expected value are literals.
fn example_of(test: &ast::Expr, names: &[&str]) -> Option<Example> {
    match test {
        ast::Expr::Compare(c) if c.ops.len() == 1 && c.comparators.len() == 1 => {
            let op = c.ops[0];
            let (left, right) = (&*c.left, &c.comparators[0]);
            let equal = matches!(op, ast::CmpOp::Eq | ast::CmpOp::Is);
            if !equal {
                return None;
            }
            if let Some(args) = call_args(left, names) {
                return Some(Example {
                    args,
                    expected: literal(right)?,
                });
            }
            let args = call_args(right, names)?;
            Some(Example {
                args,
                expected: literal(left)?,
            })
        }
        ast::Expr::UnaryOp(u) if u.op == ast::UnaryOp::Not => Some(Example {
            args: call_args(&u.operand, names)?,
            expected: Value::Bool(false),
        }),
        other => Some(Example {
            args: call_args(other, names)?,
            expected: Value::Bool(true),
        }),
    }
}

fn call_args(expr: &ast::Expr, names: &[&str]) -> Option<Vec<Value>> {
    let ast::Expr::Call(call) = expr else {
        return None;
    };
    let named = match &*call.func {
        ast::Expr::Name(n) => names.contains(&n.id.as_str()),
        ast::Expr::Attribute(a) => {
            names.contains(&a.attr.as_str())
                && matches!(&*a.value, ast::Expr::Name(n) if matches!(n.id.as_str(), "obj" | "self"))
        }
        _ => false,
    };
    if !named || !call.arguments.keywords.is_empty() {
        return None;
    }
    call.arguments.args.iter().map(literal).collect()
}

/// A Python literal as JSON: numbers, strings, booleans, None, lists, tuples and
/// dicts of them (dict keys as the strings JSON needs).
pub(crate) fn literal(expr: &ast::Expr) -> Option<Value> {
    Some(match expr {
        ast::Expr::NoneLiteral(_) => Value::Null,
        ast::Expr::BooleanLiteral(b) => Value::Bool(b.value),
        ast::Expr::StringLiteral(s) => Value::String(s.value.to_str().to_owned()),
        ast::Expr::NumberLiteral(n) => number(&n.value, false)?,
        ast::Expr::UnaryOp(u) if u.op == ast::UnaryOp::USub => match &*u.operand {
            ast::Expr::NumberLiteral(n) => number(&n.value, true)?,
            _ => return None,
        },
        ast::Expr::List(l) => Value::Array(l.elts.iter().map(literal).collect::<Option<_>>()?),
        ast::Expr::Tuple(t) => Value::Array(t.elts.iter().map(literal).collect::<Option<_>>()?),
        ast::Expr::Dict(d) => {
            let mut map = Map::new();
            for item in &d.items {
                let key = match literal(item.key.as_ref()?)? {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => if b { "True" } else { "False" }.to_owned(),
                    _ => return None,
                };
                map.insert(key, literal(&item.value)?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

/// The one-entry object that carries an integer beyond `i64`/`u64`, as the sandbox
/// writes it (`{"$int": "<digits>"}`: aura-sandbox's runner.py, aura-cognition's
/// `BIG_INT_KEY`), so that an example's big integer compares equal to a method's.
const BIG_INT_KEY: &str = "$int";

fn number(n: &ast::Number, negative: bool) -> Option<Value> {
    match n {
        ast::Number::Int(i) => {
            let digits = match i.as_u64() {
                Some(v) if !negative => return Some(v.into()),
                Some(v) => match i64::try_from(-i128::from(v)) {
                    Ok(v) => return Some(v.into()),
                    Err(_) => v.to_string(),
                },
                None => i.to_string().replace('_', ""),
            };
            // Hexadecimal, octal and binary literals beyond 64 bits are not read.
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let sign = if negative { "-" } else { "" };
            Some(serde_json::json!({ BIG_INT_KEY: format!("{sign}{digits}") }))
        }
        ast::Number::Float(f) => {
            Number::from_f64(if negative { -f } else { *f }).map(Value::Number)
        }
        ast::Number::Complex { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(code: &str, selector: &str) -> Normalized {
        Guard::default()
            .normalize(code, selector)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_plain_recursive_function_becomes_a_method_that_still_recurses() {
        let n = norm(
            "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\nprint(fibonacci(10))\nassert fibonacci(10) == 55\n",
            "fibonacci",
        );
        assert!(n.was_plain);
        assert_eq!(n.params, vec!["n"]);
        assert_eq!(n.required, 1);
        assert_eq!(n.dropped, 1);
        assert_eq!(
            n.source,
            "def _fibonacci(n):\n    if n < 2:\n        return n\n    return _fibonacci(n - 1) + _fibonacci(n - 2)\n\ndef fibonacci(self, n):\n    return _fibonacci(n)\n"
        );
        assert_eq!(
            n.examples,
            vec![Example {
                args: vec![json!(10)],
                expected: json!(55)
            }]
        );
        assert!(
            Guard::default()
                .audit_method(&n.source, "fibonacci")
                .accepted
        );
        let again = norm(
            "def fibonacci(n):\n    return n\n\ndef fibonacci(n):\n    return 0\n",
            "fibonacci",
        );
        assert_eq!(again.dropped, 1);
        assert!(!again.source.contains("return 0"));
    }

    #[test]
    fn an_allowed_module_used_without_its_import_is_imported() {
        let n = norm(
            "def area(radius):\n    return math.pi * radius ** 2\n",
            "area",
        );
        assert_eq!(
            n.source,
            "import math\n\ndef _area(radius):\n    return math.pi * radius ** 2\n\ndef area(self, radius):\n    return _area(radius)\n"
        );
        assert!(Guard::default().audit_method(&n.source, "area").accepted);
        // Several, once each and in order; an import already there is not repeated.
        let n = norm(
            "import math\n\ndef f(xs):\n    return statistics.median(xs) + math.sqrt(len(xs)) + statistics.mean(xs)\n",
            "f",
        );
        assert!(
            n.source.starts_with("import statistics\n\nimport math\n"),
            "{}",
            n.source
        );
        assert_eq!(n.source.matches("import").count(), 2);
        // A bare name that one allowed module exports is imported from it; one that
        // two export (`pi`: `math` and `cmath`) is ambiguous, and a builtin is no import.
        let n = norm(
            "def f(xs: List[int]) -> int:\n    return factorial(len(xs)) + pi + abs(-1)\n",
            "f",
        );
        assert!(
            n.source
                .starts_with("from typing import List\nfrom math import factorial\n\ndef _f("),
            "{}",
            n.source
        );
        assert!(!n.source.contains("import pi") && !n.source.contains("import abs"));
        assert!(Guard::default().audit_method(&n.source, "f").accepted);
        // A name the code binds is not a module: a parameter `string`, a loop variable
        // `re`, an `except … as math`; nor is a module the guard does not allow.
        for code in [
            "def f(string):\n    return string.upper()\n",
            "def f(xs):\n    return [re.x for re in xs]\n",
            "def f(x):\n    try:\n        return x.y\n    except ValueError as math:\n        return math.args\n",
            "def f(x):\n    return numpy.sqrt(x)\n",
        ] {
            let n = norm(code, "f");
            assert!(!n.source.contains("import"), "{code} -> {}", n.source);
        }
    }

    #[test]
    fn a_function_named_after_a_builtin_calls_the_builtin() {
        let n = norm(
            "def sum(numbers):\n    return sum(numbers)\n\nassert sum([1, 2]) == 3\n",
            "sum",
        );
        assert_eq!(
            n.source,
            "_builtin_sum = sum\n\ndef _sum(numbers):\n    return _builtin_sum(numbers)\n\ndef sum(self, numbers):\n    return _sum(numbers)\n"
        );
        assert!(Guard::default().audit_method(&n.source, "sum").accepted);
        // A name that is not a builtin still recurses.
        let f = norm(
            "def total(xs):\n    return total(xs[1:]) if xs else 0\n",
            "total",
        );
        assert!(f.source.contains("return _total(xs[1:])"));
        assert!(!f.source.contains("_builtin_"));
    }

    #[test]
    fn a_close_name_is_accepted_and_renamed_with_its_self_calls() {
        let n = norm(
            "def fib(self, n):\n    return n if n < 2 else self.fib(n - 1) + self.fib(n - 2)\n",
            "fibonacci",
        );
        assert!(!n.was_plain);
        assert_eq!(n.written_as, "fib");
        assert_eq!(
            n.source,
            "def fibonacci(self, n):\n    return n if n < 2 else self.fibonacci(n - 1) + self.fibonacci(n - 2)\n"
        );
    }

    #[test]
    fn helpers_imports_and_defaults_survive_and_tests_are_mined() {
        let n = norm(
            "import math\n\ndef helper(x):\n    return math.sqrt(x)\n\ndef is_square(n, exact=True):\n    return helper(n).is_integer()\n\ndef test_it():\n    assert is_square(16)\n    assert not is_square(15)\n    assert is_square(n=4)\n",
            "is_square",
        );
        assert!(n.source.starts_with("import math\n\ndef helper(x):"));
        assert_eq!((n.params.len(), n.required), (2, 1));
        assert!(n
            .source
            .ends_with("def is_square(self, n, exact=True):\n    return _is_square(n, exact)\n"));
        assert_eq!(
            n.examples,
            vec![
                Example {
                    args: vec![json!(16)],
                    expected: json!(true)
                },
                Example {
                    args: vec![json!(15)],
                    expected: json!(false)
                },
            ]
        );
        assert!(
            Guard::default()
                .audit_method(&n.source, "is_square")
                .accepted
        );
    }

    #[test]
    fn literals_cover_containers_and_negatives() {
        let n = norm(
            "def f(xs):\n    return xs\nassert f([1, -2.5, 'a', None, (True,)]) == {'k': [1], 2: 'v'}\nassert obj.f('x') is None\n",
            "f",
        );
        assert_eq!(
            n.examples[0].args,
            vec![json!([1, -2.5, "a", null, [true]])]
        );
        assert_eq!(n.examples[0].expected, json!({"k": [1], "2": "v"}));
        assert_eq!(n.examples[1].expected, Value::Null);
    }

    #[test]
    fn an_integer_beyond_64_bits_is_read_as_the_sandbox_writes_it() {
        let n = norm(
            "def f(n):\n    return n\nassert f(100) == 354_224_848_179_261_915_075\n\
             assert f(1) == -18446744073709551616\nassert f(2) == 18446744073709551615\n\
             assert f(3) == -9223372036854775808\nassert f(4) == 0x1_0000_0000_0000_0000\n",
            "f",
        );
        let expected: Vec<Value> = n.examples.iter().map(|e| e.expected.clone()).collect();
        assert_eq!(
            expected,
            vec![
                json!({"$int": "354224848179261915075"}),
                json!({"$int": "-18446744073709551616"}),
                json!(18446744073709551615_u64),
                json!(i64::MIN),
            ],
            "the hexadecimal literal beyond 64 bits is not read"
        );
    }

    #[test]
    fn unusable_replies_say_why() {
        let g = Guard::default();
        let e = g.normalize("print('hello')\n", "greet").unwrap_err();
        assert!(e.to_string().contains("defines no function"), "{e}");
        let e = g
            .normalize(
                "def alpha(x):\n    return x\n\ndef beta(y):\n    return y\n",
                "gamma",
            )
            .unwrap_err();
        assert!(e.to_string().contains("none is close to `gamma`"), "{e}");
        let e = g
            .normalize("import os\ndef f():\n    return os.getcwd()\n", "f")
            .unwrap_err();
        assert!(
            matches!(e, NormalizeError::Rejected(ref v) if !v.accepted),
            "{e}"
        );
    }

    #[test]
    fn a_syntax_error_after_the_function_is_cut_off_and_the_rest_kept() {
        let g = Guard::default();
        let reply = "def count_words(text):\n    return len(text.split())\n\n# Test it\n\
                     assert count_words('a b') == 2\nassert x = count_words('c')\nprint(1)\n";
        let n = g.normalize(reply, "count_words").unwrap();
        assert_eq!(n.cut_at_line, Some(6));
        assert_eq!(
            n.examples.len(),
            1,
            "the assert before the cut is still mined"
        );
        assert!(g.audit_method(&n.source, "count_words").accepted);

        let refused_for = |reply: &str, rule: Rule| {
            let e = g.normalize(reply, "f").unwrap_err();
            assert!(
                matches!(e, NormalizeError::Rejected(ref v) if v.has(rule)),
                "{e}"
            );
        };
        // The error inside the only function: nothing usable is left, and the guard's
        // verdict is the answer.
        refused_for("def f(x):\n    return x +\n\nprint(f(1))\n", Rule::Syntax);
        // A refusal for anything but syntax is never salvaged, even with a syntax error
        // after it.
        refused_for(
            "import os\ndef f():\n    return os.getcwd()\nf(\n",
            Rule::ImportDenied,
        );
    }

    #[test]
    fn closeness_matches_word_prefixes() {
        assert_eq!(closeness("fib", "fibonacci"), 1);
        assert_eq!(closeness("vowel_count", "count_vowels"), 2);
        assert_eq!(closeness("solve", "count_vowels"), 0);
    }
}
