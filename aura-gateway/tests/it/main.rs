//! The gateway end to end over real HTTP: auth, every route, errors, the SSE
//! monologue, limits and the forge routes, on the real store and jail.

mod gateway;
#[cfg(feature = "otel")]
mod otel;
mod ui;
