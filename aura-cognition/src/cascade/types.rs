//! The cascade's inputs and outputs: the mandate, the candidate, evidence and the
//! two caller-supplied ports ([`Grounding`], [`CandidateCheck`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;

/// A method the object already has: its name and its doc line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownMethod {
    /// The selector.
    pub name: String,
    /// Its one-line doc.
    pub doc: String,
}

/// A creative mandate: the message an object did not understand, to be learned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LearnMandate {
    /// The selector to learn (a Python identifier).
    pub selector: String,
    /// The arguments of the message that failed (a JSON array).
    pub args: Value,
    /// What the user asked for, in their words.
    pub request_text: String,
    /// The receiving object's name.
    pub object_name: String,
    /// The object's slots (a JSON object).
    pub slots: Value,
    /// Methods the object already understands.
    pub known_methods: Vec<KnownMethod>,
    /// Guard messages and test failures from earlier attempts of this learn cycle.
    pub feedback: Vec<String>,
}

impl LearnMandate {
    /// A mandate for `selector` on `object_name` with `args`, empty otherwise.
    pub fn new(object_name: impl Into<String>, selector: impl Into<String>, args: Value) -> Self {
        Self {
            selector: selector.into(),
            args,
            object_name: object_name.into(),
            slots: Value::Object(serde_json::Map::new()),
            ..Self::default()
        }
    }

    /// Sets the user's request text.
    pub fn with_request(mut self, text: impl Into<String>) -> Self {
        self.request_text = text.into();
        self
    }

    /// Adds one feedback line from an earlier attempt.
    pub fn with_feedback(mut self, line: impl Into<String>) -> Self {
        self.feedback.push(line.into());
        self
    }

    /// The example call `obj.selector(arg, …)` in Python syntax.
    pub fn example_call(&self) -> String {
        let args = match &self.args {
            Value::Array(items) => python_args(items),
            Value::Null => String::new(),
            other => python_literal(other),
        };
        format!("obj.{}({args})", self.selector)
    }
}

/// A call's arguments written as Python literals, comma-separated (`10, "abc"`): what
/// goes between the parentheses of `f(…)` in prompts, refusals and examples.
pub fn python_args(args: &[Value]) -> String {
    args.iter()
        .map(python_literal)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key of the one-entry object that carries an integer beyond `i64`/`u64` across
/// JSON: `{"$int": "354224848179261915075"}`. JSON numbers here keep 64 bits, so the
/// sandbox writes Python's bigger integers this way and reads them back as ints, and
/// aura-guard writes a literal in an example the same way.
pub const BIG_INT_KEY: &str = "$int";

/// The decimal digits (with a leading `-` when negative) of an integer beyond 64 bits
/// carried as `{"$int": "…"}`, or `None` for any other value.
pub fn big_int_digits(v: &Value) -> Option<&str> {
    let Value::Object(map) = v else { return None };
    let digits = match (map.len(), map.get(BIG_INT_KEY)) {
        (1, Some(Value::String(digits))) => digits.as_str(),
        _ => return None,
    };
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    (!unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A JSON value written as a Python literal (for prompts and generated tests).
pub fn python_literal(v: &Value) -> String {
    if let Some(digits) = big_int_digits(v) {
        return digits.to_owned();
    }
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(python_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// A method written by the cascade, with its tests.
///
/// `tests` holds Python `def test_*():` functions that call the method as
/// `obj.<selector>(...)`, where `obj` is a module-level instance the sandbox provides
/// (see [`crate::TEST_CONVENTION`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodCandidate {
    /// The method's Python source: `def <selector>(self, ...):`.
    pub source: String,
    /// The tests' Python source.
    pub tests: String,
    /// A one-line doc.
    pub doc: String,
    /// Why it is written this way.
    pub rationale: String,
}

impl MethodCandidate {
    /// The JSON Schema personas answer with.
    pub fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "source": {"type": "string"},
                "tests": {"type": "string"},
                "doc": {"type": "string"},
                "rationale": {"type": "string"}
            },
            "required": ["source", "tests", "doc", "rationale"],
            "additionalProperties": false
        })
    }

    /// Reads a candidate from a model's JSON (`source`, `tests`, `doc`, `rationale`).
    ///
    /// `tests` may also come as an array of strings (joined with blank lines). The
    /// source is not checked here: the learn cycle normalises whatever function it
    /// holds with the guard's parser and says why when it cannot.
    pub fn from_json(value: &Value) -> std::result::Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| "the reply must be a JSON object".to_string())?;
        let text = |key: &str| -> std::result::Result<String, String> {
            match obj.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Array(items)) => Ok(items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n\n")),
                Some(Value::Null) | None => Ok(String::new()),
                Some(_) => Err(format!("\"{key}\" must be a string")),
            }
        };
        let candidate = Self {
            source: text("source")?,
            tests: text("tests")?,
            doc: text("doc")?,
            rationale: text("rationale")?,
        };
        if candidate.source.trim().is_empty() {
            return Err("\"source\" is missing or empty".into());
        }
        Ok(candidate)
    }

    /// Reads a candidate from a reply in either shape a model naturally writes: Python
    /// in code fences (the first block that defines a function is the source; blocks
    /// that only test go to `tests`), bare Python starting at a `def`/`import`, or a
    /// JSON object as [`MethodCandidate::from_json`] reads it.
    pub fn from_reply(text: &str) -> std::result::Result<Self, String> {
        let blocks = code_blocks(text);
        let trimmed = text.trim_start();
        if blocks.is_empty() && trimmed.starts_with('{') {
            if let Ok(v) = super::repair::loose_json(None, text) {
                return Self::from_json(&v);
            }
        }
        let blocks = if blocks.is_empty() {
            bare_code(text).into_iter().collect()
        } else {
            blocks
        };
        let defines = |b: &str| b.lines().any(|l| l.trim_start().starts_with("def "));
        let Some(main) = blocks.iter().position(|b| defines(b) && !only_tests(b)) else {
            return Err(if blocks.is_empty() {
                "the reply holds no Python code: reply with one ```python code block".into()
            } else {
                "the reply's code defines no function".into()
            });
        };
        let tests: Vec<&str> = blocks
            .iter()
            .enumerate()
            .filter(|(i, b)| *i != main && (b.contains("assert") || b.contains("def test")))
            .map(|(_, b)| b.as_str())
            .collect();
        let doc = text[..text.find("```").unwrap_or(0)]
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        Ok(Self {
            source: blocks[main].clone(),
            tests: tests.join("\n\n"),
            doc: doc.chars().take(200).collect(),
            rationale: String::new(),
        })
    }
}

/// Whether a block holds only tests (every function is a `test_*`).
fn only_tests(block: &str) -> bool {
    block
        .lines()
        .filter(|l| l.starts_with("def "))
        .all(|l| l.starts_with("def test"))
}

/// The contents of the Markdown code fences in `text` (an unclosed last fence, as a
/// reply cut off at its token limit leaves, counts up to the end).
pub fn code_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(String::new()),
            (Some(block), true) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {}
        }
    }
    if let Some(block) = current.filter(|b| !b.trim().is_empty()) {
        blocks.push(block);
    }
    blocks.retain(|b| !b.trim().is_empty());
    blocks
}

/// Unfenced code: from the first line that starts a definition or an import.
fn bare_code(text: &str) -> Option<String> {
    let starts = ["def ", "import ", "from "];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if starts.iter().any(|s| line.starts_with(s)) {
            return Some(text[offset..].to_string());
        }
        offset += line.len();
    }
    None
}

/// One draw of a sample-and-verify search: the seed and temperature the candidate
/// writers sample with (their configured options otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// The sampler's seed: distinct draws get distinct seeds.
    pub seed: u64,
    /// The sampling temperature (0 is greedy).
    pub temperature: f32,
    /// The draw's position in its search (0 first): it varies the exemplars shown.
    #[serde(default)]
    pub draw: u32,
}

/// How a sample-and-verify search chose the committed candidate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Candidates drawn.
    pub drawn: usize,
    /// Candidates that passed every hard check (guard, examples, the call).
    pub eligible: usize,
    /// The sizes of the agreement clusters among the eligible, largest first.
    pub clusters: Vec<usize>,
    /// The chosen candidate's index among those drawn.
    pub winner: usize,
    /// Candidates that behaved exactly like the winner on every probe input.
    pub agreeing: usize,
    /// Examples written by the models (any candidate's asserts) the winner satisfies.
    pub support: usize,
    /// Such examples it contradicts.
    pub against: usize,
    /// Examples from the request itself it satisfies (all of them, or it would not win).
    pub request_examples: usize,
    /// Probe inputs every candidate ran on.
    pub probes: usize,
    /// Why this candidate, in words.
    pub reason: String,
    /// How much likelier the model finds the winner's answers than the strongest
    /// rival's where the two part (summed log-probabilities of asserts stating each
    /// answer): `None` when nothing needed weighing (no rival, an example in the
    /// request, a standard-library function among the winners) or the model cannot
    /// score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<f64>,
}

/// One piece of grounding evidence from the memory graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The memory node's id (used to avoid repeating evidence).
    pub id: String,
    /// Its text.
    pub text: String,
    /// Where it came from (`"fts"`, `"neighbour:<id>"`, a method name, …).
    pub source: String,
    /// Relevance, higher is better, when the backend has one.
    pub score: Option<f64>,
}

/// Retrieval against the memory graph (aura-core wires it to the store's full-text
/// search and graph neighbours).
///
/// `query` is a short list of lower-case keywords separated by spaces (the selector
/// first); implementations should match any of them (OR), best first.
#[async_trait]
pub trait Grounding: Send + Sync + fmt::Debug {
    /// Up to `limit` pieces of evidence for `query`.
    async fn ground(&self, query: &str, limit: usize) -> Result<Vec<Evidence>>;
}

/// A grounding port shared across tasks.
pub type DynGrounding = Arc<dyn Grounding>;

/// Grounding that never finds anything (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGrounding;

#[async_trait]
impl Grounding for NoGrounding {
    async fn ground(&self, _query: &str, _limit: usize) -> Result<Vec<Evidence>> {
        Ok(Vec::new())
    }
}

/// The outcome of checking a candidate (for example: guard + sandbox tests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum CheckVerdict {
    /// The candidate passes its tests.
    Passed,
    /// It does not; the reason is shown to the next personas.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// A caller-supplied check that lets the cascade stop early when ROBIN's draft
/// already passes (switch it off by not supplying one).
#[async_trait]
pub trait CandidateCheck: Send + Sync + fmt::Debug {
    /// Checks a candidate.
    async fn check(&self, candidate: &MethodCandidate) -> CheckVerdict;
}

/// A candidate check shared across tasks.
pub type DynCandidateCheck = Arc<dyn CandidateCheck>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_integer_beyond_64_bits_is_written_as_its_digits() {
        let fib_100 = json!({"$int": "354224848179261915075"});
        assert_eq!(big_int_digits(&fib_100), Some("354224848179261915075"));
        assert_eq!(python_literal(&fib_100), "354224848179261915075");
        assert_eq!(
            python_literal(&json!([1, {"$int": "-18446744073709551617"}])),
            "[1, -18446744073709551617]"
        );
        assert_eq!(
            python_args(&[json!(2), fib_100]),
            "2, 354224848179261915075"
        );
    }

    #[test]
    fn only_the_exact_one_entry_shape_is_an_integer() {
        for v in [
            json!({"$int": "12", "other": 1}),
            json!({"$int": 12}),
            json!({"$int": "1e5"}),
            json!({"$int": ""}),
            json!({"$int": "-"}),
            json!({"int": "12"}),
        ] {
            assert_eq!(big_int_digits(&v), None, "{v}");
        }
        assert_eq!(python_literal(&json!({"$int": "x"})), r#"{"$int": "x"}"#);
    }
}
