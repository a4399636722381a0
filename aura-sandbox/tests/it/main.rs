//! The jail and Docker sandboxes: conformance, the runtime layer and the code cache.
//!
//! One test binary per crate (each module was its own binary): linking the whole
//! graph, llama.cpp included, once instead of once per file.

mod code_cache;
// The backends' conformance runs need the suite (`--features conformance`), Docker's the
// adapter too (`--all-features`, as CI runs).
#[cfg(all(feature = "conformance", feature = "docker"))]
mod docker;
#[cfg(feature = "conformance")]
mod jail;
mod runtime_layer;
