//! The audit trail's vocabulary: every event kind AURA writes, and the payloads of the
//! events that code reads back (curation here, the CLI, the gateway, the benches).
//!
//! Writers build these structs and readers deserialise them, so a field renamed on one
//! side is a compile error instead of a silent miss. The store itself keeps kinds as
//! strings: a host may write kinds of its own beside these.
//!
//! Reading is lenient (`serde(default)` on every field added after the first format,
//! unknown fields ignored), so trails written by earlier versions stay readable; a
//! test reads one.
//!
//! This module lives in the forge because the forge is the trail's main reader, and
//! both the learn cycle (aura-core, above) and curation (here) need one definition.

use std::fmt;

use aura_cognition::{CognitiveStatePacket, MethodCandidate};
use aura_sandbox::TestResult;
use aura_store::{AuditEvent, NewAuditEvent, ObjectId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::register::Evaluation;
use crate::LoraConfig;

/// Every kind of audit event AURA writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A learn cycle committed a method ([`LearnCommitted`]), in the same transaction.
    LearnCommitted,
    /// One candidate of a learn cycle failed ([`LearnAttemptFailed`]).
    LearnAttemptFailed,
    /// A learn cycle refused to commit anything ([`LearnRefused`]).
    LearnRefused,
    /// A conversation turn whose learn was refused ([`ConversationRefused`]).
    ConversationRefused,
    /// A method version written by hand ([`MethodDefined`]), in the same transaction.
    MethodDefined,
    /// An earlier method version made current again ([`MethodRolledBack`]), in the same
    /// transaction.
    MethodRolledBack,
    /// A forge run started ([`ForgeStarted`]).
    ForgeStarted,
    /// A stagnation-triggered run was skipped ([`ForgeSkipped`]).
    ForgeSkipped,
    /// A forge run failed ([`ForgeFailed`]).
    ForgeFailed,
    /// A forge run finished ([`ForgeFinished`]).
    ForgeFinished,
    /// A trained adapter was recorded as a facet ([`ForgeRegistered`]).
    ForgeRegistered,
    /// A facet became its persona's default ([`ForgePromoted`]).
    ForgePromoted,
    /// A promotion was undone ([`ForgeRolledBack`]).
    ForgeRolledBack,
    /// A facet was published to a model server ([`ForgePublished`]).
    ForgePublished,
    /// One expert-iteration round of the forge bench, with its figures (a free-form
    /// report: only people read it).
    ForgeRound,
}

impl EventKind {
    /// Every kind, in catalogue order.
    pub const ALL: [EventKind; 15] = [
        EventKind::LearnCommitted,
        EventKind::LearnAttemptFailed,
        EventKind::LearnRefused,
        EventKind::ConversationRefused,
        EventKind::MethodDefined,
        EventKind::MethodRolledBack,
        EventKind::ForgeStarted,
        EventKind::ForgeSkipped,
        EventKind::ForgeFailed,
        EventKind::ForgeFinished,
        EventKind::ForgeRegistered,
        EventKind::ForgePromoted,
        EventKind::ForgeRolledBack,
        EventKind::ForgePublished,
        EventKind::ForgeRound,
    ];

    /// The kind as the store keeps it, e.g. `learn.committed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::LearnCommitted => "learn.committed",
            EventKind::LearnAttemptFailed => "learn.attempt_failed",
            EventKind::LearnRefused => "learn.refused",
            EventKind::ConversationRefused => "conversation.refused",
            EventKind::MethodDefined => "method.defined",
            EventKind::MethodRolledBack => "method.rolled_back",
            EventKind::ForgeStarted => "forge.started",
            EventKind::ForgeSkipped => "forge.skipped",
            EventKind::ForgeFailed => "forge.failed",
            EventKind::ForgeFinished => "forge.finished",
            EventKind::ForgeRegistered => "forge.registered",
            EventKind::ForgePromoted => "forge.promoted",
            EventKind::ForgeRolledBack => "forge.rolled_back",
            EventKind::ForgePublished => "forge.published",
            EventKind::ForgeRound => "forge.round",
        }
    }

    /// The kind a stored string names, if AURA writes it.
    pub fn parse(kind: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Whether `event` is of this kind.
    pub fn is(self, event: &AuditEvent) -> bool {
        event.kind == self.as_str()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialised as the store spells it (one spelling: [`EventKind::as_str`]).
impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = String::deserialize(deserializer)?;
        EventKind::parse(&kind)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event kind {kind:?}")))
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> String {
        kind.as_str().to_string()
    }
}

/// A payload with its one event kind.
pub trait Payload: Serialize + DeserializeOwned {
    /// The kind of event that carries it.
    const KIND: EventKind;

    /// The event to append: this payload under its kind.
    fn event(&self, object_id: Option<ObjectId>) -> NewAuditEvent {
        // Every payload is plain data (strings, numbers, maps with string keys): it
        // cannot fail to serialise, and `Null` would be an honest record if it did.
        let payload = serde_json::to_value(self).unwrap_or(Value::Null);
        NewAuditEvent::new(Self::KIND, object_id, payload)
    }

    /// Reads `event`'s payload: `None` when it is another kind or unreadable.
    fn read(event: &AuditEvent) -> Option<Self> {
        if !Self::KIND.is(event) {
            return None;
        }
        serde_json::from_value(event.payload.clone()).ok()
    }
}

/// Which check refused a learn cycle's candidate (or the cycle as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The model gave no usable code (a backend error, prose, a cut-off reply).
    Model,
    /// The code does not define the method the call needs (a wrong name or arity).
    Shape,
    /// The static guard refused it; the failure lists the rule ids.
    Guard,
    /// It failed an example the request itself gives.
    Examples,
    /// The call that triggered learning raised.
    Call,
    /// Its answers on the probe inputs: it raised on every one, or gave a kind of
    /// answer the request rules out (a count that says `True`).
    Probes,
    /// It failed one of its own asserts.
    OwnTests,
    /// The winner's tests failed when run again before the commit.
    Tests,
    /// The search as a whole: no candidate won (the reason says why).
    Search,
}

impl Stage {
    /// Every stage, in the order a candidate meets them.
    pub const ALL: [Stage; 9] = [
        Stage::Model,
        Stage::Shape,
        Stage::Guard,
        Stage::Examples,
        Stage::Call,
        Stage::Probes,
        Stage::OwnTests,
        Stage::Tests,
        Stage::Search,
    ];

    /// The stage a trail's string names.
    pub fn parse(stage: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == stage)
    }

    /// The stage as the trail spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Model => "model",
            Stage::Shape => "shape",
            Stage::Guard => "guard",
            Stage::Examples => "examples",
            Stage::Call => "call",
            Stage::Probes => "probes",
            Stage::OwnTests => "own tests",
            Stage::Tests => "tests",
            Stage::Search => "search",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialised as the trail spells it (one spelling: [`Stage::as_str`]).
impl Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stage = String::deserialize(deserializer)?;
        Stage::parse(&stage)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown stage {stage:?}")))
    }
}

/// Why one learn attempt (a candidate, or the search) failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFailure {
    /// Which check refused it.
    pub stage: Stage,
    /// Guard rule ids, when the guard refused it.
    #[serde(default)]
    pub rules: Vec<String>,
    /// What went wrong.
    pub message: String,
}

impl AttemptFailure {
    /// A failure at `stage` with no guard rule.
    pub fn new(stage: Stage, message: impl Into<String>) -> Self {
        Self {
            stage,
            rules: Vec::new(),
            message: message.into(),
        }
    }
}

/// `learn.committed`: the method a learn cycle committed, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnCommitted {
    /// The method's selector.
    pub selector: String,
    /// How many candidates were drawn, the winner's included.
    #[serde(default)]
    pub attempt: u32,
    /// The user's request, as they wrote it.
    #[serde(default)]
    pub request: String,
    /// The committed method.
    pub candidate: MethodCandidate,
    /// Its tests' results, run in the sandbox before the commit.
    pub tests: Vec<TestResult>,
    /// The winner's cascade packet (its `selection` says why it won).
    pub packet: CognitiveStatePacket,
    /// The search's pool, every candidate with its verdict and outputs (for people
    /// and offline study; see `Pool::summary` in aura-core).
    #[serde(default)]
    pub candidates: Value,
}

impl Payload for LearnCommitted {
    const KIND: EventKind = EventKind::LearnCommitted;
}

impl LearnCommitted {
    /// Whether the method was committed with tests that all passed: only those are
    /// worth learning from.
    pub fn tests_passed(&self) -> bool {
        !self.tests.is_empty() && self.tests.iter().all(|t| t.passed)
    }
}

/// `learn.attempt_failed`: one candidate and why it failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnAttemptFailed {
    /// The selector being learned.
    pub selector: String,
    /// The candidate's number in the search, from 1.
    #[serde(default)]
    pub attempt: u32,
    /// Why it failed.
    pub failure: AttemptFailure,
    /// The candidate as the model wrote it.
    #[serde(default)]
    pub candidate: MethodCandidate,
    /// The cascade packet that produced it.
    pub packet: CognitiveStatePacket,
}

impl Payload for LearnAttemptFailed {
    const KIND: EventKind = EventKind::LearnAttemptFailed;
}

/// `learn.refused`: a learn cycle that committed nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnRefused {
    /// The selector it tried to learn.
    pub selector: String,
    /// How many candidates were drawn.
    pub attempts: u32,
    /// Every guard rule that refused a candidate.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Each failed candidate's reason, then the search's own.
    pub failures: Vec<AttemptFailure>,
    /// The search's pool (as in [`LearnCommitted::candidates`]).
    #[serde(default)]
    pub candidates: Value,
}

impl Payload for LearnRefused {
    const KIND: EventKind = EventKind::LearnRefused;
}

/// `conversation.refused`: a turn whose learn was refused (the turn itself is memory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRefused {
    /// What the user said.
    pub message: String,
    /// What the object replied.
    pub reply: String,
}

impl Payload for ConversationRefused {
    const KIND: EventKind = EventKind::ConversationRefused;
}

/// Why a forge run started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ForgeTrigger {
    /// A host asked for it.
    Request,
    /// ALFRED's monitor saw the CEM stagnate.
    Stagnation {
        /// Mean CEM of the window.
        mean: f64,
        /// Cycles in the window.
        window: usize,
        /// The threshold it fell below.
        threshold: f64,
    },
}

/// `forge.started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgeStarted {
    /// The persona's key (lower case).
    pub persona: String,
    /// The facet being trained.
    pub facet: String,
    /// Why the run started.
    pub trigger: ForgeTrigger,
    /// The forge backend that trains it.
    pub backend: String,
    /// Its hyperparameters.
    pub lora: LoraConfig,
}

impl Payload for ForgeStarted {
    const KIND: EventKind = EventKind::ForgeStarted;
}

/// `forge.skipped`: a stagnation-triggered run with nothing to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgeSkipped {
    /// Why it would have run.
    pub trigger: ForgeTrigger,
    /// Why it did not.
    pub reason: String,
}

impl Payload for ForgeSkipped {
    const KIND: EventKind = EventKind::ForgeSkipped;
}

/// `forge.failed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeFailed {
    /// The persona's key.
    pub persona: String,
    /// The facet it was training.
    pub facet: String,
    /// What went wrong.
    pub error: String,
}

impl Payload for ForgeFailed {
    const KIND: EventKind = EventKind::ForgeFailed;
}

/// `forge.finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgeFinished {
    /// The persona's key.
    pub persona: String,
    /// The facet it trained.
    pub facet: String,
    /// Training and validation examples curated.
    pub examples: usize,
    /// The facet against its base, when the trainer measured it.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// Whether the facet now serves its persona.
    pub promoted: bool,
    /// Why it was not promoted, when promotion was asked for and refused.
    #[serde(default)]
    pub not_promoted: Option<String>,
}

impl Payload for ForgeFinished {
    const KIND: EventKind = EventKind::ForgeFinished;
}

/// The dataset a facet was trained on, by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// SHA-256 of the training split.
    pub train_sha256: String,
    /// SHA-256 of the validation split.
    pub validation_sha256: String,
    /// Examples in both splits.
    #[serde(default)]
    pub examples: usize,
}

/// `forge.registered`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgeRegistered {
    /// The facet's name.
    pub facet: String,
    /// The persona's key.
    pub persona: String,
    /// The base model the adapter applies to.
    pub base_model: String,
    /// Where the adapter is.
    pub adapter_path: String,
    /// What it was trained on.
    pub dataset: DatasetRecord,
    /// The facet against its base, when the trainer measured it.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
}

impl Payload for ForgeRegistered {
    const KIND: EventKind = EventKind::ForgeRegistered;
}

/// `forge.promoted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgePromoted {
    /// The facet now serving.
    pub facet: String,
    /// The persona's key.
    pub persona: String,
    /// The evaluation that allowed it.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// The facet it replaced, if any.
    #[serde(default)]
    pub previous: Option<String>,
}

impl Payload for ForgePromoted {
    const KIND: EventKind = EventKind::ForgePromoted;
}

/// `method.defined`: a version written by hand (`Runtime::define_method`), appended in
/// the transaction that stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodDefined {
    /// The method's selector.
    pub selector: String,
    /// The version stored.
    pub version: u32,
}

impl Payload for MethodDefined {
    const KIND: EventKind = EventKind::MethodDefined;
}

/// `method.rolled_back`: an earlier version made current again, as a new version,
/// appended in the transaction that stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodRolledBack {
    /// The method's selector.
    pub selector: String,
    /// The earlier version restored.
    pub from_version: u32,
    /// The new version that carries it.
    pub version: u32,
}

impl Payload for MethodRolledBack {
    const KIND: EventKind = EventKind::MethodRolledBack;
}

/// `forge.rolled_back`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeRolledBack {
    /// The persona's key.
    pub persona: String,
    /// The facet that no longer serves.
    pub facet: String,
    /// The facet serving again, or `None` for the base model.
    #[serde(default)]
    pub restored: Option<String>,
}

impl Payload for ForgeRolledBack {
    const KIND: EventKind = EventKind::ForgeRolledBack;
}

/// `forge.published`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgePublished {
    /// The facet published.
    pub facet: String,
    /// Where it is served (backend, model, route, host).
    pub serving: Value,
}

impl Payload for ForgePublished {
    const KIND: EventKind = EventKind::ForgePublished;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_string() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(EventKind::parse("learn.something_else"), None);
    }

    #[test]
    fn stages_serialise_as_the_trail_spells_them() {
        let f = AttemptFailure::new(Stage::OwnTests, "its own assert fails");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["stage"], "own tests");
        let back: AttemptFailure = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert!(serde_json::from_value::<Stage>(serde_json::json!("sandbox")).is_err());
    }
}
