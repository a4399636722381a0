//! The OpenAPI 3.1 document of the gateway, generated from the code.
//!
//! Each handler's `#[utoipa::path]` gives its route, parameters, body and the answers
//! particular to it, and the router is built from the same annotations (see
//! [`crate::routes`]), so a route cannot be served undocumented. This module adds what
//! every operation shares, from what the operation declares and from
//! [`crate::required_scope`]:
//!
//! - a body: 400 `malformed_body`, 413 `payload_too_large`, 415 `unsupported_media_type`
//!   and 422 `invalid_body` (the [`crate::extract`] extractors' answers);
//! - parameters: 400 `invalid_parameter`;
//! - a scope: `x-aura-scope`, 401 `unauthorized`, 403 `forbidden` and 429
//!   `too_many_failures`;
//! - every operation: 500 `internal`, an internal fault, logged with its cause;
//! - links: an answer that returns an `Object` or a `Method` links to the operations
//!   that take its id (and selector) as path parameters, so a client, or a stateful
//!   fuzzer, can follow what it created.

use serde_json::{json, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ErrorResponse;
use crate::{routes, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AURA API gateway",
        description = "Self-extending persistent objects over HTTP. Every route but \
            /v1/health needs `Authorization: Bearer <token>` when a token is configured \
            (AURA_GATEWAY_TOKEN, or AURA_GATEWAY_TOKENS with scopes): each operation's \
            `x-aura-scope` names the scope it needs (read < call < teach < admin). \
            Errors share one shape: {\"error\": {\"code\", \"message\", \"details\"?}}."
    ),
    components(schemas(ErrorResponse))
)]
struct ApiDoc;

/// Every route, with its handler, as one router that carries its own document; the
/// protected routes come in with the scope check layered on.
pub(crate) fn api(protected: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::open())
        .merge(protected)
}

/// The document served at `GET /v1/openapi.json`.
pub fn document() -> Value {
    complete(api(routes::protected()).into_openapi())
}

/// Every `(method, path)` the gateway serves, as the document names them (`get`,
/// `/v1/objects/{object}`).
pub fn operations() -> Vec<(String, String)> {
    operations_of(&document())
}

fn operations_of(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            ops.push((method.clone(), path.clone()));
        }
    }
    ops
}

fn error(description: &str) -> Value {
    json!({ "description": description,
            "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/ErrorResponse" } } } })
}

/// Adds `description` as the answer with `status`, or to the one already there.
fn answer(op: &mut Value, status: u16, description: &str) {
    let responses = &mut op["responses"][status.to_string()];
    match responses["description"].as_str() {
        Some(existing) if !existing.contains(description) => {
            responses["description"] = json!(format!("{existing}; or {description}"));
        }
        Some(_) => {}
        None => *responses = error(description),
    }
}

/// The shared answers, the scopes and the bearer scheme.
pub(crate) fn complete(api: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).unwrap_or_else(|e| {
        // The document is built from static annotations; this cannot fail at run time
        // unless a type's Serialize does, which a test would catch first.
        tracing::error!(target: "Gateway", "the OpenAPI document does not serialise: {e}");
        json!({})
    });
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["security"] = json!([{ "bearer": [] }]);
    doc["components"]["securitySchemes"] =
        json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    for (method, path) in operations_of(&doc) {
        let op = &mut doc["paths"][&path][&method];
        if op.get("requestBody").is_some() {
            answer(op, 400, "malformed_body: the body is not JSON");
            answer(
                op,
                413,
                "payload_too_large: the body is over AURA_GATEWAY_MAX_BODY_KB",
            );
            answer(
                op,
                415,
                "unsupported_media_type: no `Content-Type: application/json`",
            );
            answer(
                op,
                422,
                "invalid_body: the JSON does not match the body's schema",
            );
        }
        if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
            answer(
                op,
                400,
                "invalid_parameter: a path or query parameter does not parse",
            );
        }
        let scope = method
            .to_uppercase()
            .parse()
            .ok()
            .and_then(|m| crate::required_scope(&m, &path));
        if let Some(scope) = scope {
            op["x-aura-scope"] = json!(scope.as_str());
            answer(op, 401, "unauthorized: no token, or a wrong one");
            answer(
                op,
                403,
                &format!("forbidden: the token's scope is weaker than `{scope}`"),
            );
            answer(
                op,
                429,
                "too_many_failures: too many failed authentications from this \
                 address; see Retry-After",
            );
        }
        answer(
            op,
            500,
            "internal: an internal fault, logged with its cause",
        );
    }
    add_links(&mut doc);
    doc
}

/// What a response schema's fields fill in: `(schema, [(path parameter, field)])`.
const LINKABLE: &[(&str, &[(&str, &str)])] = &[
    ("Object", &[("object", "id")]),
    (
        "Method",
        &[("object", "object_id"), ("selector", "selector")],
    ),
];

/// Links each 2xx answer whose body is a [`LINKABLE`] schema to every operation whose
/// path parameters that schema fills, all of them.
fn add_links(doc: &mut Value) {
    let ops = operations_of(doc);
    let mut links = Vec::new();
    for (method, path) in &ops {
        let op = &doc["paths"][path][method];
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let schema = response["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next());
            let Some((_, fills)) = LINKABLE.iter().find(|(name, _)| Some(*name) == schema) else {
                continue;
            };
            if !status.starts_with('2') {
                continue;
            }
            for (target_method, target_path) in &ops {
                let target = &doc["paths"][target_path][target_method];
                let params: Vec<&str> = target["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let filled = fills.iter().filter(|(param, _)| params.contains(param));
                let parameters: serde_json::Map<String, Value> = filled
                    .map(|(param, field)| {
                        (param.to_string(), json!(format!("$response.body#/{field}")))
                    })
                    .collect();
                // Only where the answer fills every path parameter of the target.
                if parameters.is_empty() || parameters.len() != params.len() {
                    continue;
                }
                let Some(id) = target["operationId"].as_str() else {
                    continue;
                };
                links.push((
                    (method.clone(), path.clone(), status.clone()),
                    id.to_owned(),
                    json!({ "operationId": id, "parameters": parameters }),
                ));
            }
        }
    }
    for ((method, path, status), id, link) in links {
        doc["paths"][&path][&method]["responses"][&status]["links"][id] = link;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_but_health_names_its_scope_and_its_refusals() {
        let doc = document();
        let ops = operations_of(&doc);
        assert!(ops.len() >= 17, "{ops:?}");
        for (method, path) in &ops {
            let op = &doc["paths"][path][method];
            assert!(op["responses"]["500"].is_object(), "{method} {path}");
            if path == "/v1/health" {
                assert!(op.get("x-aura-scope").is_none());
                assert_eq!(op["security"], json!([{}]), "health is open");
                continue;
            }
            assert!(op["x-aura-scope"].is_string(), "{method} {path}");
            for status in ["401", "403", "429"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }

    #[test]
    fn bodies_and_parameters_bring_their_refusals() {
        let doc = document();
        let create = &doc["paths"]["/v1/objects"]["post"];
        for status in ["400", "413", "415", "422"] {
            assert!(create["responses"][status].is_object(), "{status}");
        }
        let list = &doc["paths"]["/v1/objects"]["get"];
        assert!(list["responses"]["400"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("invalid_parameter")));
        assert!(list["responses"].get("415").is_none(), "no body, no 415");
        // The constraints the handlers enforce are stated.
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CreateObject"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(
            schemas["CreateObject"]["properties"]["name"]["maxLength"],
            json!(256)
        );
        // What a create returns links to what reads it.
        let links = &create["responses"]["201"]["links"];
        assert_eq!(
            links["get_object"]["parameters"]["object"],
            json!("$response.body#/id"),
            "{links}"
        );
        let define = &doc["paths"]["/v1/objects/{object}/methods/{selector}"]["put"];
        let links = &define["responses"]["201"]["links"];
        assert_eq!(
            links["rollback_method"]["parameters"]["selector"],
            json!("$response.body#/selector"),
            "{links}"
        );
        let selector = &schemas["Selector"];
        assert!(selector["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("|lambda|")));
        assert_eq!(selector["maxLength"], json!(aura_store::MAX_SELECTOR_LEN));
    }
}
