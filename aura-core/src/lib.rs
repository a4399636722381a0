//! # aura-core
//!
//! The object machine (built in the foundation issue).
