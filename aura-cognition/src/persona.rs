//! The four personas of the Entropy Cascade, their roles, default models and prompts.
//!
//! Prompts are deliberately short and concrete: the embedded default model is tiny
//! (SmolLM2-135M), so every instruction is one imperative sentence with the exact
//! output shape spelled out. A prompt is a template; `{selector}`,
//! `{method_convention}` and `{test_convention}` are replaced before each call.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DynLanguageModel, GenerationOptions};

/// How the generated method is written: one Python function, plain or with `self`
/// first when it needs the object's slots (the learn cycle turns a plain function
/// into a method with the guard's parser).
///
/// The last sentence points the model at the standard library's functions: its own
/// arithmetic is where a small model's shared mistakes live (an lcm as `a * b`), and on
/// the everyday suite the sentence cut wrong commits from 23 to 18 over six seeds while
/// learning four more (README, "How well it learns").
///
/// Change this (and [`TEST_CONVENTION`]) in one place if the sandbox's calling
/// convention changes; a [`PromptSet`] can also override it per cascade.
pub const METHOD_CONVENTION: &str = "Write one Python function `def {selector}(...)`. \
If it needs the object's slots, write `def {selector}(self, ...)` and read them as self.<slot>. \
Use only the standard library, \
and call its functions (math, statistics, …) where one does the job.";

/// How the generated tests call the method.
///
/// Tests are asserts that call the function with concrete inputs and compare the
/// exact result: the learn cycle reads them as examples that every candidate is
/// checked against.
pub const TEST_CONVENTION: &str = "Then write two asserts that call {selector}(...) \
with concrete inputs and compare with the exact expected result.";

/// One of the four cascade personas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Persona {
    /// Deconstruction: breaks the mandate into parts.
    Brick,
    /// Synthesis and empathy: drafts the method and its tests.
    Robin,
    /// Grounding and inquiry: checks the draft against memory and asks what is missing.
    Babs,
    /// Metacognitive synthesis and arbitration: writes the final candidate.
    Alfred,
}

impl std::str::FromStr for Persona {
    type Err = crate::Error;

    /// `brick`, `ROBIN`, `Babs`, …: a persona's name in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "{name:?} is not a persona: use brick, robin, babs or alfred"
                ))
            })
    }
}

impl Persona {
    /// All personas in cascade order.
    pub const ALL: [Persona; 4] = [Self::Brick, Self::Robin, Self::Babs, Self::Alfred];

    /// The persona's name as the blueprint writes it ("BRICK", …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Brick => "BRICK",
            Self::Robin => "ROBIN",
            Self::Babs => "BABS",
            Self::Alfred => "ALFRED",
        }
    }

    /// The persona's key where it names things: facet names, the store's facet
    /// records, settings and routes ("brick", …).
    pub fn key(self) -> &'static str {
        match self {
            Self::Brick => "brick",
            Self::Robin => "robin",
            Self::Babs => "babs",
            Self::Alfred => "alfred",
        }
    }

    /// The persona's blueprint role.
    pub fn role(self) -> &'static str {
        match self {
            Self::Brick => "deconstruction",
            Self::Robin => "synthesis and empathy",
            Self::Babs => "grounding and inquiry",
            Self::Alfred => "metacognitive synthesis and arbitration",
        }
    }

    /// The Ollama model the blueprint assigns to this persona.
    pub fn default_ollama_model(self) -> &'static str {
        match self {
            Self::Brick => "phi3:3.8b-mini-instruct-4k-q4_K_M",
            Self::Robin => "llama3:8b-instruct-q4_K_M",
            Self::Babs => "gemma:7b-instruct-q4_K_M",
            Self::Alfred => "qwen2:7b-instruct-q4_K_M",
        }
    }

    /// Whether this persona answers with a [`crate::MethodCandidate`] as JSON.
    pub fn writes_candidate(self) -> bool {
        matches!(self, Self::Robin | Self::Alfred)
    }

    /// The default system prompt template.
    pub fn default_prompt(self) -> &'static str {
        match self {
            Self::Brick => {
                "You are BRICK. Break the task into at most 3 short numbered steps. \
Name the inputs and the return value of {selector}. Plain text, at most 60 words."
            }
            Self::Robin => {
                "You are ROBIN, a Python programmer. {method_convention} {test_convention} \
Reply with one ```python code block."
            }
            Self::Babs => {
                "You are BABS. Compare the draft with the memory and the example call. \
List at most 3 problems or missing cases, one per line. Plain text, at most 60 words."
            }
            Self::Alfred => {
                "You are ALFRED, a careful Python programmer. Fix any problems listed. \
{method_convention} {test_convention} Reply with one ```python code block."
            }
        }
    }

    /// Default sampling options: short plain-text notes, longer code answers.
    pub fn default_options(self) -> GenerationOptions {
        if self.writes_candidate() {
            GenerationOptions {
                max_tokens: 384,
                // The code block is the answer: stop at its closing fence instead of
                // paying for the prose and the second examples small models add.
                stop: vec!["\n```\n".into()],
                ..GenerationOptions::default()
            }
        } else {
            GenerationOptions {
                max_tokens: 128,
                ..GenerationOptions::default()
            }
        }
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The conventions substituted into persona prompts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSet {
    /// Replaces `{method_convention}`; defaults to [`METHOD_CONVENTION`].
    pub method_convention: String,
    /// Replaces `{test_convention}`; defaults to [`TEST_CONVENTION`].
    pub test_convention: String,
}

impl Default for PromptSet {
    fn default() -> Self {
        Self {
            method_convention: METHOD_CONVENTION.into(),
            test_convention: TEST_CONVENTION.into(),
        }
    }
}

impl PromptSet {
    /// Fills a prompt template for `selector`.
    pub fn render(&self, template: &str, selector: &str) -> String {
        template
            .replace("{method_convention}", &self.method_convention)
            .replace("{test_convention}", &self.test_convention)
            .replace("{selector}", selector)
    }
}

/// How one persona is served: which model, which prompt, which options.
#[derive(Clone, Debug)]
pub struct PersonaConfig {
    /// The persona.
    pub persona: Persona,
    /// The model that speaks for it.
    pub model: DynLanguageModel,
    /// Its system prompt template (see the module docs for placeholders).
    pub prompt: String,
    /// Its sampling options.
    pub options: GenerationOptions,
}

impl PersonaConfig {
    /// The persona's defaults, served by `model`.
    pub fn new(persona: Persona, model: DynLanguageModel) -> Self {
        Self {
            persona,
            model,
            prompt: persona.default_prompt().into(),
            options: persona.default_options(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_short_and_filled() {
        let set = PromptSet::default();
        for p in Persona::ALL {
            let text = set.render(p.default_prompt(), "fibonacci");
            assert!(!text.contains('{'), "every placeholder is filled: {text}");
            assert!(text.split_whitespace().count() < 120, "{p}: {text}");
            assert!(text.contains(p.name()));
            // Code first: candidate writers answer with a fenced block, never JSON.
            assert_eq!(text.contains("```python"), p.writes_candidate(), "{text}");
        }
        assert!(set
            .render(Persona::Alfred.default_prompt(), "fibonacci")
            .contains("`def fibonacci(...)`"));
    }

    #[test]
    fn serialises_uppercase() {
        assert_eq!(
            serde_json::to_string(&Persona::Alfred).unwrap_or_default(),
            "\"ALFRED\""
        );
    }
}
