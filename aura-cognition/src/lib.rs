//! # aura-cognition
//!
//! The minds of AURA: the [`LanguageModel`] port that every persona talks through,
//! and (in later modules) the persona cascade and the real-time context ingestor.

mod error;
mod model;
#[cfg(any(test, feature = "test-utils"))]
mod scripted;

pub use error::{Error, Result};
pub use model::*;
#[cfg(any(test, feature = "test-utils"))]
pub use scripted::ScriptedModel;
