//! Shared helpers of AURA's example frontends.

/// Human-readable logs to stderr, filtered by `RUST_LOG` (default: AURA's components
/// at info, so the learn cycle's monologue is visible).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "warn,Orchestrator=info,Cascade=info,Cascade.BRICK=debug,Cascade.ROBIN=debug,\
             Cascade.BABS=debug,Cascade.ALFRED=debug,PersistenceGuardian=info,Sandbox=info,\
             Store=info,ContextIngestor=info",
        )
    });
    // A second initialisation (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}
