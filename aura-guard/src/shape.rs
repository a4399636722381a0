//! The top-level shape check (see [`crate::Shape`]).

use crate::parser::{ast, Ranged};
use crate::walker::{nfkc, Auditor};
use crate::{Rule, Shape};

/// Checks the top-level statements of `body` against `shape`.
pub(crate) fn check(auditor: &mut Auditor<'_>, body: &[ast::Stmt], shape: &Shape) {
    let what = match shape {
        Shape::Module => return,
        Shape::Method { selector } => {
            format!("a method module (the method 'def {selector}(self, ...)', imports, helper functions and classes, constants)")
        }
        Shape::AnyMethod => {
            "a method module (a 'def name(self, ...)' method, imports, helper functions and classes, constants)".to_owned()
        }
        Shape::Tests => {
            "a tests module ('def test_...()' functions, imports, helper functions and classes, constants)".to_owned()
        }
    };
    let mut methods = 0usize;
    let mut selector_defs = 0usize;
    let mut tests = 0usize;
    for stmt in body {
        let offset = usize::from(stmt.start());
        match stmt {
            ast::Stmt::FunctionDef(f) => {
                let name = nfkc(f.name.as_str()).into_owned();
                let first = first_parameter(&f.parameters);
                if first.as_deref() == Some("self") {
                    methods += 1;
                }
                match shape {
                    Shape::Method { selector } if name == *selector => {
                        selector_defs += 1;
                        if first.as_deref() != Some("self") {
                            auditor.report(
                                Rule::Shape,
                                offset,
                                format!("the method '{selector}' must take 'self' as its first parameter: def {selector}(self, ...)"),
                            );
                        }
                        if !f.decorator_list.is_empty() {
                            auditor.report(
                                Rule::Shape,
                                offset,
                                format!("the method '{selector}' may not have decorators"),
                            );
                        }
                    }
                    Shape::Tests if name.starts_with("test_") => {
                        tests += 1;
                        let p = &f.parameters;
                        if !(p.posonlyargs.is_empty()
                            && p.args.is_empty()
                            && p.kwonlyargs.is_empty()
                            && p.vararg.is_none()
                            && p.kwarg.is_none())
                        {
                            auditor.report(
                                Rule::Shape,
                                offset,
                                format!("the test '{name}' must take no parameters: def {name}():"),
                            );
                        }
                    }
                    _ => {}
                }
            }
            ast::Stmt::ClassDef(_) | ast::Stmt::Import(_) | ast::Stmt::ImportFrom(_) => {}
            ast::Stmt::Assign(a) => {
                if !a.targets.iter().all(is_constant_target) {
                    auditor.report(
                        Rule::Shape,
                        offset,
                        "top-level assignments may only bind plain names (module constants)"
                            .to_owned(),
                    );
                }
            }
            ast::Stmt::AnnAssign(a) => {
                if !is_constant_target(&a.target) || a.value.is_none() {
                    auditor.report(
                        Rule::Shape,
                        offset,
                        "top-level annotated assignments must bind a plain name to a value"
                            .to_owned(),
                    );
                }
            }
            ast::Stmt::Expr(e) if matches!(e.value.as_ref(), ast::Expr::StringLiteral(_)) => {
                // A docstring or a string used as a comment: no effect.
            }
            ast::Stmt::Pass(_) => {}
            _ => auditor.report(
                Rule::Shape,
                offset,
                format!(
                    "{} is not allowed at the top level; the source must be {what}; move the code into a function",
                    describe(stmt)
                ),
            ),
        }
    }
    match shape {
        Shape::Method { selector } => {
            if selector_defs == 0 {
                auditor.report(
                    Rule::Shape,
                    0,
                    format!("the source must define the method 'def {selector}(self, ...)' at the top level"),
                );
            } else if selector_defs > 1 {
                auditor.report(
                    Rule::Shape,
                    0,
                    format!(
                        "the method '{selector}' is defined {selector_defs} times; define it once"
                    ),
                );
            }
        }
        Shape::AnyMethod => {
            if methods == 0 {
                auditor.report(
                    Rule::Shape,
                    0,
                    "the source must define a method at the top level: a function whose first parameter is 'self'".to_owned(),
                );
            }
        }
        Shape::Tests => {
            if tests == 0 {
                auditor.report(
                    Rule::Shape,
                    0,
                    "a tests module must define at least one 'def test_...():' function at the top level".to_owned(),
                );
            }
        }
        Shape::Module => {}
    }
}

fn first_parameter(p: &ast::Parameters) -> Option<String> {
    p.posonlyargs
        .first()
        .or_else(|| p.args.first())
        .map(|a| nfkc(a.parameter.name.as_str()).into_owned())
}

fn is_constant_target(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Name(_) => true,
        ast::Expr::Tuple(t) => t.elts.iter().all(is_constant_target),
        ast::Expr::List(l) => l.elts.iter().all(is_constant_target),
        _ => false,
    }
}

fn describe(stmt: &ast::Stmt) -> &'static str {
    match stmt {
        ast::Stmt::FunctionDef(_) => "a function",
        ast::Stmt::ClassDef(_) => "a class",
        ast::Stmt::Return(_) => "'return'",
        ast::Stmt::Delete(_) => "'del'",
        ast::Stmt::TypeAlias(_) => "a type alias",
        ast::Stmt::Assign(_) | ast::Stmt::AnnAssign(_) => "an assignment",
        ast::Stmt::AugAssign(_) => "an augmented assignment",
        ast::Stmt::For(_) => "a for loop",
        ast::Stmt::While(_) => "a while loop",
        ast::Stmt::If(_) => "an if statement",
        ast::Stmt::With(_) => "a with statement",
        ast::Stmt::Match(_) => "a match statement",
        ast::Stmt::Raise(_) => "'raise'",
        ast::Stmt::Try(_) => "a try statement",
        ast::Stmt::Assert(_) => "'assert'",
        ast::Stmt::Import(_) | ast::Stmt::ImportFrom(_) => "an import",
        ast::Stmt::Global(_) => "'global'",
        ast::Stmt::Nonlocal(_) => "'nonlocal'",
        ast::Stmt::Expr(_) => "an expression statement",
        ast::Stmt::Pass(_) => "'pass'",
        ast::Stmt::Break(_) => "'break'",
        ast::Stmt::Continue(_) => "'continue'",
        ast::Stmt::IpyEscapeCommand(_) => "an IPython escape",
    }
}
