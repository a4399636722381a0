//! The `CognitiveStatePacket`: everything one cascade cycle saw and said.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::{Sampling, Selection};
use serde_json::Value;

use crate::cascade::types::{CheckVerdict, Evidence, LearnMandate, MethodCandidate};
use crate::cem::CemScore;
use crate::context::RealTimeContextFractal;
use crate::{Persona, Usage};

/// Which personas run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CascadeMode {
    /// BRICK → ROBIN → (early-exit check) → BABS → ALFRED.
    #[default]
    Full,
    /// Fast path: only ALFRED, producing the candidate directly.
    Single,
}

/// One persona's step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonaContribution {
    /// Who spoke.
    pub persona: Persona,
    /// The model that answered.
    pub model: String,
    /// The reply text (empty when the call failed).
    pub text: String,
    /// The reply's JSON, for personas asked for structured output.
    pub structured: Option<Value>,
    /// The error, when the step failed (the cascade goes on where it can).
    pub error: Option<String>,
    /// Model calls made (2 after a repair round).
    pub attempts: u32,
    /// Token counts and backend timings, summed over attempts.
    pub usage: Usage,
    /// Wall time spent waiting for the model, in microseconds.
    pub model_us: u64,
    /// Wall time of the whole step (prompt building, model, parsing), in microseconds.
    pub step_us: u64,
}

/// One grounding query against memory and what it returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundingRound {
    /// The step it followed; `None` for the round on the mandate itself.
    pub after: Option<Persona>,
    /// The query sent.
    pub query: String,
    /// New evidence (not seen in earlier rounds).
    pub evidence: Vec<Evidence>,
    /// The error, when the grounding port failed (the cycle goes on).
    pub error: Option<String>,
    /// Wall time in microseconds.
    pub elapsed_us: u64,
}

/// A running verdict recorded during the cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The step it followed.
    pub after: Persona,
    /// What the candidate check said.
    pub outcome: CheckVerdict,
    /// Whether the cascade stopped early because of it.
    pub early_exit: bool,
    /// Wall time of the check in microseconds.
    pub elapsed_us: u64,
}

/// Where the cycle's time went, in microseconds.
///
/// `orchestration_us = total_us − model_us − context_us − grounding_us − check_us` is
/// what the cascade itself costs; [`PacketTiming::overhead_ratio`] is that over total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketTiming {
    /// The whole cycle.
    pub total_us: u64,
    /// Waiting for models.
    pub model_us: u64,
    /// Assembling the real-time context.
    pub context_us: u64,
    /// Grounding queries.
    pub grounding_us: u64,
    /// Candidate checks.
    pub check_us: u64,
    /// Everything else: the cascade's own overhead.
    pub orchestration_us: u64,
}

impl PacketTiming {
    /// Orchestration overhead as a fraction of the total (0 for an empty cycle).
    pub fn overhead_ratio(&self) -> f64 {
        if self.total_us == 0 {
            0.0
        } else {
            self.orchestration_us as f64 / self.total_us as f64
        }
    }
}

/// Everything one cascade cycle saw and said; serialised into the audit trail.
///
/// Reading is lenient (`#[serde(default)]`): a field a trail written by an earlier
/// version lacks takes its default, so old cycles stay curatable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CognitiveStatePacket {
    /// When the cycle started.
    pub started_at: DateTime<Utc>,
    /// The mandate.
    pub mandate: LearnMandate,
    /// Which personas were asked to run.
    pub mode: CascadeMode,
    /// The real-time context injected into the first persona's prompt.
    pub context: Option<RealTimeContextFractal>,
    /// Each persona's step, in order.
    pub contributions: Vec<PersonaContribution>,
    /// Each grounding round, in order (the mandate's first).
    pub grounding: Vec<GroundingRound>,
    /// Running verdicts (candidate checks).
    pub verdicts: Vec<Verdict>,
    /// The persona whose candidate was chosen.
    pub decided_by: Option<Persona>,
    /// The final candidate.
    pub candidate: Option<MethodCandidate>,
    /// The cycle's Composite Entropy Metric.
    pub cem: Option<CemScore>,
    /// Where the time went.
    pub timing: PacketTiming,
    /// The seed and temperature of this draw, when it is one of a search's samples.
    #[serde(default)]
    pub sampling: Option<Sampling>,
    /// How the search chose this candidate (set on the committed cycle's packet).
    #[serde(default)]
    pub selection: Option<Selection>,
}

impl CognitiveStatePacket {
    /// All evidence gathered so far, in order.
    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.grounding.iter().flat_map(|r| r.evidence.iter())
    }

    /// The personas that ran, in order.
    pub fn personas(&self) -> Vec<Persona> {
        self.contributions.iter().map(|c| c.persona).collect()
    }

    /// The packet as JSON (for the audit trail).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
