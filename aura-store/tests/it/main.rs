//! The store backends: the conformance suite on SQLite and on recorded ArangoDB exchanges.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod arango;
mod sqlite;
mod throughput;
