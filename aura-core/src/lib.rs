//! # aura-core
//!
//! The object machine of AURA: prototype objects with slots and methods, delegation
//! to ordered parents, message dispatch through the sandbox, and the `doesNotUnderstand`
//! hook, all over the ports of the lower crates (`Store`, `Sandbox`, `LanguageModel`,
//! `Forge`).
//!
//! Every object delegates to a genesis root by default; a selector is resolved along
//! the delegation chain (depth-first, parents in order, cycle-safe, bounded), and the
//! resolution is cached per receiver until a method or parent on its chain changes.
//! Each object's own methods are held once, in a table every chain through it shares.

mod config;
mod conversation;
mod dispatch;
mod error;
pub mod evolution;
mod exemplars;
mod health;
mod learn;
mod library;
#[cfg(feature = "ollama")]
pub mod publish;
mod reading;
mod runtime;
mod search;

pub use config::{CacheLimits, Config, ForgeSettings, ModelChains, ModelSettings, SandboxBackend};
pub use conversation::Reply;
pub use dispatch::{
    CacheStats, ChainMethods, ChainView, MethodTable, SelectorEntry, SelectorPage,
    MAX_DELEGATION_DEPTH,
};
pub use error::{BoxError, Error, Result};
pub use evolution::{ForgeReport, ForgeRequest, ForgeTrigger};
pub use health::{Check, CheckStatus, Checks, Health, Resources, CHECK_TIMEOUT};
pub use learn::{AttemptFailure, LearnRequest, Learned, StoreGrounding};
pub use runtime::{Runtime, RuntimeBuilder};
pub use search::CallOutput;

pub use aura_cognition as cognition;
pub use aura_forge as forge;
pub use aura_guard as guard;
pub use aura_sandbox as sandbox;
pub use aura_store as store;

/// The workspace README, compiled as doc-tests: its `rust` blocks must build as shown
/// (`rust,ignore` ones are skipped), so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
