//! The inspector: HTML pages under `/ui` that show objects, methods, learn cycles,
//! memory, the live monologue and health, for a person rather than a program.
//!
//! - **Auth.** The same tokens as the API. The login form keeps the token in a cookie
//!   that scripts cannot read (`HttpOnly`) and other sites cannot send (`SameSite=Strict`);
//!   a page asked for without it redirects to the login. With no token configured the
//!   pages are open, like the API (loopback only).
//! - **Read-only but one write**: rolling a method back, confirmed on a page of its own
//!   and allowed to a `teach` token only. A form post from another origin is refused.
//! - **Hostile content.** Everything a model or a user wrote is escaped ([`maud`] escapes
//!   every interpolated value), and every page is sent with a Content-Security-Policy
//!   that allows no inline script and no other origin: a method whose source holds
//!   `<script>` shows it as text.
//! - **Bounded.** Every list is paged; no page reads a table whole.
//! - **No JavaScript needed** but for the live monologue, whose one script is served
//!   from here (nothing comes from a CDN, so it works offline).

mod cycles;
mod health;
mod memory;
mod objects;
mod svg;

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use crate::auth::{too_many, Granted, Scope};
use crate::AppState;

/// The cookie that carries the token (hex-encoded, so any token is a valid value).
const COOKIE: &str = "aura_token";
/// How long a login lasts.
const SESSION_SECS: u64 = 12 * 3600;
/// Every page's policy: scripts, styles and requests from this origin only, no inline
/// script or style, no framing, forms posted here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("aura.css");
const MONOLOGUE_JS: &str = include_str!("monologue.js");

/// The inspector's routes, to merge into the gateway's router.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/objects") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/objects") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route(
            "/ui/static/aura.css",
            get(|| async { asset("text/css", STYLE) }),
        )
        .route(
            "/ui/static/monologue.js",
            get(|| async { asset("text/javascript", MONOLOGUE_JS) }),
        )
        .route("/ui/objects", get(objects::list))
        .route("/ui/objects/{object}", get(objects::show))
        .route(
            "/ui/objects/{object}/methods/{selector}",
            get(objects::method),
        )
        .route(
            "/ui/objects/{object}/methods/{selector}/rollback",
            get(objects::confirm_rollback).post(objects::rollback),
        )
        .route("/ui/cycles", get(cycles::list))
        .route("/ui/cycles/{event}", get(cycles::show))
        .route("/ui/memory", get(memory::search))
        .route("/ui/memory/{node}", get(memory::node))
        .route("/ui/monologue", get(monologue))
        .route("/ui/events", get(crate::routes::events))
        .route("/ui/health", get(health::show))
        .route_layer(middleware::from_fn_with_state(state, session))
        .layer(middleware::from_fn(headers))
}

/// Security headers on every inspector response.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `no-referrer` would make browsers send `Origin: null` on the pages' own forms.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Lets a request in with the scope its cookie's token holds, or sends it to the login.
/// A form post must come from this origin; the login form and the static files are open.
async fn session(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Every form post, the login's included, must come from this origin.
    if request.method() != Method::GET && !same_origin(request.headers()) {
        return page_error(
            StatusCode::FORBIDDEN,
            "This form was sent from another site, so it was refused.",
        );
    }
    let path = request.uri().path();
    if path == "/ui/login" || path.starts_with("/ui/static/") {
        return next.run(request).await;
    }
    let scope = if state.auth.is_open() {
        Some(Scope::Admin)
    } else {
        cookie_token(request.headers()).and_then(|t| state.auth.scope_of(t.as_bytes()))
    };
    let Some(scope) = scope else {
        let wanted = request
            .uri()
            .path_and_query()
            .map_or("/ui/objects", |p| p.as_str());
        let to = format!("/ui/login?next={}", percent(wanted));
        return Redirect::to(&to).into_response();
    };
    request.extensions_mut().insert(Granted(scope));
    next.run(request).await
}

/// Whether a state-changing request names this server as its origin (or names none:
/// browsers always send `Origin` on a cross-site form post).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some() && origin_host == host
}

/// The token in the session cookie, when there is one and it decodes.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| unhex(value))
}

fn hex(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Percent-encodes everything but unreserved characters and `/`, for a query value.
fn percent(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// Where to go after logging in: an inspector page, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/ui/objects",
    }
}

#[derive(Deserialize)]
struct NextParam {
    next: Option<String>,
}

async fn login_form(State(state): State<AppState>, Query(q): Query<NextParam>) -> Response {
    if state.auth.is_open() {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    login_page(StatusCode::OK, safe_next(q.next.as_deref()), None)
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let body = html! {
        h1 { "Log in" }
        @if let Some(problem) = problem { p.error { (problem) } }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label for="token" { "Token (AURA_GATEWAY_TOKEN, or one of AURA_GATEWAY_TOKENS)" }
            input #token type="password" name="token" autocomplete="current-password" autofocus;
            button type="submit" { "Log in" }
        }
    };
    (status, layout("Log in", false, body)).into_response()
}

#[derive(Deserialize)]
struct Login {
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<Login>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let ip = client.map(|c| c.0 .0.ip());
    if let Some(wait) = ip.and_then(|ip| state.auth.blocked(ip)) {
        return too_many(wait);
    }
    let token = form.token.trim();
    if !state.auth.is_open() && state.auth.scope_of(token.as_bytes()).is_none() {
        if let Some(ip) = ip {
            state.auth.record_failure(ip);
        }
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is wrong."),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}",
        hex(token)
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("aura_token=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The live monologue: the page lists lines as they arrive (its one script); the
/// filter works without it.
async fn monologue(Query(q): Query<ComponentFilter>) -> Html<String> {
    let component = q.component.unwrap_or_default();
    layout(
        "Monologue",
        true,
        html! {
            h1 { "Monologue" }
            form method="get" action="/ui/monologue" {
                label for="component" { "Component starts with" }
                input #component name="component" value=(component) placeholder="Cascade, Sandbox, Orchestrator…";
                button type="submit" { "Filter" }
            }
            p.muted #status data-component=(component) {
                "Live lines appear here as the runtime writes them (this page's one script). Without it, read "
                code { "GET /v1/events" } "."
            }
            table #monologue {
                thead { tr { th { "#" } th { "time" } th { "level" } th { "component" } th { "message" } } }
                tbody {}
            }
            script src="/ui/static/monologue.js" {}
        },
    )
}

#[derive(Deserialize)]
struct ComponentFilter {
    component: Option<String>,
}

/// A whole page: the navigation and `body`.
fn layout(title: &str, nav: bool, body: Markup) -> Html<String> {
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · AURA inspector" }
                link rel="stylesheet" href="/ui/static/aura.css";
            }
            body {
                @if nav {
                    nav {
                        strong { "AURA" }
                        a href="/ui/objects" { "Objects" }
                        a href="/ui/cycles" { "Learn cycles" }
                        a href="/ui/memory" { "Memory" }
                        a href="/ui/monologue" { "Monologue" }
                        a href="/ui/health" { "Health" }
                        form.logout method="post" action="/ui/logout" { button type="submit" { "Log out" } }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string())
}

/// The inspector's answer to a path it does not serve.
pub(crate) fn not_found(path: &str) -> Response {
    page_error(StatusCode::NOT_FOUND, &format!("There is no page {path}."))
}

/// An error as a page.
fn page_error(status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.error { (message) }
        p { a href="/ui/objects" { "Back to the objects" } }
    };
    (status, layout("Error", true, body)).into_response()
}

/// A page that could not be shown: its status and what to tell the reader, rendered as
/// an error page.
pub(super) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A runtime error, with the status the API would give it.
    fn runtime(e: &aura_core::Error) -> Self {
        Self::new(crate::error::status_of(e), e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        page_error(self.status, &self.message)
    }
}

/// What each page handler returns.
type Page = Result<Html<String>, PageError>;

/// Turns a runtime result into a page or an error page.
trait OrPage<T> {
    fn or_page(self) -> Result<T, PageError>;
}

impl<T> OrPage<T> for aura_core::Result<T> {
    fn or_page(self) -> Result<T, PageError> {
        self.map_err(|e| PageError::runtime(&e))
    }
}

impl<T> OrPage<T> for aura_store::Result<T> {
    fn or_page(self) -> Result<T, PageError> {
        self.map_err(|e| PageError::runtime(&aura_core::Error::from(e)))
    }
}

/// A paging link bar: previous and next as query strings.
fn pager(prev: Option<String>, next: Option<String>) -> Markup {
    html! {
        @if prev.is_some() || next.is_some() {
            p.pager {
                @if let Some(p) = prev { a rel="prev" href=(p) { "← previous" } }
                @if let Some(n) = next { a rel="next" href=(n) { "next →" } }
            }
        }
    }
}

/// A short, human time.
fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// JSON shown as text, pretty, clipped to `max` characters.
fn json_text(v: &serde_json::Value, max: usize) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    clip(&text, max)
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Markup that is already safe: only for the SVG this module draws itself, whose every
/// text went through [`svg::escape`].
fn trusted_svg(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_survive_the_cookie_and_odd_ones_too() {
        for t in ["s3cret", "a;b=c, d\"e", "ünï"] {
            assert_eq!(unhex(&hex(t)).as_deref(), Some(t));
        }
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn login_sends_people_back_to_inspector_pages_only() {
        assert_eq!(safe_next(Some("/ui/objects/a")), "/ui/objects/a");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/v1/objects",
            "/ui\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/objects", "{bad}");
        }
        assert_eq!(
            percent("/ui/objects?q=a b&x"),
            "/ui/objects%3Fq%3Da%20b%26x"
        );
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            same_origin(&h),
            "no Origin: not a browser's cross-site post"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
