//! The Composite Entropy Metric (CEM) and the stagnation monitor.
//!
//! # The formula
//!
//! For one cascade cycle, with every part in `[0, 1]`:
//!
//! ```text
//! CEM = w_n·N + w_d·D + w_g·G + w_c·C          (weights sum to 1, so CEM ∈ [0, 1])
//!
//! N  novelty     = 1 − max_{h ∈ history} J(S(out), S(h))   (1 when the history is empty)
//! D  diversity   = mean over persona pairs (i<j) of 1 − J(S(text_i), S(text_j))
//!                  (0 with fewer than two contributions)
//! G  coverage    = grounding rounds that returned ≥ 1 piece of evidence / grounding rounds
//!                  (0 with no rounds)
//! C  complexity  = min(1, k / K) where k counts the code tokens
//!                  def if elif else for while return try except with lambda yield
//!                  in the method source, and K = 20 by default
//! ```
//!
//! `S(t)` is the set of word 3-shingles of `t` (lower-cased alphanumeric words; a text
//! of fewer than three words is one shingle), `J` is Jaccard similarity
//! (|A∩B| / |A∪B|, 1 for two empty sets), `out` is the cycle's final output (the
//! candidate source) and the history is a window of the previous outputs (default 8).
//! Default weights: `w_n = 0.35, w_d = 0.25, w_g = 0.20, w_c = 0.20`.
//!
//! # Stagnation
//!
//! [`StagnationMonitor`]: once at least `window` cycles (default 5) have been recorded,
//! the system is *stagnating* when the mean CEM of the last `window` cycles is below
//! `threshold` (default 0.35).

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// The weights of the four CEM parts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CemWeights {
    /// Weight of novelty against recent history.
    pub novelty: f64,
    /// Weight of diversity across personas.
    pub diversity: f64,
    /// Weight of grounding coverage.
    pub coverage: f64,
    /// Weight of structural complexity of the code.
    pub complexity: f64,
}

impl Default for CemWeights {
    fn default() -> Self {
        Self {
            novelty: 0.35,
            diversity: 0.25,
            coverage: 0.20,
            complexity: 0.20,
        }
    }
}

/// One cycle's CEM with its parts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CemScore {
    /// The weighted sum, in `[0, 1]` when the weights sum to 1.
    pub value: f64,
    /// N: 1 − max Jaccard similarity against the history window.
    pub novelty: f64,
    /// D: mean pairwise Jaccard distance between persona contributions.
    pub diversity: f64,
    /// G: fraction of grounding rounds with evidence.
    pub coverage: f64,
    /// C: normalised count of code tokens, capped at 1.
    pub complexity: f64,
}

/// The inputs of one CEM computation.
#[derive(Clone, Copy, Debug)]
pub struct CemInput<'a> {
    /// The cycle's final output (the candidate source).
    pub output: &'a str,
    /// Previous outputs (most recent last).
    pub history: &'a [String],
    /// Each persona's contribution text.
    pub contributions: &'a [&'a str],
    /// For each grounding round, how many pieces of evidence it returned.
    pub evidence_per_round: &'a [usize],
    /// The code to measure for complexity.
    pub code: &'a str,
}

/// Computes the CEM (see the module docs for the formula).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cem {
    /// The weights.
    pub weights: CemWeights,
    /// K: the code-token count that counts as full complexity.
    pub complexity_cap: usize,
}

impl Default for Cem {
    fn default() -> Self {
        Self {
            weights: CemWeights::default(),
            complexity_cap: 20,
        }
    }
}

impl Cem {
    /// Scores one cycle.
    pub fn score(&self, input: &CemInput<'_>) -> CemScore {
        let novelty = novelty(input.output, input.history);
        let diversity = diversity(input.contributions);
        let coverage = coverage(input.evidence_per_round);
        let complexity = complexity(input.code, self.complexity_cap);
        let w = self.weights;
        CemScore {
            value: w.novelty * novelty
                + w.diversity * diversity
                + w.coverage * coverage
                + w.complexity * complexity,
            novelty,
            diversity,
            coverage,
            complexity,
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The set of word 3-shingles of `text`.
pub fn shingles(text: &str) -> BTreeSet<String> {
    let w = words(text);
    if w.len() < 3 {
        return if w.is_empty() {
            BTreeSet::new()
        } else {
            BTreeSet::from([w.join(" ")])
        };
    }
    w.windows(3).map(|s| s.join(" ")).collect()
}

/// Jaccard similarity of two shingle sets (1 for two empty sets).
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    inter / union
}

/// N: 1 − the highest similarity of `output` to any text in `history`.
pub fn novelty(output: &str, history: &[String]) -> f64 {
    let s = shingles(output);
    let max = history
        .iter()
        .map(|h| jaccard(&s, &shingles(h)))
        .fold(0.0, f64::max);
    1.0 - max
}

/// D: mean pairwise Jaccard distance between texts.
pub fn diversity(texts: &[&str]) -> f64 {
    let sets: Vec<_> = texts.iter().map(|t| shingles(t)).collect();
    let mut total = 0.0;
    let mut pairs = 0usize;
    for (i, a) in sets.iter().enumerate() {
        for b in &sets[i + 1..] {
            total += 1.0 - jaccard(a, b);
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

/// G: the fraction of grounding rounds that returned evidence.
pub fn coverage(evidence_per_round: &[usize]) -> f64 {
    if evidence_per_round.is_empty() {
        return 0.0;
    }
    evidence_per_round.iter().filter(|&&n| n > 0).count() as f64 / evidence_per_round.len() as f64
}

const CODE_TOKENS: [&str; 12] = [
    "def", "if", "elif", "else", "for", "while", "return", "try", "except", "with", "lambda",
    "yield",
];

/// C: `min(1, code tokens / cap)`.
pub fn complexity(code: &str, cap: usize) -> f64 {
    let k = code
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| CODE_TOKENS.contains(w))
        .count();
    if cap == 0 {
        return 0.0;
    }
    (k as f64 / cap as f64).min(1.0)
}

/// Whether the recent cycles look stagnant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Stagnation {
    /// Fewer than `window` cycles recorded.
    Warming {
        /// Cycles recorded so far.
        cycles: usize,
    },
    /// The windowed mean is at or above the threshold.
    Healthy {
        /// Mean CEM of the window.
        mean: f64,
    },
    /// The windowed mean is below the threshold.
    Stagnant {
        /// Mean CEM of the window.
        mean: f64,
    },
}

/// Detects stagnation: mean CEM over the last `window` cycles below `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagnationMonitor {
    window: usize,
    threshold: f64,
    recent: VecDeque<f64>,
}

impl Default for StagnationMonitor {
    fn default() -> Self {
        Self::new(5, 0.35)
    }
}

impl StagnationMonitor {
    /// A monitor over `window` cycles (at least 1) with `threshold`.
    pub fn new(window: usize, threshold: f64) -> Self {
        Self {
            window: window.max(1),
            threshold,
            recent: VecDeque::new(),
        }
    }

    /// Records one cycle's CEM value and says where things stand.
    pub fn record(&mut self, cem: f64) -> Stagnation {
        self.recent.push_back(cem);
        while self.recent.len() > self.window {
            self.recent.pop_front();
        }
        self.state()
    }

    /// Forgets the recorded cycles: the next window starts empty.
    pub fn reset(&mut self) {
        self.recent.clear();
    }

    /// The current state without recording.
    pub fn state(&self) -> Stagnation {
        if self.recent.len() < self.window {
            return Stagnation::Warming {
                cycles: self.recent.len(),
            };
        }
        let mean = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        if mean < self.threshold {
            Stagnation::Stagnant { mean }
        } else {
            Stagnation::Healthy { mean }
        }
    }

    /// Whether the current state is [`Stagnation::Stagnant`].
    pub fn is_stagnant(&self) -> bool {
        matches!(self.state(), Stagnation::Stagnant { .. })
    }
}
