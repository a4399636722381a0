//! # aura-store
//!
//! The `Store` port of AURA — objects, method versions, the memory graph, the audit
//! trail and the facets registry — and [`SqliteStore`], its embedded default.
//!

mod error;
mod model;
mod port;

pub use error::{Error, Result};
pub use model::*;
pub use port::{DynStore, Store, StoreCapabilities, StoreExt, Transaction};
