//! The HTTP API gateway (feature `gateway`): a thin axum layer over [`Runtime`].
//!
//! Every behaviour lives in the runtime; the gateway only parses requests, checks the
//! bearer token, maps [`crate::Error`] to HTTP statuses with a stable JSON error shape,
//! and streams the monologue (the components' tracing events) as server-sent events.
//!
//! A host app mounts [`router`] inside its own axum app; the `gateway` example serves it
//! with [`Gateway::bind`] and [`Gateway::serve`], which refuse a non-loopback address
//! without a token.
//!
//! ```no_run
//! # async fn run() -> aura_core::Result<()> {
//! use aura_core::gateway::{Gateway, GatewayConfig};
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

mod error;
mod monologue;
mod openapi;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

pub use error::{ApiError, ErrorBody};
pub use monologue::{Monologue, MonologueEvent, MonologueLayer};
pub use openapi::{document as openapi, ROUTES};

use crate::{Error, Result, Runtime};

/// The gateway's address when none is configured: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The largest request body accepted when none is configured, in KiB.
pub const DEFAULT_MAX_BODY_KB: usize = 64;

/// Settings of the gateway.
///
/// Precedence is the runtime's: what the host sets here, then the environment, then
/// `.env`, then the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Where to listen (`AURA_GATEWAY_ADDR`, default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// The bearer token every route but health requires (`AURA_GATEWAY_TOKEN`); `None`
    /// leaves the routes open, which [`Gateway::bind`] allows on loopback only.
    pub token: Option<String>,
    /// The largest request body accepted, in bytes (`AURA_GATEWAY_MAX_BODY_KB`, default 64 KiB).
    pub max_body_bytes: usize,
    /// Where `GET /v1/events` reads the monologue from; `None` serves an empty stream.
    pub monologue: Option<Monologue>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_KB << 10,
            monologue: None,
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
        if let Some(kb) =
            get("AURA_GATEWAY_MAX_BODY_KB").and_then(|v| v.trim().parse::<usize>().ok())
        {
            c.max_body_bytes = kb.clamp(1, 64 << 10) << 10;
        }
        c
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
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) runtime: Runtime,
    pub(crate) monologue: Option<Monologue>,
    token: Option<Arc<[u8]>>,
}

/// The gateway's routes over `runtime`, ready to be served or nested in a host app.
///
/// With `config.token` unset the routes are open: a host that mounts this router
/// elsewhere is responsible for not exposing it.
pub fn router(runtime: Runtime, config: GatewayConfig) -> Router {
    let state = AppState {
        runtime,
        monologue: config.monologue.clone(),
        token: config.token.as_deref().map(|t| Arc::from(t.as_bytes())),
    };
    let protected = routes::protected()
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(routes::open())
        .merge(protected)
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Refuses a request without the configured bearer token (constant-time comparison).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = presented.is_some_and(|p| {
        use subtle::ConstantTimeEq;
        // Lengths are compared in the clear: the token's length is not the secret.
        p.len() == expected.len() && bool::from(p.as_bytes().ct_eq(expected))
    });
    if ok {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        if presented.is_some() {
            "the bearer token is wrong"
        } else {
            "this route needs `Authorization: Bearer <AURA_GATEWAY_TOKEN>`"
        },
    )
    .into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// One `Gateway` line per request: method, path, status and latency.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::warn!(target: "Gateway", %method, %path, status, ms, "request failed");
    } else {
        tracing::debug!(target: "Gateway", %method, %path, status, ms, "request");
    }
    response
}

/// A gateway bound to its address, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl Gateway {
    /// Binds `config.addr`, refusing a non-loopback address when no token is configured.
    pub async fn bind(runtime: Runtime, config: GatewayConfig) -> Result<Self> {
        if config.token.is_none() && !config.addr.ip().is_loopback() {
            return Err(Error::Invalid(format!(
                "refusing to listen on {} without a token: set AURA_GATEWAY_TOKEN, \
                 or listen on a loopback address such as {DEFAULT_ADDR}",
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
        if config.token.is_none() {
            tracing::warn!(target: "Gateway", %addr, "no AURA_GATEWAY_TOKEN: the API is open to local users");
        }
        Ok(Self {
            listener,
            router: router(runtime, config),
            addr,
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
        tracing::info!(target: "Gateway", addr = %self.addr, "listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Unavailable {
                port: "gateway",
                message: e.to_string(),
            })
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
            _ => None,
        });
        assert_eq!(c.addr, "0.0.0.0:9000".parse().unwrap_or(c.addr));
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.token, None, "a blank token is no token");
        assert_eq!(c.max_body_bytes, 2048);
        let d =
            GatewayConfig::from_lookup(|k| (k == "AURA_GATEWAY_ADDR").then(|| "nonsense".into()));
        assert_eq!(d.addr.to_string(), DEFAULT_ADDR);
    }
}
