//! Sample and verify: the judge of the learn cycle's candidates.
//!
//! A small model writes a correct function in some of its samples, not in each one,
//! and its own tests are no reliable judge. So the learn cycle draws several
//! candidates and this module decides among them by execution:
//!
//! 1. **Hard checks.** Each candidate, normalised into a method by the guard's parser
//!    and audited, runs once in the sandbox on every probe input (one call, through
//!    a harness method). It must satisfy the examples the request itself gives
//!    ("fibonacci for 10 is 55", doctest lines), return a value for the call that
//!    triggered learning, return a value for at least one input, give only the kind
//!    of answer the request promises (True or False for "check whether …", never a
//!    truth value or text for a count), and agree with its own asserts.
//! 2. **Agreement.** Candidates that pass are clustered by what they return on the
//!    same inputs (MBR-exec, CodeT). A cluster's score is its size plus the examples
//!    written by the models (every candidate's asserts, pooled) that it satisfies.
//! 3. **Decision.** The best cluster wins when its score exceeds every other
//!    cluster's by the agreement threshold, it satisfies at least as many pooled
//!    examples as it contradicts, and it is not degenerate (the same value for every
//!    input, or its input back unchanged). An example in the request is the user's
//!    own check: a candidate that passes it needs no further agreement.
//! 4. **Reading.** A winner that only the votes chose comes with its rivals
//!    ([`Decision::Accept`]), and the learn cycle lets the model's reading of asserts
//!    where they part overrule it (`crate::reading`).
//!
//! Probe inputs: the request's examples and the triggering call, the pooled
//! examples' inputs, and inputs generated for each candidate's arity from the types
//! those inputs (or the request's words) suggest.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use aura_guard::Guard;
use regex::Regex;

use aura_cognition::plan::{AnswerKind, EXAMPLE_VERBS};
use aura_cognition::{MethodCandidate, Selection};
use aura_guard::normalize::{Example, Normalized};
use aura_sandbox::{EndReason, ExecOutcome};
use serde::Serialize;
use serde_json::{json, Value};

use aura_forge::trail::Stage;

use crate::learn::AttemptFailure;
use crate::library::LIBRARY_VOTES;

/// The harness method's selector: it calls the candidate on every input.
pub(crate) const HARNESS: &str = "aura_probe_harness";

/// Exceptions that only a bug in the method raises: see [`Pool::mostly_broken`].
const BUG_ERRORS: [&str; 3] = ["AttributeError", "NameError", "UnboundLocalError"];

/// Runs `self.<selector>(*args)` for each input and reports each value (made
/// JSON-safe) or the exception's `repr` (the host reads the type name from it: the
/// runtime layer denies dunder attributes such as `__name__` to every method, this
/// one included). Generated here, never by a model; it runs in the sandbox like
/// everything else.
pub(crate) fn harness_source(selector: &str) -> String {
    format!(
        r#"def _aura_json(v, depth=0):
    if depth > 20:
        return repr(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else repr(v)
    if isinstance(v, (list, tuple)):
        return [_aura_json(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {{str(k): _aura_json(x, depth + 1) for k, x in v.items()}}
    if isinstance(v, (set, frozenset)):
        return sorted((_aura_json(x, depth + 1) for x in v), key=repr)
    return repr(v)


def {HARNESS}(self, inputs):
    out = []
    for args in inputs:
        try:
            out.append({{"value": _aura_json(self.{selector}(*args))}})
        except Exception as e:
            out.append({{"raised": repr(e)[:200]}})
    return out
"#
    )
}

/// What a method (or one candidate) did with one call: as JSON, `{"value": …}` or
/// `{"raised": "ValueError"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutput {
    /// It returned this (JSON-safe) value.
    Value(Value),
    /// It raised this exception type (or the whole run stopped: `EndReason`).
    Raised(String),
}

impl CallOutput {
    fn from_json(v: &Value) -> CallOutput {
        match (v.get("value"), v.get("raised")) {
            (Some(value), _) => CallOutput::Value(value.clone()),
            (None, Some(Value::String(r))) => {
                // `ValueError('bad')` → `ValueError`
                let name: String = r
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                    .collect();
                CallOutput::Raised(if name.is_empty() {
                    "Exception".into()
                } else {
                    name
                })
            }
            _ => CallOutput::Raised("unreadable".into()),
        }
    }

    /// A key for clustering: floats rounded so that equal results compare equal.
    fn key(&self) -> String {
        match self {
            CallOutput::Value(v) => rounded(v).to_string(),
            CallOutput::Raised(t) => format!("raised:{t}"),
        }
    }

    fn value(&self) -> Option<&Value> {
        match self {
            CallOutput::Value(v) => Some(v),
            CallOutput::Raised(_) => None,
        }
    }
}

fn rounded(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 1e15 {
                json!(f as i64)
            } else {
                json!(format!("{f:.9e}"))
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(rounded).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), rounded(v))).collect())
        }
        other => other.clone(),
    }
}

/// Whether a returned value satisfies an expected one (numbers by value, floats
/// within a relative 1e-6).
pub(crate) fn satisfies(got: &Value, expected: &Value) -> bool {
    match (got, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            a == b || (a - b).abs() <= 1e-6 * b.abs().max(1.0)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| satisfies(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| satisfies(x, y)))
        }
        (a, b) => a == b,
    }
}

/// What the request itself requires of the method.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spec {
    /// Examples from the request's words: every candidate must satisfy them.
    pub examples: Vec<Example>,
    /// The call that triggered learning: it must return a value.
    pub trigger: Option<Vec<Value>>,
    /// The kind of value the request's words suggest for generated inputs.
    pub hint: ValueKind,
    /// The kind of answer the request's words or the method's name promise, if any.
    pub answer: Option<AnswerKind>,
    /// The method's name, to write calls in what a refusal tells the user.
    pub selector: String,
}

/// The kind of argument generated probe inputs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// Integers (the default).
    #[default]
    Int,
    /// Floats.
    Float,
    /// Strings.
    Str,
    /// Lists of integers.
    List,
}

impl ValueKind {
    /// The kind of a sample argument.
    fn of(v: &Value) -> ValueKind {
        match v {
            Value::String(_) => ValueKind::Str,
            Value::Array(_) => ValueKind::List,
            Value::Number(n) if n.is_f64() => ValueKind::Float,
            _ => ValueKind::Int,
        }
    }

    /// The kind the request's nouns suggest ("a string", "a list of numbers").
    pub(crate) fn from_words(text: &str) -> ValueKind {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase)
            .collect();
        let has = |names: &[&str]| words.iter().any(|w| names.contains(&w.as_str()));
        if has(&["list", "lists", "array", "arrays", "items", "elements"]) {
            ValueKind::List
        } else if has(&[
            "string",
            "strings",
            "word",
            "words",
            "sentence",
            "text",
            "letters",
            "characters",
            "palindrome",
            "vowels",
            "consonants",
            "name",
        ]) {
            ValueKind::Str
        } else if has(&["float", "decimal", "celsius", "fahrenheit", "temperature"]) {
            ValueKind::Float
        } else {
            ValueKind::Int
        }
    }

    fn samples(self) -> Vec<Value> {
        match self {
            // Odd composites (9, 15, 25) tell a real test from "is it odd".
            ValueKind::Int => [0, 1, 2, 3, 4, 5, 7, 9, 10, 12, 15, 25]
                .map(|i| json!(i))
                .to_vec(),
            // People pass whole numbers where a fraction is allowed: probe both, so
            // a candidate that special-cases `int` cannot hide behind floats.
            ValueKind::Float => vec![
                json!(0.0),
                json!(1.5),
                json!(-2.25),
                json!(37.0),
                json!(100.0),
                json!(10),
                json!(-5),
            ],
            ValueKind::Str => [
                "",
                "a",
                "hello",
                "Hello World",
                "racecar",
                "abc def ghi",
                "AEIOU xyz",
            ]
            .map(|s| json!(s))
            .to_vec(),
            ValueKind::List => vec![
                json!([]),
                json!([1]),
                json!([3, 1, 2]),
                json!([5, 5, 2, 9, 1]),
                json!([-1, 4, 0, 4]),
            ],
        }
    }
}

/// Generated inputs for a function of `arity` arguments, each argument of the kind
/// the first known input of that arity has (or `hint`).
fn generated_inputs(arity: usize, known: &[Vec<Value>], hint: ValueKind) -> Vec<Vec<Value>> {
    let kinds: Vec<ValueKind> = match known.iter().find(|a| a.len() == arity) {
        Some(sample) => sample.iter().map(ValueKind::of).collect(),
        None => vec![hint; arity],
    };
    if arity == 0 {
        return vec![Vec::new()];
    }
    let columns: Vec<Vec<Value>> = kinds.iter().map(|k| k.samples()).collect();
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut inputs: Vec<Vec<Value>> = (0..rows)
        .map(|r| {
            columns
                .iter()
                .enumerate()
                // Offset each column so pairs are not always (x, x).
                .map(|(c, col)| col[(r + c * 2) % col.len()].clone())
                .collect()
        })
        .collect();
    // Two arguments of one kind: unrelated pairs alone make every relation between
    // them false (equal, a permutation of each other, ordered), and a function that
    // tests one looks constant. Add related pairs: equal, swapped, reversed.
    if let [a, b] = kinds[..] {
        if a == b {
            let samples = a.samples();
            for x in samples.iter().skip(2).take(3) {
                inputs.push(vec![x.clone(), x.clone()]);
                if let Some(r) = reversed(x) {
                    inputs.push(vec![x.clone(), r]);
                }
            }
            if let Some(first) = inputs.first().cloned() {
                inputs.push(vec![first[1].clone(), first[0].clone()]);
            }
        }
    }
    inputs
}

/// A string or list reversed (a permutation that differs from the original).
fn reversed(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(json!(s.chars().rev().collect::<String>())),
        Value::Array(items) => Some(Value::Array(items.iter().rev().cloned().collect())),
        _ => None,
    }
}

/// One drawn candidate and what the checks made of it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Drawn {
    /// The candidate as drawn (source and tests as the model wrote them).
    pub raw: MethodCandidate,
    /// The normalised method, once it got that far.
    pub normalized: Option<Normalized>,
    /// Outputs by input key.
    #[serde(skip)]
    pub outputs: BTreeMap<String, CallOutput>,
    /// Why it cannot win (`None`: it passed every hard check).
    pub failure: Option<AttemptFailure>,
    /// When it was drawn and how long drawing and checking it took.
    pub timing: SampleTiming,
    /// The standard-library function it calls, when the library proposed it rather
    /// than the model (see [`Pool::votes`]).
    pub library: Option<String>,
}

/// Where one sample's time went, in milliseconds from the start of its search: what
/// the inspector draws as the cycle's waterfall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct SampleTiming {
    /// When the model was asked for it.
    pub start_ms: f64,
    /// Waiting for the model (the whole cascade, in full mode).
    pub model_ms: f64,
    /// The guard, the sandbox runs and the judging that followed.
    pub check_ms: f64,
}

/// The candidates drawn so far and the inputs they all run on.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    pub spec: Spec,
    pub inputs: Vec<Vec<Value>>,
    keys: HashSet<String>,
    arities: HashSet<usize>,
    pub drawn: Vec<Drawn>,
}

fn input_key(args: &[Value]) -> String {
    Value::Array(args.to_vec()).to_string()
}

/// One input on which two behaviours give different values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Parting {
    pub args: Vec<Value>,
    /// What the winner returns.
    pub ours: Value,
    /// What its rival returns.
    pub theirs: Value,
}

/// The decision on a pool: the winner, or why there is none yet.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    /// Commit `drawn[index]`, unless the model's reading sides with one of `rivals`
    /// (see `crate::reading`). They are named when the samples' votes alone made the
    /// decision (no example in the request, no standard-library function among the
    /// winners): the first sample of the strongest other behaviour, and each
    /// standard-library function that no sample agrees with. Such a function has no
    /// vote, but it is another reading of the request's words, worth weighing.
    Accept {
        index: usize,
        selection: Selection,
        rivals: Vec<usize>,
    },
    /// Not yet (or not at all): why.
    Undecided(String),
}

impl Pool {
    /// A pool for `spec`, its inputs seeded with the request's own.
    pub(crate) fn new(spec: Spec) -> Self {
        let mut pool = Pool {
            spec,
            ..Pool::default()
        };
        let seeded: Vec<Vec<Value>> = pool
            .spec
            .examples
            .iter()
            .map(|e| e.args.clone())
            .chain(pool.spec.trigger.clone())
            .collect();
        for args in seeded {
            pool.add_input(args);
        }
        pool
    }

    fn add_input(&mut self, args: Vec<Value>) {
        if self.keys.insert(input_key(&args)) {
            self.inputs.push(args);
        }
    }

    /// Adds a candidate's own examples' inputs and generated inputs for its arity.
    pub(crate) fn grow_for(&mut self, normalized: &Normalized) {
        for e in &normalized.examples {
            self.add_input(e.args.clone());
        }
        // Probe with the arguments a call must pass: `f(x, unit=None)` is called as f(x).
        let arity = normalized.required;
        if self.arities.insert(arity) && self.inputs.len() < 64 {
            for args in generated_inputs(arity, &self.inputs, self.spec.hint) {
                self.add_input(args);
            }
        }
    }

    /// The inputs `drawn[index]` has not run on yet.
    pub(crate) fn missing_inputs(&self, index: usize) -> Vec<Vec<Value>> {
        let done = &self.drawn[index].outputs;
        self.inputs
            .iter()
            .filter(|a| !done.contains_key(&input_key(a)))
            .cloned()
            .collect()
    }

    /// Records the harness run of `drawn[index]` on `inputs`.
    pub(crate) fn record_run(&mut self, index: usize, inputs: &[Vec<Value>], run: &ExecOutcome) {
        let outputs: Vec<CallOutput> = match (&run.ended, run.value.as_ref()) {
            (EndReason::Ok, Some(Value::Array(items))) if items.len() == inputs.len() => {
                items.iter().map(CallOutput::from_json).collect()
            }
            // The run as a whole stopped (a timeout, a memory limit, a harness that
            // could not load the method): every input shares that fate.
            _ => {
                let why = match &run.error {
                    Some(e) => e.type_name.clone(),
                    None => format!("{:?}", run.ended),
                };
                vec![CallOutput::Raised(why); inputs.len()]
            }
        };
        let drawn = &mut self.drawn[index];
        for (args, out) in inputs.iter().zip(outputs) {
            drawn.outputs.insert(input_key(args), out);
        }
    }

    fn output(&self, index: usize, args: &[Value]) -> Option<&CallOutput> {
        self.drawn[index].outputs.get(&input_key(args))
    }

    /// The hard checks on `drawn[index]` once it has run; sets its failure.
    pub(crate) fn judge(&mut self, index: usize) {
        let failure = self.hard_failure(index);
        self.drawn[index].failure = failure;
    }

    fn hard_failure(&self, index: usize) -> Option<AttemptFailure> {
        let fail = |stage: Stage, message: String| Some(AttemptFailure::new(stage, message));
        if let Some((e, got)) = self.first_unsatisfied(index, &self.spec.examples) {
            return fail(
                Stage::Examples,
                format!(
                    "the request's example {} should give {}, but it {}",
                    call_text(&e.args),
                    e.expected,
                    describe(got)
                ),
            );
        }
        if let Some(args) = &self.spec.trigger {
            if let Some(CallOutput::Raised(t)) = self.output(index, args) {
                return fail(
                    Stage::Call,
                    format!("the call {} raised {t}", call_text(args)),
                );
            }
        }
        let outputs = &self.drawn[index].outputs;
        if !outputs.is_empty() && outputs.values().all(|o| o.value().is_none()) {
            let first = outputs
                .values()
                .next()
                .map(CallOutput::key)
                .unwrap_or_default();
            return fail(
                Stage::Probes,
                format!("it raised on every input it was given ({first})"),
            );
        }
        if let Some(n) = &self.drawn[index].normalized {
            if let Some(why) = self.mostly_broken(index, n.required) {
                return fail(Stage::Probes, why);
            }
        }
        if let Some(answer) = self.spec.answer {
            let ruled_out = self
                .inputs
                .iter()
                .find_map(|args| match self.output(index, args) {
                    Some(CallOutput::Value(v)) if !answer.admits(v) => Some((args, v)),
                    _ => None,
                });
            if let Some((args, v)) = ruled_out {
                return fail(
                    Stage::Probes,
                    format!(
                        "{} gave {}, but {}",
                        python_call(&self.spec.selector, args),
                        aura_cognition::python_literal(v),
                        answer.rule()
                    ),
                );
            }
        }
        // A sample that answers every probe alike may still be the truth the other
        // samples confirm; a library function that does was found by a stray word.
        if let Some(name) = &self.drawn[index].library {
            if let Some(why) = self.degenerate(index) {
                return fail(Stage::Probes, format!("it calls {name}, which {why}"));
            }
        }
        if let Some(n) = &self.drawn[index].normalized {
            if let Some((e, got)) = self.first_unsatisfied(index, &n.examples) {
                return fail(
                    Stage::OwnTests,
                    format!(
                        "its own assert {} == {} fails: it {}",
                        call_text(&e.args),
                        e.expected,
                        describe(got)
                    ),
                );
            }
        }
        None
    }

    /// Why `drawn[index]` is broken code, if it stops on a bug of its own (an
    /// attribute that does not exist, a name never bound) for most of the inputs of
    /// its arity. An empty input often slips past such a bug (`count("") == 0` while
    /// every other string raises `AttributeError`), and several samples that share
    /// the bug would otherwise vote for it. A method never raises these on purpose,
    /// unlike `ValueError` for an input it rejects.
    fn mostly_broken(&self, index: usize, arity: usize) -> Option<String> {
        let own: Vec<(&Vec<Value>, &CallOutput)> = self
            .inputs
            .iter()
            .filter(|args| args.len() == arity)
            .filter_map(|args| Some((args, self.output(index, args)?)))
            .collect();
        let broken: Vec<(&Vec<Value>, &str)> = own
            .iter()
            .filter_map(|(args, out)| match out {
                CallOutput::Raised(t) if BUG_ERRORS.contains(&t.as_str()) => {
                    Some((*args, t.as_str()))
                }
                _ => None,
            })
            .collect();
        let (args, error) = broken.first()?;
        (broken.len() * 2 > own.len()).then(|| {
            format!(
                "it fails with a bug of its own on {} of its {} inputs ({} raised {error})",
                broken.len(),
                own.len(),
                python_call(&self.spec.selector, args)
            )
        })
    }

    /// The first of `examples` that `drawn[index]` does not satisfy, with what it did.
    fn first_unsatisfied<'e>(
        &self,
        index: usize,
        examples: &'e [Example],
    ) -> Option<(&'e Example, Option<&CallOutput>)> {
        examples
            .iter()
            .find_map(|e| match self.output(index, &e.args) {
                Some(CallOutput::Value(v)) if satisfies(v, &e.expected) => None,
                got => Some((e, got)),
            })
    }

    /// The votes of a behaviour: one per sample that shows it, and [`LIBRARY_VOTES`]
    /// more when a standard-library function shows it too. The library only confirms:
    /// a function no sample agrees with counts for nothing (the request's words may
    /// have found it by a stray word), so it never wins alone nor blocks a winner.
    fn votes(&self, members: &[usize]) -> usize {
        let samples = members
            .iter()
            .filter(|&&i| self.drawn[i].library.is_none())
            .count();
        let confirmed = samples > 0 && samples < members.len();
        samples + if confirmed { LIBRARY_VOTES } else { 0 }
    }

    /// Every example the models wrote, deduplicated, with the candidates that wrote it.
    fn pooled_examples(&self) -> Vec<(&Example, Vec<usize>)> {
        let mut seen: Vec<(String, &Example, Vec<usize>)> = Vec::new();
        for (i, d) in self.drawn.iter().enumerate() {
            let Some(n) = &d.normalized else { continue };
            for e in &n.examples {
                let key = format!("{}={}", input_key(&e.args), rounded(&e.expected));
                match seen.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, _, authors)) => authors.push(i),
                    None => seen.push((key, e, vec![i])),
                }
            }
        }
        seen.into_iter().map(|(_, e, a)| (e, a)).collect()
    }

    /// Decides on the pool as it stands. `agreement` is the lead in score a winner
    /// needs over every rival behaviour when the request gives no example of its own.
    pub(crate) fn decide(&self, agreement: usize) -> Decision {
        let eligible: Vec<usize> = (0..self.drawn.len())
            .filter(|&i| self.drawn[i].failure.is_none())
            .collect();
        // The library only confirms a sample: with no sample standing, say why they fell.
        if eligible.iter().all(|&i| self.drawn[i].library.is_some()) {
            return Decision::Undecided(self.failure_summary());
        }
        // Cluster by behaviour on every input.
        let mut clusters: Vec<(String, Vec<usize>)> = Vec::new();
        for &i in &eligible {
            let signature: Vec<String> = self
                .inputs
                .iter()
                .map(|a| self.output(i, a).map(CallOutput::key).unwrap_or_default())
                .collect();
            let signature = signature.join("|");
            match clusters.iter_mut().find(|(s, _)| *s == signature) {
                Some((_, members)) => members.push(i),
                None => clusters.push((signature, vec![i])),
            }
        }
        let pooled = self.pooled_examples();
        let scored: Vec<(usize, usize, usize, &Vec<usize>)> = clusters
            .iter()
            .map(|(_, members)| {
                let rep = members[0];
                let (mut support, mut against) = (0, 0);
                for (e, authors) in &pooled {
                    // A sample's own asserts were written by the same reasoning as its
                    // code: they support it only when another sample wrote them too.
                    let independent = authors.iter().any(|a| !members.contains(a));
                    match self.output(rep, &e.args) {
                        Some(CallOutput::Value(v)) if satisfies(v, &e.expected) => {
                            support += usize::from(independent)
                        }
                        Some(_) => against += 1,
                        None => {}
                    }
                }
                // A function no sample shows is no evidence, whatever asserts it passes.
                let votes = self.votes(members);
                let score = if votes == 0 { 0 } else { votes + support };
                (score, support, against, members)
            })
            .collect();
        let Some(best) = scored
            .iter()
            .enumerate()
            .max_by_key(|(pos, s)| (s.0, std::cmp::Reverse(*pos)))
            .map(|(_, s)| s)
        else {
            return Decision::Undecided("no candidate passed the checks".into());
        };
        let (score, support, against, members) = *best;
        let rival = scored
            .iter()
            .filter(|s| !std::ptr::eq(*s, best))
            .max_by_key(|s| s.0);
        let runner_up = rival.map_or(0, |s| s.0);
        // The library's own call is the cleanest code for a behaviour it shares.
        let winner = members
            .iter()
            .copied()
            .find(|&i| self.drawn[i].library.is_some())
            .unwrap_or(members[0]);
        let mut sizes: Vec<usize> = clusters.iter().map(|(_, m)| m.len()).collect();
        sizes.sort_unstable_by_key(|s| std::cmp::Reverse(*s));
        let selection = |reason: String| Selection {
            drawn: self.drawn.len(),
            eligible: eligible.len(),
            clusters: sizes.clone(),
            winner,
            agreeing: members.len(),
            support,
            against,
            request_examples: self.spec.examples.len(),
            probes: self.inputs.len(),
            reason,
            reading: None,
        };
        if !self.spec.examples.is_empty() {
            return Decision::Accept {
                rivals: Vec::new(),
                index: winner,
                selection: selection(format!(
                    "it satisfies the request's {} example(s); {} candidate(s) agree with it",
                    self.spec.examples.len(),
                    members.len()
                )),
            };
        }
        if let Some(why) = self.degenerate(winner) {
            return Decision::Undecided(format!("the best candidate {why}"));
        }
        // The winner must out-vote every rival behaviour by `agreement`, not just
        // reach it: a small model's shared misconception often collects two votes
        // while the samples still disagree, and a lone pair beside a rival is
        // exactly how those wrong commits looked on the everyday suite.
        if score < runner_up + agreement {
            return Decision::Undecided(if runner_up == 0 {
                format!(
                    "the best candidate has {} agreeing sample(s) and {support} supporting example(s); {agreement} needed",
                    members.len()
                )
            } else {
                let parted = rival
                    .and_then(|r| self.parting(members, r.3))
                    .map(|p| format!(". {p}"))
                    .unwrap_or_default();
                format!(
                    "the best behaviour scores {score} and the next {runner_up}: the samples disagree ({agreement} more votes needed than any rival){parted}"
                )
            });
        }
        if against > support {
            return Decision::Undecided(format!(
                "the best candidate contradicts {against} of the models' examples and satisfies {support}"
            ));
        }
        // Say when the standard library's function is among the agreeing candidates
        // (it is then the winner).
        let library = self.drawn[winner]
            .library
            .as_deref()
            .map(|name| format!(" (one of them calls {name}, which the request's words found)"))
            .unwrap_or_default();
        // The reading weighs in only where nothing but the samples' votes spoke.
        let rivals = if self.drawn[winner].library.is_none() {
            let sampled = rival.filter(|r| r.0 > 0).and_then(|r| {
                r.3.iter()
                    .copied()
                    .find(|&i| self.drawn[i].library.is_none())
            });
            let unconfirmed = clusters
                .iter()
                .filter(|(_, m)| m.iter().all(|&i| self.drawn[i].library.is_some()))
                .map(|(_, m)| m[0]);
            sampled.into_iter().chain(unconfirmed).collect()
        } else {
            Vec::new()
        };
        Decision::Accept {
            rivals,
            index: winner,
            selection: selection(format!(
                "{} candidate(s){library} behave alike on {} inputs and it satisfies {support} of the models' examples (score {score}, next best {runner_up})",
                members.len(),
                self.inputs.len()
            )),
        }
    }

    /// The inputs where `ours` and `theirs` both return and the values differ, the
    /// largest inputs first (a typical input says more about what a request means than
    /// `0` or `[]` does), at most `max`.
    pub(crate) fn partings(&self, ours: usize, theirs: usize, max: usize) -> Vec<Parting> {
        let mut found: Vec<Parting> = self
            .inputs
            .iter()
            .filter_map(|args| {
                let a = self.output(ours, args)?.value()?;
                let b = self.output(theirs, args)?.value()?;
                (rounded(a) != rounded(b)).then(|| Parting {
                    args: args.clone(),
                    ours: a.clone(),
                    theirs: b.clone(),
                })
            })
            .collect();
        found.sort_by_cached_key(|p| std::cmp::Reverse(input_key(&p.args).len()));
        found.truncate(max);
        found
    }

    /// Where two behaviours part, said so that the user can settle it: "For
    /// fibonacci(10), 3 sample(s) give 55 and 2 give 89; add what it should give to
    /// the request (`fibonacci(10) == …`) and I will learn it". A request example is a
    /// hard check, so one such answer decides the next search. The triggering call
    /// comes first: it is the input the user asked about.
    fn parting(&self, best: &[usize], rival: &[usize]) -> Option<String> {
        let (a, b) = (best[0], rival[0]);
        let parted: Vec<(&Vec<Value>, &CallOutput, &CallOutput)> = self
            .spec
            .trigger
            .iter()
            .chain(&self.inputs)
            .filter_map(|args| {
                let (x, y) = (self.output(a, args)?, self.output(b, args)?);
                (x.key() != y.key()).then_some((args, x, y))
            })
            .collect();
        let &(args, x, y) = parted
            .iter()
            .find(|(_, x, y)| x.value().is_some() && y.value().is_some())
            .or_else(|| parted.first())?;
        let call = python_call(&self.spec.selector, args);
        let does = |o: &CallOutput| match o {
            CallOutput::Value(v) => format!("give {}", aura_cognition::python_literal(v)),
            CallOutput::Raised(t) => format!("raise {t}"),
        };
        let mut text = format!(
            "For {call}, {} sample(s) {} and {} {}",
            best.len(),
            does(x),
            rival.len(),
            does(y)
        );
        // Only a call the request's example reader reads back is worth suggesting;
        // the value is the user's to give, not either behaviour's to suggest.
        if args.iter().all(quotable) {
            text.push_str(&format!(
                "; add what it should give to the request (`{call} == …`) and I will learn it"
            ));
        }
        Some(text)
    }

    /// Why nothing passed, most common failure first: "no candidate passed the
    /// checks: 3 stopped by the guard [import-denied]: …; 1 without code".
    fn failure_summary(&self) -> String {
        let mut stages: Vec<(Stage, usize, &AttemptFailure)> = Vec::new();
        for f in self.samples().filter_map(|d| d.failure.as_ref()) {
            match stages.iter_mut().find(|(s, _, _)| *s == f.stage) {
                Some((_, n, _)) => *n += 1,
                None => stages.push((f.stage, 1, f)),
            }
        }
        stages.sort_by_key(|s| std::cmp::Reverse(s.1));
        let parts: Vec<String> = stages
            .iter()
            .map(|(stage, n, first)| {
                let rules = if first.rules.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", first.rules.join(", "))
                };
                let message: String = first.message.chars().take(240).collect();
                format!("{n} failed at {stage}{rules}: {message}")
            })
            .collect();
        if parts.is_empty() {
            return "no candidate was drawn".into();
        }
        // One value from the person is what most often turns such a refusal into a
        // learn (the everyday suite's `--answer`): ask for it, as a disagreement does.
        let ask = match self.settling_call() {
            Some(call) if self.spec.examples.is_empty() => {
                format!("; tell me what it should give (`{call} == …`) and I will learn it")
            }
            _ => String::new(),
        };
        format!("no candidate passed the checks: {}{ask}", parts.join("; "))
    }

    /// A call the person can answer to settle a refusal, written as they would: the
    /// triggering call, else a typical probe input (past the empty and one-element
    /// edge cases the probes start with).
    fn settling_call(&self) -> Option<String> {
        let args = self
            .spec
            .trigger
            .as_ref()
            .or_else(|| self.inputs.get(3).or(self.inputs.last()))?;
        args.iter()
            .all(quotable)
            .then(|| python_call(&self.spec.selector, args))
    }

    /// Why `drawn[index]` does nothing a request could ask for, judged on the inputs
    /// it answered (three or more): the same value for every one, or its input back
    /// unchanged (the argument, or all of them as a list) for every one, as in
    /// `return (a, b)`. Probe inputs vary enough that no request's answer looks
    /// like either.
    fn degenerate(&self, index: usize) -> Option<&'static str> {
        let answered: Vec<(&[Value], &Value)> = self
            .inputs
            .iter()
            .filter_map(|args| Some((args.as_slice(), self.output(index, args)?.value()?)))
            .collect();
        if answered.len() < 3 {
            return None;
        }
        let first = rounded(answered[0].1);
        if answered.iter().all(|(_, v)| rounded(v) == first) {
            return Some("returns the same value for every input");
        }
        let echoes = |(args, v): &(&[Value], &Value)| match args {
            [only] => only == *v,
            all => v.as_array().is_some_and(|v| v.as_slice() == *all),
        };
        answered
            .iter()
            .all(echoes)
            .then_some("returns its input unchanged for every input")
    }

    /// A few calls that show what `drawn[index]` does, for the person to check: first
    /// where other samples gave something else (where a wrong behaviour shows), then
    /// the last probe inputs (the richest). Only calls that returned a value other
    /// than their one argument, that the example reader reads back (so the person can
    /// answer with any of them), and none of the request's own examples (the person
    /// wrote those).
    pub(crate) fn showcase(&self, index: usize, max: usize) -> Vec<(Vec<Value>, CallOutput)> {
        let told: HashSet<String> = self
            .spec
            .examples
            .iter()
            .map(|e| input_key(&e.args))
            .collect();
        let disputed = |args: &[Value]| {
            let mine = self.output(index, args).map(CallOutput::key);
            (0..self.drawn.len()).any(|i| {
                i != index
                    && self.drawn[i].failure.is_none()
                    && self.output(i, args).is_some_and(|o| Some(o.key()) != mine)
            })
        };
        let (parted, agreed): (Vec<&Vec<Value>>, Vec<&Vec<Value>>) =
            self.inputs.iter().partition(|a| disputed(a));
        let parted = parted.into_iter().map(|a| (a, true));
        let agreed = agreed.into_iter().rev().map(|a| (a, false));
        parted
            .chain(agreed)
            .filter(|(a, _)| !told.contains(&input_key(a)) && a.iter().all(quotable))
            .filter_map(|(a, parted)| match self.output(index, a)? {
                // A value that echoes the only argument ("racecar" reversed) shows nothing.
                CallOutput::Value(v)
                    if quotable(v) && !matches!(a.as_slice(), [only] if only == v) =>
                {
                    Some((a.clone(), CallOutput::Value(v.clone())))
                }
                // A raise is worth showing where other samples returned: it may be the
                // mistake ("factorial(0) raises ValueError"). Where every sample raised
                // (a string given to a number's method) it is only noise.
                CallOutput::Raised(name) if parted => {
                    Some((a.clone(), CallOutput::Raised(name.clone())))
                }
                _ => None,
            })
            .take(max)
            .collect()
    }

    /// The tests committed with the winner: the request's examples, the models'
    /// examples it satisfies, and, when there are none, what the agreeing samples
    /// returned on a few inputs.
    pub(crate) fn tests_for(&self, index: usize, selector: &str) -> String {
        let mut asserts: Vec<(String, &Value, &[Value])> = Vec::new();
        for e in &self.spec.examples {
            asserts.push(("request".into(), &e.expected, &e.args));
        }
        for (e, _) in self.pooled_examples() {
            if matches!(self.output(index, &e.args), Some(CallOutput::Value(v)) if satisfies(v, &e.expected))
                && !asserts.iter().any(|(_, _, a)| *a == e.args.as_slice())
            {
                asserts.push(("model".into(), &e.expected, &e.args));
            }
        }
        if asserts.is_empty() {
            // The first three inputs it answers: inputs of another arity come first
            // when another sample brought them, and they only raise.
            let answered = self
                .inputs
                .iter()
                .filter_map(|args| match self.output(index, args) {
                    Some(CallOutput::Value(v)) => Some((args, v)),
                    _ => None,
                });
            for (args, v) in answered.take(3) {
                asserts.push(("agreed".into(), v, args));
            }
        }
        let mut tests = String::new();
        for (n, (origin, expected, args)) in asserts.iter().take(8).enumerate() {
            let call = format!("obj.{}", python_call(selector, args));
            let check = match expected {
                Value::Number(x) if x.is_f64() => format!(
                    "abs({call} - {0}) <= 1e-6 * max(1.0, abs({0}))",
                    aura_cognition::python_literal(expected)
                ),
                _ => format!("{call} == {}", aura_cognition::python_literal(expected)),
            };
            tests.push_str(&format!(
                "def test_{origin}_example_{}():\n    assert {check}\n\n",
                n + 1
            ));
        }
        tests
    }
}

fn call_text(args: &[Value]) -> String {
    format!("({})", aura_cognition::python_args(args))
}

/// A call written in Python, as people write examples and replies say them
/// (`fibonacci(10)`, `is_even(7)`).
pub(crate) fn python_call(selector: &str, args: &[Value]) -> String {
    format!("{selector}{}", call_text(args))
}

/// Whether `request_examples` reads `v` back as an argument, written as a Python
/// literal in `f(v) == …`: numbers, booleans, None, strings without double quotes, backslashes,
/// brackets or parentheses, integers of any size, and flat lists of those.
fn quotable(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        // Written in double quotes, as JSON writes them.
        Value::String(s) => !s.contains(['"', '\\', '(', ')', '[', ']', '\n']),
        Value::Array(items) => items.iter().all(|i| !i.is_array() && quotable(i)),
        Value::Object(_) => aura_cognition::big_int_digits(v).is_some(),
    }
}

fn describe(got: Option<&CallOutput>) -> String {
    match got {
        Some(CallOutput::Value(v)) => format!("returned {v}"),
        Some(CallOutput::Raised(t)) => format!("raised {t}"),
        None => "was not run".into(),
    }
}

/// Examples the request's own words give, in the forms people write them:
/// doctest lines (`>>> fibonacci(10)` then `55`), a call and its value
/// (`fibonacci(10) == 55`, `f(3, 4) returns 7`, `f("abc") -> "cba"`), and a value
/// for an argument (`fibonacci for 10 is 55`, `… of 5 should be 120`).
pub(crate) fn request_examples(guard: &Guard, text: &str, selector: &str) -> Vec<Example> {
    static CALL: OnceLock<Regex> = OnceLock::new();
    static FOR: OnceLock<Regex> = OnceLock::new();
    const LIT: &str = r#"(-?\d+(?:\.\d+)?|'[^']*'|"[^"]*"|\[[^\]]*\]|\([^)]*\)|True|False|None)"#;
    let verbs = || {
        let verbs: Vec<String> = EXAMPLE_VERBS.iter().map(|v| regex::escape(v)).collect();
        verbs.join("|")
    };
    let compile = |pattern: String| {
        Regex::new(&pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
    };
    let call = CALL.get_or_init(|| {
        compile(format!(
            r"(?i)\b([A-Za-z_]\w*\([^()]*\))\s*(?:{})\s*{LIT}",
            verbs()
        ))
    });
    let for_value = FOR.get_or_init(|| {
        compile(format!(
            r"(?i)\b(?:for|of|on|with|given)\s+{LIT}\s+(?:{})\s+{LIT}",
            verbs()
        ))
    });
    let names = [selector];
    let mut out: Vec<Example> = Vec::new();
    let mut add = |e: Option<Example>| {
        if let Some(e) = e.filter(|e| !out.contains(e)) {
            out.push(e);
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(expr) = line.trim().strip_prefix(">>>") {
            if let Some(result) = lines.get(i + 1) {
                add(guard.example(expr.trim(), result.trim(), &names));
            }
        }
    }
    for c in call.captures_iter(text) {
        add(guard.example(&c[1], &c[2], &names));
    }
    for c in for_value.captures_iter(text) {
        add(guard.example(&format!("{selector}({})", &c[1]), &c[2], &names));
    }
    out
}

impl Pool {
    /// A copy for checking one more candidate without recording it here.
    pub(crate) fn scratch(&self) -> Pool {
        Pool {
            spec: self.spec.clone(),
            inputs: self.inputs.clone(),
            keys: self.keys.clone(),
            arities: self.arities.clone(),
            drawn: Vec::new(),
        }
    }

    /// Records a drawn candidate; returns its index.
    pub(crate) fn push(
        &mut self,
        raw: MethodCandidate,
        normalized: Option<Normalized>,
        failure: Option<AttemptFailure>,
    ) -> usize {
        self.drawn.push(Drawn {
            raw,
            normalized,
            outputs: BTreeMap::new(),
            failure,
            timing: SampleTiming::default(),
            library: None,
        });
        self.drawn.len() - 1
    }

    /// Records a draw that produced no candidate at all.
    pub(crate) fn push_failed(&mut self, failure: AttemptFailure) -> usize {
        self.push(MethodCandidate::default(), None, Some(failure))
    }

    /// The model's samples, in draw order: every candidate but the standard library's.
    pub(crate) fn samples(&self) -> impl Iterator<Item = &Drawn> {
        self.drawn.iter().filter(|d| d.library.is_none())
    }

    /// Every failed sample's failure, in draw order (what the model is told it got
    /// wrong, and what a refusal reports).
    pub(crate) fn failures(&self) -> Vec<AttemptFailure> {
        self.samples().filter_map(|d| d.failure.clone()).collect()
    }

    /// Each candidate's verdict, asserts and results, and the request's examples, for
    /// the audit trail (and for replaying the judge offline).
    pub(crate) fn summary(&self) -> Value {
        let candidates: Vec<Value> = self
            .drawn
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let outputs: Vec<Value> = self
                    .inputs
                    .iter()
                    .filter_map(|a| {
                        d.outputs
                            .get(&input_key(a))
                            .map(|o| json!({ "args": a, "output": o }))
                    })
                    .collect();
                json!({
                    "index": i,
                    "written_as": d.normalized.as_ref().map(|n| n.written_as.clone()),
                    // The standard-library function it calls, when the library proposed it.
                    "library": d.library,
                    "source": d.normalized.as_ref().map(|n| n.source.clone()),
                    // What the model wrote, when it never became a method (the guard or
                    // the shape check refused it): people want to see what was refused.
                    "raw_source": d.normalized.is_none().then(|| d.raw.source.clone()),
                    "failure": d.failure,
                    "examples": d.normalized.as_ref().map(|n| &n.examples),
                    "outputs": outputs,
                    "timing": d.timing,
                })
            })
            .collect();
        json!({
            "inputs": self.inputs.len(),
            "request_examples": self.spec.examples,
            "candidates": candidates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(params: usize, examples: Vec<Example>) -> Normalized {
        Normalized {
            required: params,
            source: String::new(),
            written_as: "f".into(),
            was_plain: true,
            params: (0..params).map(|i| format!("p{i}")).collect(),
            examples,
            dropped: 0,
            cut_at_line: None,
        }
    }

    fn ex(args: Value, expected: Value) -> Example {
        Example {
            args: args.as_array().cloned().unwrap_or_default(),
            expected,
        }
    }

    /// Adds a sample that maps input i to `f(i)`.
    fn add(pool: &mut Pool, n: Normalized, f: impl Fn(&[Value]) -> CallOutput) {
        add_from(pool, None, n, f);
    }

    /// Adds a candidate that maps input i to `f(i)`: a sample, or the standard
    /// library's function `library`.
    fn add_from(
        pool: &mut Pool,
        library: Option<&str>,
        n: Normalized,
        f: impl Fn(&[Value]) -> CallOutput,
    ) {
        pool.grow_for(&n);
        pool.drawn.push(Drawn {
            raw: MethodCandidate::default(),
            normalized: Some(n),
            outputs: BTreeMap::new(),
            failure: None,
            timing: SampleTiming::default(),
            library: library.map(str::to_string),
        });
        let index = pool.drawn.len() - 1;
        for i in 0..pool.drawn.len() {
            let missing = pool.missing_inputs(i);
            let outs: Vec<CallOutput> = missing.iter().map(|a| f(a)).collect();
            for (a, o) in missing.iter().zip(outs) {
                pool.drawn[i].outputs.insert(input_key(a), o);
            }
        }
        pool.judge(index);
    }

    fn times(a: &[Value], k: i64) -> CallOutput {
        match a.first().and_then(Value::as_i64) {
            Some(x) => CallOutput::Value(json!(x * k)),
            None => CallOutput::Raised("TypeError".into()),
        }
    }

    fn double(a: &[Value]) -> CallOutput {
        times(a, 2)
    }

    fn triple(a: &[Value]) -> CallOutput {
        times(a, 3)
    }

    #[test]
    fn one_sample_without_examples_is_not_enough_but_two_that_agree_are() {
        let mut pool = Pool::new(Spec::default());
        add(&mut pool, normalized(1, vec![]), double);
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));
        add(&mut pool, normalized(1, vec![]), double);
        let Decision::Accept { selection, .. } = pool.decide(2) else {
            panic!("two agreeing samples should win");
        };
        assert_eq!(selection.agreeing, 2);
        assert!(pool
            .tests_for(0, "double")
            .contains("assert obj.double(0) == 0"));
    }

    #[test]
    fn an_answer_of_a_kind_the_request_rules_out_is_out() {
        let spec = Spec {
            hint: ValueKind::Str,
            answer: Some(AnswerKind::Count),
            selector: "count_letter".into(),
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        // `len(text) % 2 == 0`, twice: agreement alone would commit it.
        let even_length = |a: &[Value]| match a {
            [Value::String(s)] => CallOutput::Value(json!(s.len() % 2 == 0)),
            _ => CallOutput::Raised("TypeError".into()),
        };
        add(&mut pool, normalized(1, vec![]), even_length);
        add(&mut pool, normalized(1, vec![]), even_length);
        let failure = pool.drawn[0].failure.clone().expect("ruled out");
        assert_eq!(failure.stage, Stage::Probes);
        assert_eq!(
            failure.message,
            "count_letter(\"\") gave True, but a count is a number, never True, False or text"
        );
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));
        // A count may come as numbers in a list or dict; a raise is not an answer.
        let per_word = |a: &[Value]| match a {
            [Value::String(s)] if !s.is_empty() => CallOutput::Value(json!({"n": s.len()})),
            _ => CallOutput::Raised("ValueError".into()),
        };
        add(&mut pool, normalized(1, vec![]), per_word);
        assert!(
            pool.drawn[2].failure.is_none(),
            "{:?}",
            pool.drawn[2].failure
        );
    }

    #[test]
    fn the_showcase_leads_with_where_samples_part_and_skips_what_the_person_told() {
        let spec = Spec {
            examples: vec![ex(json!([12]), json!(24))],
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        add(&mut pool, normalized(1, vec![]), double);
        add(&mut pool, normalized(1, vec![]), double);
        // A rival that parts from doubling at 3 only.
        add(&mut pool, normalized(1, vec![]), |a| {
            match a.first().and_then(Value::as_i64) {
                Some(3) => CallOutput::Value(json!(7)),
                _ => double(a),
            }
        });
        let shown = pool.showcase(0, 3);
        assert_eq!(
            shown[0],
            (vec![json!(3)], CallOutput::Value(json!(6))),
            "{shown:?}"
        );
        assert_eq!(shown.len(), 3);
        assert!(shown.iter().all(|(args, _)| args != &vec![json!(12)]));
        // After the parting call, the last probe inputs come first.
        let last = pool.inputs.last().cloned().unwrap_or_default();
        assert_eq!(shown[1].0, last);
    }

    #[test]
    fn the_showcase_shows_a_raise_only_where_another_sample_returned() {
        // Both refuse a number over 20; the shown sample refuses 0 as well, where its
        // rival returns 0.
        let natural = |a: &[Value]| match a.first().and_then(Value::as_i64) {
            Some(x) if x > 20 => CallOutput::Raised("OverflowError".into()),
            _ => double(a),
        };
        let mut pool = Pool::new(Spec::default());
        add(&mut pool, normalized(1, vec![]), move |a| {
            match a.first().and_then(Value::as_i64) {
                Some(0) => CallOutput::Raised("ValueError".into()),
                _ => natural(a),
            }
        });
        add(&mut pool, normalized(1, vec![]), natural);
        assert!(
            pool.inputs.iter().any(|a| a[0].as_i64() > Some(20)),
            "the probes hold a number both raise on"
        );
        let shown = pool.showcase(0, pool.inputs.len());
        assert_eq!(
            shown[0],
            (vec![json!(0)], CallOutput::Raised("ValueError".into())),
            "{shown:?}"
        );
        assert!(
            shown[1..]
                .iter()
                .all(|(_, o)| matches!(o, CallOutput::Value(_))),
            "a raise every sample shares is not shown: {shown:?}"
        );
    }

    #[test]
    fn a_refusal_with_no_passing_candidate_asks_for_one_value() {
        let spec = Spec {
            selector: "factorial".into(),
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        for _ in 0..2 {
            add(&mut pool, normalized(1, vec![]), |_| {
                CallOutput::Raised("RecursionError".into())
            });
        }
        let Decision::Undecided(why) = pool.decide(2) else {
            panic!("nothing passed");
        };
        assert!(
            why.starts_with("no candidate passed the checks: 2 failed at probes")
                && why.ends_with(
                    "; tell me what it should give (`factorial(3) == …`) and I will learn it"
                ),
            "{why}"
        );
        // A request that gave its example already is not asked again.
        pool.spec.examples = vec![ex(json!([4]), json!(24))];
        let Decision::Undecided(why) = pool.decide(2) else {
            panic!("nothing passed");
        };
        assert!(!why.contains("tell me"), "{why}");
    }

    #[test]
    fn own_examples_do_not_vote_but_another_samples_do() {
        let mut pool = Pool::new(Spec::default());
        let own = || normalized(1, vec![ex(json!([21]), json!(42))]);
        add(&mut pool, own(), double);
        assert!(
            matches!(pool.decide(2), Decision::Undecided(_)),
            "a sample's own assert is no independent evidence"
        );
        let Decision::Accept { selection, .. } = pool.decide(1) else {
            panic!("at agreement 1 a sample that passes its own asserts wins");
        };
        assert_eq!(selection.support, 0);
        assert!(pool.tests_for(0, "double").contains("obj.double(21) == 42"));
        // Another behaviour, whose sample asserts double(2) == 4: an independent
        // example the first satisfies (and the second's own one does not count).
        let other = normalized(1, vec![ex(json!([2]), json!(4))]);
        add(&mut pool, other, |a: &[Value]| {
            match a.first().and_then(Value::as_i64) {
                Some(2) => CallOutput::Value(json!(4)),
                _ => CallOutput::Value(json!(-1)),
            }
        });
        // Score 2 (itself and that example) against the rival's 1: a lead of one.
        let Decision::Accept { selection, .. } = pool.decide(1) else {
            panic!("the other sample's example supports the first");
        };
        assert_eq!((selection.agreeing, selection.support), (1, 1));
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));
    }

    #[test]
    fn the_library_confirms_a_sample_but_never_wins_or_blocks_alone() {
        let mut pool = Pool::new(Spec::default());
        add_from(
            &mut pool,
            Some("math.double"),
            normalized(1, vec![]),
            double,
        );
        // Alone it is no evidence: the request's words may have found it by chance.
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));
        add(&mut pool, normalized(1, vec![]), triple);
        add(&mut pool, normalized(1, vec![]), triple);
        // Nor does it stand in the way of two samples that agree on something else.
        let Decision::Accept { index, .. } = pool.decide(2) else {
            panic!("two agreeing samples lead a function no sample shows");
        };
        assert_eq!(index, 1);
        // One sample that behaves like it outvotes the pair (1 + 3 against 2), and the
        // library's own code is what is committed.
        add(&mut pool, normalized(1, vec![]), double);
        let Decision::Accept {
            index,
            selection,
            rivals,
        } = pool.decide(2)
        else {
            panic!("a sample the library confirms leads the pair by 2");
        };
        assert_eq!((index, selection.agreeing), (0, 2));
        // An independent witness spoke: the model's reading has nothing to add.
        assert!(rivals.is_empty(), "{rivals:?}");
        assert!(
            selection.reason.contains("calls math.double"),
            "{}",
            selection.reason
        );
        assert!(
            selection.reason.contains("score 4, next best 2"),
            "{}",
            selection.reason
        );
    }

    #[test]
    fn the_reading_weighs_a_vote_against_the_strongest_rival_and_unconfirmed_functions() {
        let mut pool = Pool::new(Spec::default());
        add(&mut pool, normalized(1, vec![]), double);
        add_from(
            &mut pool,
            Some("math.quintuple"),
            normalized(1, vec![]),
            |a| times(a, 5),
        );
        for _ in 0..3 {
            add(&mut pool, normalized(1, vec![]), triple);
        }
        let Decision::Accept { index, rivals, .. } = pool.decide(2) else {
            panic!("three agreeing samples lead one by 2");
        };
        assert_eq!(index, 2);
        // The lone sample that doubles, and the function no sample agrees with.
        assert_eq!(rivals, [0, 1]);
        let partings = pool.partings(index, 0, 2);
        assert_eq!(partings.len(), 2);
        // The largest inputs first: they show what a behaviour means.
        let first = &partings[0];
        let x = first.args[0].as_i64().unwrap();
        assert_eq!(
            (first.ours.clone(), first.theirs.clone()),
            (json!(3 * x), json!(2 * x))
        );
        assert!(input_key(&partings[0].args).len() >= input_key(&partings[1].args).len());
    }

    #[test]
    fn a_library_function_that_answers_every_probe_alike_is_out() {
        let mut pool = Pool::new(Spec::default());
        add_from(&mut pool, Some("math.isinf"), normalized(1, vec![]), |_| {
            CallOutput::Value(json!(false))
        });
        let failure = pool.drawn[0]
            .failure
            .clone()
            .expect("a degenerate proposal fails");
        assert_eq!(failure.stage, Stage::Probes);
        assert!(
            failure.message.contains("calls math.isinf"),
            "{}",
            failure.message
        );
        // It is the search's proposal, not an attempt of the model's.
        assert!(pool.failures().is_empty());
        assert_eq!(pool.samples().count(), 0);
    }

    #[test]
    fn a_pair_beside_a_rival_is_not_enough_but_a_lead_of_two_is() {
        let mut pool = Pool::new(Spec::default());
        add(&mut pool, normalized(1, vec![]), double);
        add(&mut pool, normalized(1, vec![]), triple);
        add(&mut pool, normalized(1, vec![]), double);
        let Decision::Undecided(why) = pool.decide(2) else {
            panic!("two votes against one lead by one, and two are needed");
        };
        assert!(why.contains("scores 2 and the next 1"), "{why}");
        add(&mut pool, normalized(1, vec![]), double);
        let Decision::Accept {
            index, selection, ..
        } = pool.decide(2)
        else {
            panic!("three votes against one lead by two");
        };
        assert_eq!((index, selection.agreeing), (0, 3));
        assert_eq!(selection.clusters, vec![3, 1]);
    }

    #[test]
    fn a_disagreement_names_the_call_where_the_samples_part_and_how_to_settle_it() {
        let spec = Spec {
            trigger: Some(vec![json!(10)]),
            selector: "scale".into(),
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        add(&mut pool, normalized(1, vec![]), double);
        add(&mut pool, normalized(1, vec![]), triple);
        add(&mut pool, normalized(1, vec![]), double);
        let Decision::Undecided(why) = pool.decide(2) else {
            panic!("two votes against one lead by one");
        };
        assert!(
            why.contains("For scale(10), 2 sample(s) give 20 and 1 give 30"),
            "the triggering call is where the user looks first: {why}"
        );
        let (_, hint) = why.split_once("request (`").expect("a way to settle it");
        let call = hint.split(" == …`").next().unwrap_or_default();
        assert_eq!(call, "scale(10)", "{why}");
        let answer = format!("teach yourself to scale a number, where {call} == 20");
        let read = request_examples(&Guard::default(), &answer, "scale");
        assert_eq!(read, vec![ex(json!([10]), json!(20))], "{answer}");
    }

    #[test]
    fn only_arguments_the_example_reader_reads_back_are_suggested() {
        let g = Guard::default();
        for v in [
            json!(3),
            json!(-2.5),
            json!(true),
            json!(null),
            json!("olleh"),
            json!("it's"),
            json!([1, 2, 3]),
            json!(["a", "b"]),
            json!({"$int": "15511210043330985984000000"}),
            json!([1, {"$int": "-18446744073709551616"}]),
        ] {
            let text = format!("f({}) == 1", aura_cognition::python_literal(&v));
            let read = request_examples(&g, &text, "f");
            assert!(quotable(&v), "{text}");
            assert_eq!(read, vec![ex(json!([v]), json!(1))], "{text}");
        }
        for v in [
            json!("say \"hi\""),
            json!("f(x)"),
            json!([[1], [2]]),
            json!({"a": 1}),
            json!([{"a": 1}]),
        ] {
            assert!(!quotable(&v), "{v}");
        }
    }

    #[test]
    fn a_number_that_may_be_fractional_is_probed_with_whole_numbers_too() {
        let samples = ValueKind::Float.samples();
        assert!(samples.iter().any(Value::is_f64));
        assert!(samples.iter().any(Value::is_i64));
    }

    #[test]
    fn a_request_example_is_a_hard_check() {
        let spec = Spec {
            examples: vec![ex(json!([10]), json!(55))],
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        add(&mut pool, normalized(1, vec![]), |a| {
            match a.first().and_then(Value::as_i64) {
                Some(10) => CallOutput::Value(json!(55)),
                _ => double(a),
            }
        });
        add(&mut pool, normalized(1, vec![]), triple);
        // The user's own example decided: no vote for the reading to weigh.
        let Decision::Accept {
            index: 0, rivals, ..
        } = pool.decide(2)
        else {
            panic!("the candidate that gives 55 for 10 wins");
        };
        assert!(rivals.is_empty());
        let mut pool = Pool::new(pool.spec.clone());
        add(&mut pool, normalized(1, vec![]), double);
        let failure = pool.drawn[0].failure.clone().expect("20 is not 55");
        assert_eq!(failure.stage, Stage::Examples);
        assert!(
            failure
                .message
                .contains("should give 55, but it returned 20"),
            "{failure:?}"
        );
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));
    }

    #[test]
    fn constant_answers_and_ties_do_not_win() {
        let mut pool = Pool::new(Spec::default());
        let constant = |_: &[Value]| CallOutput::Value(json!(0));
        add(&mut pool, normalized(1, vec![]), constant);
        add(&mut pool, normalized(1, vec![]), constant);
        assert!(matches!(pool.decide(2), Decision::Undecided(m) if m.contains("same value")));
    }

    #[test]
    fn answers_that_echo_the_input_do_not_win() {
        // `return (a, b)` for a two-argument request, agreed on by two samples.
        let mut pool = Pool::new(Spec::default());
        let pair = |a: &[Value]| CallOutput::Value(Value::Array(a.to_vec()));
        add(&mut pool, normalized(2, vec![]), pair);
        add(&mut pool, normalized(2, vec![]), pair);
        assert!(matches!(pool.decide(2), Decision::Undecided(m) if m.contains("input unchanged")));
        // One argument back as it came.
        let mut pool = Pool::new(Spec::default());
        let same = |a: &[Value]| CallOutput::Value(a[0].clone());
        add(&mut pool, normalized(1, vec![]), same);
        add(&mut pool, normalized(1, vec![]), same);
        assert!(matches!(pool.decide(2), Decision::Undecided(m) if m.contains("input unchanged")));
        // An answer that equals its input on some inputs only is no echo.
        let mut pool = Pool::new(Spec::default());
        let square = |a: &[Value]| CallOutput::Value(json!(a[0].as_i64().unwrap_or(0).pow(2)));
        add(&mut pool, normalized(1, vec![]), square);
        add(&mut pool, normalized(1, vec![]), square);
        assert!(matches!(pool.decide(2), Decision::Accept { .. }));
    }

    #[test]
    fn a_relation_between_two_arguments_is_probed_with_related_pairs() {
        // Two strings that are anagrams of each other: on unrelated pairs alone such a
        // test answers false every time and would look constant.
        let spec = Spec {
            hint: ValueKind::Str,
            ..Spec::default()
        };
        let mut pool = Pool::new(spec);
        let anagrams = |a: &[Value]| {
            let sorted = |v: &Value| {
                let mut c: Vec<char> = v.as_str().unwrap_or_default().chars().collect();
                c.sort_unstable();
                c
            };
            CallOutput::Value(json!(sorted(&a[0]) == sorted(&a[1])))
        };
        add(&mut pool, normalized(2, vec![]), anagrams);
        add(&mut pool, normalized(2, vec![]), anagrams);
        assert!(pool.inputs.iter().any(|a| a[0] == a[1]));
        assert!(pool
            .inputs
            .iter()
            .any(|a| a[0] != a[1] && reversed(&a[0]).as_ref() == Some(&a[1])));
        assert!(matches!(pool.decide(2), Decision::Accept { .. }));
    }

    #[test]
    fn probes_call_with_the_required_arguments_only() {
        let mut pool = Pool::new(Spec::default());
        let mut n = normalized(2, vec![]);
        n.required = 1;
        pool.grow_for(&n);
        assert!(!pool.inputs.is_empty());
        assert!(
            pool.inputs.iter().all(|a| a.len() == 1),
            "{:?}",
            pool.inputs
        );
    }

    #[test]
    fn code_that_stops_on_its_own_bug_for_most_inputs_is_out_however_many_agree() {
        let mut pool = Pool::new(Spec {
            selector: "count".into(),
            ..Spec::default()
        });
        pool.grow_for(&normalized(1, vec![]));
        let first = pool.inputs[0].clone();
        // `count("") == 0`, and every other input hits `AttributeError`.
        let slips_past = |a: &[Value]| {
            if a == first.as_slice() {
                CallOutput::Value(json!(0))
            } else {
                CallOutput::Raised("AttributeError".into())
            }
        };
        for _ in 0..3 {
            add(&mut pool, normalized(1, vec![]), slips_past);
        }
        for d in &pool.drawn {
            let failure = d
                .failure
                .as_ref()
                .map(|f| (f.stage.as_str(), f.message.as_str()));
            let Some(("probes", message)) = failure else {
                panic!("the bug should rule it out: {failure:?}");
            };
            assert!(message.contains("bug of its own"), "{message}");
            assert!(message.contains("raised AttributeError"), "{message}");
        }
        assert!(matches!(pool.decide(2), Decision::Undecided(_)));

        // Rejecting most inputs on purpose is a behaviour like any other.
        let mut pool = Pool::new(Spec::default());
        let rejects = |a: &[Value]| {
            if a == first.as_slice() {
                CallOutput::Value(json!(0))
            } else {
                CallOutput::Raised("ValueError".into())
            }
        };
        add(&mut pool, normalized(1, vec![]), rejects);
        assert_eq!(pool.drawn[0].failure, None);
    }

    #[test]
    fn candidates_that_contradict_their_own_asserts_are_out() {
        let mut pool = Pool::new(Spec::default());
        add(
            &mut pool,
            normalized(1, vec![ex(json!([2]), json!(5))]),
            double,
        );
        assert_eq!(
            pool.drawn[0].failure.as_ref().map(|f| f.stage.as_str()),
            Some("own tests")
        );
    }

    #[test]
    fn requests_carry_examples_in_the_forms_people_write() {
        let g = Guard::default();
        let found = request_examples(
            &g,
            "calculate fibonacci; fibonacci for 10 is 55 and fibonacci(1) == 1.\n>>> fibonacci(0)\n0\n",
            "fibonacci",
        );
        assert_eq!(
            found,
            vec![
                ex(json!([0]), json!(0)),
                ex(json!([1]), json!(1)),
                ex(json!([10]), json!(55)),
            ]
        );
        let words = request_examples(
            &g,
            "reverse a string: reverse_string('abc') returns 'cba'",
            "reverse_string",
        );
        assert_eq!(words, vec![ex(json!(["abc"]), json!("cba"))]);
        // The value-for-an-argument form takes the same verbs as the call form.
        let given = request_examples(&g, "the factorial of 5 should give 120", "factorial");
        assert_eq!(given, vec![ex(json!([5]), json!(120))]);
        assert!(request_examples(&g, "count the vowels in a string", "count_vowels").is_empty());
    }

    #[test]
    fn value_kinds_come_from_words_and_samples() {
        assert_eq!(
            ValueKind::from_words("count the vowels in a string"),
            ValueKind::Str
        );
        assert_eq!(
            ValueKind::from_words("sort a list of numbers"),
            ValueKind::List
        );
        assert_eq!(
            ValueKind::from_words("calculate the factorial"),
            ValueKind::Int
        );
        let two = generated_inputs(2, &[vec![json!("x"), json!(1)]], ValueKind::Int);
        assert!(two.iter().all(|a| a[0].is_string() && a[1].is_i64()));
        assert!(satisfies(&json!(0.30000000000000004), &json!(0.3)));
        assert!(satisfies(&json!(2), &json!(2.0)));
    }
}
