//! The runtime end to end: objects, dispatch, the learn cycle, conversation, the forge loop and the gateway.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod common;

mod call_graph;
mod forge_local;
mod forge_loop;
mod jail_dispatch;
mod learn_cycle;
mod learn_failures;
mod learn_local;
mod model_backends;
mod object_machine;
mod ollama_publish;
mod scenarios;
