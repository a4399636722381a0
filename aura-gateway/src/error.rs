//! The gateway's one error shape: `{"error": {"code": "...", "message": "...", "details"?: ...}}`.
//!
//! | runtime error | status | code |
//! |---|---|---|
//! | `NotFound` | 404 | `not_found` |
//! | `Invalid` | 422 | `invalid` |
//! | `Conflict` | 409 | `conflict` |
//! | `DoesNotUnderstand` | 422 | `does_not_understand` (the object exists; it has no such method and nothing learned one) |
//! | `Rejected` | 422 | `rejected` (details: the guard's violations) |
//! | `Refused` | 422 | `refused` (details: every attempt's failure) |
//! | `MethodRaised` | 422 | `method_raised` (details: the guest's exception) |
//! | `Stopped` | 422 | `stopped` (details: which sandbox limit) |
//! | `Unavailable` | 503 | `unavailable` |
//! | `Backend` and anything newer | 500 | `internal` |
//!
//! Request faults found before the runtime is reached: a malformed body is 400
//! `malformed_body`, a body of the wrong shape 422 `invalid_body`, a body over the
//! limit 413 `payload_too_large`, a missing JSON content type 415 `unsupported_media_type`,
//! a bad query or path parameter 400 `invalid_parameter`, a missing or wrong token 401
//! `unauthorized`, an unknown route 404 `no_route`, a wrong method 405 `method_not_allowed`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use aura_core::Error;

/// An error response: a status and the stable JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

/// Every error response's body: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The `error` member of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code: `not_found`, `invalid`, `conflict`,
    /// `does_not_understand`, `rejected`, `refused`, `method_raised`, `stopped`,
    /// `unavailable`, `not_promoted`, `cancelled`, `forge_failed`, `internal`,
    /// `malformed_body`, `invalid_body`, `payload_too_large`, `unsupported_media_type`,
    /// `invalid_parameter`, `unauthorized`, `forbidden`, `too_many_failures`, `no_route`,
    /// `method_not_allowed` or `too_many_streams`; new ones may be added.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Structured details (violations, failures, the guest's exception), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message` and no details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                details: None,
            },
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.body.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorResponse { error: self.body })).into_response()
    }
}

/// The status a runtime error is answered with, by its code.
pub(crate) fn status_of(e: &Error) -> StatusCode {
    match e.code() {
        "not_found" => StatusCode::NOT_FOUND,
        "conflict" | "not_promoted" | "cancelled" => StatusCode::CONFLICT,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "forge_failed" => StatusCode::BAD_GATEWAY,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let code = e.code();
        let status = status_of(&e);
        let details = match e {
            Error::NotFound { kind, id } => Some(json!({ "kind": kind, "id": id })),
            Error::DoesNotUnderstand {
                object,
                selector,
                chain,
            } => Some(json!({ "object": object, "selector": selector, "chain": chain })),
            Error::Rejected { selector, verdict } => {
                Some(json!({ "selector": selector, "violations": verdict.violations }))
            }
            Error::Refused {
                selector,
                attempts,
                failures,
            } => Some(json!({ "selector": selector, "attempts": attempts, "failures": failures })),
            Error::MethodRaised { selector, error } => {
                Some(json!({ "selector": selector, "error": error }))
            }
            Error::Stopped {
                selector,
                reason,
                detail,
            } => Some(json!({ "selector": selector, "reason": reason, "detail": detail })),
            Error::Unavailable { port, .. } => Some(json!({ "port": port })),
            other => {
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(target: "Gateway", error = %other, "internal error");
                }
                None
            }
        };
        let error = ApiError::new(status, code, message);
        match details {
            Some(d) => error.with_details(d),
            None => error,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "malformed_body",
        };
        // Axum reports a body-read failure other than the limit as 500; it is still the
        // client's body, so it stays a 4xx here.
        let status = if r.status().is_client_error() {
            r.status()
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_map_to_client_statuses() {
        let cases = [
            (
                Error::NotFound {
                    kind: "object",
                    id: "x".into(),
                },
                404,
            ),
            (Error::Invalid("bad".into()), 422),
            (Error::Conflict("race".into()), 409),
            (
                Error::DoesNotUnderstand {
                    object: "a".into(),
                    selector: "f".into(),
                    chain: vec!["a".into()],
                },
                422,
            ),
            (
                Error::Refused {
                    selector: "f".into(),
                    attempts: 1,
                    failures: vec![],
                },
                422,
            ),
            (
                Error::Unavailable {
                    port: "model",
                    message: "down".into(),
                },
                503,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status.as_u16(), status);
        }
    }
}
