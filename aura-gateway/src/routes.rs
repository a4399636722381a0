//! The handlers: each parses its request, calls the runtime and shapes the reply.
//!
//! Each handler's `#[utoipa::path]` names its route, its parameters, its body and the
//! answers particular to it; `utoipa-axum`'s `routes!` registers the handler at that
//! path, so the router and the OpenAPI document are built from the same place (the
//! answers every operation shares are added in [`crate::openapi`]).

use std::convert::Infallible;
use std::sync::Arc;

use aura_cognition::Persona;
use aura_core::{Runtime, SelectorPage};
use aura_store::{
    AuditPage, AuditQuery, EventId, Facet, Method, NewObject, ObjectId, Page, SearchHit, Selector,
};
use axum::extract::{Extension, State};
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{forbidden, Granted, Scope};
use super::error::{ApiError, ErrorResponse};
use super::extract::{whole_u32, whole_u32_opt, ApiJson, ApiPath, ApiQuery};
use super::AppState;
use aura_core::Error;

type ApiResult<T> = Result<T, ApiError>;

/// The store's object under another name: utoipa reads any type whose name is `Object`
/// as "some JSON object", so the real type is named through this alias (its schema is
/// still called `Object`).
type StoredObject = aura_store::Object;

/// Routes anyone may call.
pub(super) fn open() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Routes that need the bearer token.
pub(super) fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .routes(routes!(events))
        .routes(routes!(create_object, list_objects))
        .routes(routes!(get_object))
        .routes(routes!(list_selectors))
        .routes(routes!(send_message))
        .routes(routes!(method_versions, define_method))
        .routes(routes!(rollback_method))
        .routes(routes!(search_memory))
        .routes(routes!(audit))
        .routes(routes!(start_forge))
        .routes(routes!(list_facets))
        .routes(routes!(promote_facet))
        .routes(routes!(rollback_persona))
}

pub(super) async fn no_route(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if uri.path().starts_with("/ui/") {
        // A person followed a link: answer with a page, not JSON.
        return crate::ui::not_found(uri.path());
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route {} (see GET /v1/openapi.json)", uri.path()),
    )
    .into_response()
}

pub(super) async fn method_not_allowed(method: HttpMethod, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// An object by id (a UUID) or, failing that, by name.
pub(crate) async fn resolve(runtime: &Runtime, reference: &str) -> Result<StoredObject, Error> {
    if let Ok(id) = reference.parse::<ObjectId>() {
        match runtime.object(id).await {
            Err(Error::NotFound { .. }) => {}
            other => return other,
        }
    }
    runtime.find(reference).await
}

/// Runs `work` on its own task: a long learn cycle neither blocks the connection's task
/// nor is cut short half-way when the client goes away. It runs in the request's span.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(tracing::Instrument::in_current_span(work))
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

/// The path parameter naming an object.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct ObjectPath {
    /// The object's id (a UUID) or its name.
    object: String,
}

/// The path parameters naming a method.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct MethodPath {
    /// The object's id (a UUID) or its name.
    object: String,
    /// The method's name.
    selector: Selector,
}

/// The document itself, generated from the handlers.
#[utoipa::path(get, path = "/v1/openapi.json",
    responses((status = OK, description = "this OpenAPI 3.1 document", body = Object)))]
async fn openapi(Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json(Value::clone(&doc))
}

/// An object to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateObject {
    /// A unique name: not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// The objects it delegates to, by id or name, in order (default: the root).
    #[serde(default)]
    parents: Vec<String>,
    /// Its data: slot name to JSON value.
    #[serde(default)]
    #[schema(value_type = Object)]
    slots: Map<String, Value>,
}

/// Creates an object; it delegates to the genesis root unless parents are given.
#[utoipa::path(post, path = "/v1/objects", request_body = CreateObject,
    responses(
        (status = CREATED, description = "created", body = StoredObject),
        (status = NOT_FOUND, description = "a parent does not exist", body = ErrorResponse),
        (status = CONFLICT, description = "the name is taken", body = ErrorResponse),
    ))]
async fn create_object(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateObject>,
) -> ApiResult<(StatusCode, Json<StoredObject>)> {
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

/// A page's place: how many to skip and how many to return.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// Skip this many.
    #[serde(default)]
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    offset: u32,
    /// At most this many (clamped to 1..=1000; default 100).
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    limit: Option<u32>,
}

/// A listing's page size: `limit` clamped to 1..=1000, 100 when not given.
fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(100).clamp(1, 1000)
}

/// A page of objects.
#[derive(Serialize, ToSchema)]
struct ObjectList {
    objects: Vec<StoredObject>,
    /// Where the next page starts; null on the last.
    next_offset: Option<u32>,
}

/// Lists objects, oldest first.
#[utoipa::path(get, path = "/v1/objects", params(PageParams),
    responses((status = OK, description = "a page", body = ObjectList)))]
async fn list_objects(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ObjectList>> {
    let limit = page_limit(params.limit);
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
    let next_offset = (objects.len() as u32 == limit).then(|| params.offset.saturating_add(limit));
    Ok(Json(ObjectList {
        objects,
        next_offset,
    }))
}

/// How many methods an object has, and where to page through them.
#[derive(Serialize, ToSchema)]
struct MethodCounts {
    /// Defined on the object itself.
    own: usize,
    /// Visible along its delegation chain.
    responds_to: usize,
    /// The link to the selectors' pages.
    selectors: String,
}

/// An object with counts of its methods.
#[derive(Serialize, ToSchema)]
struct ObjectView {
    #[serde(flatten)]
    object: StoredObject,
    methods: MethodCounts,
}

/// Reads an object, with counts of its methods; the selectors themselves are paged at
/// `/v1/objects/{object}/selectors`, so the body stays small however much its
/// ancestors know.
#[utoipa::path(get, path = "/v1/objects/{object}", params(ObjectPath),
    responses(
        (status = OK, description = "the object", body = ObjectView),
        (status = NOT_FOUND, description = "no such object", body = ErrorResponse),
    ))]
async fn get_object(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ObjectPath>,
) -> ApiResult<Json<ObjectView>> {
    let object = resolve(&state.runtime, &path.object).await?;
    let view = state.runtime.chain_view(object.id).await?;
    let methods = MethodCounts {
        own: view.own().map_or(0, |t| t.len()),
        responds_to: view.methods.len(),
        selectors: format!("/v1/objects/{}/selectors", object.id),
    };
    Ok(Json(ObjectView { object, methods }))
}

/// Which selectors to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SelectorParams {
    /// Skip this many.
    #[serde(default)]
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    offset: u32,
    /// At most this many (clamped to 1..=1000; default 100).
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    limit: Option<u32>,
    /// Only those defined on the object itself (default false).
    #[serde(default)]
    own: bool,
}

/// A page of the selectors an object responds to.
#[derive(Serialize, ToSchema)]
struct SelectorList {
    /// The object's name.
    object: String,
    #[serde(flatten)]
    page: SelectorPage,
}

/// The selectors an object responds to, in name order, each with the nearest object on
/// its chain that defines it.
#[utoipa::path(get, path = "/v1/objects/{object}/selectors", params(ObjectPath, SelectorParams),
    responses(
        (status = OK, description = "a page", body = SelectorList),
        (status = NOT_FOUND, description = "no such object", body = ErrorResponse),
    ))]
async fn list_selectors(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(params): ApiQuery<SelectorParams>,
) -> ApiResult<Json<SelectorList>> {
    let object = resolve(&state.runtime, &path.object).await?;
    let view = state.runtime.chain_view(object.id).await?;
    let limit = page_limit(params.limit);
    let page = view.selectors(params.own, params.offset as usize, limit as usize);
    Ok(Json(SelectorList {
        object: object.name,
        page,
    }))
}

/// A message: words, or an explicit call.
#[derive(Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields, try_from = "RawMessage")]
enum Message {
    /// Words: a request, a question, or "teach yourself to …". It may learn a method,
    /// so it needs the `teach` scope.
    #[schema(title = "Text")]
    Text {
        /// The message; not blank.
        #[schema(min_length = 1, pattern = r"\S")]
        text: String,
    },
    /// A call by selector; a miss is learned first (doesNotUnderstand) when the token
    /// has the `teach` scope.
    #[schema(title = "Call")]
    Call {
        selector: Selector,
        /// The positional arguments (default none).
        #[serde(default)]
        args: Vec<Value>,
    },
}

/// The body as sent, before it is known to be one shape or the other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    text: Option<String>,
    selector: Option<Selector>,
    args: Option<Vec<Value>>,
}

impl TryFrom<RawMessage> for Message {
    type Error = &'static str;

    fn try_from(raw: RawMessage) -> Result<Self, Self::Error> {
        match raw {
            RawMessage {
                text: Some(text),
                selector: None,
                args: None,
            } => Ok(Message::Text { text }),
            RawMessage {
                text: None,
                selector: Some(selector),
                args,
            } => Ok(Message::Call {
                selector,
                args: args.unwrap_or_default(),
            }),
            _ => Err(r#"send either {"text": "..."} or {"selector": "...", "args": [...]}"#),
        }
    }
}

/// What a message got back.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum MessageReply {
    /// The answer to words.
    #[schema(title = "TextReply")]
    Text {
        object: String,
        /// text, plan, value, refused, evidence and context.
        #[schema(value_type = Object)]
        reply: Box<aura_core::Reply>,
    },
    /// What a call returned.
    #[schema(title = "CallReply")]
    Call {
        object: String,
        selector: Selector,
        value: Value,
    },
}

/// Sends a message: words (`text`) or an explicit call (`selector`, `args`).
#[utoipa::path(post, path = "/v1/objects/{object}/messages", params(ObjectPath),
    request_body = Message,
    responses(
        (status = OK, description = "the reply", body = MessageReply),
        (status = NOT_FOUND, description = "no such object", body = ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "does_not_understand, refused, rejected, \
            method_raised, stopped or invalid", body = ErrorResponse),
        (status = SERVICE_UNAVAILABLE, description = "a port (the model, the sandbox, the \
            store) is unavailable", body = ErrorResponse),
    ))]
async fn send_message(
    State(state): State<AppState>,
    Extension(Granted(scope)): Extension<Granted>,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiJson(message): ApiJson<Message>,
) -> ApiResult<Json<MessageReply>> {
    let runtime = state.runtime.clone();
    let object = resolve(&runtime, &path.object).await?;
    let may_teach = scope >= Scope::Teach;
    match message {
        Message::Text { text } => {
            if !may_teach {
                return Err(forbidden(format!(
                    "a message in words may learn a method, so it needs a token with the \
                     `teach` scope; this one has `{scope}` (call a method by selector instead)"
                )));
            }
            let reply = detached(async move { runtime.tell(object.id, &text).await }).await?;
            Ok(Json(MessageReply::Text {
                object: object.name,
                reply: Box::new(reply),
            }))
        }
        Message::Call { selector, args } => {
            let sel = selector.clone();
            let value = detached(async move {
                if may_teach {
                    runtime.send(object.id, sel.as_str(), args).await
                } else {
                    runtime.send_understood(object.id, sel.as_str(), args).await
                }
            })
            .await?;
            Ok(Json(MessageReply::Call {
                object: object.name,
                selector,
                value,
            }))
        }
    }
}

/// Every version of a method.
#[derive(Serialize, ToSchema)]
struct MethodVersions {
    /// The object's name.
    object: String,
    selector: Selector,
    /// The version in use.
    current: Option<u32>,
    /// Oldest first.
    versions: Vec<Method>,
}

/// Every version of a method defined on the object, oldest first, and which is current.
#[utoipa::path(get, path = "/v1/objects/{object}/methods/{selector}", params(MethodPath),
    responses(
        (status = OK, description = "the versions", body = MethodVersions),
        (status = NOT_FOUND, description = "no such object or method", body = ErrorResponse),
    ))]
async fn method_versions(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MethodPath>,
) -> ApiResult<Json<MethodVersions>> {
    let object = resolve(&state.runtime, &path.object).await?;
    let selector = path.selector;
    let (versions, current) = method_history(&state.runtime, &object, &selector).await?;
    Ok(Json(MethodVersions {
        object: object.name,
        selector,
        current,
        versions,
    }))
}

/// Every version of `object`'s own method `selector`, oldest first, and the number of
/// the one in use; `NotFound` when the object defines no such method.
pub(crate) async fn method_history(
    runtime: &Runtime,
    object: &StoredObject,
    selector: &Selector,
) -> Result<(Vec<Method>, Option<u32>), Error> {
    let versions = runtime
        .method_versions(object.id, selector.as_str())
        .await?;
    if versions.is_empty() {
        return Err(Error::NotFound {
            kind: "method",
            id: format!("{}.{selector}", object.name),
        });
    }
    let current = runtime
        .store()
        .get_method(object.id, selector)
        .await?
        .map(|m| m.version);
    Ok((versions, current))
}

/// A method to define by hand.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DefineMethod {
    /// Python source defining `def <selector>(self, …)`; the guard audits it.
    source: String,
    /// What it does, in words.
    #[serde(default)]
    doc: String,
}

/// Defines the next version of a method by hand (the guard audits it first).
#[utoipa::path(put, path = "/v1/objects/{object}/methods/{selector}", params(MethodPath),
    request_body = DefineMethod,
    responses(
        (status = CREATED, description = "stored", body = Method),
        (status = NOT_FOUND, description = "no such object", body = ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "rejected by the guard (details: \
            violations) or not a method of that name", body = ErrorResponse),
    ))]
async fn define_method(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MethodPath>,
    ApiJson(body): ApiJson<DefineMethod>,
) -> ApiResult<(StatusCode, Json<Method>)> {
    let object = resolve(&state.runtime, &path.object).await?;
    let method = state
        .runtime
        .define_method(object.id, path.selector.as_str(), body.source, body.doc)
        .await?;
    Ok((StatusCode::CREATED, Json(method)))
}

/// The version to make current again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rollback {
    /// An earlier version's number.
    #[serde(deserialize_with = "whole_u32")]
    #[schema(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    version: u32,
}

/// Makes an earlier version current again.
#[utoipa::path(post, path = "/v1/objects/{object}/methods/{selector}/rollback",
    params(MethodPath), request_body = Rollback,
    responses(
        (status = OK, description = "the method now current", body = Method),
        (status = NOT_FOUND, description = "no such object, method or version", body = ErrorResponse),
    ))]
async fn rollback_method(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MethodPath>,
    ApiJson(body): ApiJson<Rollback>,
) -> ApiResult<Json<Method>> {
    let object = resolve(&state.runtime, &path.object).await?;
    Ok(Json(
        state
            .runtime
            .rollback_method(object.id, path.selector.as_str(), body.version)
            .await?,
    ))
}

/// A memory search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MemoryParams {
    /// Words to look for; not blank.
    #[param(min_length = 1, pattern = r"\S")]
    q: String,
    /// At most this many (clamped to 1..=100; default 10).
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    limit: Option<u32>,
}

/// Memory nodes that match, best first.
#[derive(Serialize, ToSchema)]
struct MemoryHits {
    hits: Vec<SearchHit>,
}

/// Full-text search of the memory graph, best first.
#[utoipa::path(get, path = "/v1/memory", params(MemoryParams),
    responses((status = OK, description = "nodes with scores", body = MemoryHits)))]
async fn search_memory(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<MemoryParams>,
) -> ApiResult<Json<MemoryHits>> {
    if params.q.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "the query `q` is blank",
        ));
    }
    let hits = state
        .runtime
        .store()
        .search_memory(&params.q, params.limit.unwrap_or(10).clamp(1, 100))
        .await
        .map_err(Error::from)?;
    Ok(Json(MemoryHits { hits }))
}

/// Which audit events to read.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// An event kind; a trailing `*` matches a prefix (`learn.*`).
    kind: Option<String>,
    /// Only events about this object (an id or a name).
    object: Option<String>,
    /// Continue after this event (a page's `next`).
    #[param(value_type = Option<String>, format = Uuid)]
    after: Option<EventId>,
    /// Only events at or after this time (RFC 3339).
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time (RFC 3339).
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many (clamped to 1..=1000; default 100).
    #[param(minimum = 0, maximum = 4_294_967_295_u64, format = Int64)]
    limit: Option<u32>,
}

/// The audit trail, oldest first, paginated: pass a page's `next` as `after`.
#[utoipa::path(get, path = "/v1/audit", params(AuditParams),
    responses(
        (status = OK, description = "a page: `events` and `next`", body = AuditPage),
        (status = NOT_FOUND, description = "no such object", body = ErrorResponse),
    ))]
async fn audit(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let object_id = match &params.object {
        Some(reference) => Some(resolve(&state.runtime, reference).await?.id),
        None => None,
    };
    let query = AuditQuery {
        object_id,
        kind: params.kind,
        since: params.since,
        until: params.until,
        after: params.after,
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

/// Which monologue events to stream.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventParams {
    /// Only components whose name starts with this (`Cascade`, `Sandbox`, …).
    component: Option<String>,
}

/// The monologue, live, as server-sent events: `event: monologue` with JSON data (seq,
/// at, level, component, message, fields), and `event: lagged` when a slow reader
/// missed some.
#[utoipa::path(get, path = "/v1/events", params(EventParams),
    responses(
        (status = OK, description = "an event stream", content_type = "text/event-stream"),
        (status = SERVICE_UNAVAILABLE, description = "too_many_streams: \
            AURA_GATEWAY_MAX_EVENT_STREAMS are open", body = ErrorResponse),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<EventParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
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
#[utoipa::path(get, path = "/v1/health", security(()),
    responses(
        (status = OK, description = "everything configured answers", body = Object),
        (status = SERVICE_UNAVAILABLE, description = "something configured does not answer", body = Object),
    ))]
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

/// A persona named in a request: brick, robin, babs or alfred, in any case.
fn persona_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Persona::ALL.map(Persona::key)))
        .into()
}

fn persona_of(name: &str) -> Result<Persona, Error> {
    name.parse::<Persona>()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// A forge run to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ForgeBody {
    /// Whose facet to train.
    #[schema(schema_with = persona_schema)]
    persona: String,
    /// The facet is named `<persona>:<label>` (default `forge-<UTC time>`).
    #[schema(min_length = 1, pattern = r"^[A-Za-z0-9._-]+$")]
    label: Option<String>,
    /// Optimiser steps (default `AURA_FORGE_STEPS`).
    #[serde(default, deserialize_with = "whole_u32_opt")]
    #[schema(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    steps: Option<u32>,
    /// Promote the facet when it earns it (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    promote: bool,
}

fn yes() -> bool {
    true
}

/// A forge run, started.
#[derive(Serialize, ToSchema)]
struct ForgeStarted {
    /// Always `started`.
    status: &'static str,
    /// The facet the run will register.
    facet: String,
    /// Where its outcome appears.
    follow: &'static str,
}

/// Starts a forge run for a persona in the background: curate its golden dataset from
/// the audit trail, train a LoRA adapter, register the facet, promote it when it does
/// at least as well as its base. Follow it in `/v1/events` and `/v1/audit?kind=forge.*`.
#[utoipa::path(post, path = "/v1/forge", request_body = ForgeBody,
    responses(
        (status = ACCEPTED, description = "started", body = ForgeStarted),
        (status = CONFLICT, description = "another forge run is in progress", body = ErrorResponse),
        (status = SERVICE_UNAVAILABLE, description = "no forge is configured", body = ErrorResponse),
    ))]
async fn start_forge(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ForgeBody>,
) -> ApiResult<(StatusCode, Json<ForgeStarted>)> {
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
        Json(ForgeStarted {
            status: "started",
            facet,
            follow: "/v1/audit?kind=forge.*",
        }),
    ))
}

/// The facets registry and what serves each persona.
#[derive(Serialize, ToSchema)]
struct Facets {
    facets: Vec<Facet>,
    /// By persona key: the facet serving it, null for its base model.
    #[schema(value_type = Object)]
    serving: Value,
    /// The stagnation monitor's state.
    #[schema(value_type = Object)]
    stagnation: Value,
}

/// Every registered facet, the facet serving each persona (null: its base model) and
/// the stagnation monitor's state.
#[utoipa::path(get, path = "/v1/facets",
    responses((status = OK, description = "the registry", body = Facets)))]
async fn list_facets(State(state): State<AppState>) -> ApiResult<Json<Facets>> {
    let facets = state.runtime.facets().await?;
    let serving = json!(state.runtime.serving().await?);
    Ok(Json(Facets {
        facets,
        serving,
        stagnation: json!(state.runtime.stagnation()),
    }))
}

/// The path parameter naming a facet.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct FacetPath {
    /// The facet's name, like `robin:forge-20261127-120000`.
    facet: String,
}

/// A facet, promoted.
#[derive(Serialize, ToSchema)]
struct Promoted {
    promoted: Facet,
}

/// Makes a facet its persona's default; refused unless it does at least as well as its
/// base on validation and probes.
#[utoipa::path(post, path = "/v1/facets/{facet}/promote", params(FacetPath),
    responses(
        (status = OK, description = "promoted", body = Promoted),
        (status = NOT_FOUND, description = "no such facet", body = ErrorResponse),
        (status = CONFLICT, description = "not_promoted: it did worse than its base", body = ErrorResponse),
    ))]
async fn promote_facet(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<FacetPath>,
) -> ApiResult<Json<Promoted>> {
    let promoted = state.runtime.promote_facet(&path.facet).await?;
    Ok(Json(Promoted { promoted }))
}

/// The path parameter naming a persona.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct PersonaPath {
    /// The persona.
    #[param(schema_with = persona_schema)]
    persona: String,
}

/// What serves a persona after a rollback.
#[derive(Serialize, ToSchema)]
struct PersonaServing {
    persona: String,
    /// The facet serving it now; null for its base model.
    serving: Option<String>,
}

/// Undoes a persona's last promotion.
#[utoipa::path(post, path = "/v1/personas/{persona}/rollback", params(PersonaPath),
    responses(
        (status = OK, description = "what serves it now", body = PersonaServing),
        (status = CONFLICT, description = "no promotion to undo", body = ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "not a persona", body = ErrorResponse),
    ))]
async fn rollback_persona(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PersonaPath>,
) -> ApiResult<Json<PersonaServing>> {
    let persona = persona_of(&path.persona)?;
    let restored = state.runtime.rollback_facet(persona).await?;
    Ok(Json(PersonaServing {
        persona: persona.key().to_owned(),
        serving: restored.map(|f| f.name),
    }))
}
