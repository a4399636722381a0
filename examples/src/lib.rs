//! Shared helpers of AURA's example frontends.

/// Human-readable logs to stderr, filtered by `RUST_LOG` (default: AURA's components at info).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,Orchestrator=info,Store=info,Sandbox=info,PersistenceGuardian=info")
    });
    // A second initialisation (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
