//! The API allowlist (`data/module_api.json`): its stamp matches the sandbox's
//! interpreter, every excluded name is rejected with its reason, and the rules that
//! come with it (module-api, modules as values, denied builtins as attribute names,
//! dunder strings, three-argument type, exception `obj`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test fixtures: a broken fixture should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use aura_guard::{Guard, Policy, Rule, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
struct Data {
    python: String,
    modules: BTreeMap<String, BTreeSet<String>>,
    excluded: BTreeMap<String, String>,
    builtins: BTreeSet<String>,
    denied_builtins: BTreeSet<String>,
}

fn data() -> Data {
    serde_json::from_str(include_str!("../../data/module_api.json"))
        .expect("module_api.json parses")
}

/// The sandbox's interpreter: `AURA_SANDBOX_PYTHON`, else Debian's `/usr/bin/python3`.
fn sandbox_python() -> String {
    std::env::var("AURA_SANDBOX_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/python3".to_owned())
}

fn audit(src: &str) -> Verdict {
    Guard::default().audit(src)
}

fn rejects(src: &str, rule: Rule) -> Verdict {
    let v = audit(src);
    assert!(v.has(rule), "expected {rule} for\n{src}\ngot:\n{v}");
    v
}

#[test]
fn the_stamp_matches_the_sandbox_interpreter() {
    let python = sandbox_python();
    let out = Command::new(&python)
        .args([
            "-I",
            "-S",
            "-c",
            "import platform; print(platform.python_version())",
        ])
        .output()
        .unwrap_or_else(|e| panic!("the sandbox's interpreter {python} did not run: {e}"));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        version,
        data().python,
        "module_api.json was generated for Python {} but the sandbox's interpreter {python} is \
         {version}: regenerate it with `{python} -I -S aura-guard/data/gen_module_api.py`, review \
         the diff (new names need curating in aura-guard/data/api_curation.json) and rerun the \
         reachability audit (cargo test -p aura-guard --test it reachability::)",
        data().python
    );
    assert_eq!(aura_guard::module_api_python(), data().python);
}

#[test]
fn the_data_agrees_with_the_guard() {
    let d = data();
    assert!(d.modules.len() >= 20, "{} modules", d.modules.len());
    // The default policy is exactly the data.
    let p = Policy::default();
    let allowed: BTreeSet<&str> = p.allowed_modules().collect();
    assert_eq!(allowed, d.modules.keys().map(String::as_str).collect());
    // Every denied builtin is rejected by name and as an attribute name; no allowed
    // builtin is.
    for name in &d.denied_builtins {
        let v = audit(&format!("x = {name}\n"));
        assert!(!v.accepted, "{name} accepted");
        let v = audit(&format!("x = y.{name}\n"));
        assert!(!v.accepted, "y.{name} accepted");
        assert!(
            !d.builtins.contains(name),
            "{name} is both allowed and denied"
        );
    }
    for name in &d.builtins {
        if name == "getattr" || name == "setattr" || name == "delattr" || name == "hasattr" {
            continue; // allowed only when called with a literal name
        }
        if name == "type" {
            // Allowed only when called with one value (a value builds classes).
            assert!(audit("x = type(y)(1)\n").accepted);
            assert!(!audit("x = type\n").accepted);
            continue;
        }
        let v = audit(&format!("x = {name}\n"));
        assert!(v.accepted, "the allowed builtin {name} is rejected: {v}");
    }
    // Excluded names are not in any API, and every API name is accepted.
    for dotted in d.excluded.keys() {
        let (m, a) = dotted.rsplit_once('.').expect("module.name");
        assert!(!d.modules[m].contains(a), "{dotted} is excluded and listed");
    }
    let mut checked = 0;
    for (m, names) in &d.modules {
        for n in names {
            let src = format!("import {m}\n\ndef probe(self):\n    return {m}.{n}\n");
            let v = Guard::default().audit_method(&src, "probe");
            assert!(v.accepted, "{m}.{n} is on the allowlist but rejected:\n{v}");
            checked += 1;
        }
    }
    println!("{checked} allowlisted names accepted");
}

#[test]
fn every_exclusion_is_rejected_with_its_reason() {
    let d = data();
    for (dotted, reason) in &d.excluded {
        let (m, a) = dotted.rsplit_once('.').expect("module.name");
        for src in [
            format!("import {m}\n\ndef probe(self):\n    return {m}.{a}\n"),
            format!("from {m} import {a}\n"),
        ] {
            let v = audit(&src);
            assert!(!v.accepted, "{dotted} accepted:\n{src}");
            // Names another rule rejects on any object keep that rule's reason.
            if v.has(Rule::ModuleApi) {
                assert!(v.to_string().contains(reason.as_str()), "{dotted}: {v}");
            }
        }
    }
}

#[test]
fn attributes_of_modules_must_be_on_their_api() {
    let v = rejects("import enum\nx = enum.bltns\n", Rule::ModuleApi);
    let msg = &v.violations[0].message;
    assert!(
        msg.starts_with("line 2: 'enum.bltns' is not in the allowed API of enum; use one of: "),
        "{msg}"
    );
    assert!(msg.contains("enum.Enum, "), "{msg}");
    rejects(
        "import typing\nx = typing.types.new_class\n",
        Rule::ModuleApi,
    );
    rejects(
        "import json\nx = json.decoder.scanstring\n",
        Rule::ModuleApi,
    );
    rejects(
        "import statistics\nx = statistics.random\n",
        Rule::ModuleApi,
    );
    rejects("from enum import bltns\n", Rule::ModuleApi);
    rejects(
        "import re as r\ndef m(self):\n    return r.enum\n",
        Rule::ModuleApi,
    );
    rejects(
        "from collections import abc as a\nx = a.Mapping.register\nx = a.sys\n",
        Rule::ModuleAttribute,
    );
    // A module imported below its use, or inside a function.
    rejects(
        "def m(self):\n    return enum.bltns\nimport enum\n",
        Rule::ModuleApi,
    );
    rejects(
        "def m(self):\n    import enum\n    return enum.bltns\n",
        Rule::ModuleApi,
    );
    // In annotations and decorators too.
    rejects(
        "import typing\ndef m(self) -> typing.types:\n    pass\n",
        Rule::ModuleApi,
    );
    rejects(
        "import functools\n@functools.update_wrapper\ndef m(self):\n    pass\n",
        Rule::ModuleApi,
    );
    // Excluded names carry their reason.
    let v = rejects(
        "import dataclasses\nx = dataclasses.make_dataclass\n",
        Rule::ModuleApi,
    );
    assert!(v.to_string().contains("namespace"), "{v}");
    // Submodules only when listed, the nested path checked against the submodule.
    rejects(
        "import collections.abc\nx = collections.abc.sys\n",
        Rule::ModuleAttribute,
    );
    rejects(
        "import collections.abc\nx = collections.abc.nope\n",
        Rule::ModuleApi,
    );
    // Allowed: API names, listed submodules, attributes of what they return.
    let ok = audit(
        "import re, collections.abc, math\nfrom collections import abc\nP = re.compile('a')\n\
         def m(self, x):\n    y = collections.abc.Mapping\n    return math.sqrt(x) + len(P.findall('aa')) + isinstance(x, abc.Sized)\n",
    );
    assert!(ok.accepted, "{ok}");
}

#[test]
fn imported_modules_are_used_only_through_their_api() {
    rejects(
        "import typing\ndef m(self):\n    t = typing\n    return t.types\n",
        Rule::ModuleAttribute,
    );
    rejects(
        "import enum\ndef m(self):\n    return [enum][0].bltns\n",
        Rule::ModuleAttribute,
    );
    rejects(
        "import math\ndef m(self, f):\n    return f(math)\n",
        Rule::ModuleAttribute,
    );
    // A variable may not take the name of an imported module.
    rejects(
        "import string\ndef m(self, string):\n    return string.upper()\n",
        Rule::ModuleAttribute,
    );
    rejects(
        "import re\ndef m(self):\n    for re in [1]:\n        pass\n",
        Rule::ModuleAttribute,
    );
}

#[test]
fn denied_builtins_are_denied_as_attribute_names() {
    for src in [
        "x = y.eval('1')\n",
        "x = y.exec\n",
        "x = obj.open('/etc/passwd')\n",
        "x = a.b.compile\n",
        "x = self.globals\n",
        "x = getattr(y, 'eval')\n",
    ] {
        rejects(src, Rule::BuiltinDenied);
    }
    // re.compile is on re's API.
    assert!(audit("import re\nP = re.compile('x')\n").accepted);
}

#[test]
fn dunder_strings_three_argument_type_and_exception_obj() {
    rejects(
        "import enum\nE = enum.Enum('E', {'__getattr__': len})\n",
        Rule::DunderName,
    );
    rejects(
        "def m(self):\n    return {f'__del__': 1}\n",
        Rule::DunderName,
    );
    rejects(
        "def m(self):\n    return type('X', (), {})\n",
        Rule::NameDenied,
    );
    rejects("def m(self, *a):\n    return type(*a)\n", Rule::NameDenied);
    rejects("def m(self):\n    try:\n        self.x\n    except AttributeError as e:\n        return e.obj\n", Rule::FrameAttribute);
    assert!(
        audit("def m(self, x):\n    return type(x).__name__ if False else type(x)\n")
            .has(Rule::PrivateAttribute)
    );
    assert!(
        audit("def m(self, x):\n    return type(x)(1), '__init__ is called', '__x'\n").accepted
    );
}
