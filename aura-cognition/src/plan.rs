//! Metacognitive plans: what a natural-language message asks the system to do.
//!
//! [`Planner::plan`] tries the deterministic rules first ([`rule_plan`]) and only asks
//! the model when no rule recognises the message. The rules cover the blueprint's
//! forms:
//!
//! | message | plan |
//! |---|---|
//! | "teach yourself (how) to X", "learn (how) to X" | `learn`, selector derived from X |
//! | "calculate fibonacci for 10", "fibonacci of 10", "fibonacci(10)" | `invoke` of a known selector |
//! | "fibonacci(10) == 55", "fibonacci(10) is 55" | `learn` of an unknown selector (the example is its check), `invoke` of a known one |
//! | "calculate/compute/call/run/evaluate X for 10" with X unknown | `invoke` of X, so the miss is learned |
//! | "summarize our previous conversation about X", "what did we discuss about X", "recall …" | `reflect` |
//! | "what is the top news story near me right now?", questions about news/time/place | `answer` with `needs_context` |
//!
//! The model answers JSON checked against [`Plan::schema`] and then validated by kind;
//! an invalid reply gets one repair round with the error fed back, then the planner
//! fails with [`crate::Error::InvalidOutput`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cascade::{chat_structured, loose_json};
use crate::{ChatRequest, DynLanguageModel, Error, GenerationOptions, Result};

/// One worked example for a method to learn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanExample {
    /// The arguments.
    pub args: Vec<Value>,
    /// The expected result.
    pub expected: Value,
}

/// What to do about a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    /// Learn a new method.
    Learn {
        /// The selector to learn (a Python identifier).
        selector: String,
        /// What it should do.
        description: String,
        /// Worked examples, if any.
        #[serde(default)]
        examples: Vec<PlanExample>,
    },
    /// Call a known method.
    Invoke {
        /// The selector.
        selector: String,
        /// The arguments.
        #[serde(default)]
        arguments: Vec<Value>,
    },
    /// Answer a question about memory.
    Reflect {
        /// The question.
        question: String,
    },
    /// Answer directly.
    Answer {
        /// The answer — or, with `needs_context`, the question to answer from the
        /// real-time context (the rules cannot answer by themselves).
        text: String,
        /// Whether the real-time context is needed to answer.
        #[serde(default)]
        needs_context: bool,
    },
}

impl Plan {
    /// The JSON Schema the model answers with (flat, so small models' grammars cope).
    pub fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["learn", "invoke", "reflect", "answer"]},
                "selector": {"type": "string"},
                "description": {"type": "string"},
                "examples": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"args": {"type": "array"}, "expected": {}},
                        "required": ["args", "expected"]
                    }
                },
                "arguments": {"type": "array"},
                "question": {"type": "string"},
                "text": {"type": "string"},
                "needs_context": {"type": "boolean"}
            },
            "required": ["kind"]
        })
    }

    /// Reads a plan from a model's text reply as the planner does: the JSON object in
    /// it (code fences and chatter around it tolerated), checked by [`Plan::from_json`].
    pub fn from_reply(text: &str) -> std::result::Result<Self, String> {
        loose_json(None, text).and_then(|v| Self::from_json(&v))
    }

    /// Reads and validates a plan from the model's JSON.
    pub fn from_json(value: &Value) -> std::result::Result<Self, String> {
        let plan: Plan =
            serde_json::from_value(value.clone()).map_err(|e| format!("not a valid plan: {e}"))?;
        match &plan {
            Plan::Learn { selector, .. } | Plan::Invoke { selector, .. }
                if !is_identifier(selector) =>
            {
                return Err(format!(
                    "selector {selector:?} must be a Python identifier like fibonacci or list_files"
                ));
            }
            Plan::Reflect { question } if question.trim().is_empty() => {
                return Err("\"question\" must not be empty".into())
            }
            Plan::Answer { text, .. } if text.trim().is_empty() => {
                return Err("\"text\" must not be empty".into())
            }
            _ => {}
        }
        Ok(plan)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What the planner knows besides the message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanContext {
    /// Selectors the target object understands (enables `invoke` rules).
    pub known_selectors: Vec<String>,
    /// Extra lines for the model's prompt (object name, recent turns, …).
    pub notes: Vec<String>,
}

impl PlanContext {
    /// A context knowing `selectors`.
    pub fn with_selectors<I, S>(selectors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            known_selectors: selectors.into_iter().map(Into::into).collect(),
            notes: Vec::new(),
        }
    }
}

/// The most selectors the model's prompt lists: a learned library holds thousands, more
/// than a small model's context window.
const MAX_PROMPT_SELECTORS: usize = 48;

/// The words of a text that a method's name can share with it: three letters or more,
/// lower-cased. Both the planner and the learn cycle name the methods related to a
/// message first when a library is too large to name whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Words(std::collections::HashSet<String>);

impl Words {
    /// The words of `text`.
    pub fn of(text: &str) -> Self {
        let mut words = Self::default();
        words.add(text);
        words
    }

    /// Adds the words of `text`.
    pub fn add(&mut self, text: &str) {
        self.0.extend(
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() >= 3)
                .map(str::to_lowercase),
        );
    }

    /// Whether one of the `_`-separated parts of `name` is among these words.
    pub fn shared_by(&self, name: &str) -> bool {
        name.split('_')
            .any(|part| self.0.contains(&part.to_lowercase()))
    }
}

/// The known selectors worth naming to the model for `message`: those sharing a word
/// with it first, then the rest in order, at most [`MAX_PROMPT_SELECTORS`].
fn prompt_selectors<'a>(message: &str, known: &'a [String]) -> Vec<&'a str> {
    if known.len() <= MAX_PROMPT_SELECTORS {
        return known.iter().map(String::as_str).collect();
    }
    let words = Words::of(message);
    let (related, rest): (Vec<&str>, Vec<&str>) = known
        .iter()
        .map(String::as_str)
        .partition(|s| words.shared_by(s));
    related
        .into_iter()
        .chain(rest)
        .take(MAX_PROMPT_SELECTORS)
        .collect()
}

/// Turns messages into plans: rules first, then the model.
#[derive(Clone, Debug)]
pub struct Planner {
    model: Option<DynLanguageModel>,
    use_rules: bool,
    options: GenerationOptions,
}

const PLANNER_PROMPT: &str = "You turn a user message into one JSON plan. Kinds: \
learn (teach a new method: selector, description, examples [{args, expected}]), \
invoke (call a known method: selector, arguments), reflect (question about past \
conversations: question), answer (reply directly: text). Selectors are snake_case. \
Reply with the JSON object only.";

impl Planner {
    /// A planner using the rules, then `model`.
    pub fn new(model: DynLanguageModel) -> Self {
        Self {
            model: Some(model),
            use_rules: true,
            options: GenerationOptions {
                temperature: 0.0,
                max_tokens: 256,
                ..GenerationOptions::default()
            },
        }
    }

    /// A planner using only the rules (messages they do not recognise are an error).
    pub fn rules_only() -> Self {
        Self {
            model: None,
            use_rules: true,
            options: GenerationOptions::default(),
        }
    }

    /// Switches the rules off (model only), e.g. to measure the model.
    pub fn without_rules(mut self) -> Self {
        self.use_rules = false;
        self
    }

    /// Sets the model's sampling options.
    pub fn with_options(mut self, options: GenerationOptions) -> Self {
        self.options = options;
        self
    }

    /// The plan for `message`.
    pub async fn plan(&self, message: &str, context: &PlanContext) -> Result<Plan> {
        if self.use_rules {
            if let Some(plan) = rule_plan(message, context) {
                tracing::debug!(target: "Orchestrator", ?plan, "plan from rules");
                return Ok(plan);
            }
        }
        // Unavailable, not a fault: the message may be fine, and the same message is
        // planned once a model is configured (the gateway answers 503, not 500).
        let Some(model) = &self.model else {
            return Err(Error::Unavailable(format!(
                "no rule recognises {message:?} and no language model is configured to \
                 plan it"
            )));
        };
        let mut user = format!("Message: {message}\n");
        if !context.known_selectors.is_empty() {
            user.push_str(&format!(
                "Known methods: {}\n",
                prompt_selectors(message, &context.known_selectors).join(", ")
            ));
        }
        for n in &context.notes {
            user.push_str(n);
            user.push('\n');
        }
        let request = ChatRequest::new(PLANNER_PROMPT, user)
            .with_options(self.options.clone())
            .with_schema(Plan::schema());
        let call = chat_structured(model, request, "plan", Plan::from_json).await;
        call.result.map(|(plan, _)| plan)
    }
}

const LEARN_PREFIXES: &[&str] = &[
    "teach yourself how to ",
    "teach yourself to ",
    "learn how to ",
    "learn to ",
    "teach me how to ",
];

const REFLECT_PREFIXES: &[&str] = &[
    "summarize our previous conversation",
    "summarise our previous conversation",
    "summarize our conversation",
    "summarise our conversation",
    "summarize what we",
    "summarise what we",
    "what did we talk about",
    "what did we discuss",
    "what have we discussed",
    "recall ",
    "remind me what we",
];

/// Invoke verbs that command: they may name a method nobody has yet (it is then learned).
const COMMAND_VERBS: &[&str] = &[
    "calculate ",
    "compute ",
    "run ",
    "call ",
    "invoke ",
    "evaluate ",
];

/// Invoke verbs that only ask: they call a known method, never teach a new one.
const QUERY_VERBS: &[&str] = &["what is ", "what's ", "give me ", "get "];

const GENERIC_VERBS: &[&str] = &[
    "calculate",
    "compute",
    "determine",
    "work",
    "figure",
    "generate",
    "produce",
    "return",
];

/// Whether the rules drop `word` when they name a method ("the", "a", "of", …).
pub fn is_filler(word: &str) -> bool {
    FILLER.contains(&word)
}

const FILLER: &[&str] = &[
    "the", "a", "an", "my", "our", "your", "some", "sequence", "series", "number", "numbers",
    "value", "values", "out", "each", "every", "given", "two", "three", "times", "and", "or",
];

/// Verbs that ask a yes/no question about their object ("check whether …").
const PREDICATE_VERBS: &[&str] = &[
    "check",
    "test",
    "tell",
    "determine",
    "decide",
    "see",
    "verify",
];

/// Verbs that turn one thing into another ("convert X to Y").
const CONVERT_VERBS: &[&str] = &["convert", "turn", "translate", "change"];

const CUT_WORDS: &[&str] = &[
    "of", "in", "for", "using", "with", "from", "by", "into", "on", "via", "given", "that",
    "which", "when", "where", "between",
];

/// The task of a learn request without its "teach yourself to" (any case):
/// "Teach yourself to reverse a string" → "reverse a string".
pub fn strip_learn_prefix(message: &str) -> &str {
    let trimmed = message.trim();
    // ASCII lower-casing keeps byte offsets, so `skipped` indexes `trimmed` too.
    let lower = trimmed.to_ascii_lowercase();
    let lower = lower.strip_prefix("please ").unwrap_or(&lower);
    let skipped = trimmed.len() - lower.len();
    for p in LEARN_PREFIXES {
        if lower.starts_with(p) && trimmed.is_char_boundary(skipped + p.len()) {
            return &trimmed[skipped + p.len()..];
        }
    }
    trimmed
}

/// Derives a snake_case selector from a task description
/// ("calculate the fibonacci sequence" → `fibonacci`,
/// "list the files in the current directory using the os module" → `list_files`).
pub fn derive_selector(task: &str) -> Option<String> {
    // Quoted text and numbers are the task's arguments, not its name: "count the
    // letter 'u'" is `count_letter`, "repeat a string 6 times" is `repeat_string`.
    let words = first_clause_words(task);
    let selector = predicate_selector(&words)
        .or_else(|| conversion_selector(&words))
        .or_else(|| count_selector(&words))
        .unwrap_or_else(|| head_selector(&words));
    let selector = match selector.chars().next() {
        Some(c) if c.is_ascii_digit() => format!("_{selector}"),
        Some(_) => selector,
        None => return None,
    };
    is_identifier(&selector).then_some(selector)
}

/// The values a task fixes: its quoted literals ('l', "ing") and numbers ("add 5 to a
/// number", "round to 2 decimals"), as written, in its first line (later lines are
/// later turns: a call, an example) and before any clause that gives examples ("…,
/// where fibonacci for 10 is 55"), whose values are an example's, not the task's.
pub fn fixed_literals(task: &str) -> Vec<String> {
    let lower = task.to_ascii_lowercase();
    let end = [
        "\n",
        ", where",
        " where ",
        "e.g.",
        "for example",
        "such as",
        "==",
        "(",
        "->",
    ]
    .iter()
    .filter_map(|m| lower.find(m))
    .min()
    .unwrap_or(task.len());
    let (unquoted, quoted) = split_literals(&task[..end]);
    let mut out: Vec<String> = quoted.into_iter().map(str::to_string).collect();
    out.extend(
        unquoted
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':'))
            .map(|w| w.trim_end_matches('.'))
            // Digits first: Rust also reads the words "nan", "inf" and "infinity".
            .filter(|w| w.bytes().any(|b| b.is_ascii_digit()) && w.parse::<f64>().is_ok())
            .map(str::to_string),
    );
    out
}

/// The lower-cased words of `task`'s first clause ("fibonacci numbers, where …"), its
/// quoted literals and numbers left out.
fn first_clause_words(task: &str) -> Vec<String> {
    let task = without_literals(task);
    let clause = task
        .split([',', ';', ':', '(', '.', '\n'])
        .next()
        .unwrap_or(&task);
    clause
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect()
}

/// `task` with every quoted literal ('x', "x", `x`) removed.
fn without_literals(task: &str) -> String {
    split_literals(task).0
}

/// `task` split into its text outside quotes and its quoted literals ('x', "x", `x`,
/// each with its quotes). A quote left open hides the rest of the text and is no literal.
fn split_literals(task: &str) -> (String, Vec<&str>) {
    let mut outside = String::with_capacity(task.len());
    let mut quoted = Vec::new();
    let mut quote: Option<(char, usize)> = None;
    let mut prev = ' ';
    for (i, c) in task.char_indices() {
        match quote {
            Some((q, start)) if c == q => {
                quoted.push(&task[start..i + c.len_utf8()]);
                quote = None;
            }
            Some(_) => {}
            // An apostrophe inside a word ("object's") opens nothing.
            None if matches!(c, '"' | '`') || (c == '\'' && !prev.is_alphanumeric()) => {
                quote = Some((c, i))
            }
            None => outside.push(c),
        }
        prev = c;
    }
    (outside, quoted)
}

/// "count how many times the letter 'u' appears in a string" → `count_letter`,
/// "count how many items a list has" → `count_items`: what is counted names it.
fn count_selector(words: &[String]) -> Option<String> {
    if words.len() < 4 || words[0] != "count" || words[1] != "how" || words[2] != "many" {
        return None;
    }
    let mut counted: Vec<&str> = Vec::new();
    for w in words[3..].iter().map(String::as_str) {
        let article = matches!(w, "a" | "an" | "the");
        let verb = matches!(
            w,
            "appears" | "appear" | "occurs" | "occur" | "is" | "are" | "has" | "have" | "there"
        );
        if verb || CUT_WORDS.contains(&w) || (article && !counted.is_empty()) {
            break;
        }
        if !FILLER.contains(&w) {
            counted.push(w);
        }
    }
    counted.truncate(2);
    (!counted.is_empty()).then(|| format!("count_{}", counted.join("_")))
}

/// What the verb of a yes/no question makes of its name.
enum PredicateName {
    /// A name of its own, as Python spells it: "starts with" is `starts_with`.
    Whole(&'static str),
    /// A prefix for the complement that follows: "is" + "prime" is `is_prime`.
    Prefix(&'static str),
}

fn predicate_name(verb: &str) -> Option<PredicateName> {
    use PredicateName::{Prefix, Whole};
    Some(match verb {
        "is" => Prefix("is"),
        "are" => Prefix("are"),
        "has" | "have" => Prefix("has"),
        "contains" | "contain" | "includes" | "include" => Prefix("contains"),
        "starts" | "start" | "begins" | "begin" => Whole("starts_with"),
        "ends" | "end" => Whole("ends_with"),
        "lies" | "lie" => Whole("is_between"),
        _ => return None,
    })
}

/// "check whether a number is prime" → `is_prime`, "… if a list has duplicates" →
/// `has_duplicates`: the name a person would guess for a yes/no question.
fn predicate_selector(words: &[String]) -> Option<String> {
    let first = words.first()?;
    if !PREDICATE_VERBS.contains(&first.as_str()) {
        return None;
    }
    let clause = words.iter().position(|w| w == "whether" || w == "if")?;
    let rest = &words[clause + 1..];
    let (verb, name) = rest
        .iter()
        .enumerate()
        .find_map(|(i, w)| predicate_name(w).map(|n| (i, n)))?;
    let prefix = match name {
        PredicateName::Whole(name) => return Some(name.into()),
        PredicateName::Prefix(prefix) => prefix,
    };
    let complement: Vec<&str> = rest[verb + 1..]
        .iter()
        .take_while(|w| !CUT_WORDS.contains(&w.as_str()))
        .map(String::as_str)
        .filter(|w| !FILLER.contains(w) && *w != "all")
        .take(2)
        .collect();
    match (prefix, complement.is_empty()) {
        ("contains", true) => Some(prefix.into()),
        (_, true) => None,
        (_, false) => Some(format!("{prefix}_{}", complement.join("_"))),
    }
}

/// The kind of answer a task's words promise, where they promise one: the search
/// rules out a candidate that gives another kind (a count that says `False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// A yes-or-no check ("check whether …", `is_prime`): `True` or `False`.
    Truth,
    /// A count ("count the vowels …", "how many …", "the number of …"): a number, or
    /// numbers in a list or dict ("count each word"), never a truth value or text.
    Count,
}

impl AnswerKind {
    /// What `task`'s words (without "teach yourself to") or the method's name promise.
    pub fn of(task: &str, selector: &str) -> Option<AnswerKind> {
        let words = first_clause_words(task);
        let word = |i: usize| words.get(i).map_or("", String::as_str);
        let predicate = PREDICATE_VERBS.contains(&word(0))
            && words.iter().skip(1).any(|w| w == "whether" || w == "if");
        if predicate
            || ["is_", "are_", "has_"]
                .iter()
                .any(|p| selector.starts_with(p))
        {
            return Some(AnswerKind::Truth);
        }
        // "find the number of …": a verb that gives, then what it gives.
        let gives = matches!(word(0), "find" | "return" | "get" | "compute" | "calculate")
            && matches!(
                (word(1), word(2)),
                ("number" | "count", "of") | ("the", "number" | "count")
            )
            && (word(2) == "of" || word(3) == "of");
        let count = word(0) == "count" || (word(0), word(1)) == ("how", "many") || gives;
        (count || selector.starts_with("count_")).then_some(AnswerKind::Count)
    }

    /// Whether `value` is an answer of this kind.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            AnswerKind::Truth => value.is_boolean(),
            AnswerKind::Count => !(value.is_boolean() || value.is_string()),
        }
    }

    /// The rule, in words, for a candidate's verdict.
    pub fn rule(self) -> &'static str {
        match self {
            AnswerKind::Truth => "a yes-or-no check answers True or False",
            AnswerKind::Count => "a count is a number, never True, False or text",
        }
    }
}

/// "convert celsius to fahrenheit" → `celsius_to_fahrenheit`.
fn conversion_selector(words: &[String]) -> Option<String> {
    if !CONVERT_VERBS.contains(&words.first()?.as_str()) {
        return None;
    }
    let to = words.iter().position(|w| w == "to" || w == "into")?;
    let pick = |ws: &[String]| -> Vec<String> {
        ws.iter()
            .filter(|w| !FILLER.contains(&w.as_str()) && !CUT_WORDS.contains(&w.as_str()))
            .take(2)
            .cloned()
            .collect()
    };
    let from = pick(&words[1..to]);
    let into = pick(&words[to + 1..]);
    (!from.is_empty() && !into.is_empty())
        .then(|| format!("{}_to_{}", from.join("_"), into.join("_")))
}

/// The head of the phrase, fillers and a leading generic verb dropped.
fn head_selector(words: &[String]) -> String {
    // The head of the phrase: up to the first preposition (after the first word).
    let mut head: Vec<&str> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 && CUT_WORDS.contains(&w.as_str()) && !head.is_empty() {
            break;
        }
        head.push(w);
    }
    let mut kept: Vec<&str> = head
        .iter()
        .copied()
        .filter(|w| !FILLER.contains(w))
        .collect();
    if kept.len() > 1 && GENERIC_VERBS.contains(&kept[0]) {
        kept.remove(0);
    }
    kept.truncate(3);
    kept.join("_")
}

fn normalise(message: &str) -> String {
    message
        .trim()
        .trim_end_matches(['?', '!', '.'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The deterministic pre-parser: a plan for the recognised forms, `None` otherwise.
pub fn rule_plan(message: &str, context: &PlanContext) -> Option<Plan> {
    let m = normalise(message);
    let m = m.strip_prefix("please ").unwrap_or(&m).to_string();

    for p in LEARN_PREFIXES {
        if let Some(task) = m.strip_prefix(p) {
            let selector = derive_selector(task)?;
            return Some(Plan::Learn {
                selector,
                description: task.trim().to_string(),
                examples: Vec::new(),
            });
        }
    }

    if REFLECT_PREFIXES.iter().any(|p| m.starts_with(p)) {
        return Some(Plan::Reflect {
            question: message.trim().to_string(),
        });
    }

    if let Some(plan) = example_rule(message, context) {
        return Some(plan);
    }
    if let Some(plan) = invoke_rule(&m, context) {
        return Some(plan);
    }

    let asks_context = [
        "news",
        "headline",
        "near me",
        "right now",
        "what time",
        "what day",
        "today's date",
        "where am i",
    ]
    .iter()
    .any(|k| m.contains(k));
    if asks_context {
        return Some(Plan::Answer {
            text: message.trim().to_string(),
            needs_context: true,
        });
    }
    None
}

/// How a call and what it should give are joined in "fibonacci(10) == 55": the
/// planner's example rule and the learn cycle's example reader (aura-core's
/// `request_examples`) both take these, longest first where one begins another.
pub const EXAMPLE_VERBS: &[&str] = &[
    "==",
    "=>",
    "=",
    "->",
    "is",
    "returns",
    "should return",
    "should give",
    "should be",
    "gives",
];

/// "fibonacci(10) == 55" (or `is`, `should be`, `returns`, …): what a call should
/// give, as a refused learn asks the user to say. For a method the object lacks it is
/// a learn of that name, whose request (the message, and the earlier turn's words for
/// that name) carries the example as a hard check; for a method it has, the call
/// itself, so the user sees what it gives.
fn example_rule(message: &str, context: &PlanContext) -> Option<Plan> {
    let (name, rest) = message.trim().split_once('(')?;
    let (args, rest) = rest.split_once(')')?;
    let rest = rest.trim_start();
    let expected = EXAMPLE_VERBS.iter().find_map(|verb| {
        let after = rest.strip_prefix(verb)?;
        // A word ("is") must end there: "isn't 5" says no such thing.
        let word = verb.ends_with(|c: char| c.is_alphabetic());
        (!word || after.starts_with(char::is_whitespace)).then_some(after)
    })?;
    if !is_identifier(name) || args.contains('(') || expected.trim().is_empty() {
        return None;
    }
    if context.known_selectors.iter().any(|s| s == name) {
        return Some(Plan::Invoke {
            selector: name.to_string(),
            arguments: parse_args(args)?,
        });
    }
    Some(Plan::Learn {
        selector: name.to_string(),
        description: String::new(),
        examples: Vec::new(),
    })
}

fn invoke_rule(m: &str, context: &PlanContext) -> Option<Plan> {
    let mut rest = m;
    let mut verb = None;
    for v in COMMAND_VERBS.iter().chain(QUERY_VERBS) {
        if let Some(r) = rest.strip_prefix(v) {
            rest = r;
            verb = Some(*v);
            break;
        }
    }
    // Without a known selector only an explicit command names a method to learn:
    // "calculate fibonacci for 10" is a message to send; "what is the weather in Paris"
    // is not.
    let commands_unknown = verb.is_some_and(|v| COMMAND_VERBS.contains(&v));
    if context.known_selectors.is_empty() && !commands_unknown {
        return None;
    }
    let rest = rest.strip_prefix("the ").unwrap_or(rest);
    // name(args) form
    let (name, args) = if let (Some(open), true) = (rest.find('('), rest.ends_with(')')) {
        (&rest[..open], &rest[open + 1..rest.len() - 1])
    } else {
        let mut split = None;
        for sep in [" for ", " of ", " with ", " on ", " at "] {
            if let Some(i) = rest.find(sep) {
                if split.is_none_or(|(j, _)| i < j) {
                    split = Some((i, sep.len()));
                }
            }
        }
        let (i, len) = split?;
        (&rest[..i], &rest[i + len..])
    };
    let candidate = name
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty() && !FILLER.contains(w))
        .collect::<Vec<_>>()
        .join("_");
    let known = context
        .known_selectors
        .iter()
        .find(|s| s.to_lowercase() == candidate)
        .or_else(|| {
            context
                .known_selectors
                .iter()
                .find(|s| candidate.split('_').any(|w| w == s.to_lowercase()))
        })
        .cloned();
    let arguments = parse_args(args)?;
    let selector = match known {
        Some(selector) => selector,
        // An unknown method is named by a short identifier and called with arguments.
        None if commands_unknown
            && !arguments.is_empty()
            && (1..=3).contains(&candidate.split('_').count())
            && candidate
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            candidate
        }
        None => return None,
    };
    Some(Plan::Invoke {
        selector,
        arguments,
    })
}

fn parse_args(text: &str) -> Option<Vec<Value>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&format!("[{text}]")) {
        return Some(items);
    }
    let mut out = Vec::new();
    for part in text
        .split(',')
        .flat_map(|p| p.split(" and "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let part = part.trim_matches(|c| c == '\'' || c == '"');
        let value = serde_json::from_str::<Value>(part)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .unwrap_or_else(|| Value::String(part.to_string()));
        out.push(value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_library_is_named_to_the_model_by_what_the_message_shares() {
        let mut known: Vec<String> = (0..5000).map(|i| format!("skill_{i}")).collect();
        known.push("fibonacci_sum".into());
        let named = prompt_selectors("what is the fibonacci of 10", &known);
        assert_eq!(named.len(), MAX_PROMPT_SELECTORS);
        assert_eq!(
            named[0], "fibonacci_sum",
            "the related selector comes first"
        );
        let few = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(prompt_selectors("anything", &few), ["a", "b"]);
    }

    #[test]
    fn fixed_literals_are_the_tasks_own_values_not_an_examples() {
        let cases: [(&str, &[&str]); 9] = [
            (
                "count how many times the letter 'a' appears in a string",
                &["'a'"],
            ),
            ("add 5 to a number", &["5"]),
            ("round a number to 2.5 places.", &["2.5"]),
            ("join words with \"-\" and `x`", &["\"-\"", "`x`"]),
            (
                "calculate fibonacci numbers, where fibonacci for 10 is 55",
                &[],
            ),
            ("check the object's name", &[]),
            ("count the nan or inf values in a list", &[]),
            ("sum a list, e.g. [1, 2] gives 3", &[]),
            (
                "calculate the fibonacci sequence\ncalculate fibonacci for 10",
                &[],
            ),
        ];
        for (task, fixed) in cases {
            assert_eq!(fixed_literals(task), fixed, "{task}");
        }
    }

    #[test]
    fn answer_kinds_from_words_and_names() {
        use AnswerKind::{Count, Truth};
        let cases = [
            ("check whether a number is prime", "is_prime", Some(Truth)),
            (
                "determine if two words are anagrams",
                "are_anagrams",
                Some(Truth),
            ),
            (
                "tell me whether a year is a leap year",
                "is_leap_year",
                Some(Truth),
            ),
            ("is_prime", "is_prime", Some(Truth)),
            ("count the vowels in a string", "count_vowels", Some(Count)),
            ("count how many times 'a' appears", "count_a", Some(Count)),
            ("how many words are in a sentence", "words", Some(Count)),
            (
                "find the number of digits in a number",
                "number_digits",
                Some(Count),
            ),
            ("return number of items", "number_items", Some(Count)),
            ("calculate the fibonacci sequence", "fibonacci", None),
            ("check the spelling", "check_spelling", None),
            ("find the largest number in a list", "find_largest", None),
            (
                "reverse the words, then check if it is a palindrome",
                "reverse_words",
                None,
            ),
            ("list the countries", "list_countries", None),
        ];
        for (task, selector, kind) in cases {
            assert_eq!(AnswerKind::of(task, selector), kind, "{task}");
        }
        assert!(Truth.admits(&Value::Bool(false)) && !Truth.admits(&Value::from(0)));
        for v in [
            Value::from(3),
            Value::from(2.5),
            serde_json::json!({"a": 1}),
            serde_json::json!([1]),
        ] {
            assert!(Count.admits(&v), "{v}");
        }
        assert!(!Count.admits(&Value::Bool(true)) && !Count.admits(&Value::from("3")));
    }

    #[test]
    fn selectors_from_tasks() {
        let cases = [
            ("calculate the fibonacci sequence", "fibonacci"),
            (
                "list the files in the current directory using the os module",
                "list_files",
            ),
            ("calculate the factorial of a number", "factorial"),
            ("reverse a string", "reverse_string"),
            ("compute prime numbers", "prime"),
            ("check whether a number is prime", "is_prime"),
            ("check if a string is a palindrome", "is_palindrome"),
            ("determine whether a year is a leap year", "is_leap_year"),
            ("check whether a list has duplicates", "has_duplicates"),
            (
                "test if two words are anagrams of each other",
                "are_anagrams",
            ),
            ("convert celsius to fahrenheit", "celsius_to_fahrenheit"),
            ("count the vowels in a string", "count_vowels"),
            ("check the spelling", "check_spelling"),
            (
                "calculate fibonacci numbers, where fibonacci for 10 is 55",
                "fibonacci",
            ),
            ("multiply two numbers", "multiply"),
            (
                "count how many times the letter 'u' appears in a string",
                "count_letter",
            ),
            ("count how many items a list has", "count_items"),
            ("check whether a string starts with 'ap'", "starts_with"),
            ("check if a word ends with \"ing\"", "ends_with"),
            ("check whether a list contains the number 7", "contains"),
            ("check whether a number lies between 1 and 10", "is_between"),
            ("repeat a string 6 times", "repeat_string"),
            (
                "swap upper and lower case letters in a string",
                "swap_upper_lower",
            ),
            ("join a list of words with ', ' between them", "join_list"),
            (
                "compute the absolute difference between two numbers",
                "absolute_difference",
            ),
        ];
        for (task, want) in cases {
            assert_eq!(derive_selector(task).as_deref(), Some(want), "{task}");
        }
    }

    #[test]
    fn an_example_teaches_an_unknown_method_and_calls_a_known_one() {
        let none = PlanContext::default();
        assert_eq!(
            rule_plan("fibonacci(10) == 55", &none),
            Some(Plan::Learn {
                selector: "fibonacci".into(),
                description: String::new(),
                examples: Vec::new(),
            })
        );
        let known = PlanContext::with_selectors(["fibonacci"]);
        assert_eq!(
            rule_plan("fibonacci(10) == 55", &known),
            Some(Plan::Invoke {
                selector: "fibonacci".into(),
                arguments: vec![serde_json::json!(10)],
            })
        );
        assert_eq!(
            rule_plan("fibonacci(10) is 55", &known),
            rule_plan("fibonacci(10) == 55", &known)
        );
        for not_an_example in [
            "fibonacci(10) in 55",
            "fibonacci(10) isn't 55",
            "Fib(10) == 55",
            "f(1) ==",
            "x == 1",
            "f(g(1)) == 2",
        ] {
            assert_eq!(
                example_rule(not_an_example, &none),
                None,
                "{not_an_example}"
            );
        }
    }

    #[test]
    fn args_parse_as_json_or_words() {
        assert_eq!(parse_args("10"), Some(vec![serde_json::json!(10)]));
        assert_eq!(
            parse_args("3 and 4"),
            Some(vec![serde_json::json!(3), serde_json::json!(4)])
        );
        assert_eq!(
            parse_args("\"abc\", 2"),
            Some(vec![serde_json::json!("abc"), serde_json::json!(2)])
        );
    }
}
