//! The OpenAPI 3.1 document of the gateway, written by hand.
//!
//! Hand-written rather than derived (utoipa): the API is small, the runtime's types live
//! in lower crates that should not grow an OpenAPI dependency, and a test checks that
//! every route the router serves is described here.

use serde_json::{json, Value};

/// Every `(method, path)` the router serves, as the OpenAPI document names it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/events"),
    ("post", "/v1/objects"),
    ("get", "/v1/objects"),
    ("get", "/v1/objects/{object}"),
    ("get", "/v1/objects/{object}/selectors"),
    ("post", "/v1/objects/{object}/messages"),
    ("get", "/v1/objects/{object}/methods/{selector}"),
    ("put", "/v1/objects/{object}/methods/{selector}"),
    ("post", "/v1/objects/{object}/methods/{selector}/rollback"),
    ("get", "/v1/memory"),
    ("get", "/v1/audit"),
    ("post", "/v1/forge"),
    ("get", "/v1/facets"),
    ("post", "/v1/facets/{facet}/promote"),
    ("post", "/v1/personas/{persona}/rollback"),
];

fn err(description: &str) -> Value {
    json!({ "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn object_param() -> Value {
    json!({ "name": "object", "in": "path", "required": true,
            "description": "the object's id (UUID) or name", "schema": { "type": "string" } })
}

fn selector_param() -> Value {
    json!({ "name": "selector", "in": "path", "required": true,
            "description": "the method's name", "schema": { "type": "string" } })
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": { "type": ty } })
}

/// The document served at `GET /v1/openapi.json`.
pub fn document() -> Value {
    let any = json!({});
    let obj = json!({ "$ref": "#/components/schemas/Object" });
    let method = json!({ "$ref": "#/components/schemas/Method" });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AURA API gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-extending persistent objects over HTTP. Every route but \
                /v1/health needs `Authorization: Bearer <token>` when a token is configured \
                (AURA_GATEWAY_TOKEN, or AURA_GATEWAY_TOKENS with scopes): each operation's \
                `x-aura-scope` names the scope it needs (read < call < teach < admin). \
                Errors share one shape: {\"error\": {\"code\", \"message\", \"details\"?}}."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/v1/health": { "get": {
                "summary": "Store, models and sandbox, each with status and latency",
                "security": [],
                "responses": {
                    "200": ok("everything configured answers", json!({ "$ref": "#/components/schemas/Health" })),
                    "503": ok("something configured does not answer", json!({ "$ref": "#/components/schemas/Health" }))
                }
            }},
            "/v1/openapi.json": { "get": {
                "summary": "This document",
                "responses": { "200": ok("the document", any.clone()), "401": err("no or wrong token") }
            }},
            "/v1/events": { "get": {
                "summary": "The monologue, live, as server-sent events (`event: monologue`, JSON data with seq, at, level, component, message, fields; `event: lagged` when a slow reader missed some)",
                "parameters": [query("component", "string", "only components starting with this (Cascade, Sandbox, …)")],
                "responses": {
                    "200": { "description": "an event stream", "content": { "text/event-stream": {} } },
                    "503": err("too_many_streams: AURA_GATEWAY_MAX_EVENT_STREAMS are open"),
                    "401": err("no or wrong token")
                }
            }},
            "/v1/objects": {
                "post": {
                    "summary": "Create an object (it delegates to the genesis root unless parents are given)",
                    "requestBody": body(json!({ "type": "object", "required": ["name"], "properties": {
                        "name": { "type": "string" },
                        "parents": { "type": "array", "items": { "type": "string" }, "description": "ids or names, in delegation order" },
                        "slots": { "type": "object" } } })),
                    "responses": { "201": ok("created", obj.clone()), "409": err("the name is taken"),
                        "400": err("malformed body"), "422": err("invalid name or body"), "401": err("no or wrong token") }
                },
                "get": {
                    "summary": "List objects",
                    "parameters": [query("offset", "integer", "skip this many"), query("limit", "integer", "at most this many (1–1000, default 100)")],
                    "responses": { "200": ok("a page", json!({ "type": "object", "properties": {
                        "objects": { "type": "array", "items": obj.clone() },
                        "next_offset": { "type": ["integer", "null"] } } })), "401": err("no or wrong token") }
                }
            },
            "/v1/objects/{object}": { "get": {
                "summary": "Read an object, with counts of its methods (the selectors themselves are paged at /v1/objects/{object}/selectors)",
                "parameters": [object_param()],
                "responses": { "200": ok("the object and `methods`: `own` (defined on it), `responds_to` (visible along its chain) and the `selectors` link",
                    json!({ "allOf": [obj.clone(), { "type": "object", "properties": { "methods": { "type": "object", "properties": {
                        "own": { "type": "integer" }, "responds_to": { "type": "integer" }, "selectors": { "type": "string" } } } } }] })),
                    "404": err("no such object"), "401": err("no or wrong token") }
            }},
            "/v1/objects/{object}/selectors": { "get": {
                "summary": "The selectors an object responds to, in name order, each with the nearest object on its chain that defines it",
                "parameters": [object_param(),
                    query("offset", "integer", "skip this many"),
                    query("limit", "integer", "at most this many (1–1000, default 100)"),
                    query("own", "boolean", "only those defined on the object itself (default false)")],
                "responses": { "200": ok("a page", json!({ "type": "object", "properties": {
                        "object": { "type": "string" },
                        "selectors": { "type": "array", "items": { "type": "object", "properties": {
                            "selector": { "type": "string" }, "defined_on": { "type": "string" },
                            "defined_on_id": { "type": "string", "format": "uuid" }, "version": { "type": "integer" } } } },
                        "total": { "type": "integer" },
                        "next_offset": { "type": ["integer", "null"] } } })),
                    "400": err("a bad parameter"), "404": err("no such object"), "401": err("no or wrong token") }
            }},
            "/v1/objects/{object}/messages": { "post": {
                "summary": "Send a message: natural language (`text`) or an explicit call (`selector`, `args`). A miss is learned first (doesNotUnderstand).",
                "parameters": [object_param()],
                "requestBody": body(json!({ "oneOf": [
                    { "type": "object", "required": ["text"], "properties": { "text": { "type": "string" } } },
                    { "type": "object", "required": ["selector"], "properties": {
                        "selector": { "type": "string" }, "args": { "type": "array" } } } ] })),
                "responses": {
                    "200": ok("`reply` (for text: text, plan, value, refused, evidence, context) or `value` (for a call)", any.clone()),
                    "400": err("malformed body"), "404": err("no such object"), "413": err("body over the limit"),
                    "422": err("does_not_understand, refused, rejected, method_raised, stopped or invalid"),
                    "503": err("a port is unavailable"), "401": err("no or wrong token")
                }
            }},
            "/v1/objects/{object}/methods/{selector}": {
                "get": {
                    "summary": "Every version of a method defined on the object, oldest first, and which is current",
                    "parameters": [object_param(), selector_param()],
                    "responses": { "200": ok("the versions", json!({ "type": "object", "properties": {
                        "current": { "type": "integer" }, "versions": { "type": "array", "items": method.clone() } } })),
                        "404": err("no such object or method"), "401": err("no or wrong token") }
                },
                "put": {
                    "summary": "Define the next version of a method by hand (the guard audits it first)",
                    "parameters": [object_param(), selector_param()],
                    "requestBody": body(json!({ "type": "object", "required": ["source"], "properties": {
                        "source": { "type": "string" }, "doc": { "type": "string" } } })),
                    "responses": { "201": ok("stored", method.clone()), "422": err("rejected by the guard (details: violations)"),
                        "404": err("no such object"), "401": err("no or wrong token") }
                }
            },
            "/v1/objects/{object}/methods/{selector}/rollback": { "post": {
                "summary": "Make an earlier version current again",
                "parameters": [object_param(), selector_param()],
                "requestBody": body(json!({ "type": "object", "required": ["version"], "properties": { "version": { "type": "integer" } } })),
                "responses": { "200": ok("the method now current", method), "404": err("no such object, method or version"), "401": err("no or wrong token") }
            }},
            "/v1/memory": { "get": {
                "summary": "Full-text search of the memory graph, best first",
                "parameters": [
                    { "name": "q", "in": "query", "required": true, "schema": { "type": "string" } },
                    query("limit", "integer", "at most this many (1–100, default 10)")],
                "responses": { "200": ok("`hits`: nodes with scores", any.clone()), "400": err("no query"), "401": err("no or wrong token") }
            }},
            "/v1/audit": { "get": {
                "summary": "The audit trail, oldest first, paginated: pass a page's `next` as `after`",
                "parameters": [
                    query("kind", "string", "an event kind; a trailing * matches a prefix (learn.*)"),
                    query("object", "string", "an object id or name"),
                    query("after", "string", "continue after this event id"),
                    query("since", "string", "RFC 3339 time, inclusive"),
                    query("until", "string", "RFC 3339 time, exclusive"),
                    query("limit", "integer", "at most this many (1–1000, default 100)")],
                "responses": { "200": ok("a page: `events` and `next`", any.clone()), "400": err("a bad parameter"), "401": err("no or wrong token") }
            }},
            "/v1/forge": { "post": {
                "summary": "Start a forge run for a persona in the background: curate its golden dataset from the audit trail, train a LoRA adapter, register the facet, promote it when it does at least as well as its base. Follow it in /v1/events and /v1/audit?kind=forge.*",
                "requestBody": body(json!({ "type": "object", "required": ["persona"], "additionalProperties": false, "properties": {
                    "persona": { "type": "string", "enum": ["brick", "robin", "babs", "alfred"] },
                    "label": { "type": "string", "description": "the facet is named <persona>:<label> (default forge-<UTC time>)" },
                    "steps": { "type": "integer", "minimum": 1, "description": "optimiser steps (default AURA_FORGE_STEPS)" },
                    "promote": { "type": "boolean", "default": true } } })),
                "responses": { "202": ok("started: `facet` names the facet it will register", any.clone()),
                               "409": err("another forge run is in progress"), "422": err("a bad persona or label"),
                               "503": err("no forge is configured"), "401": err("no or wrong token") }
            }},
            "/v1/facets": { "get": {
                "summary": "Every registered facet, the facet serving each persona (null: its base model) and the stagnation monitor's state",
                "responses": { "200": ok("`facets`, `serving`, `stagnation`", any.clone()), "401": err("no or wrong token") }
            }},
            "/v1/facets/{facet}/promote": { "post": {
                "summary": "Make a facet its persona's default; refused unless it does at least as well as its base on validation and probes",
                "parameters": [{ "name": "facet", "in": "path", "required": true, "description": "the facet's name, like robin:forge-20261127-120000", "schema": { "type": "string" } }],
                "responses": { "200": ok("`promoted`: the facet", any.clone()), "404": err("no such facet"),
                               "409": err("not_promoted: it did worse than its base"), "401": err("no or wrong token") }
            }},
            "/v1/personas/{persona}/rollback": { "post": {
                "summary": "Undo a persona's last promotion",
                "parameters": [{ "name": "persona", "in": "path", "required": true, "schema": { "type": "string", "enum": ["brick", "robin", "babs", "alfred"] } }],
                "responses": { "200": ok("`serving`: the facet serving it now (null: its base model)", any),
                               "422": err("no promotion to undo, or not a persona"), "401": err("no or wrong token") }
            }}
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": {
                    "type": "object", "required": ["code", "message"], "properties": {
                        "code": { "type": "string", "description": "stable: not_found, invalid, conflict, does_not_understand, rejected, refused, method_raised, stopped, unavailable, not_promoted, cancelled, forge_failed, internal, malformed_body, invalid_body, payload_too_large, unsupported_media_type, invalid_parameter, unauthorized, forbidden, too_many_failures, no_route, method_not_allowed, too_many_streams" },
                        "message": { "type": "string" },
                        "details": {} } } } },
                "Object": { "type": "object", "properties": {
                    "id": { "type": "string", "format": "uuid" }, "name": { "type": "string" },
                    "parents": { "type": "array", "items": { "type": "string", "format": "uuid" } },
                    "slots": { "type": "object" }, "rev": { "type": "integer" } } },
                "Method": { "type": "object", "properties": {
                    "object_id": { "type": "string" }, "selector": { "type": "string" }, "source": { "type": "string" },
                    "tests": { "type": "string" }, "doc": { "type": "string" }, "version": { "type": "integer" },
                    "provenance": {},
                    "calls": { "type": ["array", "null"], "items": { "type": "string" },
                        "description": "the selectors this version may call on its receiver; null when not recorded (a call then ships every method on the chain)" },
                    "created_at": { "type": "string", "format": "date-time" } } },
                "Health": { "type": "object", "properties": {
                    "status": { "enum": ["ok", "unavailable"] },
                    "checks": { "type": "object", "description": "store, sandbox and models (per persona): status, latency_ms, detail" },
                    "forge": { "type": "object", "description": "informational: the forge's backend (null: none) and the stagnation monitor's state" },
                    "resources": { "type": "object", "description": "what the long-lived maps hold against their bounds: resolution (views, tables, table_bytes and their max_*, hits, misses, evictions), learn_locks, connections (open, max), event_streams (open, max) and auth_failure_addresses (tracked, max)" } } }
            }
        }
    });
    add_scopes(&mut doc);
    doc
}

/// Every protected operation names the scope it needs and the two refusals that come
/// with scopes: a token too weak (403) and an address that failed too often (429).
fn add_scopes(doc: &mut Value) {
    for (method, path) in ROUTES {
        let Some(scope) = method
            .to_uppercase()
            .parse()
            .ok()
            .and_then(|m| crate::required_scope(&m, path))
        else {
            continue;
        };
        let op = &mut doc["paths"][path][method];
        op["x-aura-scope"] = json!(scope.as_str());
        op["responses"]["403"] = err(&format!("the token's scope is weaker than `{scope}`"));
        op["responses"]["429"] =
            err("too many failed authentications from this address; see Retry-After");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is missing from the OpenAPI document"
            );
        }
        let documented: usize = doc["paths"]
            .as_object()
            .map(|p| {
                p.values()
                    .filter_map(Value::as_object)
                    .map(|o| o.len())
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(documented, ROUTES.len(), "no undocumented extras either");
        // Every operation but health names its scope.
        for (method, path) in ROUTES.iter().filter(|(_, p)| *p != "/v1/health") {
            let op = &doc["paths"][path][method];
            assert!(op["x-aura-scope"].is_string(), "{method} {path}");
            assert!(op["responses"]["403"].is_object(), "{method} {path}");
        }
    }
}
