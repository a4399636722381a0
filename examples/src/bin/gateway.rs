//! The API gateway server: the runtime on the embedded defaults, served over HTTP.
//!
//! Settings come from the flags, then the environment, then `.env`, then the defaults
//! (see README: Configuration). The token is read from `AURA_GATEWAY_TOKEN` only, never
//! from a flag, so it does not show in the process list.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aura_gateway::{Gateway, GatewayConfig};
use clap::Parser;

/// Serve AURA's HTTP API (routes under /v1; see GET /v1/openapi.json).
#[derive(Parser, Debug)]
#[command(name = "gateway", version)]
struct Args {
    /// Address to listen on [env: AURA_GATEWAY_ADDR; default 127.0.0.1:8080].
    /// A non-loopback address needs AURA_GATEWAY_TOKEN.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Largest request body, in KiB [env: AURA_GATEWAY_MAX_BODY_KB; default 64].
    #[arg(long)]
    max_body_kb: Option<usize>,
    /// Directory of the JSON log file aura_core.log [env: AURA_LOG_DIR; default logs].
    #[arg(long)]
    log_dir: Option<PathBuf>,
    #[command(flatten)]
    models: aura_examples::ModelArgs,
}

/// jemalloc for the server's own allocations: under the soak's load glibc's malloc kept
/// the high-water mark of every burst (resident memory +6 to +46 % after the first
/// minute of ten, across runs and arena settings), jemalloc returns what it frees (+1 to
/// +7 %; README, "Memory at library size").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve())
}

async fn serve() -> ExitCode {
    let args = Args::parse();
    // `.env` first, so the environment overrides it and the flags override both.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("gateway: ignoring unreadable .env: {e}");
        }
    }
    let log_dir = aura_examples::log_dir(args.log_dir.clone());
    // `_traces` lives until `serve` returns: dropping it sends the spans still queued.
    let (monologue, log_path, _traces) = match aura_examples::init_server_logging(&log_dir) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gateway: cannot open the log in {}: {e}", log_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut config = GatewayConfig::from_env().monologue(monologue);
    if let Some(addr) = args.addr {
        config = config.addr(addr);
    }
    if let Some(kb) = args.max_body_kb {
        config = config.max_body_bytes(kb.max(1) << 10);
    }
    let runtime = match aura_examples::open_runtime(&args.models).await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot open the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let gateway = match Gateway::bind(runtime, config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(target: "Gateway", addr = %gateway.local_addr(), log = %log_path.display(),
        "AURA gateway ready");
    // Print the address on stdout for scripts (and tests) that start on port 0.
    println!("listening on http://{}", gateway.local_addr());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(target: "Gateway", "shutting down");
    };
    match gateway.serve_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
