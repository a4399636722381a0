//! # aura-store
//!
//! The `Store` port of AURA — objects, method versions, the memory graph, the audit
//! trail and the facets registry — and [`SqliteStore`], its embedded default.
//! With the feature `arangodb`, `ArangoStore` serves the same port on ArangoDB (OneShard).
//!
//! ```
//! use aura_store::{NewObject, SqliteStore, Store, StoreExt};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> aura_store::Result<()> {
//! let store = SqliteStore::open_in_memory().await?; // or SqliteStore::open("aura.db")
//! let counter = store.create_object(NewObject::named("counter")).await?;
//!
//! let mut slots = serde_json::Map::new();
//! slots.insert("count".into(), json!(1));
//! let counter = store.update_slots(counter.id, counter.rev, slots).await?;
//! assert_eq!(counter.rev, 2);
//!
//! // A write naming a stale revision is a conflict and changes nothing.
//! let stale = store.update_slots(counter.id, 1, serde_json::Map::new()).await;
//! assert!(matches!(stale, Err(aura_store::Error::Conflict(_))));
//! assert_eq!(store.get_object(counter.id).await?.slots["count"], json!(1));
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "arangodb")]
mod arango;
mod error;
mod model;
mod port;
mod sqlite;
mod stored;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

#[cfg(feature = "arangodb")]
pub use arango::{
    ArangoStore, ArangoStoreBuilder, DEFAULT_ARANGO_TIMEOUT, DEFAULT_ARANGO_URL, DEFAULT_DATABASE,
};
pub use error::{BoxError, Error, Result};
pub use model::*;
pub use port::{DynStore, Store, StoreCapabilities, StoreExt, Transaction};
pub use sqlite::{
    SqliteStore, SqliteStoreBuilder, DEFAULT_BUSY_TIMEOUT, DEFAULT_READERS,
    DEFAULT_READER_CACHE_KIB,
};
