//! The binaries as a user runs them: the CLI, --help and the setup scripts.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod cli;
mod help;
mod setup_scripts;
