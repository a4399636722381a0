//! The benches crate's tests, one binary (a module per concern).

mod curriculum;
mod kill_loop;
mod soak;
mod fuzz_corpus;
