//! The runtime layer (`JailSandboxBuilder::module_api`) on its own, with no guard in
//! front: every live probe of aura-guard's API red-team corpus works in a bare jail
//! and raises with the layer on; no probe of its older corpus escapes; every excluded
//! name is out of reach; ordinary methods keep working; and what the layer costs per
//! call.
#![cfg(target_os = "linux")]
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)] // test fixtures

use std::time::{Duration, Instant};

use aura_sandbox::{EndReason, ExecOutcome, ExecRequest, JailSandbox, MethodSource, Sandbox};
use serde_json::{json, Value};

/// The allowlist the guard enforces (aura-guard's data, read as a file: the sandbox
/// does not depend on the guard; aura-core passes the same text in).
const MODULE_API: &str = include_str!("../../../aura-guard/data/module_api.json");
const CORPUS: &str = include_str!("../../../aura-guard/tests/redteam/api_escapes.py");
const OLDER_CORPUS: &str = include_str!("../../../aura-guard/tests/redteam/escapes.py");

/// Escapes of the runtime layer alone, found while running the older corpus with the
/// guard off (the guard rejects all four). Each works in a bare jail.
const LAYER_ESCAPES: &str = r#"
# === layer-from-import-fallback | - | a from-import the proxy lacks falls back to sys.modules["json.decoder"], the real module
from json import decoder
def m(self):
    return repr(decoder.re.enum.sys)

# === layer-from-import-private | - | a private name in a from-import
from re import _parser
def m(self):
    return repr(_parser)

# === layer-match-args | - | a positional class pattern reads what __match_args__ names, on any object a metaclass lets match
import json
def m(self):
    u = "_"
    d = lambda s: u + u + s + u + u
    Meta = type("Meta", (type,), {d("instancecheck"): lambda c, x: True})
    C = Meta("C", (), {d("match_args"): (d("globals"),)})
    match json.dumps:
        case C(g):
            return repr(g[d("builtins")]["eval"])

# === layer-dataclass-field-code | - | dataclasses writes a field's name into the code it generates and runs it with the real builtins
import dataclasses
def m(self):
    u = "_"
    C = type("C", (), {u + u + "annotations" + u + u: {"x if 0 else __import__('os').getcwd()": int}})
    return repr(dataclasses.dataclass(C, init=False, eq=False)())
"#;

fn jail(layer: bool) -> JailSandbox {
    let mut b = aura_sandbox::JailSandboxBuilder::from_env();
    if layer {
        b = b.module_api(MODULE_API);
    }
    b.max_idle(1)
        .max_concurrent(1)
        .build()
        .expect("the jail builds")
}

async fn call(sandbox: &JailSandbox, source: &str) -> ExecOutcome {
    call_with(sandbox, "m", source, vec![]).await
}

async fn call_with(
    sandbox: &JailSandbox,
    selector: &str,
    source: &str,
    args: Vec<Value>,
) -> ExecOutcome {
    let method = MethodSource {
        selector: selector.into(),
        source: source.into(),
    };
    sandbox
        .execute(ExecRequest::call(method, args))
        .await
        .expect("the sandbox answers")
}

fn corpus() -> Vec<(String, String)> {
    parse(CORPUS)
}

/// `(id, source)` of each `# === id | rule | technique` case of a red-team corpus.
fn parse(text: &str) -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("# === ") {
            let id = header.split(" | ").next().unwrap_or("").trim().to_owned();
            cases.push((id, String::new()));
        } else if let Some(case) = cases.last_mut() {
            case.1.push_str(line);
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_alone_stops_every_live_probe() {
    let bare = jail(false);
    let layered = jail(true);
    let mut cases = corpus();
    assert!(cases.len() >= 20);
    cases.extend(parse(LAYER_ESCAPES));
    let mut not_live = Vec::new();
    let mut passed = Vec::new();
    for (id, src) in &cases {
        let out = call(&bare, src).await;
        if out.ended != EndReason::Ok {
            not_live.push(format!("{id}: {:?} {:?}", out.ended, out.error));
        }
        let out = call(&layered, src).await;
        match out.ended {
            EndReason::Exception => {
                let e = out.error.expect("an exception outcome has an error");
                println!("{id}: stopped: {}: {}", e.type_name, e.message);
            }
            other => passed.push(format!("{id}: {other:?} value={:?}", out.value)),
        }
    }
    println!(
        "runtime layer alone: {}/{} live probes stopped",
        cases.len() - passed.len(),
        cases.len()
    );
    assert!(
        not_live.is_empty(),
        "probes that are not live in a bare jail:\n{}",
        not_live.join("\n")
    );
    assert!(
        passed.is_empty(),
        "the runtime layer let through:\n{}",
        passed.join("\n")
    );
}

/// Arguments for the older corpus's probes that take some, so that each tries what it
/// is about: `(id, Python arguments after self, JSON values the driver gets as *a)`.
/// Strings that name private attributes travel as JSON, so that the driver's own code
/// holds no dunder string for the layer's code check to refuse.
const PROBE_ARGS: &[(&str, &str, &str)] = &[
    ("bi-eval", "*a", r#"["1+1"]"#),
    ("bi-memoryview", "*a", r#"["x"]"#),
    ("bi-keyword-arg", "*a", r#"[["1"]]"#),
    ("bi-listcomp", "*a", r#"[["1"]]"#),
    ("bi-genexp-if", "*a", r#"[["1"]]"#),
    ("bi-dictcomp", "*a", r#"[["1"]]"#),
    ("bi-fstring-spec", "*a", "[1]"),
    ("bi-match-guard", "*a", r#"[["1"]]"#),
    ("bi-annotation", "*a", "[1]"),
    ("bi-string-annotation", "*a", "[1]"),
    ("bi-slice", "*a", "[[1, 2]]"),
    ("dunder-in-comprehension", "*a", "[[1]]"),
    ("frame-nfkc", "(x for x in [1])", "[]"),
    ("private-del", "m", "[]"),
    ("frame-f-builtins", "*a", "[1]"),
    ("frame-co", "m", "[]"),
    ("imp-get-type-hints", "m", "[]"),
    ("imp-formatter", "*a", r#"["{0.__class__}"]"#),
    ("imp-attrgetter", "*a", r#"["__class__"]"#),
    ("dyn-getattr-var", "*a", r#"["__class__"]"#),
    ("dyn-getattr-frame", "(x for x in [1])", "[]"),
    ("dyn-setattr", "*a", r#"["__class__", 1]"#),
    ("dyn-hasattr-var", "*a", r#"["__class__"]"#),
    ("dyn-getattr-ref", "*a", r#"[["__class__"]]"#),
    ("dyn-getattr-star", "*a", r#"[["x", "__class__"]]"#),
    ("dyn-getattr-nfkc", "*a", r#"["__class__"]"#),
    ("dyn-methodcaller", "*a", r#"["__reduce__"]"#),
    ("fmt-gi-frame", "(x for x in [1])", "[]"),
    ("fmt-index-then-attr", "[m]", "[]"),
    ("fmt-nested-spec", "*a", "[1]"),
    ("fmt-nonliteral", "*a", r#"["{0.__class__}"]"#),
    ("fmt-str-format", "*a", r#"["{0.__class__}"]"#),
    ("fmt-map-nonliteral", "*a", r#"["{s.__class__}"]"#),
    ("match-class-dunder", "1", "[]"),
    ("match-class-frame", "(x for x in [1])", "[]"),
    ("match-value-dunder", "1", "[]"),
    ("shadow-getattr-param", "getattr", "[]"),
    ("shadow-posonly", "setattr", "[]"),
    ("eval-get-type-hints-attr", "m", "[]"),
    ("node-async-comp", "*a", "[[1]]"),
    ("node-tstring", "*a", "[1]"),
    ("ann-unreadable", "*a", "[1]"),
    ("ann-nested", "*a", "[1]"),
];

/// Probes of the older corpus with nothing for the runtime layer to stop: the rule they
/// test is one of the guard's own (shape, naming, syntax, limits), or what they try is
/// not valid Python 3.11, or not live. Run, they reach nothing outside the allowlist;
/// each ends the same with the layer as without (checked).
const INERT: &[(&str, &str)] = &[
    ("bi-string-annotation", "a string annotation: nothing evaluates it (get_type_hints, ForwardRef, singledispatch are excluded)"),
    ("ann-unreadable", "a string annotation, never evaluated"),
    ("ann-nested", "a string inside an annotation, never evaluated"),
    ("ann-return", "a string annotation, never evaluated"),
    ("bi-rebind", "a local named open bound to print: it reaches print"),
    ("bi-type-param-default", "Python 3.12 syntax, a SyntaxError on 3.11 (on 3.12 the code check refuses the eval in the bound)"),
    ("dunder-class-cell", "__class__ outside a class is an undefined name (inside one it is type(self))"),
    ("mod-collections-os", "not live: collections has no os, real or proxy"),
    ("shadow-getattr-param", "rebinding a name the guard tracks; at run time getattr & co. are the layer's"),
    ("shadow-getattr-assign", "rebinding a name the guard tracks; at run time getattr & co. are the layer's"),
    ("shadow-super", "rebinding super: it reaches self.__init__, which the layer allows too"),
    ("shadow-posonly", "rebinding a name the guard tracks; at run time getattr & co. are the layer's"),
    ("shadow-import-alias", "rebinding a name the guard tracks; at run time getattr & co. are the layer's"),
    ("shadow-def", "rebinding a name the guard tracks; at run time getattr & co. are the layer's"),
    ("node-global", "a global statement rebinds the method's own module global"),
    ("node-async", "a coroutine object; its frame is refused like any frame"),
    ("node-await", "returns a coroutine function"),
    ("node-async-comp", "a SyntaxError outside an async function"),
    ("node-tstring", "Python 3.14 syntax, a SyntaxError on 3.11"),
    ("exc-name-error-name", "a name the probe wrote itself: every place a string becomes an attribute (getattr & co., format, class patterns, generated code, type, Enum) checks it"),
    ("dunder-def-reduce", "defines __reduce__: pickle is not importable, copy calls only what the guest holds"),
    ("shape-toplevel-call", "a shape rule: top-level code runs under the layer like the method"),
    ("shape-toplevel-loop", "a shape rule"),
    ("shape-toplevel-if", "a shape rule"),
    ("shape-toplevel-try", "a shape rule"),
    ("shape-no-method", "a shape rule: no method to call (NameError)"),
    ("limit-deep", "the guard's own recursion limit; the compiler refuses it (SyntaxError)"),
    ("limit-unary", "the guard's own recursion limit; the compiler refuses it (RecursionError)"),
    ("syntax-coding-utf7", "compile() of a str ignores coding cookies: the hidden import is a comment"),
    ("syntax-coding-second-line", "compile() of a str ignores coding cookies: a plain string"),
    ("syntax-broken", "a SyntaxError"),
];

/// What the runtime layer made of a probe, with no guard in front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// (a) refused before it ran: the code check (`RuntimeDenied`).
    Refused,
    /// (b) raised inside the guest where the layer denied access: a builtin that is not
    /// there (`NameError`), a name a proxy module or `getattr` & co. refuse
    /// (`AttributeError`), an import (`ImportError`).
    Denied,
    /// (c) contained by the jail alone (time, memory, output): not the layer's job.
    Contained,
    /// Nothing to stop: listed in `INERT`.
    Inert,
    /// (d) it did what it tried to do.
    Escaped,
}

fn classify(id: &str, bare: &ExecOutcome, layered: &ExecOutcome) -> Stop {
    let error = |o: &ExecOutcome| {
        o.error
            .as_ref()
            .map(|e| (e.type_name.clone(), e.message.clone()))
    };
    match layered.ended {
        EndReason::Timeout | EndReason::Memory | EndReason::OutputLimit | EndReason::Killed => {
            return Stop::Contained
        }
        EndReason::Exception => {
            let (kind, _) = error(layered).expect("an exception outcome has an error");
            if kind == "RuntimeDenied" {
                return Stop::Refused;
            }
            // The layer's doing only when the same probe, bare, did not raise the same.
            if ["ImportError", "NameError", "AttributeError"].contains(&kind.as_str())
                && (bare.ended != EndReason::Exception || error(bare) != error(layered))
            {
                return Stop::Denied;
            }
        }
        EndReason::Ok => {}
    }
    let same =
        bare.ended == layered.ended && error(bare).map(|e| e.0) == error(layered).map(|e| e.0);
    if same && INERT.iter().any(|(i, _)| *i == id) {
        Stop::Inert
    } else {
        Stop::Escaped
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_alone_lets_no_probe_of_the_older_corpus_escape() {
    let bare = jail(false);
    let layered = jail(true);
    let cases = parse(OLDER_CORPUS);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    for (id, _, _) in PROBE_ARGS {
        assert!(cases.iter().any(|c| c.0 == *id), "PROBE_ARGS: no case {id}");
    }
    for (id, _) in INERT {
        assert!(cases.iter().any(|c| c.0 == *id), "INERT: no case {id}");
    }
    let classes = [
        Stop::Refused,
        Stop::Denied,
        Stop::Contained,
        Stop::Inert,
        Stop::Escaped,
    ];
    let mut counts = [0usize; 5];
    let mut escaped = Vec::new();
    for (id, src) in &cases {
        // A driver calls the probe with its arguments and returns what it got as text,
        // so that whatever the probe reached comes back.
        let (py, json_args) = PROBE_ARGS
            .iter()
            .find(|p| p.0 == id)
            .map_or(("", "[]"), |p| (p.1, p.2));
        let sep = if py.is_empty() { "" } else { ", " };
        let driven =
            format!("{src}\n\ndef aura_probe(self, *a):\n    return repr(m(self{sep}{py}))\n");
        let args: Vec<Value> = serde_json::from_str(json_args).unwrap();
        let b = call_with(&bare, "aura_probe", &driven, args.clone()).await;
        let l = call_with(&layered, "aura_probe", &driven, args).await;
        let stop = classify(id, &b, &l);
        let show = |o: &ExecOutcome| {
            let text = match &o.error {
                Some(e) => format!("{:?} {}: {}", o.ended, e.type_name, e.message),
                None => format!("{:?} {:?}", o.ended, o.value),
            };
            text.chars().take(200).collect::<String>()
        };
        println!(
            "{id}: {stop:?}\n    layered: {}\n    bare:    {}",
            show(&l),
            show(&b)
        );
        if stop == Stop::Escaped {
            escaped.push(format!("{id}: {}", show(&l)));
        }
        counts[classes.iter().position(|c| *c == stop).unwrap()] += 1;
    }
    let counts: Vec<String> = classes
        .iter()
        .zip(counts)
        .map(|(c, n)| format!("{c:?} {n}"))
        .collect();
    println!(
        "runtime layer alone, older corpus ({} probes): {}",
        cases.len(),
        counts.join(", ")
    );
    assert!(
        escaped.is_empty(),
        "escaped the runtime layer:\n{}",
        escaped.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exclusion_is_out_of_reach_at_run_time() {
    let layered = jail(true);
    let data: Value = serde_json::from_str(MODULE_API).unwrap();
    let excluded = data["excluded"].as_object().unwrap();
    for dotted in excluded.keys() {
        let (m, a) = dotted.rsplit_once('.').unwrap();
        for src in [
            format!("import {m}\ndef m(self):\n    return {m}.{a} is not None\n"),
            format!("from {m} import {a}\ndef m(self):\n    return True\n"),
        ] {
            let out = call(&layered, &src).await;
            assert_eq!(
                out.ended,
                EndReason::Exception,
                "{dotted} reachable:\n{src}"
            );
        }
    }
    // Denied builtins, imports outside the list, private and frame attributes,
    // getattr with a computed name, and format fields.
    for src in [
        "def m(self):\n    return open('/dev/null').read()\n",
        "def m(self):\n    return eval('1')\n",
        "def m(self):\n    return __import__('os')\n",
        "def m(self):\n    import os\n    return 1\n",
        "def m(self):\n    import json.decoder\n    return 1\n",
        "def m(self):\n    return ().__class__\n",
        "def m(self):\n    return getattr((), '__cl' + 'ass__')\n",
        "def m(self):\n    g = (x for x in [1])\n    return g.gi_frame is not None\n",
        "def m(self):\n    return '{0.__class__}'.format(1)\n",
        "def m(self):\n    t = '{0.' + str(1)\n    return t.format(1)\n",
        "import re\ndef m(self):\n    re.compile = None\n    return 1\n",
    ] {
        let out = call(&layered, src).await;
        assert_eq!(
            out.ended,
            EndReason::Exception,
            "not stopped:\n{src}\n{out:?}"
        );
    }
}

const BENIGN: &[(&str, &str)] = &[
    ("import re\nP = re.compile(r'\\d+')\ndef m(self):\n    return [int(x) for x in P.findall('a1b22')]\n", "[1,22]"),
    ("from collections import Counter, defaultdict\nimport collections.abc\ndef m(self):\n    d = defaultdict(int)\n    d['a'] += 1\n    return [Counter('aab').most_common(1)[0][0], d['a'], isinstance({}, collections.abc.Mapping)]\n", "[\"a\",1,true]"),
    ("import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n    y: int = 0\ndef m(self):\n    return dataclasses.asdict(P(1))\n", "{\"x\":1,\"y\":0}"),
    ("import enum\nclass C(enum.Enum):\n    RED = 1\ndef m(self):\n    return C.RED.name\n", "\"RED\""),
    ("import math, functools, itertools, operator\n@functools.lru_cache(maxsize=None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\ndef m(self):\n    return [fib(20), math.isqrt(17), list(itertools.accumulate([1, 2, 3], operator.mul))]\n", "[6765,4,[1,2,6]]"),
    ("import json, datetime, decimal, fractions, statistics\ndef m(self):\n    return [json.dumps({'a': 1}), datetime.date(2024, 1, 2).isoformat(), str(decimal.Decimal('1.10') + 1), str(fractions.Fraction(1, 3) * 3), statistics.mean([1, 2, 3])]\n", "[\"{\\\"a\\\": 1}\",\"2024-01-02\",\"2.10\",\"1\",2]"),
    ("import string, textwrap, heapq, bisect, hashlib, base64, unicodedata, copy\ndef m(self):\n    h = [3, 1, 2]\n    heapq.heapify(h)\n    return [string.Template('$a!').substitute(a='hi'), textwrap.dedent('  a'), h[0], bisect.bisect([1, 3], 2), hashlib.sha256(b'').hexdigest()[:4], base64.b64encode(b'a').decode(), unicodedata.name('a'), copy.deepcopy([1])]\n", "[\"hi!\",\"a\",1,1,\"e3b0\",\"YQ==\",\"LATIN SMALL LETTER A\",[1]]"),
    ("import random\nfrom typing import List, Optional\nclass Box:\n    def __init__(self, v):\n        self.v = v\n    def __eq__(self, o):\n        return self.v == o.v\nclass Big(Box):\n    def __init__(self, v):\n        super().__init__(v * 10)\ndef m(self, xs: Optional[List[int]] = None) -> str:\n    r = random.Random(1)\n    return '{} {}'.format(Big(1).v, Box(2) == Box(2)) + f' {len(str(r.random())) > 0}' + getattr(self, 'missing', '!') \n", "\"10 True True!\""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_methods_keep_working_and_the_cost_is_small() {
    let bare = jail(false);
    let layered = jail(true);
    for (src, want) in BENIGN {
        for sandbox in [&bare, &layered] {
            let out = call(sandbox, src).await;
            assert_eq!(out.ended, EndReason::Ok, "{src}\n{out:?}");
            let want: Value = serde_json::from_str(want).unwrap();
            assert_eq!(out.value, Some(want), "{src}");
        }
    }
    // Tests run under the layer too.
    let method = MethodSource {
        selector: "double".into(),
        source: "def double(self, x):\n    return 2 * x\n".into(),
    };
    let mut req = ExecRequest::call(method, vec![json!(1)]);
    req.tests = Some(
        "import math\ndef test_double():\n    assert obj.double(2) == math.floor(4.5)\n".into(),
    );
    let out = layered.execute(req).await.unwrap();
    assert!(out.succeeded(), "{out:?}");

    // The cost: median wall time of a small call, bare and layered, interleaved.
    let src = BENIGN[4].0;
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..15 {
        for (i, sandbox) in [&bare, &layered].into_iter().enumerate() {
            let t = Instant::now();
            let out = call(sandbox, src).await;
            times[i].push(t.elapsed());
            assert_eq!(out.ended, EndReason::Ok);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (b, l) = (median(&mut times[0]), median(&mut times[1]));
    println!(
        "median call: bare {:.2} ms, with the runtime layer {:.2} ms (difference {:.3} ms)",
        b.as_secs_f64() * 1e3,
        l.as_secs_f64() * 1e3,
        (l.as_secs_f64() - b.as_secs_f64()) * 1e3
    );
}

/// With the layer, `random` is imported once in the server and every child is a copy of
/// it: each call must still draw its own numbers (each child reseeds itself, in `prepare_child`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_draws_its_own_random_numbers() {
    let layered = jail(true);
    let src =
        "import random\ndef m(self):\n    return [random.random(), random.randint(0, 10**9)]\n";
    let mut seen = Vec::new();
    for _ in 0..6 {
        let out = call(&layered, src).await;
        assert_eq!(out.ended, EndReason::Ok, "{out:?}");
        seen.push(out.value.expect("a value"));
    }
    let mut distinct = seen.clone();
    distinct.sort_by_key(Value::to_string);
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "calls repeated a draw: {seen:?}"
    );
}
