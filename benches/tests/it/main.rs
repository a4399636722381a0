//! The benches crate's tests, one binary (a module per concern).

mod answer;
mod curriculum;
mod fuzz_corpus;
mod kill_loop;
mod rounds;
mod soak;
