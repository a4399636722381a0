//! Fuzzes the gateway's request handling end to end, in process: an arbitrary method,
//! path and query, content type and body go through the real router (auth, routing,
//! extractors, handlers) over an in-memory store (`request_input.rs`). A bad request
//! must never get a 5xx: the only 5xx allowed is 503, which a call gets here because
//! the sandbox answers "unavailable" (no jail is forked inside the fuzzer), and a
//! message in words gets because there is no model.
#![no_main]

mod request_input;

use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Inputs served by one store before a fresh one replaces it, so that the run measures
/// requests rather than one store's growing history (which is how summaries that grew
/// without bound showed up: 7.8 k executions a second fell to 0.45 k in 15 minutes).
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
                let router = tokio().block_on(request_input::fresh_router());
                *slot = Some((1, router.clone()));
                router
            }
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request_input::request(data) else {
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
