//! # aura-guard
//!
//! The PersistenceGuardian: a static audit of model-written Python before it is run
//! in the sandbox. The guard parses the source, walks every node of the tree with an
//! exhaustive walker (a node kind without a rule is rejected) and returns a
//! [`Verdict`] that lists every [`Violation`] with a stable [`Rule`] id, a 1-based
//! line and column (in characters) and a message written for a model to act on.
//!
//! ```
//! use aura_guard::{Guard, Policy, Rule};
//!
//! let guard = Guard::new(Policy::default());
//! let verdict = guard.audit_method(
//!     "import os\n\ndef area(self):\n    return os.getcwd()\n",
//!     "area",
//! );
//! assert!(!verdict.accepted);
//! assert_eq!(verdict.violations[0].rule, Rule::ImportDenied);
//! assert!(verdict.violations[0].message.starts_with("line 1: import of 'os' is not allowed"));
//!
//! let ok = guard.audit_method("import math\n\ndef area(self):\n    return math.pi * self.r ** 2\n", "area");
//! assert!(ok.accepted, "{ok}");
//! ```
//!
//! The guard is the first of three layers (docs/ARCHITECTURE.md, "Security model"); the jail must hold even
//! when the guard is wrong. The rules are documented on [`Rule`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use api::{module_api_json, module_api_python};
pub use calls::called_names;

mod api;
mod calls;
mod format;
mod names;
pub mod normalize;
mod parser;
mod position;
mod shape;
mod walker;

/// A stable rule id. Serialised as the kebab-case id shown next to each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `syntax`: the source is not valid Python.
    Syntax,
    /// `limit`: the source is too large, too deeply nested, or has too many violations.
    Limit,
    /// `node-denied`: a syntax kind with no rule allowing it (`global`, `async`,
    /// `await`, template strings).
    NodeDenied,
    /// `import-denied`: an import of a module outside the policy's allowlist, or a
    /// relative import.
    ImportDenied,
    /// `import-star`: `from x import *`.
    ImportStar,
    /// `builtin-denied`: a reference (call or not) to a denied builtin: `exec`,
    /// `eval`, `compile`, `__import__`, `open`, `globals`, `vars`, `locals`,
    /// `breakpoint`, `input`, `help`, `exit`, `quit`, `memoryview`, …
    BuiltinDenied,
    /// `name-denied`: a library function that evaluates strings as code
    /// (`typing.get_type_hints`, `typing.ForwardRef`, `functools.singledispatch`, …),
    /// named as a variable, an attribute or an import.
    NameDenied,
    /// `dunder-name`: a variable named `__x__` (`__builtins__`, `__class__`,
    /// `__name__`), or a dunder method a helper class may not define.
    DunderName,
    /// `private-attribute`: an attribute starting with `_` (`x.__class__`,
    /// `random._os`), also in `from m import _x`, format fields and match patterns.
    PrivateAttribute,
    /// `frame-attribute`: frame, code, generator and traceback attributes without
    /// dunders (`gi_frame`, `f_globals`, `tb_frame`, `co_code`, `types.CodeType`, …).
    FrameAttribute,
    /// `module-attribute`: an attribute named like a dangerous module on an object
    /// that is not a module the guard knows (`x.os`, `obj.sys`); an imported module
    /// used as a value (`m = typing`) or a variable rebinding an imported module's name.
    ModuleAttribute,
    /// `module-api`: an attribute of an allowed module, an imported name or a submodule
    /// that is not on that module's API allowlist (`enum.bltns`, `typing.types`,
    /// `from json import decoder`), or one excluded from it with a reason
    /// (`typing.get_type_hints`, `dataclasses.make_dataclass`).
    ModuleApi,
    /// `dynamic-attribute`: attribute access built from strings: `getattr` &
    /// co. with a non-literal or private name, or not called directly;
    /// `operator.attrgetter` / `methodcaller`.
    DynamicAttribute,
    /// `format-attribute`: `str.format`/`format_map` whose format string is not a
    /// literal, a literal whose fields reach a denied attribute (`"{0.__class__}"`),
    /// or `string.Formatter`.
    FormatAttribute,
    /// `shadowing`: rebinding a name the guard treats specially (`getattr`,
    /// `setattr`, `delattr`, `hasattr`, `super`).
    Shadowing,
    /// `annotation`: a string annotation that looks like code but cannot be read
    /// (readable ones are audited like code, because `typing` evaluates them).
    Annotation,
    /// `shape`: the top level of the source does not have the required shape.
    Shape,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Rule; 17] = [
        Rule::Syntax,
        Rule::Limit,
        Rule::NodeDenied,
        Rule::ImportDenied,
        Rule::ImportStar,
        Rule::BuiltinDenied,
        Rule::NameDenied,
        Rule::DunderName,
        Rule::PrivateAttribute,
        Rule::FrameAttribute,
        Rule::ModuleAttribute,
        Rule::ModuleApi,
        Rule::DynamicAttribute,
        Rule::FormatAttribute,
        Rule::Shadowing,
        Rule::Annotation,
        Rule::Shape,
    ];

    /// The stable id, e.g. `"import-denied"`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Syntax => "syntax",
            Rule::Limit => "limit",
            Rule::NodeDenied => "node-denied",
            Rule::ImportDenied => "import-denied",
            Rule::ImportStar => "import-star",
            Rule::BuiltinDenied => "builtin-denied",
            Rule::NameDenied => "name-denied",
            Rule::DunderName => "dunder-name",
            Rule::PrivateAttribute => "private-attribute",
            Rule::FrameAttribute => "frame-attribute",
            Rule::ModuleAttribute => "module-attribute",
            Rule::ModuleApi => "module-api",
            Rule::DynamicAttribute => "dynamic-attribute",
            Rule::FormatAttribute => "format-attribute",
            Rule::Shadowing => "shadowing",
            Rule::Annotation => "annotation",
            Rule::Shape => "shape",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One reason the source was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule that was broken.
    pub rule: Rule,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// What is wrong and what to do instead, starting with `line N: `.
    pub message: String,
}

/// The outcome of an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// True when there are no violations.
    pub accepted: bool,
    /// Every violation found, in source order (capped by [`Policy::max_violations`]).
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// Whether a violation of `rule` was found.
    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }
}

impl fmt::Display for Verdict {
    /// One line per violation (`message [rule]`), or `accepted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.accepted {
            return f.write_str("accepted");
        }
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{} [{}]", v.message, v.rule)?;
        }
        Ok(())
    }
}

/// What the top level of the source must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Shape {
    /// Defines `def <selector>(self, …)`; besides it only allowed imports, helper
    /// functions and classes, constant assignments and a docstring.
    Method {
        /// The method's name.
        selector: String,
    },
    /// Like `Method`, but any top-level function whose first parameter is `self`
    /// will do (at least one).
    AnyMethod,
    /// A tests module: at least one `def test_*()` taking no parameters; besides
    /// them imports, helpers, classes, constants and a docstring.
    Tests,
    /// Any top-level statements (the rules still apply everywhere).
    Module,
}

/// What the guard allows. [`Policy::default`] is the recommended policy. As
/// configuration (serde), missing fields take their default values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Allowed modules by dotted name (a submodule is listed on its own), each with
    /// the attributes a method may use; `None` allows every public attribute (a
    /// module the host vouches for, see [`Policy::allow_module`]).
    modules: BTreeMap<String, Option<BTreeSet<String>>>,
    max_source_bytes: usize,
    max_depth: usize,
    max_violations: usize,
}

impl Default for Policy {
    /// Allows the pure-computation modules of `data/module_api.json` (`math`, `re`,
    /// `json`, `collections`, …), each limited to its API allowlist; sources up to
    /// 256 KiB, nesting up to 200 levels, and reports up to 100 violations.
    fn default() -> Self {
        Policy {
            modules: api::DATA
                .modules
                .iter()
                .map(|(m, names)| (m.clone(), Some(names.clone())))
                .collect(),
            max_source_bytes: 256 * 1024,
            max_depth: 200,
            max_violations: 100,
        }
    }
}

/// What a policy allows of one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleAccess<'a> {
    /// Only these attributes (and the submodules the policy lists).
    Api(&'a BTreeSet<String>),
    /// Every public attribute and public submodule.
    Public,
}

impl Policy {
    /// The default policy.
    pub fn new() -> Self {
        Policy::default()
    }

    /// The default limits with no module allowed.
    pub fn without_modules() -> Self {
        Policy {
            modules: BTreeMap::new(),
            ..Policy::default()
        }
    }

    /// Allows importing `module`. A module of the shipped allowlist gets its API
    /// allowlist (and its listed submodules); any other module is vouched for by the
    /// host: every public attribute and public submodule is allowed, which the
    /// reachability audit has not checked. Prefer [`Policy::allow_module_api`].
    pub fn allow_module(mut self, module: impl Into<String>) -> Self {
        let module = module.into();
        let prefix = format!("{module}.");
        let known: Vec<(String, BTreeSet<String>)> = api::DATA
            .modules
            .iter()
            .filter(|(m, _)| **m == module || m.starts_with(&prefix))
            .map(|(m, names)| (m.clone(), names.clone()))
            .collect();
        if known.is_empty() {
            self.modules.insert(module, None);
        } else {
            for (m, names) in known {
                self.modules.insert(m, Some(names));
            }
        }
        self
    }

    /// Allows importing `module` (a dotted name) with exactly these attributes.
    pub fn allow_module_api<I, S>(mut self, module: impl Into<String>, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.modules.insert(
            module.into(),
            Some(names.into_iter().map(Into::into).collect()),
        );
        self
    }

    /// Denies importing `module` and its submodules.
    pub fn deny_module(mut self, module: &str) -> Self {
        let prefix = format!("{module}.");
        self.modules
            .retain(|m, _| m != module && !m.starts_with(&prefix));
        self
    }

    /// Sets the largest source accepted, in bytes.
    pub fn with_max_source_bytes(mut self, bytes: usize) -> Self {
        self.max_source_bytes = bytes;
        self
    }

    /// Sets the deepest nesting of statements, expressions and patterns accepted.
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Sets how many violations are reported at most.
    pub fn with_max_violations(mut self, n: usize) -> Self {
        self.max_violations = n.max(1);
        self
    }

    /// What the policy allows of `module` (a dotted name), or `None` when it may not
    /// be imported.
    pub fn module_access(&self, module: &str) -> Option<ModuleAccess<'_>> {
        if let Some(entry) = self.modules.get(module) {
            return Some(match entry {
                Some(names) => ModuleAccess::Api(names),
                None => ModuleAccess::Public,
            });
        }
        // A public submodule of a module the host vouches for.
        let mut end = module.len();
        while let Some(dot) = module[..end].rfind('.') {
            end = dot;
            if let Some(entry) = self.modules.get(&module[..end]) {
                let public = module[end + 1..].split('.').all(|s| !s.starts_with('_'));
                return (entry.is_none() && public).then_some(ModuleAccess::Public);
            }
        }
        None
    }

    /// Whether `module` (a dotted name) may be imported.
    pub fn is_module_allowed(&self, module: &str) -> bool {
        self.module_access(module).is_some()
    }

    /// The allowed modules (dotted names), sorted.
    pub fn allowed_modules(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }

    /// The largest source accepted, in bytes.
    pub fn max_source_bytes(&self) -> usize {
        self.max_source_bytes
    }

    /// The deepest nesting accepted.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// How many violations are reported at most.
    pub fn max_violations(&self) -> usize {
        self.max_violations
    }
}

/// The static auditor. Cheap to share (`&Guard` is all an audit needs).
#[derive(Debug, Clone)]
pub struct Guard {
    policy: Policy,
    allowed_list: String,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(Policy::default())
    }
}

impl Guard {
    /// A guard enforcing `policy`.
    pub fn new(policy: Policy) -> Self {
        let allowed_list = if policy.modules.is_empty() {
            "none".to_owned()
        } else {
            policy.allowed_modules().collect::<Vec<_>>().join(", ")
        };
        Guard {
            policy,
            allowed_list,
        }
    }

    /// The policy this guard enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Audits `source` against the rules only ([`Shape::Module`]).
    pub fn audit(&self, source: &str) -> Verdict {
        self.audit_shape(source, &Shape::Module)
    }

    /// Audits `source` and checks that it defines `def <selector>(self, …)` with only
    /// imports, helpers and constants besides ([`Shape::Method`]).
    pub fn audit_method(&self, source: &str, selector: &str) -> Verdict {
        self.audit_shape(
            source,
            &Shape::Method {
                selector: selector.to_owned(),
            },
        )
    }

    /// Audits a tests module ([`Shape::Tests`]).
    pub fn audit_tests(&self, source: &str) -> Verdict {
        self.audit_shape(source, &Shape::Tests)
    }

    /// Audits `source` against the rules and `shape`.
    pub fn audit_shape(&self, source: &str, shape: &Shape) -> Verdict {
        walker::audit(self, source, shape)
    }
}
