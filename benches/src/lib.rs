//! Shared fixtures for AURA's criterion benchmarks (the benches live in `benches/benches/`).

use async_trait::async_trait;
use aura_sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};

/// A sandbox that refuses to run anything: for benches that never execute a method.
#[derive(Debug)]
pub struct NullSandbox;

#[async_trait]
impl Sandbox for NullSandbox {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("null")
    }

    async fn execute(&self, _request: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        Err(aura_sandbox::Error::Unavailable(
            "the null sandbox runs nothing".into(),
        ))
    }
}
