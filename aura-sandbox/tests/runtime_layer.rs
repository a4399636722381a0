//! The runtime layer (`JailSandboxBuilder::module_api`) on its own, with no guard in
//! front: every live probe of aura-guard's API red-team corpus works in a bare jail
//! and raises with the layer on; every excluded name is out of reach; ordinary
//! methods keep working; and what the layer costs per call.
#![cfg(target_os = "linux")]
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)] // test fixtures

use std::time::{Duration, Instant};

use aura_sandbox::{EndReason, ExecOutcome, ExecRequest, JailSandbox, MethodSource, Sandbox};
use serde_json::{json, Value};

/// The allowlist the guard enforces (aura-guard's data, read as a file: the sandbox
/// does not depend on the guard; aura-core passes the same text in).
const MODULE_API: &str = include_str!("../../aura-guard/data/module_api.json");
const CORPUS: &str = include_str!("../../aura-guard/tests/redteam/api_escapes.py");

fn jail(layer: bool) -> JailSandbox {
    let mut b = JailSandbox::builder();
    if let Some(p) = std::env::var_os("AURA_SANDBOX_PYTHON") {
        b = b.python(p);
    } else if std::path::Path::new("/usr/bin/python3").exists() {
        b = b.python("/usr/bin/python3");
    }
    if layer {
        b = b.module_api(MODULE_API);
    }
    b.max_idle(1)
        .max_concurrent(1)
        .build()
        .expect("the jail builds")
}

async fn call(sandbox: &JailSandbox, source: &str) -> ExecOutcome {
    let method = MethodSource {
        selector: "m".into(),
        source: source.into(),
    };
    sandbox
        .execute(ExecRequest::call(method, vec![]))
        .await
        .expect("the sandbox answers")
}

fn corpus() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    for line in CORPUS.split_inclusive('\n') {
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
    let cases = corpus();
    assert!(cases.len() >= 20);
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
