//! Fixtures shared by aura-core's integration tests.
#![allow(clippy::expect_used)] // a fixture that cannot be built should fail the test loudly

use aura_sandbox::JailSandbox;
use aura_store::{AuditEvent, AuditQuery, Store, MAX_AUDIT_PAGE};

/// The trail's events of `kind` (a kind, or a pattern such as `learn.*`), oldest first,
/// up to a full page: more than any test writes.
#[allow(dead_code)] // not every test binary reads the trail
pub async fn events_of(store: &dyn Store, kind: &str) -> Vec<AuditEvent> {
    store
        .query_audit(&AuditQuery {
            kind: Some(kind.into()),
            limit: Some(MAX_AUDIT_PAGE),
            ..AuditQuery::default()
        })
        .await
        .expect("the trail can be read")
        .events
}

/// A jail on its default interpreter (the system's when present: it starts ~7× faster
/// than a pyenv shim).
pub fn jail() -> JailSandbox {
    JailSandbox::builder()
        .build()
        .expect("the jail sandbox builds")
}

/// Offline real-time context: the place is Lisbon and the news come from `feed`, written
/// as a local RSS file in `dir`.
#[allow(dead_code)] // not every test grounds in context
pub fn lisbon_context(dir: &std::path::Path, feed: &str) -> aura_cognition::ContextIngestor {
    let path = dir.join("local.rss");
    std::fs::write(&path, feed).expect("the feed file is written");
    aura_cognition::offline_context("Lisbon", &path)
}
