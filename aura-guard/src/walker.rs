//! The exhaustive walker. Every `match` over a node kind lists every variant and
//! every node struct is destructured field by field without `..`, so a parser
//! upgrade that adds syntax or fields fails to compile here instead of slipping
//! through. Node kinds without a rule are rejected (`node-denied`).

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::parser::{self, ast, Ranged};
use crate::{
    api, format, names, position, shape, Guard, ModuleAccess, Rule, Shape, Verdict, Violation,
};

/// A violation before its offset is turned into a line and column.
pub(crate) struct Pending {
    pub rule: Rule,
    pub offset: usize,
    pub message: String,
}

/// Runs the whole audit.
pub(crate) fn audit(guard: &Guard, source: &str, shape: &Shape) -> Verdict {
    let policy = guard.policy();
    if source.len() > policy.max_source_bytes() {
        let v = Pending {
            rule: Rule::Limit,
            offset: 0,
            message: format!(
                "the source is {} bytes; at most {} bytes are accepted",
                source.len(),
                policy.max_source_bytes()
            ),
        };
        return finish(source, vec![v], 0);
    }
    if let Some((offset, codec)) = foreign_encoding_declaration(source) {
        let v = Pending {
            rule: Rule::Syntax,
            offset,
            message: format!(
                "the encoding declaration '{codec}' is not allowed: the guard reads the source \
                 as UTF-8, so declare utf-8 or remove the line"
            ),
        };
        return finish(source, vec![v], 0);
    }
    if parser::bracket_depth_beyond(source, policy.max_depth()) {
        // The walker would refuse the tree as too deep anyway; the parser must not
        // even see it (see `parser`).
        let v = Pending {
            rule: Rule::Limit,
            offset: 0,
            message: format!(
                "brackets are nested more than {} levels deep; flatten the code",
                policy.max_depth()
            ),
        };
        return finish(source, vec![v], 0);
    }
    let parsed = parser::parse_module(source, 5);
    let mut auditor = Auditor::new(guard);
    if parsed.errors.is_empty() {
        auditor.collect_bindings(&parsed.module.body);
        auditor.suite(&parsed.module.body);
        if !auditor.too_deep {
            shape::check(&mut auditor, &parsed.module.body, shape);
        }
    } else {
        // Measure the recovered tree's depth only, so it is disposed of safely.
        auditor.measure_only = true;
        auditor.suite(&parsed.module.body);
        let too_deep = auditor.too_deep;
        auditor.violations.clear();
        auditor.overflow = 0;
        auditor.too_deep = too_deep;
        for e in &parsed.errors {
            auditor.violations.push(Pending {
                rule: Rule::Syntax,
                offset: e.offset,
                message: format!("syntax error: {}", e.message),
            });
        }
    }
    if auditor.too_deep {
        parser::dispose_module(parsed.module, source.len());
    }
    let overflow = auditor.overflow;
    finish(source, auditor.violations, overflow)
}

/// A PEP 263 encoding declaration (`# -*- coding: utf-7 -*-`) in the first two
/// lines naming anything but UTF-8: CPython would decode the file with that codec,
/// so the code that runs would not be the code the guard read.
fn foreign_encoding_declaration(source: &str) -> Option<(usize, String)> {
    let mut offset = 0usize;
    for line in source.split_inclusive(['\n', '\r']).take(2) {
        let trimmed = line.trim_start_matches([' ', '\t', '\x0c', '\u{feff}']);
        if trimmed.starts_with('#') {
            // As CPython's `^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`: the first
            // "coding" followed by ':' or '='.
            let declared = trimmed
                .match_indices("coding")
                .find_map(|(at, word)| trimmed[at + word.len()..].strip_prefix([':', '=']));
            if let Some(rest) = declared {
                let codec: String = rest
                    .trim_start_matches([' ', '\t'])
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                let norm = codec.to_ascii_lowercase().replace('_', "-");
                let utf8 = norm == "utf-8" || norm == "utf8" || norm.starts_with("utf-8-");
                if !codec.is_empty() && !utf8 {
                    return Some((offset, codec));
                }
            }
        } else if !trimmed.trim().is_empty() {
            // Only comment or blank lines may precede the declaration.
            return None;
        }
        offset += line.len();
    }
    None
}

fn finish(source: &str, mut pending: Vec<Pending>, overflow: usize) -> Verdict {
    pending.sort_by_key(|p| p.offset);
    let mut violations: Vec<Violation> = pending
        .into_iter()
        .map(|p| {
            let (line, col) = position::line_col(source, p.offset);
            Violation {
                rule: p.rule,
                line,
                col,
                message: format!("line {line}: {}", p.message),
            }
        })
        .collect();
    if overflow > 0 {
        violations.push(Violation {
            rule: Rule::Limit,
            line: 1,
            col: 1,
            message: format!("line 1: {overflow} more violations were not listed"),
        });
    }
    Verdict {
        accepted: violations.is_empty(),
        violations,
    }
}

/// NFKC-normalises an identifier as CPython does (`ｅｘｅｃ` is `exec`).
pub(crate) fn nfkc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfkc().collect())
    }
}

/// Where a name is bound or used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Load,
    Bind,
    /// The callee of a call (`getattr(...)`).
    Callee,
}

pub(crate) struct Auditor<'a> {
    guard: &'a Guard,
    pub(crate) violations: Vec<Pending>,
    pub(crate) overflow: usize,
    depth: usize,
    pub(crate) too_deep: bool,
    /// Walk without reporting (a tree with syntax errors, measured for depth).
    measure_only: bool,
    /// Inside an annotation: string literals are annotation code.
    in_annotation: bool,
    /// Statements being walked are directly in a class body.
    in_class_body: bool,
    /// Report everything at this offset (a string annotation's contents).
    offset_override: Option<usize>,
    /// Names bound by imports anywhere in the source, with the module each names
    /// (`re` -> `re`, `abc` -> `collections.abc`). Rebinding them otherwise is
    /// rejected, so a name here always refers to its module.
    modules: Vec<(String, String)>,
    /// Names that hold exceptions the method did not make: bound by `except ... as
    /// name`, or an `__exit__` method's parameters after `self`.
    exception_names: Vec<String>,
    /// Names that hold one of `enum`'s classes or a class derived from one here (see
    /// [`Auditor::enum_functional_call`]).
    enum_classes: Vec<String>,
    /// The start of the `type(x)` call whose result its parent uses in a way that
    /// cannot reach a metaclass (see [`Auditor::type_call`]).
    type_call_ok: Option<usize>,
    /// Binding the names of an import statement.
    in_import: bool,
}

impl<'a> Auditor<'a> {
    fn new(guard: &'a Guard) -> Self {
        Auditor {
            guard,
            violations: Vec::new(),
            overflow: 0,
            depth: 0,
            too_deep: false,
            measure_only: false,
            in_annotation: false,
            in_class_body: false,
            offset_override: None,
            modules: Vec::new(),
            exception_names: Vec::new(),
            enum_classes: Vec::new(),
            type_call_ok: None,
            in_import: false,
        }
    }

    /// Finds every name bound by an import of an allowed module, and by `except ...
    /// as name`, before the walk: a function may use a module imported below it.
    /// Iterative, so that very deep statement nesting cannot overflow the stack (the
    /// walk then rejects it with `limit`).
    fn collect_bindings(&mut self, body: &[ast::Stmt]) {
        let mut pending: Vec<&[ast::Stmt]> = vec![body];
        // Every class statement's name and bases, to find enum classes once all
        // imports are known.
        let mut classes: Vec<(String, &[ast::Expr])> = Vec::new();
        while let Some(stmts) = pending.pop() {
            for stmt in stmts {
                match stmt {
                    ast::Stmt::Import(import) => {
                        for alias in &import.names {
                            let dotted = nfkc(alias.name.as_str()).into_owned();
                            if !self.guard.policy().is_module_allowed(&dotted) {
                                continue;
                            }
                            match &alias.asname {
                                Some(a) => self.bind_module(nfkc(a.as_str()).into_owned(), dotted),
                                None => {
                                    let top = dotted.split('.').next().unwrap_or("").to_owned();
                                    self.bind_module(top.clone(), top);
                                }
                            }
                        }
                    }
                    ast::Stmt::ImportFrom(from) => {
                        let Some(module) = from.module.as_ref().filter(|_| from.level == 0) else {
                            continue;
                        };
                        let module = nfkc(module.as_str()).into_owned();
                        for alias in &from.names {
                            if module == "enum" && names::is_enum_class(&nfkc(alias.name.as_str()))
                            {
                                let local = alias.asname.as_ref().unwrap_or(&alias.name);
                                self.enum_classes.push(nfkc(local.as_str()).into_owned());
                            }
                            let dotted = format!("{module}.{}", nfkc(alias.name.as_str()));
                            if self.guard.policy().is_module_allowed(&dotted) {
                                let local = alias.asname.as_ref().unwrap_or(&alias.name);
                                self.bind_module(nfkc(local.as_str()).into_owned(), dotted);
                            }
                        }
                    }
                    ast::Stmt::FunctionDef(f) => {
                        // The context-manager protocol hands `__exit__` the exception
                        // (and its traceback) that left the `with` block.
                        if nfkc(f.name.as_str()) == "__exit__" {
                            for param in f.parameters.iter().skip(1) {
                                self.exception_names
                                    .push(nfkc(param.name().as_str()).into_owned());
                            }
                        }
                        pending.push(&f.body);
                    }
                    ast::Stmt::ClassDef(c) => {
                        let bases = c.arguments.as_ref().map_or(&[][..], |a| &a.args[..]);
                        classes.push((nfkc(c.name.as_str()).into_owned(), bases));
                        pending.push(&c.body);
                    }
                    ast::Stmt::For(f) => {
                        pending.push(&f.body);
                        pending.push(&f.orelse);
                    }
                    ast::Stmt::While(w) => {
                        pending.push(&w.body);
                        pending.push(&w.orelse);
                    }
                    ast::Stmt::If(i) => {
                        pending.push(&i.body);
                        for clause in &i.elif_else_clauses {
                            pending.push(&clause.body);
                        }
                    }
                    ast::Stmt::With(w) => pending.push(&w.body),
                    ast::Stmt::Match(m) => {
                        for case in &m.cases {
                            pending.push(&case.body);
                        }
                    }
                    ast::Stmt::Try(t) => {
                        pending.push(&t.body);
                        pending.push(&t.orelse);
                        pending.push(&t.finalbody);
                        for ast::ExceptHandler::ExceptHandler(h) in &t.handlers {
                            if let Some(n) = &h.name {
                                self.exception_names.push(nfkc(n.as_str()).into_owned());
                            }
                            pending.push(&h.body);
                        }
                    }
                    // No statements inside, or none that bind modules.
                    _ => {}
                }
            }
        }
        // A class derived from an enum class is one too, however deep.
        let mut grew = true;
        while grew {
            grew = false;
            for (name, bases) in &classes {
                if !self.enum_classes.contains(name) && bases.iter().any(|b| self.is_enum_class(b))
                {
                    self.enum_classes.push(name.clone());
                    grew = true;
                }
            }
        }
    }

    /// Whether `e` names one of `enum`'s classes (`enum.Enum`, an imported `Flag`) or
    /// a class this source derives from one.
    fn is_enum_class(&self, e: &ast::Expr) -> bool {
        match e {
            ast::Expr::Name(n) => self.enum_classes.iter().any(|c| *c == nfkc(n.id.as_str())),
            ast::Expr::Attribute(a) => {
                self.module_of(&a.value).as_deref() == Some("enum")
                    && names::is_enum_class(&nfkc(a.attr.as_str()))
            }
            _ => false,
        }
    }

    /// `type(...)`, called at `start` with the name at `offset`. With three arguments
    /// it builds a class from a namespace whose keys may be built at run time (a dunder
    /// method the class statement rule would refuse). With one, its result is refused
    /// unless the parent compares it, passes it to `isinstance`/`issubclass` or calls
    /// it with one value (`type(self)(v)`): the type of a class is its metaclass, which
    /// builds classes too (`type(int)("X", (), ns)`), and which a variable would hide.
    fn type_call(&mut self, arguments: &ast::Arguments, start: usize, offset: usize) {
        if !is_one_value(arguments) {
            self.report(
                Rule::NameDenied,
                offset,
                "type() may only be called with one argument, as type(x): with three it builds \
                 a class from a namespace; write a class statement"
                    .to_owned(),
            );
        } else if self.type_call_ok != Some(start) {
            self.report(
                Rule::NameDenied,
                offset,
                "type(x) may only be compared (type(x) == int), passed to isinstance or called \
                 with one value (type(x)(v)): the type of a class builds classes from namespaces"
                    .to_owned(),
            );
        }
    }

    /// Lets the parent of `e` use it as a `type(x)` result (see [`Auditor::type_call`]).
    fn approve_type_call(&mut self, e: &ast::Expr) {
        if let ast::Expr::Call(call) = e {
            if matches!(call.func.as_ref(), ast::Expr::Name(n) if nfkc(n.id.as_str()) == "type") {
                self.type_call_ok = Some(usize::from(call.range_start));
            }
        }
    }

    /// `Enum("Name", names)`: the functional API makes a class whose attributes are
    /// named by strings chosen at run time, so a name built as `"_" * 2 + ...` plants
    /// a dunder method the class statement rule would refuse. One positional argument
    /// (`Color(1)`, a lookup by value) is fine.
    fn enum_functional_call(&mut self, func: &ast::Expr, arguments: &ast::Arguments) {
        if self.is_enum_class(func)
            && (arguments.args.len() > 1 || arguments.keywords.iter().any(|k| k.arg.is_some()))
        {
            self.report(
                Rule::NameDenied,
                usize::from(func.start()),
                "the Enum functional API (Enum(\"Name\", names)) builds a class from names \
                 chosen at run time; define the enum with a class statement"
                    .to_owned(),
            );
        }
    }

    fn bind_module(&mut self, local: String, module: String) {
        if !self
            .modules
            .iter()
            .any(|(n, m)| *n == local && *m == module)
        {
            self.modules.push((local, module));
        }
    }

    /// The module a name was imported as.
    fn module_named(&self, name: &str) -> Option<&str> {
        let name = nfkc(name);
        self.modules
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.as_str())
    }

    /// The module `e` refers to: an imported name, or a listed submodule reached
    /// through one (`collections.abc`). Chains longer than any module path are not
    /// modules; the bound keeps this linear on very long attribute chains.
    fn module_of(&self, e: &ast::Expr) -> Option<String> {
        let mut attrs: Vec<&str> = Vec::new();
        let mut cur = e;
        loop {
            match cur {
                ast::Expr::Name(n) => {
                    let mut module = self.module_named(n.id.as_str())?.to_owned();
                    for attr in attrs.iter().rev() {
                        let sub = format!("{module}.{}", nfkc(attr));
                        if !self.guard.policy().is_module_allowed(&sub) {
                            return None;
                        }
                        module = sub;
                    }
                    return Some(module);
                }
                ast::Expr::Attribute(a) if attrs.len() < 8 => {
                    attrs.push(a.attr.as_str());
                    cur = &a.value;
                }
                _ => return None,
            }
        }
    }

    /// `module.attr`: the attribute must be on the module's API allowlist, or be a
    /// listed submodule. Returns whether it is allowed.
    fn module_attribute(&mut self, module: &str, raw: &str, offset: usize) -> bool {
        let attr = nfkc(raw);
        let attr = attr.as_ref();
        let policy = self.guard.policy();
        let names = match policy.module_access(module) {
            Some(ModuleAccess::Api(names)) => names,
            // A module the host vouches for: the generic attribute rules only.
            Some(ModuleAccess::Public) | None => {
                return self.attribute(attr, offset, &format!("{module}'s attribute"));
            }
        };
        if names.contains(attr) || policy.is_module_allowed(&format!("{module}.{attr}")) {
            return true;
        }
        // A name some rule rejects on any object keeps that rule's reason
        // (`random._os` is private, `typing.sys` a dangerous module).
        if let Some((rule, message)) = attribute_problem(attr, &format!("{module}'s attribute")) {
            self.report(rule, offset, message);
            return false;
        }
        let dotted = format!("{module}.{attr}");
        let message = match api::DATA.excluded.get(&dotted) {
            Some(reason) => format!("'{dotted}' is not allowed: {reason}"),
            None => format!(
                "'{dotted}' is not in the allowed API of {module}; use one of: {}",
                api_summary(policy, module, names)
            ),
        };
        self.report(Rule::ModuleApi, offset, message);
        false
    }

    pub(crate) fn report(&mut self, rule: Rule, offset: usize, message: String) {
        if self.measure_only {
            return;
        }
        if self.violations.len() >= self.guard.policy().max_violations() {
            self.overflow += 1;
            return;
        }
        let offset = self.offset_override.unwrap_or(offset);
        self.violations.push(Pending {
            rule,
            offset,
            message,
        });
    }

    fn enter(&mut self, offset: usize) -> bool {
        if self.depth >= self.guard.policy().max_depth() {
            if !self.too_deep {
                self.too_deep = true;
                let max = self.guard.policy().max_depth();
                self.report(
                    Rule::Limit,
                    offset,
                    format!("the code is nested more than {max} levels deep; flatten it"),
                );
            }
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ----- names ------------------------------------------------------------

    /// Checks a variable name (load, binding or callee).
    fn name(&mut self, raw: &str, offset: usize, usage: Use) {
        let name = nfkc(raw);
        let name = name.as_ref();
        if let Some(reason) = names::denied_builtin_reason(name) {
            let verb = if usage == Use::Bind {
                "may not be rebound"
            } else {
                "may not be used"
            };
            self.report(
                Rule::BuiltinDenied,
                offset,
                format!("'{name}' {verb}: {reason}"),
            );
            return;
        }
        if let Some(reason) = names::eval_like_reason(name) {
            self.report(
                Rule::NameDenied,
                offset,
                format!("'{name}' is not allowed: {reason}"),
            );
            return;
        }
        if names::is_guard_relevant(name) && usage == Use::Bind {
            self.report(
                Rule::Shadowing,
                offset,
                format!("'{name}' may not be rebound; choose another name"),
            );
            return;
        }
        if names::is_getattr_family(name) && usage == Use::Load {
            self.report(
                Rule::DynamicAttribute,
                offset,
                format!(
                    "'{name}' may only be called directly with a literal attribute name, \
                     as in {name}(obj, \"field\", ...); use obj.field instead"
                ),
            );
            return;
        }
        if names::is_dynamic_attribute_helper(name) {
            self.report(
                Rule::DynamicAttribute,
                offset,
                format!("'{name}' builds attribute access from strings; use a lambda that reads the attribute directly"),
            );
            return;
        }
        if name == "type" && usage == Use::Load && !self.in_annotation {
            self.report(
                Rule::NameDenied,
                offset,
                "'type' may only be called, as type(x): as a value (an alias, a base class, \
                 an argument) it builds classes from namespaces"
                    .to_owned(),
            );
            return;
        }
        if names::is_formatter_name(name) {
            self.report(
                Rule::FormatAttribute,
                offset,
                format!("'{name}' formats with strings chosen at run time; use an f-string"),
            );
            return;
        }
        if names::is_dunder(name) {
            self.report(
                Rule::DunderName,
                offset,
                format!("the name '{name}' is an interpreter internal and may not be used"),
            );
            return;
        }
        if let Some(module) = self.module_named(name) {
            if usage == Use::Bind && !self.in_import {
                let module = module.to_owned();
                self.report(
                    Rule::ModuleAttribute,
                    offset,
                    format!(
                        "'{name}' names the imported module {module}; choose another name for \
                         this variable"
                    ),
                );
            } else if usage != Use::Bind {
                let module = module.to_owned();
                self.report(
                    Rule::ModuleAttribute,
                    offset,
                    format!(
                        "the module {module} may only be used as {name}.<name> with a name of its \
                         API; pass the function or value you need instead of the module"
                    ),
                );
            }
        }
    }

    /// Checks an attribute name (in `x.attr`, `from m import attr`, match patterns
    /// and literal `getattr` names) and reports a problem. Returns whether it is
    /// allowed.
    fn attribute(&mut self, raw: &str, offset: usize, what: &str) -> bool {
        match attribute_problem(raw, what) {
            Some((rule, message)) => {
                self.report(rule, offset, message);
                false
            }
            None => true,
        }
    }

    /// Whether `e` is a name bound by `except ... as name`.
    fn is_exception_name(&self, e: &ast::Expr) -> bool {
        match e {
            ast::Expr::Name(n) => {
                let name = nfkc(n.id.as_str());
                self.exception_names.iter().any(|x| *x == name)
            }
            _ => false,
        }
    }

    fn identifier_binding(&mut self, id: &ast::Identifier) {
        self.name(id.as_str(), usize::from(id.range.start()), Use::Bind);
    }

    /// A literal format string given to `str.format`/`format_map`: every
    /// attribute its fields reach must pass the attribute rules.
    fn format_literal(&mut self, fmt: &str, offset: usize) {
        let mut reached = match format::attribute_names(fmt) {
            Ok(attrs) => attrs,
            Err(why) => {
                self.report(
                    Rule::FormatAttribute,
                    offset,
                    format!("the format string cannot be checked ({why}); use an f-string"),
                );
                return;
            }
        };
        // Belt and braces: every `.name` in the text, wherever CPython's reader
        // might see a field.
        if fmt.contains('{') {
            let chars: Vec<char> = fmt.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if chars[i] == '.' {
                    let mut attr = String::new();
                    let mut j = i + 1;
                    while j < chars.len() && (chars[j] == '_' || chars[j].is_alphanumeric()) {
                        attr.push(chars[j]);
                        j += 1;
                    }
                    if !attr.is_empty() {
                        reached.push(attr);
                    }
                    i = j;
                } else {
                    i += 1;
                }
            }
        }
        reached.sort_unstable();
        reached.dedup();
        for attr in reached {
            if let Some((_, why)) = attribute_problem(&attr, "the format field attribute") {
                self.report(
                    Rule::FormatAttribute,
                    offset,
                    format!("{why}; format strings may not reach it either"),
                );
            }
        }
    }

    // ----- statements -------------------------------------------------------

    pub(crate) fn suite(&mut self, body: &[ast::Stmt]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn body_in(&mut self, body: &[ast::Stmt], class_body: bool) {
        let saved = std::mem::replace(&mut self.in_class_body, class_body);
        self.suite(body);
        self.in_class_body = saved;
    }

    fn stmt(&mut self, stmt: &ast::Stmt) {
        if !self.enter(usize::from(stmt.start())) {
            return;
        }
        self.stmt_inner(stmt);
        self.leave();
    }

    fn stmt_inner(&mut self, stmt: &ast::Stmt) {
        let in_class = self.in_class_body;
        match stmt {
            ast::Stmt::FunctionDef(ast::StmtFunctionDef {
                node_index: _,
                range,
                is_async,
                decorator_list,
                name,
                type_params,
                parameters,
                returns,
                body,
            }) => {
                if *is_async {
                    self.report(
                        Rule::NodeDenied,
                        usize::from(range.start()),
                        "'async def' is not allowed; write a plain function".to_owned(),
                    );
                }
                for d in decorator_list {
                    self.decorator(d);
                }
                let fname = nfkc(name.as_str());
                if in_class && names::is_allowed_dunder_method(&fname) {
                    // A helper class's `__init__`, `__eq__`, ...
                } else if in_class && names::is_dunder(&fname) {
                    self.report(
                        Rule::DunderName,
                        usize::from(name.range.start()),
                        format!(
                            "helper classes may not define '{fname}'; plain methods and the common \
                             operator methods (__init__, __repr__, __eq__, __len__, ...) are allowed"
                        ),
                    );
                } else {
                    self.identifier_binding(name);
                }
                if let Some(tp) = type_params {
                    self.type_params(tp);
                }
                self.parameters(parameters);
                if let Some(r) = returns {
                    self.annotation(r);
                }
                self.body_in(body, false);
            }
            ast::Stmt::ClassDef(ast::StmtClassDef {
                node_index: _,
                range: _,
                decorator_list,
                name,
                type_params,
                arguments,
                body,
            }) => {
                for d in decorator_list {
                    self.decorator(d);
                }
                self.identifier_binding(name);
                if let Some(tp) = type_params {
                    self.type_params(tp);
                }
                if let Some(args) = arguments {
                    self.arguments(args);
                }
                self.body_in(body, true);
            }
            ast::Stmt::Return(ast::StmtReturn {
                node_index: _,
                range: _,
                value,
            }) => {
                if let Some(v) = value {
                    self.expr(v);
                }
            }
            ast::Stmt::Delete(ast::StmtDelete {
                node_index: _,
                range: _,
                targets,
            }) => {
                for t in targets {
                    self.expr(t);
                }
            }
            ast::Stmt::TypeAlias(ast::StmtTypeAlias {
                node_index: _,
                range: _,
                name,
                type_params,
                value,
            }) => {
                self.expr(name);
                if let Some(tp) = type_params {
                    self.type_params(tp);
                }
                self.annotation(value);
            }
            ast::Stmt::Assign(ast::StmtAssign {
                node_index: _,
                range: _,
                targets,
                value,
            }) => {
                for t in targets {
                    self.expr(t);
                }
                self.expr(value);
            }
            ast::Stmt::AugAssign(ast::StmtAugAssign {
                node_index: _,
                range: _,
                target,
                op,
                value,
            }) => {
                operator(*op);
                self.expr(target);
                self.expr(value);
            }
            ast::Stmt::AnnAssign(ast::StmtAnnAssign {
                node_index: _,
                range: _,
                target,
                annotation,
                value,
                simple: _,
            }) => {
                self.expr(target);
                self.annotation(annotation);
                if let Some(v) = value {
                    self.expr(v);
                }
            }
            ast::Stmt::For(ast::StmtFor {
                node_index: _,
                range,
                is_async,
                target,
                iter,
                body,
                orelse,
            }) => {
                if *is_async {
                    self.report(
                        Rule::NodeDenied,
                        usize::from(range.start()),
                        "'async for' is not allowed; use a plain for loop".to_owned(),
                    );
                }
                self.expr(target);
                self.expr(iter);
                self.suite(body);
                self.suite(orelse);
            }
            ast::Stmt::While(ast::StmtWhile {
                node_index: _,
                range: _,
                test,
                body,
                orelse,
            }) => {
                self.expr(test);
                self.suite(body);
                self.suite(orelse);
            }
            ast::Stmt::If(ast::StmtIf {
                node_index: _,
                range: _,
                test,
                body,
                elif_else_clauses,
            }) => {
                self.expr(test);
                self.suite(body);
                for clause in elif_else_clauses {
                    let ast::ElifElseClause {
                        range: _,
                        node_index: _,
                        test,
                        body,
                    } = clause;
                    if let Some(t) = test {
                        self.expr(t);
                    }
                    self.suite(body);
                }
            }
            ast::Stmt::With(ast::StmtWith {
                node_index: _,
                range,
                is_async,
                items,
                body,
            }) => {
                if *is_async {
                    self.report(
                        Rule::NodeDenied,
                        usize::from(range.start()),
                        "'async with' is not allowed; use a plain with statement".to_owned(),
                    );
                }
                for item in items {
                    let ast::WithItem {
                        range: _,
                        node_index: _,
                        context_expr,
                        optional_vars,
                    } = item;
                    self.expr(context_expr);
                    if let Some(v) = optional_vars {
                        self.expr(v);
                    }
                }
                self.suite(body);
            }
            ast::Stmt::Match(ast::StmtMatch {
                node_index: _,
                range: _,
                subject,
                cases,
            }) => {
                self.expr(subject);
                for case in cases {
                    let ast::MatchCase {
                        range: _,
                        node_index: _,
                        pattern,
                        guard,
                        body,
                    } = case;
                    self.pattern(pattern);
                    if let Some(g) = guard {
                        self.expr(g);
                    }
                    self.suite(body);
                }
            }
            ast::Stmt::Raise(ast::StmtRaise {
                node_index: _,
                range: _,
                exc,
                cause,
            }) => {
                if let Some(e) = exc {
                    self.expr(e);
                }
                if let Some(c) = cause {
                    self.expr(c);
                }
            }
            ast::Stmt::Try(ast::StmtTry {
                node_index: _,
                range: _,
                body,
                handlers,
                orelse,
                finalbody,
                is_star: _,
            }) => {
                self.suite(body);
                for handler in handlers {
                    match handler {
                        ast::ExceptHandler::ExceptHandler(ast::ExceptHandlerExceptHandler {
                            range: _,
                            node_index: _,
                            type_,
                            name,
                            body,
                        }) => {
                            if let Some(t) = type_ {
                                self.expr(t);
                            }
                            if let Some(n) = name {
                                self.identifier_binding(n);
                            }
                            self.suite(body);
                        }
                    }
                }
                self.suite(orelse);
                self.suite(finalbody);
            }
            ast::Stmt::Assert(ast::StmtAssert {
                node_index: _,
                range: _,
                test,
                msg,
            }) => {
                self.expr(test);
                if let Some(m) = msg {
                    self.expr(m);
                }
            }
            ast::Stmt::Import(ast::StmtImport {
                node_index: _,
                range: _,
                names,
                is_lazy: _,
            }) => {
                for alias in names {
                    let ast::Alias {
                        range: _,
                        node_index: _,
                        name,
                        asname,
                    } = alias;
                    self.module(name.as_str(), usize::from(name.range.start()));
                    self.in_import = true;
                    match asname {
                        Some(a) => self.identifier_binding(a),
                        None => {
                            let first = name.as_str().split('.').next().unwrap_or("");
                            self.name(first, usize::from(name.range.start()), Use::Bind);
                        }
                    }
                    self.in_import = false;
                }
            }
            ast::Stmt::ImportFrom(ast::StmtImportFrom {
                node_index: _,
                range,
                module,
                names,
                level,
                is_lazy: _,
            }) => {
                let offset = usize::from(range.start());
                if *level > 0 {
                    self.report(
                        Rule::ImportDenied,
                        offset,
                        "relative imports are not allowed; import allowed modules by name"
                            .to_owned(),
                    );
                }
                let future =
                    *level == 0 && module.as_ref().is_some_and(|m| m.as_str() == "__future__");
                match module {
                    Some(_) if future => {
                        // Compiler directives (`from __future__ import annotations`):
                        // only the known feature names.
                        for alias in names {
                            if !is_future_feature(alias.name.as_str()) {
                                self.report(
                                    Rule::ImportDenied,
                                    usize::from(alias.name.range.start()),
                                    format!(
                                        "'{}' is not a __future__ feature that methods may use",
                                        alias.name.as_str()
                                    ),
                                );
                            }
                        }
                    }
                    Some(m) => self.module(m.as_str(), usize::from(m.range.start())),
                    None => {
                        if *level == 0 {
                            self.report(
                                Rule::ImportDenied,
                                offset,
                                "an import needs a module name".to_owned(),
                            );
                        }
                    }
                }
                for alias in names {
                    let ast::Alias {
                        range: _,
                        node_index: _,
                        name,
                        asname,
                    } = alias;
                    let at = usize::from(name.range.start());
                    if name.as_str() == "*" {
                        self.report(
                            Rule::ImportStar,
                            at,
                            "'import *' is not allowed; import the names you use explicitly"
                                .to_owned(),
                        );
                        continue;
                    }
                    let imported = nfkc(name.as_str()).into_owned();
                    let from = module
                        .as_ref()
                        .filter(|_| *level == 0 && !future)
                        .map(|m| nfkc(m.as_str()).into_owned())
                        .filter(|m| self.guard.policy().is_module_allowed(m));
                    if let Some(reason) = names::denied_builtin_reason(&imported) {
                        self.report(
                            Rule::BuiltinDenied,
                            at,
                            format!("importing '{imported}' is not allowed: {reason}"),
                        );
                    } else if let Some(m) = from {
                        // A name of the module's API, or a listed submodule.
                        self.module_attribute(&m, &imported, at);
                    } else {
                        self.attribute(&imported, at, "the imported name");
                    }
                    self.in_import = true;
                    match asname {
                        Some(a) => self.identifier_binding(a),
                        None => self.name(&imported, at, Use::Bind),
                    }
                    self.in_import = false;
                }
            }
            ast::Stmt::Global(ast::StmtGlobal {
                node_index: _,
                range,
                names,
            }) => {
                self.report(
                    Rule::NodeDenied,
                    usize::from(range.start()),
                    "'global' is not allowed; keep state on self or return values".to_owned(),
                );
                for n in names {
                    self.identifier_binding(n);
                }
            }
            ast::Stmt::Nonlocal(ast::StmtNonlocal {
                node_index: _,
                range: _,
                names,
            }) => {
                for n in names {
                    self.identifier_binding(n);
                }
            }
            ast::Stmt::Expr(ast::StmtExpr {
                node_index: _,
                range: _,
                value,
            }) => self.expr(value),
            ast::Stmt::Pass(ast::StmtPass {
                node_index: _,
                range: _,
            })
            | ast::Stmt::Break(ast::StmtBreak {
                node_index: _,
                range: _,
            })
            | ast::Stmt::Continue(ast::StmtContinue {
                node_index: _,
                range: _,
            }) => {}
            ast::Stmt::IpyEscapeCommand(ast::StmtIpyEscapeCommand {
                node_index: _,
                range,
                kind: _,
                value: _,
            }) => self.report(
                Rule::NodeDenied,
                usize::from(range.start()),
                "IPython escape commands are not Python".to_owned(),
            ),
        }
    }

    /// `import a.b.c` / `from a.b import c`: the top-level module must be allowed,
    /// and each submodule listed (or public, under a module the host vouches for).
    fn module(&mut self, dotted: &str, offset: usize) {
        let dotted = nfkc(dotted).into_owned();
        let top = dotted.split('.').next().unwrap_or("").to_owned();
        if !self.guard.policy().is_module_allowed(&top) {
            let allowed = self.guard.allowed_list.clone();
            let message = match names::dangerous_module_reason(&top) {
                Some(reason) => format!(
                    "import of '{dotted}' is not allowed: {reason}; allowed modules: {allowed}"
                ),
                None => format!("import of '{dotted}' is not allowed; allowed modules: {allowed}"),
            };
            self.report(Rule::ImportDenied, offset, message);
            return;
        }
        let mut module = top;
        for segment in dotted.split('.').skip(1) {
            if !self.module_attribute(&module, segment, offset) {
                return;
            }
            module = format!("{module}.{segment}");
        }
    }

    fn decorator(&mut self, d: &ast::Decorator) {
        let ast::Decorator {
            range: _,
            node_index: _,
            expression,
        } = d;
        self.expr(expression);
    }

    fn type_params(&mut self, tp: &ast::TypeParams) {
        let ast::TypeParams {
            range: _,
            node_index: _,
            type_params,
        } = tp;
        for p in type_params {
            match p {
                ast::TypeParam::TypeVar(ast::TypeParamTypeVar {
                    node_index: _,
                    range: _,
                    name,
                    bound,
                    default,
                }) => {
                    self.identifier_binding(name);
                    if let Some(b) = bound {
                        self.annotation(b);
                    }
                    if let Some(d) = default {
                        self.annotation(d);
                    }
                }
                ast::TypeParam::TypeVarTuple(ast::TypeParamTypeVarTuple {
                    node_index: _,
                    range: _,
                    name,
                    default,
                })
                | ast::TypeParam::ParamSpec(ast::TypeParamParamSpec {
                    node_index: _,
                    range: _,
                    name,
                    default,
                }) => {
                    self.identifier_binding(name);
                    if let Some(d) = default {
                        self.annotation(d);
                    }
                }
            }
        }
    }

    fn parameters(&mut self, params: &ast::Parameters) {
        let ast::Parameters {
            range: _,
            node_index: _,
            posonlyargs,
            args,
            vararg,
            kwonlyargs,
            kwarg,
        } = params;
        for p in posonlyargs
            .iter()
            .chain(args.iter())
            .chain(kwonlyargs.iter())
        {
            let ast::ParameterWithDefault {
                range: _,
                node_index: _,
                parameter,
                default,
            } = p;
            self.parameter(parameter);
            if let Some(d) = default {
                self.expr(d);
            }
        }
        for p in vararg.iter().chain(kwarg.iter()) {
            self.parameter(p);
        }
    }

    fn parameter(&mut self, p: &ast::Parameter) {
        let ast::Parameter {
            range: _,
            node_index: _,
            name,
            annotation,
        } = p;
        let pname = nfkc(name.as_str());
        if pname.starts_with('_') && pname != "_" {
            self.report(
                Rule::Shadowing,
                usize::from(name.range.start()),
                format!(
                    "the parameter '{pname}' starts with '_', like the private and guard names \
                     sandboxes reserve ('_getattr_'); name parameters without a leading '_'"
                ),
            );
        } else {
            self.identifier_binding(name);
        }
        if let Some(a) = annotation {
            self.annotation(a);
        }
    }

    fn annotation(&mut self, e: &ast::Expr) {
        let saved = std::mem::replace(&mut self.in_annotation, true);
        self.expr(e);
        self.in_annotation = saved;
    }

    fn arguments(&mut self, args: &ast::Arguments) {
        let ast::Arguments {
            range: _,
            node_index: _,
            args,
            keywords,
        } = args;
        for a in args.iter() {
            self.expr(a);
        }
        for k in keywords {
            let ast::Keyword {
                range: _,
                node_index: _,
                arg: _,
                value,
            } = k;
            self.expr(value);
        }
    }

    /// `getattr(obj, "name")` & co.: only with a literal, allowed attribute name
    /// as the second positional argument and no unpacking.
    fn getattr_call(&mut self, name: &str, args: &ast::Arguments, offset: usize) {
        let literal = match args.args.get(1) {
            Some(ast::Expr::StringLiteral(s)) => Some(s.value.to_str().to_owned()),
            _ => None,
        };
        let unpacking = args.args.iter().any(|a| matches!(a, ast::Expr::Starred(_)))
            || !args.keywords.is_empty();
        match literal {
            Some(attr) if !unpacking => {
                let at = args.args.get(1).map_or(offset, |a| usize::from(a.start()));
                match args.args.first().and_then(|m| self.module_of(m)) {
                    // getattr(module, "name") is module.name.
                    Some(module) => {
                        self.module_attribute(&module, &attr, at);
                    }
                    None => {
                        self.attribute(&attr, at, &format!("the attribute given to {name}"));
                    }
                }
            }
            _ => self.report(
                Rule::DynamicAttribute,
                offset,
                format!(
                    "{name}() needs a literal attribute name as its second argument, without \
                     * or ** unpacking; use obj.field directly"
                ),
            ),
        }
    }

    // ----- expressions ------------------------------------------------------

    fn expr(&mut self, e: &ast::Expr) {
        if !self.enter(usize::from(e.start())) {
            return;
        }
        self.expr_inner(e);
        self.leave();
    }

    fn expr_inner(&mut self, e: &ast::Expr) {
        match e {
            ast::Expr::BoolOp(ast::ExprBoolOp {
                node_index: _,
                range: _,
                op: _,
                values,
            }) => {
                for v in values {
                    self.expr(v);
                }
            }
            ast::Expr::Named(ast::ExprNamed {
                node_index: _,
                range: _,
                target,
                value,
            }) => {
                self.expr(target);
                self.expr(value);
            }
            ast::Expr::BinOp(ast::ExprBinOp {
                node_index: _,
                range: _,
                left,
                op,
                right,
            }) => {
                operator(*op);
                self.expr(left);
                self.expr(right);
            }
            ast::Expr::UnaryOp(ast::ExprUnaryOp {
                node_index: _,
                range: _,
                op: _,
                operand,
            }) => self.expr(operand),
            ast::Expr::Lambda(ast::ExprLambda {
                node_index: _,
                range: _,
                parameters,
                body,
            }) => {
                if let Some(p) = parameters {
                    self.parameters(p);
                }
                let saved = std::mem::replace(&mut self.in_annotation, false);
                self.expr(body);
                self.in_annotation = saved;
            }
            ast::Expr::If(ast::ExprIf {
                node_index: _,
                range: _,
                test,
                body,
                orelse,
            }) => {
                self.expr(test);
                self.expr(body);
                self.expr(orelse);
            }
            ast::Expr::Dict(ast::ExprDict {
                node_index: _,
                range: _,
                items,
            }) => {
                for item in items {
                    let ast::DictItem { key, value } = item;
                    if let Some(k) = key {
                        self.expr(k);
                    }
                    self.expr(value);
                }
            }
            ast::Expr::Set(ast::ExprSet {
                node_index: _,
                range: _,
                elts,
            }) => {
                for x in elts {
                    self.expr(x);
                }
            }
            ast::Expr::ListComp(ast::ExprListComp {
                node_index: _,
                range: _,
                elt,
                generators,
            })
            | ast::Expr::SetComp(ast::ExprSetComp {
                node_index: _,
                range: _,
                elt,
                generators,
            })
            | ast::Expr::Generator(ast::ExprGenerator {
                node_index: _,
                range: _,
                elt,
                generators,
                parenthesized: _,
            }) => {
                self.comprehensions(generators);
                self.expr(elt);
            }
            ast::Expr::DictComp(ast::ExprDictComp {
                node_index: _,
                range: _,
                key,
                value,
                generators,
            }) => {
                self.comprehensions(generators);
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
            }
            ast::Expr::Await(ast::ExprAwait {
                node_index: _,
                range,
                value,
            }) => {
                self.report(
                    Rule::NodeDenied,
                    usize::from(range.start()),
                    "'await' is not allowed; methods are synchronous".to_owned(),
                );
                self.expr(value);
            }
            ast::Expr::Yield(ast::ExprYield {
                node_index: _,
                range: _,
                value,
            }) => {
                if let Some(v) = value {
                    self.expr(v);
                }
            }
            ast::Expr::YieldFrom(ast::ExprYieldFrom {
                node_index: _,
                range: _,
                value,
            }) => self.expr(value),
            ast::Expr::Compare(ast::ExprCompare {
                node_index: _,
                range: _,
                left,
                ops: _,
                comparators,
            }) => {
                self.approve_type_call(left);
                self.expr(left);
                for c in comparators.iter() {
                    self.approve_type_call(c);
                    self.expr(c);
                }
            }
            ast::Expr::Call(ast::ExprCall {
                node_index: _,
                range_start,
                func,
                arguments,
            }) => {
                let start = usize::from(*range_start);
                match func.as_ref() {
                    ast::Expr::Name(n) => {
                        let offset = usize::from(n.range.start());
                        let callee = nfkc(n.id.as_str()).into_owned();
                        if names::is_getattr_family(&callee) {
                            self.getattr_call(&callee, arguments, start);
                        } else if callee == "type" {
                            self.type_call(arguments, start, offset);
                        } else {
                            if (callee == "isinstance" || callee == "issubclass")
                                && arguments.args.len() == 2
                            {
                                self.approve_type_call(&arguments.args[1]);
                            }
                            self.name(&callee, offset, Use::Callee);
                        }
                    }
                    _ => {
                        if is_one_value(arguments) {
                            self.approve_type_call(func);
                        }
                        self.expr(func)
                    }
                }
                self.enum_functional_call(func, arguments);
                self.arguments(arguments);
            }
            ast::Expr::FString(ast::ExprFString {
                node_index: _,
                range,
                value,
            }) => {
                if !self.in_annotation {
                    if let Some(text) = constant_fstring(value) {
                        self.dunder_string(&text, usize::from(range.start()));
                    }
                }
                for part in value.iter() {
                    match part {
                        ast::FStringPart::Literal(lit) => self.string_literal(lit),
                        ast::FStringPart::FString(ast::FString {
                            range: _,
                            node_index: _,
                            elements,
                            flags: _,
                        }) => self.interpolated(elements),
                    }
                }
            }
            ast::Expr::TString(ast::ExprTString {
                node_index: _,
                range,
                value: _,
            }) => self.report(
                Rule::NodeDenied,
                usize::from(range.start()),
                "template strings (t\"...\") are not allowed; use an f-string".to_owned(),
            ),
            ast::Expr::StringLiteral(ast::ExprStringLiteral {
                node_index: _,
                range: _,
                value,
            }) => {
                if self.in_annotation {
                    for lit in value.iter() {
                        self.string_literal(lit);
                    }
                } else {
                    self.dunder_string(value.to_str(), usize::from(e.start()));
                }
            }
            ast::Expr::BytesLiteral(ast::ExprBytesLiteral {
                node_index: _,
                range: _,
                value: _,
            })
            | ast::Expr::NumberLiteral(ast::ExprNumberLiteral {
                node_index: _,
                range: _,
                value: _,
            })
            | ast::Expr::BooleanLiteral(ast::ExprBooleanLiteral {
                node_index: _,
                range: _,
                value: _,
            })
            | ast::Expr::NoneLiteral(ast::ExprNoneLiteral {
                node_index: _,
                range: _,
            })
            | ast::Expr::EllipsisLiteral(ast::ExprEllipsisLiteral {
                node_index: _,
                range: _,
            }) => {}
            ast::Expr::Attribute(ast::ExprAttribute {
                node_index: _,
                range: _,
                value,
                attr,
                ctx: _,
            }) => {
                let at = usize::from(attr.range.start());
                let name = nfkc(attr.as_str()).into_owned();
                if let Some(module) = self.module_of(value) {
                    self.module_attribute(&module, &name, at);
                    // A module name is allowed as the base of an attribute only: the
                    // name itself is not walked (it would be a bare use).
                    if !matches!(value.as_ref(), ast::Expr::Name(_)) {
                        self.expr(value);
                    }
                    return;
                }
                let exception_attribute = names::exception_attribute_reason(&name)
                    .filter(|_| self.is_exception_name(value));
                if let Some(reason) = exception_attribute {
                    self.report(
                        Rule::FrameAttribute,
                        at,
                        format!(
                            "an exception's '{name}' {reason}; use the exception's message \
                             (str(e)) or its args instead"
                        ),
                    );
                } else if name == "__init__" && is_bare_super_call(value) {
                    // `super().__init__(...)` in a helper class.
                } else if name == "format" || name == "format_map" {
                    match value.as_ref() {
                        ast::Expr::StringLiteral(s) => {
                            let text = s.value.to_str().to_owned();
                            self.format_literal(&text, usize::from(s.range.start()));
                        }
                        _ => self.report(
                            Rule::FormatAttribute,
                            at,
                            format!(
                                "'.{name}' may only be used on a literal string, as in \
                                 \"{{}} items\".format(n); use an f-string instead"
                            ),
                        ),
                    }
                } else {
                    self.attribute(&name, at, "the attribute");
                }
                self.expr(value);
            }
            ast::Expr::Subscript(ast::ExprSubscript {
                node_index: _,
                range: _,
                value,
                slice,
                ctx: _,
            }) => {
                self.expr(value);
                self.expr(slice);
            }
            ast::Expr::Starred(ast::ExprStarred {
                node_index: _,
                range: _,
                value,
                ctx: _,
            }) => self.expr(value),
            ast::Expr::Name(ast::ExprName {
                node_index: _,
                range,
                id,
                ctx,
            }) => {
                let usage = match ctx {
                    ast::ExprContext::Load | ast::ExprContext::Invalid => Use::Load,
                    ast::ExprContext::Store | ast::ExprContext::Del => Use::Bind,
                };
                self.name(id.as_str(), usize::from(range.start()), usage);
            }
            ast::Expr::List(ast::ExprList {
                node_index: _,
                range: _,
                elts,
                ctx: _,
            }) => {
                for x in elts {
                    self.expr(x);
                }
            }
            ast::Expr::Tuple(ast::ExprTuple {
                node_index: _,
                range: _,
                elts,
                ctx: _,
                parenthesized: _,
            }) => {
                for x in elts {
                    self.expr(x);
                }
            }
            ast::Expr::Slice(ast::ExprSlice {
                node_index: _,
                range: _,
                lower,
                upper,
                step,
            }) => {
                for x in [lower, upper, step].into_iter().flatten() {
                    self.expr(x);
                }
            }
            ast::Expr::IpyEscapeCommand(ast::ExprIpyEscapeCommand {
                node_index: _,
                range,
                kind: _,
                value: _,
            }) => self.report(
                Rule::NodeDenied,
                usize::from(range.start()),
                "IPython escape commands are not Python".to_owned(),
            ),
        }
    }

    fn comprehensions(&mut self, generators: &[ast::Comprehension]) {
        for g in generators {
            let ast::Comprehension {
                range,
                node_index: _,
                target,
                iter,
                ifs,
                is_async,
            } = g;
            if *is_async {
                self.report(
                    Rule::NodeDenied,
                    usize::from(range.start()),
                    "'async for' in comprehensions is not allowed".to_owned(),
                );
            }
            self.expr(target);
            self.expr(iter);
            for i in ifs {
                self.expr(i);
            }
        }
    }

    fn interpolated(&mut self, elements: &[ast::InterpolatedStringElement]) {
        for el in elements {
            match el {
                ast::InterpolatedStringElement::Interpolation(ast::InterpolatedElement {
                    range,
                    node_index: _,
                    expression,
                    debug_text: _,
                    conversion: _,
                    format_spec,
                }) => {
                    if !self.enter(usize::from(range.start())) {
                        return;
                    }
                    // An f-string inside an annotation is not a forward reference.
                    let saved = std::mem::replace(&mut self.in_annotation, false);
                    self.expr(expression);
                    self.in_annotation = saved;
                    if let Some(spec) = format_spec {
                        let ast::InterpolatedStringFormatSpec {
                            range: _,
                            node_index: _,
                            elements,
                        } = spec.as_ref();
                        self.interpolated(elements);
                    }
                    self.leave();
                }
                ast::InterpolatedStringElement::Literal(
                    ast::InterpolatedStringLiteralElement {
                        range: _,
                        node_index: _,
                        value: _,
                    },
                ) => {}
            }
        }
    }

    /// A string literal: inside an annotation `typing` evaluates it as code;
    /// elsewhere it may not name a dunder.
    fn string_literal(&mut self, lit: &ast::StringLiteral) {
        let ast::StringLiteral {
            range,
            node_index: _,
            value,
            flags: _,
        } = lit;
        if self.in_annotation {
            self.string_annotation(value, usize::from(range.start()));
        } else {
            self.dunder_string(value, usize::from(range.start()));
        }
    }

    /// A string that is exactly a dunder name (`"__getattr__"`): as a key of the
    /// namespace given to a class factory (`Enum("E", {...})`, `type(...)`) or an
    /// attribute name given to a helper, it would plant or reach interpreter hooks
    /// that the class-statement rules keep out.
    fn dunder_string(&mut self, text: &str, offset: usize) {
        if names::is_dunder(text) && text.chars().all(|c| c == '_' || c.is_alphanumeric()) {
            self.report(
                Rule::DunderName,
                offset,
                format!(
                    "the string '{text}' names an interpreter internal; dunder names may not be \
                     used as strings (namespace keys, attribute names)"
                ),
            );
        }
    }

    /// Audits a string annotation's contents as the expression `typing` would
    /// evaluate.
    fn string_annotation(&mut self, text: &str, offset: usize) {
        if !self.enter(offset) {
            return;
        }
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            let parsed = parser::parse_expression(trimmed);
            if parsed.errors.is_empty() {
                let saved = self.offset_override;
                if saved.is_none() {
                    self.offset_override = Some(offset);
                }
                self.expr(&parsed.expr);
                self.offset_override = saved;
            } else if trimmed.contains('(') || trimmed.contains("__") || trimmed.contains('.') {
                self.report(
                    Rule::Annotation,
                    offset,
                    "this string annotation looks like code but is not a valid expression; \
                     annotations are evaluated, so write a plain type name"
                        .to_owned(),
                );
            }
            if self.too_deep {
                parser::dispose_expr(parsed.expr, trimmed.len());
            }
        }
        self.leave();
    }

    fn pattern(&mut self, p: &ast::Pattern) {
        if !self.enter(usize::from(p.start())) {
            return;
        }
        match p {
            ast::Pattern::MatchValue(ast::PatternMatchValue {
                node_index: _,
                range: _,
                value,
            }) => self.expr(value),
            ast::Pattern::MatchSingleton(ast::PatternMatchSingleton {
                node_index: _,
                range: _,
                value,
            }) => match value {
                ast::Singleton::None | ast::Singleton::True | ast::Singleton::False => {}
            },
            ast::Pattern::MatchSequence(ast::PatternMatchSequence {
                node_index: _,
                range: _,
                patterns,
            })
            | ast::Pattern::MatchOr(ast::PatternMatchOr {
                node_index: _,
                range: _,
                patterns,
            }) => {
                for q in patterns {
                    self.pattern(q);
                }
            }
            ast::Pattern::MatchMapping(ast::PatternMatchMapping {
                node_index: _,
                range: _,
                keys,
                patterns,
                rest,
            }) => {
                for k in keys.iter() {
                    self.expr(k);
                }
                for q in patterns.iter() {
                    self.pattern(q);
                }
                if let Some(r) = rest {
                    self.identifier_binding(r);
                }
            }
            ast::Pattern::MatchClass(ast::PatternMatchClass {
                node_index: _,
                range: _,
                cls,
                arguments,
            }) => {
                self.expr(cls);
                let ast::PatternArguments {
                    range: _,
                    node_index: _,
                    patterns,
                    keywords,
                } = arguments;
                for q in patterns.iter() {
                    self.pattern(q);
                }
                for k in keywords {
                    let ast::PatternKeyword {
                        range: _,
                        node_index: _,
                        attr,
                        pattern,
                    } = k;
                    self.attribute(
                        attr.as_str(),
                        usize::from(attr.range.start()),
                        "the class pattern attribute",
                    );
                    self.pattern(pattern);
                }
            }
            ast::Pattern::MatchStar(ast::PatternMatchStar {
                node_index: _,
                range: _,
                name,
            }) => {
                if let Some(n) = name {
                    self.identifier_binding(n);
                }
            }
            ast::Pattern::MatchAs(ast::PatternMatchAs {
                node_index: _,
                range: _,
                pattern,
                name,
            }) => {
                if let Some(q) = pattern {
                    self.pattern(q);
                }
                if let Some(n) = name {
                    self.identifier_binding(n);
                }
            }
        }
        self.leave();
    }
}

/// One positional value and nothing else: `f(x)`, not `f(*xs)` or `f(x, key=k)`.
fn is_one_value(arguments: &ast::Arguments) -> bool {
    arguments.args.len() == 1
        && arguments.keywords.is_empty()
        && !matches!(arguments.args[0], ast::Expr::Starred(_))
}

/// The rule and message for an attribute name that is not allowed.
fn attribute_problem(raw: &str, what: &str) -> Option<(Rule, String)> {
    let name = nfkc(raw);
    let name = name.as_ref();
    if name.starts_with('_') {
        return Some((
            Rule::PrivateAttribute,
            format!(
                "{what} '{name}' is private; only public attributes (not starting with '_') may be used"
            ),
        ));
    }
    if let Some(reason) = names::denied_builtin_reason(name) {
        return Some((
            Rule::BuiltinDenied,
            format!(
                "{what} '{name}' has the name of a denied builtin, on any object ({reason}); \
                 rename the attribute"
            ),
        ));
    }
    if api::is_frame_attribute(name) {
        return Some((
            Rule::FrameAttribute,
            format!(
                "{what} '{name}' reaches frames, code objects or tracebacks, which is not allowed"
            ),
        ));
    }
    if let Some(reason) = api::handback_attribute_reason(name) {
        return Some((
            Rule::FrameAttribute,
            format!("{what} '{name}' is refused on any object: {reason}"),
        ));
    }
    if names::is_module_attribute(name) {
        return Some((
            Rule::ModuleAttribute,
            format!(
                "{what} '{name}' names a module that is not allowed; use only the allowed modules directly"
            ),
        ));
    }
    if names::is_dynamic_attribute_helper(name) {
        return Some((
            Rule::DynamicAttribute,
            format!("{what} '{name}' builds attribute access from strings; use a lambda that reads the attribute directly"),
        ));
    }
    if names::is_formatter_name(name) {
        return Some((
            Rule::FormatAttribute,
            format!("{what} '{name}' formats with strings chosen at run time; use an f-string"),
        ));
    }
    if let Some(reason) = names::eval_like_reason(name) {
        return Some((
            Rule::NameDenied,
            format!("{what} '{name}' is not allowed: {reason}"),
        ));
    }
    None
}

/// Every binary operator is allowed; listed so a new one fails to compile.
fn operator(op: ast::Operator) {
    match op {
        ast::Operator::Add
        | ast::Operator::Sub
        | ast::Operator::Mult
        | ast::Operator::MatMult
        | ast::Operator::Div
        | ast::Operator::Mod
        | ast::Operator::Pow
        | ast::Operator::LShift
        | ast::Operator::RShift
        | ast::Operator::BitOr
        | ast::Operator::BitXor
        | ast::Operator::BitAnd
        | ast::Operator::FloorDiv => {}
    }
}

/// `from __future__ import <feature>` names.
fn is_future_feature(name: &str) -> bool {
    matches!(
        name,
        "annotations"
            | "generator_stop"
            | "division"
            | "absolute_import"
            | "print_function"
            | "unicode_literals"
            | "with_statement"
            | "nested_scopes"
            | "generators"
    )
}

/// `super()` with no arguments.
fn is_bare_super_call(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Call(call) => {
            call.arguments.args.is_empty()
                && call.arguments.keywords.is_empty()
                && matches!(call.func.as_ref(), ast::Expr::Name(n) if n.id.as_str() == "super")
        }
        _ => false,
    }
}

/// The names of a module's API for a rejection message: its allowed names and
/// submodules, the first 40 when there are more.
fn api_summary(
    policy: &crate::Policy,
    module: &str,
    names: &std::collections::BTreeSet<String>,
) -> String {
    const SHOWN: usize = 40;
    let prefix = format!("{module}.");
    let submodules = policy
        .allowed_modules()
        .filter_map(|m| m.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.contains('.'));
    let all: Vec<&str> = names.iter().map(String::as_str).chain(submodules).collect();
    if all.is_empty() {
        return "none (nothing of this module is allowed)".to_owned();
    }
    let mut out = all
        .iter()
        .take(SHOWN)
        .map(|n| format!("{module}.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > SHOWN {
        out.push_str(&format!(", … ({} more)", all.len() - SHOWN));
    }
    out
}

/// The text of an f-string without replacement fields (`f"__del__"`), which is a
/// constant like any string literal.
fn constant_fstring(value: &ast::FStringValue) -> Option<String> {
    let mut text = String::new();
    for part in value.iter() {
        match part {
            ast::FStringPart::Literal(lit) => text.push_str(&lit.value),
            ast::FStringPart::FString(f) => {
                for el in &f.elements {
                    match el {
                        ast::InterpolatedStringElement::Literal(l) => text.push_str(&l.value),
                        ast::InterpolatedStringElement::Interpolation(_) => return None,
                    }
                }
            }
        }
    }
    Some(text)
}
