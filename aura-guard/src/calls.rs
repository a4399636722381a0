//! A method's call graph: the names its code can look up on an object.
//!
//! A call ships the method and what it reaches on its receiver, not the whole library
//! on the delegation chain. What it reaches is read from the source here, once, when
//! the method is stored.
//!
//! The answer over-approximates on purpose: every attribute name the source uses, on any
//! object, counts (`text.upper()` adds `upper`), because which expressions hold the
//! receiver is not decidable and a name too many only ships a helper too many. It is
//! complete for code the guard accepts: the guard rejects every dynamic lookup
//! (`getattr` without a literal name, `operator.attrgetter`/`methodcaller`,
//! `string.Formatter`, dunder access), so a name looked up on an object appears in the
//! source as an attribute, as the literal name given to `getattr`/`hasattr`/…, or inside
//! a replacement field of a literal format string (`"{0.total}".format(self)`).

use std::collections::BTreeSet;

use crate::names;
use crate::parser::{self, ast};
use ast::visitor::{self, Visitor};

/// Deeper than this, the tree is not walked (see [`called_names`]).
const MAX_DEPTH: usize = 512;

/// Every name `source` may look up on an object, sorted, each once: the selectors a
/// method written in `source` can call on its receiver.
///
/// `None` when the source has syntax errors or nests deeper than the walk goes: the
/// caller must then assume the code may reach anything. Meant for code the guard has
/// accepted (see the module documentation for why that makes the answer complete).
///
/// ```
/// let calls = aura_guard::called_names(
///     "def total(self, xs):\n    return self.tax(sum(xs)) + getattr(self, 'fee')\n",
/// );
/// assert_eq!(calls.unwrap(), ["fee", "tax"]);
/// assert_eq!(aura_guard::called_names("def broken(self:\n"), None);
/// ```
pub fn called_names(source: &str) -> Option<Vec<String>> {
    let parsed = parser::parse_module(source, 1);
    if !parsed.errors.is_empty() {
        parser::dispose_module(parsed.module, source.len());
        return None;
    }
    let mut names = Names::default();
    names.visit_body(&parsed.module.body);
    parser::dispose_module(parsed.module, source.len());
    (!names.too_deep).then(|| names.found.into_iter().collect())
}

#[derive(Default)]
struct Names {
    found: BTreeSet<String>,
    depth: usize,
    too_deep: bool,
}

impl Names {
    /// The identifiers inside the `{…}` fields of a literal that may be a format string.
    fn format_fields(&mut self, text: &str) {
        for field in text.split('{').skip(1) {
            let field = field.split('}').next().unwrap_or_default();
            for word in field.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if word.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                    self.found.insert(word.to_owned());
                }
            }
        }
    }
}

impl<'a> Visitor<'a> for Names {
    fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.too_deep = true;
        } else if !self.too_deep {
            visitor::walk_stmt(self, stmt);
        }
        self.depth -= 1;
    }

    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.too_deep = true;
            self.depth -= 1;
            return;
        }
        match expr {
            ast::Expr::Attribute(a) => {
                self.found.insert(a.attr.id.to_string());
            }
            ast::Expr::Call(call) => {
                let getattr_like = matches!(&*call.func,
                    ast::Expr::Name(n) if names::is_getattr_family(n.id.as_str()));
                if let (true, Some(ast::Expr::StringLiteral(s))) =
                    (getattr_like, call.arguments.args.get(1))
                {
                    self.found.insert(s.value.to_str().to_owned());
                }
            }
            ast::Expr::StringLiteral(s) => {
                let text = s.value.to_str();
                if text.contains('{') {
                    self.format_fields(text);
                }
            }
            _ => {}
        }
        if !self.too_deep {
            visitor::walk_expr(self, expr);
        }
        self.depth -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::called_names;

    fn names(source: &str) -> Vec<String> {
        called_names(source).expect("parses")
    }

    #[test]
    fn attributes_literal_getattr_and_format_fields_count() {
        let source = "def report(self, xs):\n    \
                      h = helper_of(xs)\n    \
                      s = '{0.title}: {1}'.format(self, self.total(xs))\n    \
                      if hasattr(self, 'extra'):\n        \
                          s += f'{self.extra()}'\n    \
                      return s.upper()\n";
        assert_eq!(
            names(source),
            ["extra", "format", "title", "total", "upper"]
        );
    }

    #[test]
    fn nested_functions_lambdas_and_comprehensions_are_read() {
        let source = "def f(self, xs):\n    \
                      g = lambda v: self.inner(v)\n    \
                      def h(w):\n        return self.deep(w)\n    \
                      return [self.each(x) for x in xs if self.keep(x)] + [g(1), h(2)]\n";
        assert_eq!(names(source), ["deep", "each", "inner", "keep"]);
    }

    #[test]
    fn code_without_lookups_reaches_nothing() {
        assert!(names("def f(self, n):\n    return n + 1\n").is_empty());
    }

    #[test]
    fn unreadable_or_too_deep_code_reaches_anything() {
        assert_eq!(called_names("def f(self:\n    return self.g()\n"), None);
        let deep = format!(
            "def f(self):\n    return {}self.g(){}\n",
            "[".repeat(600),
            "]".repeat(600)
        );
        assert_eq!(called_names(&deep), None);
    }
}
