//! # aura-gateway
//!
//! AURA's HTTP API: a thin axum layer over [`Runtime`], in its own crate so that the
//! core library carries no web stack.
//!
//! Every behaviour lives in the runtime; the gateway only parses requests, checks the
//! bearer token, maps [`aura_core::Error`] to HTTP statuses (by [`aura_core::Error::code`]) with a stable JSON error shape,
//! and streams the monologue (the components' tracing events) as server-sent events.
//!
//! A host app mounts [`router`] inside its own axum app; the `gateway` example serves it
//! with [`Gateway::bind`] and [`Gateway::serve`], which refuse a non-loopback address
//! without a token.
//!
//! ```no_run
//! # async fn run() -> aura_core::Result<()> {
//! use aura_gateway::{Gateway, GatewayConfig};
//! let runtime = aura_core::Runtime::builder().build().await?;
//! let gateway = Gateway::bind(runtime, GatewayConfig::from_env()).await?;
//! println!("listening on {}", gateway.local_addr());
//! gateway.serve().await
//! # }
//! ```
//!
//! Routes (all under `/v1`; every one but `GET /v1/health` needs `Authorization: Bearer <token>`
//! when a token is configured) are listed in [`openapi`], which is also served at
//! `GET /v1/openapi.json`.

mod auth;
mod conn;
mod error;
mod extract;
mod monologue;
mod openapi;
mod routes;
#[cfg(feature = "otel")]
pub mod telemetry;
mod ui;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Extension;
use axum::Router;
use tracing::Instrument as _;

pub use auth::{parse_tokens, required_scope, Scope, ScopedToken};
pub use error::{ApiError, ErrorBody};
pub use monologue::{Monologue, MonologueEvent, MonologueLayer};
pub use openapi::{document as openapi, operations};

use aura_core::{Error, Result, Runtime};

/// The gateway's address when none is configured: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The largest request body accepted when none is configured, in KiB.
pub const DEFAULT_MAX_BODY_KB: usize = 64;
/// How long a connection may take to send a request's headers, when none is configured.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answered keep-alive connection may wait for its next request, when none
/// is configured.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed authentications an address may make in a minute before it is refused for the
/// rest of that minute, when none is configured.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 10;
/// The most connections served at once, when none is configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The most `GET /v1/events` streams open at once, when none is configured.
pub const DEFAULT_MAX_EVENT_STREAMS: usize = 64;
/// Descriptors kept free of connections for the store, the sandbox and the logs.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Settings of the gateway.
///
/// Precedence is the runtime's: what the host sets here, then the environment, then
/// `.env`, then the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Where to listen (`AURA_GATEWAY_ADDR`, default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// A bearer token with every power (`AURA_GATEWAY_TOKEN`, the `admin` scope). With
    /// neither it nor [`GatewayConfig::tokens`] the routes are open, which
    /// [`Gateway::bind`] allows on loopback only.
    pub token: Option<String>,
    /// Bearer tokens with scopes (`AURA_GATEWAY_TOKENS`, `scope:secret,...`): each route
    /// needs its [`Scope`] (see [`required_scope`]).
    pub tokens: Vec<ScopedToken>,
    /// Failed authentications one client address may make in a minute; further
    /// requests from it get 429 for the rest of that minute
    /// (`AURA_GATEWAY_AUTH_FAILURES_PER_MINUTE`, default 10).
    pub auth_failures_per_minute: u32,
    /// Why the configured tokens could not be read; [`Gateway::bind`] refuses to start.
    invalid_tokens: Option<String>,
    /// The largest request body accepted, in bytes (`AURA_GATEWAY_MAX_BODY_KB`, default 64 KiB).
    pub max_body_bytes: usize,
    /// Where `GET /v1/events` reads the monologue from; `None` serves an empty stream.
    pub monologue: Option<Monologue>,
    /// How long a request's headers may take to arrive, from its first byte, or from the
    /// moment a new connection was accepted (`AURA_GATEWAY_HEADER_TIMEOUT_SECS`, default
    /// 10 s): connections that send nothing, or half a request, are closed this soon.
    pub header_timeout: Duration,
    /// How long an answered keep-alive connection may wait for its next request's first
    /// byte (`AURA_GATEWAY_IDLE_TIMEOUT_SECS`, default 30 s).
    pub idle_timeout: Duration,
    /// The most connections served at once (`AURA_GATEWAY_MAX_CONNECTIONS`, default
    /// 4,096, and never more than the open-files limit allows); further ones wait in the
    /// listen backlog until one closes.
    pub max_connections: usize,
    /// The most `GET /v1/events` streams open at once (`AURA_GATEWAY_MAX_EVENT_STREAMS`,
    /// default 64); another is refused with 503.
    pub max_event_streams: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            tokens: Vec::new(),
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            invalid_tokens: None,
            max_body_bytes: DEFAULT_MAX_BODY_KB << 10,
            monologue: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_event_streams: DEFAULT_MAX_EVENT_STREAMS,
        }
    }
}

impl GatewayConfig {
    /// The defaults, overridden by `.env` and then by the process environment.
    pub fn from_env() -> Self {
        // A missing .env is normal; a malformed one is reported but not fatal.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                tracing::warn!(target: "Gateway", "ignoring unreadable .env: {e}");
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The defaults, overridden by whatever `get` returns for each variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut c = Self::default();
        if let Some(addr) = get("AURA_GATEWAY_ADDR") {
            match addr.trim().parse() {
                Ok(a) => c.addr = a,
                Err(e) => tracing::warn!(target: "Gateway",
                    "AURA_GATEWAY_ADDR={addr:?} is not host:port ({e}); using {DEFAULT_ADDR}"),
            }
        }
        c.token = get("AURA_GATEWAY_TOKEN")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if let Some(text) = get("AURA_GATEWAY_TOKENS") {
            match parse_tokens(&text) {
                Ok(tokens) => c.tokens = tokens,
                Err(why) => {
                    tracing::error!(target: "Gateway", "{why}");
                    c.invalid_tokens = Some(why);
                }
            }
        }
        if let Some(kb) =
            get("AURA_GATEWAY_MAX_BODY_KB").and_then(|v| v.trim().parse::<usize>().ok())
        {
            c.max_body_bytes = kb.clamp(1, 64 << 10) << 10;
        }
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(secs) = num("AURA_GATEWAY_HEADER_TIMEOUT_SECS") {
            c.header_timeout = Duration::from_secs(secs.clamp(1, 3600));
        }
        if let Some(secs) = num("AURA_GATEWAY_IDLE_TIMEOUT_SECS") {
            c.idle_timeout = Duration::from_secs(secs.clamp(1, 3600));
        }
        if let Some(n) = num("AURA_GATEWAY_MAX_CONNECTIONS") {
            c.max_connections = n.clamp(1, 1 << 20) as usize;
        }
        if let Some(n) = num("AURA_GATEWAY_MAX_EVENT_STREAMS") {
            c.max_event_streams = n.clamp(1, 1 << 16) as usize;
        }
        if let Some(n) = num("AURA_GATEWAY_AUTH_FAILURES_PER_MINUTE") {
            c.auth_failures_per_minute = u32::try_from(n.clamp(1, 1 << 20)).unwrap_or(1);
        }
        c
    }

    /// Every configured token: [`GatewayConfig::token`] as `admin`, then the scoped ones.
    pub fn all_tokens(&self) -> Vec<ScopedToken> {
        let admin = self.token.iter().map(|secret| ScopedToken {
            scope: Scope::Admin,
            secret: secret.clone(),
        });
        admin.chain(self.tokens.iter().cloned()).collect()
    }

    /// Listens on `addr`.
    #[must_use]
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Requires this bearer token on every route but health.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// Adds a bearer token that may do what `scope` allows.
    #[must_use]
    pub fn scoped_token(mut self, scope: Scope, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.trim().is_empty() {
            self.tokens.push(ScopedToken { scope, secret });
        }
        self
    }

    /// Refuses an address for the rest of a minute after `n` failed authentications.
    #[must_use]
    pub fn auth_failures_per_minute(mut self, n: u32) -> Self {
        self.auth_failures_per_minute = n.max(1);
        self
    }

    /// Accepts request bodies up to `bytes`.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Streams this monologue at `GET /v1/events`.
    #[must_use]
    pub fn monologue(mut self, monologue: Monologue) -> Self {
        self.monologue = Some(monologue);
        self
    }

    /// Closes connections that take longer than this to send a request's headers.
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Closes answered keep-alive connections that wait longer than this for their next
    /// request.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Serves at most this many connections at once.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Keeps at most this many event streams open.
    #[must_use]
    pub fn max_event_streams(mut self, n: usize) -> Self {
        self.max_event_streams = n;
        self
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) runtime: Runtime,
    pub(crate) monologue: Option<Monologue>,
    pub(crate) auth: auth::Auth,
    pub(crate) max_event_streams: usize,
    event_streams: Arc<AtomicUsize>,
    pub(crate) connections: Connections,
}

impl AppState {
    /// How many event streams are open.
    pub(crate) fn event_streams(&self) -> usize {
        self.event_streams.load(Ordering::Relaxed)
    }

    /// A place for one more event stream, held until the stream is dropped; `None` when
    /// all `max_event_streams` are taken.
    pub(crate) fn open_event_stream(&self) -> Option<EventStreamSlot> {
        self.event_streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_event_streams).then_some(n + 1)
            })
            .ok()
            .map(|_| EventStreamSlot(self.event_streams.clone()))
    }
}

/// One open event stream; dropping it frees the place.
pub(crate) struct EventStreamSlot(Arc<AtomicUsize>);

impl Drop for EventStreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connections a [`Gateway`] serves; unmanaged (no count) when a host serves the
/// router itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connections {
    permits: Option<Arc<tokio::sync::Semaphore>>,
    max: usize,
}

impl Connections {
    /// How many are open (`None` when the host serves the router).
    pub(crate) fn open(&self) -> Option<usize> {
        self.permits
            .as_ref()
            .map(|p| self.max.saturating_sub(p.available_permits()))
    }

    /// The cap (`None` when the host serves the router).
    pub(crate) fn max(&self) -> Option<usize> {
        self.permits.as_ref().map(|_| self.max)
    }
}

/// The gateway's routes over `runtime`, ready to be served or nested in a host app.
///
/// With no token configured the routes are open: a host that mounts this router
/// elsewhere is responsible for not exposing it, and for bounding its connections.
pub fn router(runtime: Runtime, config: GatewayConfig) -> Router {
    router_with(runtime, config, Connections::default())
}

fn router_with(runtime: Runtime, config: GatewayConfig, connections: Connections) -> Router {
    let state = AppState {
        runtime,
        monologue: config.monologue.clone(),
        auth: auth::Auth::new(&config.all_tokens(), config.auth_failures_per_minute),
        max_event_streams: config.max_event_streams,
        event_streams: Arc::default(),
        connections,
    };
    // The scope check runs on the routes that need a token, after routing (it reads
    // the matched route) and before any extractor reads the body.
    let protected = routes::protected().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_scope,
    ));
    let (router, api) = openapi::api(protected).split_for_parts();
    router
        .merge(ui::router(state.clone()))
        .route_layer(middleware::from_fn(record_route))
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(Extension(Arc::new(openapi::complete(api))))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One `Gateway` line per request: method, path, status and latency; and the request's
/// span, `http.request` (OpenTelemetry's HTTP server attributes), inside which the
/// handler and the work it spawns run, so a learn cycle's spans are its children.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!(target: "aura", "http.request",
        otel.name = %method, otel.kind = "server", otel.status_code = tracing::field::Empty,
        http.request.method = %method, url.path = %path, http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty);
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
        tracing::warn!(target: "Gateway", %method, %path, status, ms, "request failed");
    } else {
        tracing::debug!(target: "Gateway", %method, %path, status, ms, "request");
    }
    response
}

/// Names the request's span by its route template (`POST /v1/objects/{object}/messages`),
/// known only once the router has matched it.
async fn record_route(request: Request, next: Next) -> Response {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            span.record("http.route", route.as_str());
            let name = format!("{} {}", request.method(), route.as_str());
            span.record("otel.name", name.as_str());
        }
    }
    next.run(request).await
}

/// A gateway bound to its address, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
    deadlines: conn::Deadlines,
    /// One permit per connection served: the cap.
    permits: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
}

impl Gateway {
    /// Binds `config.addr`, refusing a non-loopback address when no token is configured.
    ///
    /// It also raises the process's soft open-files limit to the hard one, and keeps the
    /// connection cap below it.
    pub async fn bind(runtime: Runtime, config: GatewayConfig) -> Result<Self> {
        if let Some(why) = &config.invalid_tokens {
            return Err(Error::Invalid(why.clone()));
        }
        let open = config.all_tokens().is_empty();
        if open && !config.addr.ip().is_loopback() {
            return Err(Error::Invalid(format!(
                "refusing to listen on {} without a token: set AURA_GATEWAY_TOKEN (or \
                 AURA_GATEWAY_TOKENS), or listen on a loopback address such as {DEFAULT_ADDR}",
                config.addr
            )));
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::Unavailable {
                port: "gateway",
                message: format!("cannot listen on {}: {e}", config.addr),
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Unavailable {
            port: "gateway",
            message: e.to_string(),
        })?;
        if open {
            tracing::warn!(target: "Gateway", %addr, "no AURA_GATEWAY_TOKEN or AURA_GATEWAY_TOKENS: the API is open to local users");
        }
        let mut max = config.max_connections.max(1);
        if let Some(soft) = raise_open_files_limit() {
            let fits = soft.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            if max as u64 > fits {
                tracing::warn!(target: "Gateway", requested = max, soft_limit = soft,
                    "AURA_GATEWAY_MAX_CONNECTIONS lowered to {fits} to fit the open-files limit");
                max = usize::try_from(fits).unwrap_or(max);
            }
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(max));
        let connections = Connections {
            permits: Some(permits.clone()),
            max,
        };
        Ok(Self {
            listener,
            deadlines: conn::Deadlines {
                header: config.header_timeout,
                idle: config.idle_timeout,
            },
            router: router_with(runtime, config, connections),
            addr,
            permits,
            max_connections: max,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> Result<()> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (permits, max) = (self.permits, self.max_connections);
        tracing::info!(target: "Gateway", addr = %self.addr, max_connections = max,
            header_timeout_s = self.deadlines.header.as_secs_f64(),
            idle_timeout_s = self.deadlines.idle.as_secs_f64(), "listening");
        // The connection's own watchdog keeps the header and idle deadlines (hyper's
        // header timer also runs while a keep-alive connection idles, so it cannot tell
        // the two apart).
        let http = hyper::server::conn::http1::Builder::new();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = match permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    tracing::warn!(target: "Gateway", max_connections = max,
                        "connection cap reached (AURA_GATEWAY_MAX_CONNECTIONS): new connections wait in the listen backlog until one closes");
                    tokio::select! {
                        p = permits.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => break,
                        },
                        () = &mut shutdown => break,
                    }
                }
            };
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            tokio::spawn(conn::serve_connection(
                stream,
                self.router.clone(),
                http.clone(),
                self.deadlines,
                stopping.clone(),
                permit,
            ));
        }
        // Stop accepting, ask every connection to finish its request and close, and
        // wait until each has given its place back.
        drop(self.listener);
        let _ = stop.send(true);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
        Ok(())
    }
}

/// An accept that failed: a connection reset before it was accepted is skipped; running
/// out of descriptors is logged and waited out, since connections closing free them.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::warn!(target: "Gateway", "cannot accept a connection: {e}; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Raises the soft open-files limit to the hard one (so the connection cap, not the
/// descriptor table, is what bounds connections), logs both, and returns the soft
/// limit in force (`None` when unlimited).
fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let before = getrlimit(Resource::Nofile);
    if before.current == before.maximum {
        tracing::info!(target: "Gateway", soft = %show(before.current), hard = %show(before.maximum),
            "open-files limit");
        return before.current;
    }
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            let after = getrlimit(Resource::Nofile);
            tracing::info!(target: "Gateway", soft = %show(after.current), hard = %show(after.maximum),
                was = %show(before.current), "open-files limit raised to the hard limit");
            after.current
        }
        Err(e) => {
            tracing::warn!(target: "Gateway", soft = %show(before.current), hard = %show(before.maximum),
                "cannot raise the open-files limit: {e}");
            before.current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_configures_the_gateway() {
        let c = GatewayConfig::from_lookup(|k| match k {
            "AURA_GATEWAY_ADDR" => Some("0.0.0.0:9000".into()),
            "AURA_GATEWAY_TOKEN" => Some("  ".into()),
            "AURA_GATEWAY_MAX_BODY_KB" => Some("2".into()),
            "AURA_GATEWAY_HEADER_TIMEOUT_SECS" => Some("3".into()),
            "AURA_GATEWAY_IDLE_TIMEOUT_SECS" => Some("7".into()),
            "AURA_GATEWAY_MAX_CONNECTIONS" => Some("0".into()),
            _ => None,
        });
        assert_eq!(c.addr, "0.0.0.0:9000".parse().unwrap_or(c.addr));
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.token, None, "a blank token is no token");
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.header_timeout, Duration::from_secs(3));
        assert_eq!(c.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.max_connections, 1, "a cap of zero would serve nobody");
        assert_eq!(c.max_event_streams, DEFAULT_MAX_EVENT_STREAMS);
        let d =
            GatewayConfig::from_lookup(|k| (k == "AURA_GATEWAY_ADDR").then(|| "nonsense".into()));
        assert_eq!(d.addr.to_string(), DEFAULT_ADDR);
    }
}
