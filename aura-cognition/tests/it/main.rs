//! The LanguageModel port's backends, the cascade, the planner and the context ingestor.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod cascade;
mod cascade_cem;
mod cascade_local;
mod cascade_plan;
mod context;
mod local_model;
mod ollama_live;
mod ollama_replay;
