//! Fuzzes the gateway's request handling end to end, in process: an arbitrary method,
//! path and query, content type and body go through the real router (auth, routing,
//! extractors, handlers) over an in-memory store. A bad request must never get a 5xx:
//! the only 5xx allowed is 503, which a call gets here because the sandbox answers
//! "unavailable" (no jail is forked inside the fuzzer), and a message in words gets
//! because there is no model. Real-time context has no providers: an offline HTTP
//! provider's timeout would cost seconds per message in words.
#![no_main]

use std::cell::RefCell;
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

/// Inputs served by one store before a fresh one replaces it: earlier inputs leave
/// objects and method versions of up to 64 KiB behind, and reading them came to
/// dominate the run (7.8 k executions a second fell to 0.45 k in 15 minutes).
const INPUTS_PER_STORE: u32 = 20_000;

fn tokio() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio")
    })
}

async fn fresh_router() -> axum::Router {
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
}

thread_local! {
    /// The router and how many inputs it has served (libFuzzer runs on one thread).
    static ROUTER: RefCell<Option<(u32, axum::Router)>> = const { RefCell::new(None) };
}

/// The router for the next input: the current one, or a fresh one over a fresh store.
fn router() -> axum::Router {
    ROUTER.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some((served, router)) if *served < INPUTS_PER_STORE => {
                *served += 1;
                router.clone()
            }
            _ => {
                let router = tokio().block_on(fresh_router());
                *slot = Some((1, router.clone()));
                router
            }
        }
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
    let status = tokio()
        .block_on(router().oneshot(request))
        .expect("the router is infallible")
        .status();
    assert!(
        !status.is_server_error() || status.as_u16() == 503,
        "a request got {status}"
    );
});
