//! The handlers: each parses its request, calls the runtime and shapes the reply.

use std::convert::Infallible;

use aura_cognition::Persona;
use aura_store::{AuditQuery, EventId, NewObject, Object, ObjectId, Page};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::auth::{forbidden, Granted, Scope};
use super::error::ApiError;
use super::AppState;
use aura_core::{Error, Runtime};

type ApiResult<T> = Result<T, ApiError>;

/// Routes anyone may call.
pub(super) fn open() -> Router<AppState> {
    Router::new().route("/v1/health", get(health))
}

/// Routes that need the bearer token.
pub(super) fn protected() -> Router<AppState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/events", get(events))
        .route("/v1/objects", post(create_object).get(list_objects))
        .route("/v1/objects/{object}", get(get_object))
        .route("/v1/objects/{object}/selectors", get(list_selectors))
        .route("/v1/objects/{object}/messages", post(send_message))
        .route(
            "/v1/objects/{object}/methods/{selector}",
            get(method_versions).put(define_method),
        )
        .route(
            "/v1/objects/{object}/methods/{selector}/rollback",
            post(rollback_method),
        )
        .route("/v1/memory", get(search_memory))
        .route("/v1/audit", get(audit))
        .route("/v1/forge", post(start_forge))
        .route("/v1/facets", get(list_facets))
        .route("/v1/facets/{facet}/promote", post(promote_facet))
        .route("/v1/personas/{persona}/rollback", post(rollback_persona))
}

pub(super) async fn no_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route {} (see GET /v1/openapi.json)", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: HttpMethod, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// An object by id (a UUID) or, failing that, by name.
async fn resolve(runtime: &Runtime, reference: &str) -> Result<Object, Error> {
    if let Ok(id) = reference.parse::<ObjectId>() {
        match runtime.object(id).await {
            Err(Error::NotFound { .. }) => {}
            other => return other,
        }
    }
    runtime.find(reference).await
}

/// Runs `work` on its own task: a long learn cycle neither blocks the connection's task
/// nor is cut short half-way when the client goes away.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| {
            tracing::error!(target: "Gateway", "request task failed: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request's task failed",
            )
        })?
        .map_err(ApiError::from)
}

async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateObject {
    name: String,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    slots: Map<String, Value>,
}

async fn create_object(
    State(state): State<AppState>,
    body: Result<Json<CreateObject>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(body) = body?;
    let mut parents = Vec::with_capacity(body.parents.len());
    for p in &body.parents {
        parents.push(resolve(&state.runtime, p).await?.id);
    }
    let object = state
        .runtime
        .create_object(NewObject {
            id: None,
            name: body.name,
            parents,
            slots: body.slots,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(object)))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    offset: u32,
    limit: Option<u32>,
}

async fn list_objects(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let objects = state
        .runtime
        .store()
        .list_objects(Page {
            offset: params.offset,
            limit,
        })
        .await
        .map_err(Error::from)?;
    // A full page may have a successor; a short one is the last.
    let next = (objects.len() as u32 == limit).then(|| params.offset.saturating_add(limit));
    Ok(Json(json!({ "objects": objects, "next_offset": next })))
}

/// The object with counts of its methods; the selectors themselves are paged at
/// `/v1/objects/{object}/selectors`, so the body stays small however much its
/// ancestors know.
async fn get_object(
    State(state): State<AppState>,
    object: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(reference) = object?;
    let object = resolve(&state.runtime, &reference).await?;
    let view = state.runtime.chain_view(object.id).await?;
    let mut body = serde_json::to_value(&object).map_err(|e| Error::wrap("gateway", e))?;
    if let Value::Object(map) = &mut body {
        map.insert(
            "methods".into(),
            json!({
                "own": view.own().map_or(0, |t| t.len()),
                "responds_to": view.methods.len(),
                "selectors": format!("/v1/objects/{}/selectors", object.id),
            }),
        );
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct SelectorParams {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    #[serde(default)]
    own: bool,
}

async fn list_selectors(
    State(state): State<AppState>,
    object: Result<Path<String>, PathRejection>,
    params: Result<Query<SelectorParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Path(reference) = object?;
    let Query(params) = params?;
    let object = resolve(&state.runtime, &reference).await?;
    let view = state.runtime.chain_view(object.id).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let page = view.selectors(params.own, params.offset, limit);
    Ok(Json(json!({
        "object": object.name,
        "selectors": page.selectors,
        "total": page.total,
        "next_offset": page.next_offset,
    })))
}

/// A message: natural language (`text`) or an explicit call (`selector` and `args`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    text: Option<String>,
    selector: Option<String>,
    #[serde(default)]
    args: Vec<Value>,
}

async fn send_message(
    State(state): State<AppState>,
    Extension(Granted(scope)): Extension<Granted>,
    object: Result<Path<String>, PathRejection>,
    body: Result<Json<Message>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Path(reference) = object?;
    let Json(message) = body?;
    let runtime = state.runtime.clone();
    let object = resolve(&runtime, &reference).await?;
    let may_teach = scope >= Scope::Teach;
    match (message.text, message.selector) {
        (Some(text), None) if message.args.is_empty() => {
            if !may_teach {
                return Err(forbidden(format!(
                    "a message in words may learn a method, so it needs a token with the \
                     `teach` scope; this one has `{scope}` (call a method by selector instead)"
                )));
            }
            let reply = detached(async move { runtime.tell(object.id, &text).await }).await?;
            Ok(Json(json!({ "object": object.name, "reply": reply })))
        }
        (None, Some(selector)) => {
            let sel = selector.clone();
            let value = detached(async move {
                if may_teach {
                    runtime.send(object.id, &sel, message.args).await
                } else {
                    runtime.send_understood(object.id, &sel, message.args).await
                }
            })
            .await?;
            Ok(Json(
                json!({ "object": object.name, "selector": selector, "value": value }),
            ))
        }
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "send either {\"text\": \"...\"} or {\"selector\": \"...\", \"args\": [...]}",
        )),
    }
}

async fn method_versions(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path((reference, selector)) = path?;
    let object = resolve(&state.runtime, &reference).await?;
    let versions = state.runtime.method_versions(object.id, &selector).await?;
    if versions.is_empty() {
        return Err(Error::NotFound {
            kind: "method",
            id: format!("{}.{selector}", object.name),
        }
        .into());
    }
    let current = state
        .runtime
        .store()
        .get_method(object.id, &selector.parse().map_err(Error::from)?)
        .await
        .map_err(Error::from)?
        .map(|m| m.version);
    Ok(Json(
        json!({ "object": object.name, "selector": selector, "current": current, "versions": versions }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefineMethod {
    source: String,
    #[serde(default)]
    doc: String,
}

async fn define_method(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<DefineMethod>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Path((reference, selector)) = path?;
    let Json(body) = body?;
    let object = resolve(&state.runtime, &reference).await?;
    let method = state
        .runtime
        .define_method(object.id, &selector, body.source, body.doc)
        .await?;
    Ok((StatusCode::CREATED, Json(method)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rollback {
    version: u32,
}

async fn rollback_method(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<Rollback>, JsonRejection>,
) -> ApiResult<Json<aura_store::Method>> {
    let Path((reference, selector)) = path?;
    let Json(body) = body?;
    let object = resolve(&state.runtime, &reference).await?;
    Ok(Json(
        state
            .runtime
            .rollback_method(object.id, &selector, body.version)
            .await?,
    ))
}

#[derive(Deserialize)]
struct MemoryParams {
    q: String,
    limit: Option<u32>,
}

async fn search_memory(
    State(state): State<AppState>,
    params: Result<Query<MemoryParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    if params.q.trim().is_empty() {
        return Err(Error::Invalid("the query `q` is empty".into()).into());
    }
    let hits = state
        .runtime
        .store()
        .search_memory(&params.q, params.limit.unwrap_or(10).clamp(1, 100))
        .await
        .map_err(Error::from)?;
    Ok(Json(json!({ "hits": hits })))
}

#[derive(Deserialize)]
struct AuditParams {
    kind: Option<String>,
    object: Option<String>,
    after: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    limit: Option<u32>,
}

async fn audit(
    State(state): State<AppState>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<aura_store::AuditPage>> {
    let Query(params) = params?;
    let object_id = match &params.object {
        Some(reference) => Some(resolve(&state.runtime, reference).await?.id),
        None => None,
    };
    let after = match &params.after {
        Some(a) => Some(a.parse::<EventId>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("`after` must be an event id from a page's `next`, not {a:?}"),
            )
        })?),
        None => None,
    };
    let query = AuditQuery {
        object_id,
        kind: params.kind,
        since: params.since,
        until: params.until,
        after,
        limit: params.limit,
    };
    Ok(Json(
        state
            .runtime
            .store()
            .query_audit(&query)
            .await
            .map_err(Error::from)?,
    ))
}

#[derive(Deserialize)]
struct EventParams {
    /// Only components whose name starts with this (`Cascade`, `Sandbox`, …).
    component: Option<String>,
}

async fn events(
    State(state): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(params) = params?;
    // Each listener holds a connection and a place in the broadcast: bounded, so
    // listeners cannot crowd out the API.
    let Some(slot) = state.open_event_stream() else {
        tracing::warn!(target: "Gateway", max = state.max_event_streams,
            "event stream refused: AURA_GATEWAY_MAX_EVENT_STREAMS reached");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open, the most allowed; try again later",
                state.max_event_streams
            ),
        ));
    };
    let stream = match &state.monologue {
        Some(m) => BroadcastStream::new(m.subscribe()).boxed(),
        // No monologue configured: a stream that stays open and says nothing.
        None => futures::stream::pending().boxed(),
    };
    let filter = params.component;
    let events = stream.filter_map(move |item| {
        // The stream owns its place: it is freed when the client goes away.
        let _slot = &slot;
        let event = match item {
            Ok(e)
                if filter
                    .as_ref()
                    .is_some_and(|f| !e.component.starts_with(f.as_str())) =>
            {
                None
            }
            Ok(e) => Some(
                Event::default()
                    .event("monologue")
                    .id(e.seq.to_string())
                    .json_data(&*e)
                    .unwrap_or_else(|_| Event::default().comment("unserialisable event")),
            ),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(
                Event::default()
                    .event("lagged")
                    .data(json!({ "missed": missed }).to_string()),
            ),
        };
        std::future::ready(event.map(Ok))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The runtime's health ([`Runtime::health`]), plus the gateway's own bounded resources.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.runtime.health().await;
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body =
        serde_json::to_value(&health).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    body["resources"]["connections"] =
        json!({ "open": state.connections.open(), "max": state.connections.max() });
    body["resources"]["event_streams"] =
        json!({ "open": state.event_streams(), "max": state.max_event_streams });
    body["resources"]["auth_failure_addresses"] = json!({
        "tracked": state.auth.tracked_addresses(),
        "max": super::auth::MAX_TRACKED_ADDRESSES,
    });
    (status, Json(body))
}

/// A forge run to start: the persona, and optionally the facet's label, the training
/// steps and whether to promote a facet that earns it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgeBody {
    persona: String,
    label: Option<String>,
    steps: Option<u32>,
    #[serde(default = "yes")]
    promote: bool,
}

fn yes() -> bool {
    true
}

fn persona_of(name: &str) -> Result<Persona, Error> {
    name.parse::<Persona>()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Starts a forge run in the background: 202 with the facet's name; the outcome is in
/// the audit trail (`forge.*`) and the monologue.
async fn start_forge(
    State(state): State<AppState>,
    body: Result<Json<ForgeBody>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(body) = body?;
    let mut request = state.runtime.forge_request(persona_of(&body.persona)?);
    request.label = body.label;
    if let Some(steps) = body.steps {
        if steps == 0 {
            return Err(Error::Invalid("steps must be at least 1".into()).into());
        }
        request.lora.steps = steps;
    }
    request.promote = body.promote;
    let facet = state.runtime.start_forge(request)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "started", "facet": facet,
                     "follow": "/v1/audit?kind=forge.*" })),
    ))
}

/// The facets registry, which facet serves each persona, and the stagnation monitor.
async fn list_facets(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let facets = state.runtime.facets().await?;
    let serving = state.runtime.serving().await?;
    Ok(Json(json!({
        "facets": facets,
        "serving": serving,
        "stagnation": state.runtime.stagnation(),
    })))
}

async fn promote_facet(
    State(state): State<AppState>,
    facet: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(name) = facet?;
    let facet = state.runtime.promote_facet(&name).await?;
    Ok(Json(json!({ "promoted": facet })))
}

async fn rollback_persona(
    State(state): State<AppState>,
    persona: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(persona) = persona?;
    let persona = persona_of(&persona)?;
    let restored = state.runtime.rollback_facet(persona).await?;
    Ok(Json(json!({
        "persona": persona.key(),
        "serving": restored.map(|f| f.name),
    })))
}
