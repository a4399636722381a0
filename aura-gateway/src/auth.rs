//! Who may do what: bearer tokens with scopes, compared in constant time, and a limit
//! on failed attempts per client address.
//!
//! Each route needs one [`Scope`] ([`required_scope`]); a token's scope includes every
//! scope below it (`admin` may do all). With no token configured the routes are open
//! and every request holds `admin` (loopback only, see [`crate::Gateway::bind`]).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// What a token may do; each scope includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Look: objects, methods and their versions, memory, the audit trail, facets, the
    /// monologue and the API document.
    Read,
    /// Use objects: create them and call the methods they understand.
    Call,
    /// Change behaviour: learn (a message in words, or a call that is not understood),
    /// define and roll back methods.
    Teach,
    /// Run the forge, promote facets and roll personas back.
    Admin,
}

impl Scope {
    /// Every scope, weakest first.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Call, Scope::Teach, Scope::Admin];

    /// The scope's name in configuration and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Call => "call",
            Scope::Teach => "teach",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| format!("unknown scope {s:?} (scopes: read, call, teach, admin)"))
    }
}

/// A bearer token and what it may do. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ScopedToken {
    /// What the token may do.
    pub scope: Scope,
    /// The secret a client sends as `Authorization: Bearer <secret>`.
    pub secret: String,
}

impl fmt::Debug for ScopedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedToken")
            .field("scope", &self.scope)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Reads `AURA_GATEWAY_TOKENS`: comma-separated `scope:secret` entries
/// (`read:r-secret,teach:t-secret`). A secret may contain `:`; it may not contain `,`
/// or be blank.
pub fn parse_tokens(text: &str) -> Result<Vec<ScopedToken>, String> {
    let mut tokens = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (scope, secret) = entry
            .split_once(':')
            .ok_or_else(|| format!("AURA_GATEWAY_TOKENS entry {}: expected scope:secret", i + 1))?;
        let scope = scope
            .parse::<Scope>()
            .map_err(|e| format!("AURA_GATEWAY_TOKENS entry {}: {e}", i + 1))?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(format!(
                "AURA_GATEWAY_TOKENS entry {}: the {scope} token is blank",
                i + 1
            ));
        }
        tokens.push(ScopedToken {
            scope,
            secret: secret.to_owned(),
        });
    }
    Ok(tokens)
}

/// The scope a route needs, by method and route template; `None` for a route that is
/// not listed here (refused, so that a new route cannot be open by omission).
pub fn required_scope(method: &Method, route: &str) -> Option<Scope> {
    let scope = match (method.as_str(), route) {
        (
            "GET",
            "/v1/openapi.json"
            | "/v1/events"
            | "/v1/objects"
            | "/v1/objects/{object}"
            | "/v1/objects/{object}/selectors"
            | "/v1/objects/{object}/methods/{selector}"
            | "/v1/memory"
            | "/v1/audit"
            | "/v1/facets",
        ) => Scope::Read,
        // A message in words may learn, so it needs `teach` (the handler checks it);
        // a call by selector needs `call`, and learns only for a `teach` token.
        ("POST", "/v1/objects" | "/v1/objects/{object}/messages") => Scope::Call,
        (
            "PUT" | "POST",
            "/v1/objects/{object}/methods/{selector}"
            | "/v1/objects/{object}/methods/{selector}/rollback",
        ) => Scope::Teach,
        (
            "POST",
            "/v1/forge" | "/v1/facets/{facet}/promote" | "/v1/personas/{persona}/rollback",
        ) => Scope::Admin,
        _ => return None,
    };
    Some(scope)
}

/// The scope the request's token holds, for handlers whose need depends on the body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Granted(pub(crate) Scope);

/// The tokens and the failure limit every protected route checks.
#[derive(Clone)]
pub(crate) struct Auth {
    /// Empty: the routes are open.
    tokens: Arc<[(Scope, Arc<[u8]>)]>,
    failures: Arc<Mutex<Failures>>,
}

impl Auth {
    pub(crate) fn new(tokens: &[ScopedToken], failures_per_minute: u32) -> Self {
        Self {
            tokens: tokens
                .iter()
                .map(|t| (t.scope, Arc::from(t.secret.as_bytes())))
                .collect(),
            failures: Arc::new(Mutex::new(Failures::new(failures_per_minute))),
        }
    }

    /// How many client addresses the failure limit is tracking.
    pub(crate) fn tracked_addresses(&self) -> usize {
        self.failures.lock().map_or(0, |f| f.windows.len())
    }

    /// Whether no token is configured, so that every request holds `admin`.
    pub(crate) fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// How long `ip` must still wait after failing too often; `None` when it may try.
    pub(crate) fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        self.failures.lock().ok()?.blocked(ip, Instant::now())
    }

    /// Counts a failed authentication from `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.record(ip, Instant::now());
        }
    }

    /// The scope `presented` holds: every configured token is compared, in constant
    /// time, so the answer's timing does not say which one (or how much of one) matched.
    pub(crate) fn scope_of(&self, presented: &[u8]) -> Option<Scope> {
        use subtle::ConstantTimeEq;
        let mut best = None;
        for (scope, secret) in self.tokens.iter() {
            // Lengths are compared in the clear: a token's length is not the secret.
            let same = secret.len() == presented.len() && bool::from(secret.ct_eq(presented));
            if same {
                best = best.max(Some(*scope));
            }
        }
        best
    }
}

/// Checks the bearer token against the route's scope: 401 without a valid token, 403
/// when its scope is too weak, 429 while the client's address has failed too often.
pub(crate) async fn require_scope(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &state.auth;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(needed) = required_scope(request.method(), &route) else {
        tracing::error!(target: "Gateway", method = %request.method(), %route,
            "a route without a scope is refused; add it to auth::required_scope");
        return forbidden(format!("{} {route} has no scope", request.method())).into_response();
    };
    if auth.is_open() {
        request.extensions_mut().insert(Granted(Scope::Admin));
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(wait) = client.and_then(|ip| auth.blocked(ip)) {
        return too_many(wait);
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(scope) = presented.and_then(|p| auth.scope_of(p.as_bytes())) else {
        if let Some(ip) = client {
            auth.record_failure(ip);
        }
        return unauthorized(presented.is_some());
    };
    if scope < needed {
        return forbidden(format!(
            "{} {route} needs a token with the `{needed}` scope; this one has `{scope}`",
            request.method()
        ))
        .into_response();
    }
    request.extensions_mut().insert(Granted(scope));
    next.run(request).await
}

fn unauthorized(presented: bool) -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        if presented {
            "the bearer token is wrong"
        } else {
            "this route needs `Authorization: Bearer <token>` (AURA_GATEWAY_TOKEN or AURA_GATEWAY_TOKENS)"
        },
    )
    .into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// 403 `forbidden`: a token whose scope is too weak for what it asked.
pub(crate) fn forbidden(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", why)
}

pub(crate) fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failures",
        format!("too many failed authentications from this address; try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, v);
    }
    response
}

/// How long a window of failures lasts.
const WINDOW: Duration = Duration::from_secs(60);
/// The most addresses tracked at once; beyond it the oldest window is dropped, so a
/// flood from many addresses cannot grow the map without bound.
pub(crate) const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Failed authentications per client address, in fixed one-minute windows. An address
/// that reaches the limit is refused (429, before its token is even read) until its
/// window ends.
struct Failures {
    limit: u32,
    windows: HashMap<IpAddr, (Instant, u32)>,
}

impl Failures {
    fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            windows: HashMap::new(),
        }
    }

    /// How long `ip` must still wait, if it is refused at `now`.
    fn blocked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let (start, failures) = *self.windows.get(&ip)?;
        let left = WINDOW.checked_sub(now.saturating_duration_since(start));
        match left {
            Some(left) if failures >= self.limit => Some(left),
            Some(_) => None,
            None => {
                self.windows.remove(&ip);
                None
            }
        }
    }

    fn record(&mut self, ip: IpAddr, now: Instant) {
        if !self.windows.contains_key(&ip) && self.windows.len() >= MAX_TRACKED_ADDRESSES {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if self.windows.len() >= MAX_TRACKED_ADDRESSES {
                let oldest = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| w.0)
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    self.windows.remove(&oldest);
                }
            }
        }
        let window = self.windows.entry(ip).or_insert((now, 0));
        if now.duration_since(window.0) >= WINDOW {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        if window.1 == self.limit {
            tracing::warn!(target: "Gateway", client = %ip, failures = window.1,
                "too many failed authentications; refusing this address for the rest of the minute");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_with_their_scopes_and_bad_entries_name_the_setting() {
        let t = parse_tokens(" read:r1 , teach:t:2,, admin:a ").unwrap();
        assert_eq!(
            t.iter()
                .map(|t| (t.scope, t.secret.as_str()))
                .collect::<Vec<_>>(),
            [
                (Scope::Read, "r1"),
                (Scope::Teach, "t:2"),
                (Scope::Admin, "a")
            ]
        );
        for (bad, says) in [
            ("read", "expected scope:secret"),
            ("write:x", "unknown scope"),
            ("call:  ", "blank"),
        ] {
            let e = parse_tokens(bad).unwrap_err();
            assert!(
                e.contains("AURA_GATEWAY_TOKENS") && e.contains(says),
                "{bad}: {e}"
            );
        }
        assert!(
            !format!("{:?}", t[0]).contains("r1"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn every_documented_route_has_a_scope_and_scopes_are_ordered() {
        for (method, path) in crate::operations() {
            let method: Method = method.to_uppercase().parse().unwrap();
            if path == "/v1/health" {
                continue; // open
            }
            assert!(
                required_scope(&method, &path).is_some(),
                "{method} {path} has no scope"
            );
        }
        assert!(Scope::Read < Scope::Call && Scope::Call < Scope::Teach);
        assert!(Scope::Teach < Scope::Admin);
        assert_eq!(required_scope(&Method::DELETE, "/v1/objects"), None);
    }

    #[test]
    fn the_strongest_matching_token_wins() {
        let auth = Auth::new(
            &parse_tokens("read:same,admin:same,call:other").unwrap(),
            10,
        );
        assert_eq!(auth.scope_of(b"same"), Some(Scope::Admin));
        assert_eq!(auth.scope_of(b"other"), Some(Scope::Call));
        assert_eq!(auth.scope_of(b"othe"), None);
        assert_eq!(auth.scope_of(b""), None);
    }

    #[test]
    fn failures_block_an_address_for_the_rest_of_its_window_and_the_map_is_bounded() {
        let mut f = Failures::new(3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        for _ in 0..2 {
            f.record(ip, now);
            assert_eq!(f.blocked(ip, now), None);
        }
        f.record(ip, now);
        assert!(f.blocked(ip, now).is_some_and(|d| d <= WINDOW));
        assert_eq!(
            f.blocked([10, 0, 0, 2].into(), now),
            None,
            "other addresses are free"
        );
        // A window that ended is forgotten.
        let mut g = Failures::new(1);
        g.record(ip, now);
        assert!(g.blocked(ip, now).is_some());
        assert_eq!(g.blocked(ip, now + WINDOW + Duration::from_secs(1)), None);
        assert!(g.windows.is_empty());
        let mut many = Failures::new(1);
        for i in 0..(MAX_TRACKED_ADDRESSES + 5) {
            let ip = IpAddr::from(u32::try_from(i).unwrap().to_be_bytes());
            many.record(ip, now);
        }
        assert_eq!(many.windows.len(), MAX_TRACKED_ADDRESSES);
    }
}
