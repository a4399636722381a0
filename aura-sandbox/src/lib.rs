//! # aura-sandbox
//!
//! The [`Sandbox`] port: every learned method — its tests while it is learned, every
//! later call — runs in isolation behind it.

mod error;
mod port;

pub use error::{Error, Result};
#[cfg(any(test, feature = "test-utils"))]
pub use port::MockSandbox;
pub use port::*;
