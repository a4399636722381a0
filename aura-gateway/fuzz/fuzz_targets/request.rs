//! Fuzzes the gateway's request handling end to end, in process: an arbitrary method,
//! path and query, content type and body go through the real router (auth, routing,
//! extractors, handlers) over an in-memory store. A bad request must never get a 5xx:
//! the only 5xx allowed is 503, which a call gets here because the sandbox answers
//! "unavailable" (no jail is forked inside the fuzzer), and a message in words gets
//! because there is no model. Real-time context has no providers: an offline HTTP
//! provider's timeout would cost seconds per message in words.
#![no_main]

use std::sync::{Arc, OnceLock};

use aura_core::cognition::ContextIngestor;
use aura_core::Runtime;
use aura_sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxCapabilities};
use aura_store::SqliteStore;
use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// A sandbox that is never there: a call is refused as `Unavailable`.
#[derive(Debug)]
struct Absent;

#[async_trait::async_trait]
impl Sandbox for Absent {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities::new("absent")
    }
    async fn execute(&self, _: ExecRequest) -> aura_sandbox::Result<ExecOutcome> {
        Err(aura_sandbox::Error::Unavailable("fuzzing: no sandbox".into()))
    }
}

fn setup() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let router = rt.block_on(async {
            let runtime = Runtime::builder()
                .store(Arc::new(SqliteStore::open_in_memory().await.expect("store")))
                .sandbox(Arc::new(Absent))
                .without_model()
                .without_forge()
                .context(Arc::new(ContextIngestor::builder().build()))
                .build()
                .await
                .expect("runtime");
            aura_gateway::router(runtime, aura_gateway::GatewayConfig::default())
        });
        (rt, router)
    })
}

const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];

fuzz_target!(|data: &[u8]| {
    // [method and content-type byte] path-and-query '\n' body
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (target, body) = rest.split_at(split);
    let body = body.get(1..).unwrap_or_default().to_vec();
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let mut request = Request::builder().method(METHODS[usize::from(pick % 5)].clone());
    if pick & 0x80 == 0 {
        request = request.header("content-type", "application/json");
    }
    let Ok(request) = request.uri(format!("/{}", target.trim_start_matches('/'))).body(Body::from(body))
    else {
        return;
    };
    let (rt, router) = setup();
    let status = rt
        .block_on(router.clone().oneshot(request))
        .expect("the router is infallible")
        .status();
    assert!(
        !status.is_server_error() || status.as_u16() == 503,
        "a request got {status}"
    );
});
