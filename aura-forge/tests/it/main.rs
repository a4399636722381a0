//! Curation, registration and promotion, and the forge backends.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod common;

mod curate;
mod local_forge;
mod register;
mod unsloth_forge;
