//! The standard library as a source of candidates beside the model.
//!
//! A small model's samples share its misconceptions (the least common multiple as
//! `a * b`, a product as a sum of squares), and a vote among them cannot tell. The
//! standard library's functions are written and documented by other people: when one's
//! documentation matches the request ("compute the median of a list of numbers" and
//! `statistics.median`, "Return the median (middle value) of numeric data."), a method
//! that calls it is a candidate whose mistakes are not the model's. The search checks
//! it like any sample (the guard, the sandbox, the request's examples, the answer's
//! kind) and counts it as [`LIBRARY_VOTES`] votes.
//!
//! The catalogue (`data/library.json`) is generated from the sandbox's interpreter by
//! `data/gen_library.py`: the builtins that compute a value, the methods of `str`, and
//! `math`, `statistics` and `string`, each with the parameters a call must pass and
//! the first sentence of its documentation. Nothing in it names a request.

use std::sync::OnceLock;

use bm25::{Language, SearchEngine, SearchEngineBuilder};
use serde::Deserialize;

/// Votes a standard-library function adds to a behaviour a sample shows too: with
/// them one sample and the library outvote two samples that agree on something else.
/// The library is an independent witness; two samples of one model often share a
/// mistake.
pub(crate) const LIBRARY_VOTES: usize = 3;

/// Functions proposed per request at most: the best matches are often siblings
/// (`statistics.median_high`, `median_low`, `median`), and the probes tell them apart.
const PROPOSALS: usize = 3;

/// How close to the best match's score another match must be to be proposed too:
/// siblings match alike (0.96 of the best for `median`), while a clearly weaker match
/// is a different reading of the words ("capitalize the first letter of every word"
/// finds `string.capwords`, then `str.capitalize` at 0.79, which capitalizes only the
/// first word, and a sample that made the same mistake confirmed it).
const NEAR_BEST: f32 = 0.9;

/// The least BM25 score a match needs: below it a request shares one common word with
/// a docstring, and running the function is not worth a sandbox call.
const FLOOR: f32 = 4.0;

const CATALOGUE: &str = include_str!("../data/library.json");

/// Words every request uses and many docstrings repeat ("Return the number of …"):
/// they say how a request is phrased, not what it asks for.
const PHRASING: &[&str] = &[
    "teach",
    "yourself",
    "learn",
    "number",
    "numbers",
    "list",
    "lists",
    "string",
    "strings",
    "value",
    "values",
    "given",
    "return",
    "returns",
    "check",
    "whether",
    "compute",
    "calculate",
    "find",
    "get",
    "convert",
    "make",
    "two",
    "every",
    "each",
    "all",
];

#[derive(Default, Deserialize)]
struct Catalogue {
    functions: Vec<Function>,
}

/// How a method calls the function.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Call {
    /// `len(obj)`.
    Builtin,
    /// `text.upper()`: a method of the first argument.
    Method,
    /// `math.gcd(a, b)`: a module's function, imported.
    Function,
}

/// One standard-library function.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Function {
    /// Its qualified name: `sum`, `str.upper`, `math.gcd`.
    pub name: String,
    call: Call,
    /// The parameters a call must pass (for a `str` method, the string first).
    params: Vec<String>,
    /// The first sentence of its documentation.
    pub doc: String,
}

impl Function {
    /// Its name without the module or type: `gcd`, `upper`, `sum`.
    fn short_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// A method named `selector` that returns what the function returns.
    pub(crate) fn method_source(&self, selector: &str) -> String {
        let short = self.short_name();
        let (import, call) = match self.call {
            Call::Builtin => (
                String::new(),
                format!("{short}({})", self.params.join(", ")),
            ),
            Call::Method => (
                String::new(),
                format!(
                    "{}.{short}({})",
                    self.params[0],
                    self.params[1..].join(", ")
                ),
            ),
            Call::Function => {
                let module = self.name.split('.').next().unwrap_or_default();
                (
                    format!("import {module}\n\n"),
                    format!("{}({})", self.name, self.params.join(", ")),
                )
            }
        };
        format!(
            "{import}def {selector}(self, {}):\n    return {call}\n",
            self.params.join(", ")
        )
    }
}

/// The catalogue and its index.
pub(crate) struct Library {
    functions: Vec<Function>,
    index: SearchEngine<u32>,
}

impl Library {
    /// The catalogue built into this crate, indexed once.
    pub(crate) fn get() -> &'static Library {
        static LIBRARY: OnceLock<Library> = OnceLock::new();
        LIBRARY.get_or_init(|| {
            // Generated and tested (`the_catalogue_parses_…`): an unreadable catalogue is
            // a build defect, and the search then proposes nothing rather than stopping.
            let catalogue: Catalogue = serde_json::from_str(CATALOGUE).unwrap_or_else(|e| {
                tracing::error!(target: "Orchestrator", "data/library.json: {e}");
                Catalogue::default()
            });
            Library::new(catalogue.functions)
        })
    }

    fn new(functions: Vec<Function>) -> Library {
        // A function is found by its name's words as well as its documentation's:
        // `median`, `factorial`, `swapcase` say what they do.
        let documents = functions
            .iter()
            .map(|f| format!("{} {}", f.short_name().replace('_', " "), f.doc));
        let index = SearchEngineBuilder::<u32>::with_corpus(Language::English, documents).build();
        Library { functions, index }
    }

    /// The functions whose documentation best matches the request, best first: at most
    /// [`PROPOSALS`], each matching well enough, and no builtin that a method named
    /// `selector` would shadow (`def sum(self, iterable): return sum(iterable)` would
    /// call itself).
    pub(crate) fn lookup(&self, request: &str, selector: &str) -> Vec<&Function> {
        let hits = self.index.search(&query(request, selector), PROPOSALS);
        let best = hits.first().map_or(0.0, |hit| hit.score);
        hits.into_iter()
            .filter(|hit| hit.score >= FLOOR.max(best * NEAR_BEST))
            .filter_map(|hit| self.functions.get(hit.document.id as usize))
            .filter(|f| !(f.call == Call::Builtin && f.name == selector))
            .collect()
    }
}

/// What to search for: the request's words and the method name's, without the words
/// that only say how a request is phrased.
fn query(request: &str, selector: &str) -> String {
    let task = aura_cognition::plan::strip_learn_prefix(request);
    task.split(|c: char| !c.is_alphanumeric())
        .chain(selector.split('_'))
        .filter(|w| !w.is_empty() && !PHRASING.contains(&w.to_lowercase().as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_entry_makes_a_method() {
        let library = Library::get();
        assert!(library.functions.len() > 100, "{}", library.functions.len());
        for f in &library.functions {
            let source = f.method_source("m");
            assert!(source.contains("def m(self, "), "{source}");
            assert!(!f.doc.is_empty(), "{}", f.name);
        }
    }

    #[test]
    fn the_guard_accepts_every_method_the_catalogue_proposes() {
        // Generated from the same interpreter as the guard's allowlist, so the two
        // agree on what exists; regenerate both when the sandbox's Python changes.
        let stamp: serde_json::Value = serde_json::from_str(CATALOGUE).unwrap();
        assert_eq!(stamp["python"], aura_guard::module_api_python());
        let guard = aura_guard::Guard::default();
        for f in &Library::get().functions {
            let normalized = guard
                .normalize(&f.method_source("proposed"), "proposed")
                .unwrap_or_else(|e| panic!("{}: {e:?}", f.name));
            let verdict = guard.audit_method(&normalized.source, "proposed");
            assert!(verdict.accepted, "{}: {:?}", f.name, verdict);
        }
    }

    #[test]
    fn methods_call_the_function_as_python_does() {
        let by_name = |name: &str| {
            Library::get()
                .functions
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            by_name("math.gcd").method_source("gcd_of"),
            "import math\n\ndef gcd_of(self, a, b):\n    return math.gcd(a, b)\n"
        );
        assert_eq!(
            by_name("str.upper").method_source("shout"),
            "def shout(self, text):\n    return text.upper()\n"
        );
        assert_eq!(
            by_name("len").method_source("size"),
            "def size(self, obj):\n    return len(obj)\n"
        );
    }

    fn found(request: &str, selector: &str) -> Vec<String> {
        Library::get()
            .lookup(request, selector)
            .into_iter()
            .map(|f| f.name.clone())
            .collect()
    }

    #[test]
    fn a_request_finds_the_functions_its_words_describe() {
        let gcd = found(
            "teach yourself to compute the greatest common divisor of two numbers",
            "greatest_common_divisor",
        );
        assert_eq!(gcd.first().map(String::as_str), Some("math.gcd"), "{gcd:?}");
        let median = found("compute the median of a list of numbers", "median");
        assert!(
            median.iter().any(|f| f == "statistics.median"),
            "{median:?}"
        );
        assert!(median.len() <= PROPOSALS);
        // A clearly weaker match is another reading of the words, not a sibling.
        let capitalize = found(
            "capitalize the first letter of every word",
            "capitalize_first_letter",
        );
        assert_eq!(capitalize, ["string.capwords"]);
        // The phrasing words match nothing: a request made of them proposes nothing.
        assert!(found("teach yourself to check whether a number is given", "check").is_empty());
    }

    #[test]
    fn a_builtin_the_method_would_shadow_is_not_proposed() {
        let sum = found("calculate the sum of a list of numbers", "total");
        assert_eq!(sum.first().map(String::as_str), Some("sum"), "{sum:?}");
        let named_sum = found("calculate the sum of a list of numbers", "sum");
        assert!(!named_sum.iter().any(|f| f == "sum"), "{named_sum:?}");
    }
}
