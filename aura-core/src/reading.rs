//! The model's reading: a second witness where only the samples' votes chose.
//!
//! A small model's samples share its misconceptions ("count the words" as
//! `len(text)`, a product as a sum of squares), so a behaviour can lead the vote and
//! still be wrong. Reading is another skill than writing: asked which of two asserts
//! about the request is true, the same model often knows better than its code does.
//! So when the samples' votes alone chose the winner and another behaviour stands
//! beside it, the search takes the inputs where the two part and scores, for each, an
//! assert stating the winner's answer and one stating the rival's, after the request
//! (`assert count_words("This is a test. …") == 12` against `== 46`). A winner whose
//! answers the model finds far less likely than its rival's is not committed; the
//! search draws on and may refuse instead.
//!
//! Replayed on three seeds of the everyday suite (16-sample pools, every sample run
//! on the hidden checks offline), the reading kept three of six wrong commits out
//! (`product`, `count_words`, `reverse_words`) and cost one right one (`double`);
//! margins from 4 to 8 gave the same result (README, "How well it learns").

use std::collections::HashMap;

use aura_cognition::plan::strip_learn_prefix;
use aura_cognition::{python_literal, ChatMessage, DynLanguageModel};
use serde_json::Value;

use crate::search::{python_call, Parting, Pool};

/// The partings weighed at most: the largest inputs first, where a behaviour shows
/// what it means.
pub(crate) const READING_INPUTS: usize = 3;

/// How much less likely (summed natural-log probability over the partings weighed)
/// the winner's answers may be than the rival's before the reading rules it out:
/// `e^4`, about 55 times, is far beyond the noise of one model scoring two numbers.
pub(crate) const READING_MARGIN: f64 = 4.0;

/// An assert longer than this is not weighed: it says more about the size of a value
/// than about what the request means, and the model reads it slowly.
const MAX_ASSERT_CHARS: usize = 300;

/// Scores asserts about one request with one model, remembering each score (a search
/// weighs the same partings again after each new sample).
pub(crate) struct Reader {
    model: DynLanguageModel,
    messages: Vec<ChatMessage>,
    selector: String,
    scores: HashMap<String, f64>,
}

/// What the reading made of a winner and its rival.
#[derive(Clone, Debug)]
pub(crate) struct Reading {
    /// Summed log-probability of the winner's asserts minus the rival's.
    pub margin: f64,
    /// Partings weighed.
    pub weighed: usize,
    /// The parting where the rival's answer read best against the winner's.
    pub sharpest: Parting,
    /// The rival, as an index into the pool.
    pub rival: usize,
}

impl Reading {
    /// Whether the model reads the rival's answers as far likelier than the winner's.
    pub(crate) fn overrules(&self) -> bool {
        self.margin < -READING_MARGIN
    }

    /// Why the winner is not committed, in words. `library` names the rival's
    /// standard-library function when it is one: the reason then says whose answer
    /// the model preferred, not only that it preferred another.
    pub(crate) fn objection(&self, selector: &str, library: Option<&str>) -> String {
        let call = python_call(selector, &self.sharpest.args);
        let other = library.map_or_else(
            || "another behaviour".to_owned(),
            |name| format!("the standard library's `{name}`, which no sample agrees with"),
        );
        format!(
            "the model's reading sides with {other}: it finds `{call} == {}` likelier \
             than the best behaviour's `{call} == {}` (by {:.1} in log-likelihood over {} input(s) \
             where they part; {READING_MARGIN} rules a winner out)",
            python_literal(&self.sharpest.theirs),
            python_literal(&self.sharpest.ours),
            -self.margin,
            self.weighed,
        )
    }
}

impl Reader {
    /// A reader of asserts about `request`, when `model` can score replies.
    pub(crate) fn new(model: DynLanguageModel, request: &str, selector: &str) -> Option<Reader> {
        if !model.capabilities().scoring {
            return None;
        }
        let task = strip_learn_prefix(request).trim().trim_end_matches('.');
        let messages = vec![ChatMessage::user(format!(
            "Write asserts for a Python function `{selector}` that does this: {task}."
        ))];
        Some(Reader {
            model,
            messages,
            selector: selector.to_string(),
            scores: HashMap::new(),
        })
    }

    /// The assert stating that `args` give `value`, as the model would write it.
    fn assert_text(&self, args: &[Value], value: &Value) -> String {
        format!(
            "```python\nassert {} == {}\n```",
            python_call(&self.selector, args),
            python_literal(value)
        )
    }

    async fn likelihood(&mut self, text: String) -> aura_cognition::Result<f64> {
        if let Some(&score) = self.scores.get(&text) {
            return Ok(score);
        }
        let (score, _) = self.model.score(&self.messages, &text).await?;
        self.scores.insert(text, score);
        Ok(score)
    }

    /// Weighs `winner` in `pool` against each of `rivals`: the reading least
    /// favourable to the winner, `None` when no rival parts from it on an input short
    /// enough to read.
    pub(crate) async fn weigh_against(
        &mut self,
        pool: &Pool,
        winner: usize,
        rivals: &[usize],
    ) -> aura_cognition::Result<Option<Reading>> {
        let mut worst: Option<Reading> = None;
        for &rival in rivals {
            let partings = pool.partings(winner, rival, usize::MAX);
            if let Some(reading) = self.weigh(&partings, rival).await? {
                if worst.as_ref().is_none_or(|w| reading.margin < w.margin) {
                    worst = Some(reading);
                }
            }
        }
        Ok(worst)
    }

    /// Weighs the winner's answers against the rival's on the first
    /// [`READING_INPUTS`] of `partings` short enough to read; `None` when none is.
    async fn weigh(
        &mut self,
        partings: &[Parting],
        rival: usize,
    ) -> aura_cognition::Result<Option<Reading>> {
        let mut margin = 0.0;
        let mut weighed = 0;
        let mut sharpest: Option<(f64, &Parting)> = None;
        for p in partings {
            let ours = self.assert_text(&p.args, &p.ours);
            let theirs = self.assert_text(&p.args, &p.theirs);
            if ours.len().max(theirs.len()) > MAX_ASSERT_CHARS {
                continue;
            }
            let d = self.likelihood(ours).await? - self.likelihood(theirs).await?;
            margin += d;
            weighed += 1;
            if sharpest.is_none_or(|(worst, _)| d < worst) {
                sharpest = Some((d, p));
            }
            if weighed == READING_INPUTS {
                break;
            }
        }
        Ok(sharpest.map(|(_, p)| Reading {
            margin,
            weighed,
            sharpest: p.clone(),
            rival,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aura_cognition::ScriptedModel;
    use serde_json::json;

    use super::*;

    fn parting(args: Value, ours: Value, theirs: Value) -> Parting {
        Parting {
            args: args.as_array().cloned().unwrap_or_default(),
            ours,
            theirs,
        }
    }

    /// A model that reads `== 4` as likely and anything else as unlikely.
    fn counts_words() -> DynLanguageModel {
        Arc::new(
            ScriptedModel::from_fn(|_| Ok(String::new())).scoring(|_, reply| {
                if reply.contains("== 4\n") {
                    -1.0
                } else {
                    -9.0
                }
            }),
        )
    }

    #[tokio::test]
    async fn a_winner_whose_answer_reads_far_worse_is_overruled() {
        let mut reader = Reader::new(
            counts_words(),
            "teach yourself to count the words in a sentence",
            "count_words",
        )
        .unwrap();
        let partings = [parting(json!(["the quick brown fox"]), json!(19), json!(4))];
        let reading = reader.weigh(&partings, 1).await.unwrap().unwrap();
        assert_eq!((reading.weighed, reading.rival), (1, 1));
        assert!((reading.margin + 8.0).abs() < 1e-9, "{}", reading.margin);
        assert!(reading.overrules());
        let why = reading.objection("count_words", None);
        assert!(
            why.starts_with("the model's reading sides with another behaviour:")
                && why.contains("`count_words(\"the quick brown fox\") == 4` likelier")
                && why.contains("`count_words(\"the quick brown fox\") == 19`"),
            "{why}"
        );
        // A standard-library rival is named: the reason says whose answer read better.
        let why = reading.objection("count_words", Some("str.count"));
        assert!(
            why.starts_with(
                "the model's reading sides with the standard library's `str.count`, which no sample agrees with:"
            ),
            "{why}"
        );
        // The other way round, the winner stands.
        let partings = [parting(json!(["the quick brown fox"]), json!(4), json!(19))];
        let reading = reader.weigh(&partings, 1).await.unwrap().unwrap();
        assert!(!reading.overrules() && reading.margin > 0.0);
    }

    #[tokio::test]
    async fn the_prompt_states_the_request_and_scores_are_remembered() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let model: DynLanguageModel = Arc::new(
            ScriptedModel::from_fn(|_| Ok(String::new())).scoring(move |m, reply| {
                log.lock()
                    .unwrap()
                    .push(format!("{}|{reply}", m[0].content));
                -2.0
            }),
        );
        let mut reader =
            Reader::new(model, "teach yourself to double a number.", "double").unwrap();
        let partings = [
            parting(json!([3]), json!(6), json!(9)),
            parting(json!([5]), json!(10), json!(15)),
        ];
        let first = reader.weigh(&partings, 1).await.unwrap().unwrap();
        let again = reader.weigh(&partings, 1).await.unwrap().unwrap();
        assert_eq!((first.weighed, first.margin), (again.weighed, again.margin));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "each assert is scored once: {seen:?}");
        assert_eq!(
            seen[0],
            "Write asserts for a Python function `double` that does this: double a number.|```python\nassert double(3) == 6\n```"
        );
    }

    #[tokio::test]
    async fn a_model_that_cannot_score_has_no_reader_and_long_asserts_are_not_read() {
        let plain: DynLanguageModel = Arc::new(ScriptedModel::from_fn(|_| Ok(String::new())));
        assert!(Reader::new(plain, "double a number", "double").is_none());
        let mut reader = Reader::new(counts_words(), "count the words", "count_words").unwrap();
        let long = "word ".repeat(100);
        let partings = [parting(json!([long]), json!(100), json!(4))];
        assert!(reader.weigh(&partings, 1).await.unwrap().is_none());
    }
}
