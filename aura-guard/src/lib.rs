//! # aura-guard
//!
//! The PersistenceGuardian: a static audit of model-written Python (built in the guard issue).
