//! The guard's rules, its API allowlist, the red-team corpus and the reachability audit.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod api;
mod humaneval;
mod never_panics;
mod reachability;
mod redteam;
mod rules;
