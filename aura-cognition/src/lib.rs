//! # aura-cognition
//!
//! The minds of AURA: the [`LanguageModel`] port that every persona talks through,
//! and (in later modules) the persona cascade and the real-time context ingestor.

pub mod cascade;
pub mod cem;
pub mod context;
mod error;
mod model;
mod persona;
pub mod plan;
#[cfg(any(test, feature = "test-utils"))]
mod scripted;

pub use cascade::{
    CandidateCheck, Cascade, CascadeBuilder, CascadeMode, CascadeOutcome, CheckVerdict,
    CognitiveStatePacket, Evidence, Grounding, KnownMethod, LearnMandate, MethodCandidate,
};
pub use cem::{Cem, CemScore, CemWeights, Stagnation, StagnationMonitor};
pub use context::{
    ContextIngestor, ContextIngestorBuilder, ContextKind, ContextProvider, ContextReading,
    RealTimeContextFractal,
};
pub use error::{Error, Result};
pub use model::*;
pub use persona::{Persona, PersonaConfig, PromptSet, METHOD_CONVENTION, TEST_CONVENTION};
pub use plan::{Plan, PlanContext, Planner};
#[cfg(any(test, feature = "test-utils"))]
pub use scripted::ScriptedModel;
