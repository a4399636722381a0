//! Axum's JSON, query and path extractors, refusing with the gateway's error shape.
//!
//! A handler that takes `ApiJson<T>` gets a parsed body or the request is answered with
//! the documented 400/413/415/422 ([`ApiError`]'s conversions), never axum's plain-text
//! rejection; the OpenAPI document lists those answers for every operation that has a
//! body or parameters.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;

/// A JSON body of type `T`.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters of type `T`.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters of type `T`.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A `u32` as JSON Schema counts integers: `3` and `3.0` are both the integer 3, so a
/// body the document allows is not refused for how a client wrote the number.
pub(crate) fn whole_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => u32::try_from(u).ok(),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            // Exact: a whole f64 in u32's range converts without loss.
            Some(f as u32)
        }
        _ => None,
    };
    whole.ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a whole number from 0 to {}, got {n}",
            u32::MAX
        ))
    })
}

/// [`whole_u32`] for an optional field (`null` or absent: `None`).
pub(crate) fn whole_u32_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_u32")] u32);
    Ok(Option::<Whole>::deserialize(d)?.map(|Whole(n)| n))
}
