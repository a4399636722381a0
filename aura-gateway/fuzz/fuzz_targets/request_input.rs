//! How a `request` fuzz input becomes a request, and the router it goes through. Shared
//! by the fuzz target and, through `#[path]`, by the corpus replay in aura-benches'
//! tests, so both run exactly the same thing.

use std::sync::Arc;

use aura_core::cognition::ContextIngestor;
use aura_core::Runtime;
use aura_sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};
use aura_store::SqliteStore;
use axum::body::Body;
use axum::http::{Method, Request};

/// A sandbox that is never there: a call is refused as `Unavailable`.
#[derive(Debug)]
struct Absent;

#[async_trait::async_trait]
impl Sandbox for Absent {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("absent")
    }
    async fn execute(&self, _: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        Err(aura_sandbox::Error::Unavailable(
            "fuzzing: no sandbox".into(),
        ))
    }
}

/// The whole router over a fresh in-memory store, with no sandbox (a call gets 503), no
/// model (a message in words gets 503) and no context providers (an offline HTTP
/// provider's timeout would cost seconds per message in words).
pub async fn fresh_router() -> axum::Router {
    let runtime = Runtime::builder()
        .store(Arc::new(
            SqliteStore::open_in_memory().await.expect("store"),
        ))
        .sandbox(Arc::new(Absent))
        .without_model()
        .without_forge()
        .context(Arc::new(ContextIngestor::builder().build()))
        .build()
        .await
        .expect("runtime");
    aura_gateway::router(runtime, aura_gateway::GatewayConfig::default())
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// `[method and content-type byte] path-and-query '\n' body` as a request; `None` when
/// the path is not UTF-8 or not a URI.
pub fn request(data: &[u8]) -> Option<Request<Body>> {
    let (&pick, rest) = data.split_first()?;
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (target, body) = rest.split_at(split);
    let body = body.get(1..).unwrap_or_default().to_vec();
    let target = std::str::from_utf8(target).ok()?;
    let mut request = Request::builder().method(METHODS[usize::from(pick % 5)].clone());
    if pick & 0x80 == 0 {
        request = request.header("content-type", "application/json");
    }
    request
        .uri(format!("/{}", target.trim_start_matches('/')))
        .body(Body::from(body))
        .ok()
}
