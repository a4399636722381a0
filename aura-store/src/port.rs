//! The `Store` port: the contract every backend implements.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::*;
use crate::Result;

/// What a backend can do, so callers and the conformance suite need not guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoreCapabilities {
    /// The backend's name ("sqlite", "arangodb").
    pub backend: &'static str,
    /// Ranked full-text search over memory nodes.
    pub full_text_search: bool,
    /// Several processes may open the same store at once.
    pub multi_process: bool,
    /// The largest JSON document (an object's slots, an event's payload) it accepts, in bytes.
    pub max_document_bytes: usize,
}

/// The store: the system's living image of objects, methods, memory, audit trail and facets.
///
/// Reads are on the store; every write goes through a [`Transaction`], so that one unit
/// of work — a learned method, its audit events and memory nodes — commits wholly or not
/// at all. [`StoreExt`] offers one-write convenience calls.
///
/// Contract, checked by the `conformance` module (feature `conformance`):
/// - unknown ids are [`crate::Error::NotFound`]; writes naming a stale revision are
///   [`crate::Error::Conflict`] and change nothing;
/// - a parent list that would form a cycle, or names a missing object, is refused at write time;
/// - a transaction dropped without `commit` (including while unwinding a panic) leaves the
///   store exactly as it was.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// What this backend supports.
    fn capabilities(&self) -> StoreCapabilities;

    /// Starts a unit of work. Dropping it without [`Transaction::commit`] rolls it back.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    /// Reads one object.
    async fn get_object(&self, id: ObjectId) -> Result<Object>;
    /// Finds an object by its unique name.
    async fn find_object(&self, name: &str) -> Result<Option<Object>>;
    /// Lists objects, oldest first.
    async fn list_objects(&self, page: Page) -> Result<Vec<Object>>;

    /// The current version of a method defined directly on `object` (no delegation).
    async fn get_method(&self, object: ObjectId, selector: &Selector) -> Result<Option<Method>>;
    /// The current version of every method defined directly on `object`, by selector.
    async fn list_methods(&self, object: ObjectId) -> Result<Vec<Method>>;
    /// Every version of one method, oldest first.
    async fn method_versions(&self, object: ObjectId, selector: &Selector) -> Result<Vec<Method>>;

    /// Reads one memory node.
    async fn get_memory_node(&self, id: NodeId) -> Result<MemoryNode>;
    /// Memory nodes reachable from `from` within `depth` hops (either direction), nearest first.
    async fn neighbours(&self, from: NodeRef, depth: u32, limit: u32) -> Result<Vec<Neighbour>>;
    /// Memory nodes whose text matches `query`, best first.
    async fn search_memory(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>>;

    /// Reads the audit trail, oldest first, a page at a time.
    async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage>;

    /// Reads one facet.
    async fn get_facet(&self, name: &str) -> Result<Facet>;
    /// Lists every facet, by name.
    async fn list_facets(&self) -> Result<Vec<Facet>>;
}

/// One unit of work on a [`Store`]: all of its writes commit together or none do.
#[async_trait]
pub trait Transaction: Send {
    /// Reads an object as this transaction sees it.
    async fn get_object(&mut self, id: ObjectId) -> Result<Object>;
    /// Creates an object; its parents must exist and its name must be free.
    async fn create_object(&mut self, new: NewObject) -> Result<Object>;
    /// Changes an object if its revision is still `expected_rev`; returns it at its new revision.
    async fn update_object(
        &mut self,
        id: ObjectId,
        expected_rev: u64,
        patch: ObjectPatch,
    ) -> Result<Object>;
    /// Deletes an object and its methods; refused while other objects delegate to it.
    async fn delete_object(&mut self, id: ObjectId) -> Result<()>;

    /// Stores the next version of a method; the object must exist.
    async fn put_method(&mut self, method: NewMethod) -> Result<Method>;
    /// Makes an earlier version current again by storing it as a new version.
    async fn rollback_method(
        &mut self,
        object: ObjectId,
        selector: &Selector,
        version: u32,
    ) -> Result<Method>;

    /// Adds a memory node.
    async fn add_memory_node(&mut self, node: NewMemoryNode) -> Result<MemoryNode>;
    /// Links two memory nodes or objects; both ends must exist.
    async fn add_link(&mut self, link: ContextLink) -> Result<()>;

    /// Appends an event to the audit trail.
    async fn append_event(&mut self, event: NewAuditEvent) -> Result<AuditEvent>;

    /// Registers a facet, replacing one of the same name.
    async fn put_facet(&mut self, facet: Facet) -> Result<Facet>;

    /// Makes every write of this transaction durable and visible.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discards every write of this transaction (dropping it does the same).
    async fn rollback(self: Box<Self>) -> Result<()>;
}

/// A store shared across tasks.
pub type DynStore = Arc<dyn Store>;

/// One-write conveniences over [`Store`]: each runs in its own transaction.
#[async_trait]
pub trait StoreExt: Store {
    /// Creates an object.
    async fn create_object(&self, new: NewObject) -> Result<Object> {
        let mut tx = self.begin().await?;
        let object = tx.create_object(new).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// Replaces an object's slots if its revision is still `expected_rev`.
    async fn update_slots(
        &self,
        id: ObjectId,
        expected_rev: u64,
        slots: Map<String, Value>,
    ) -> Result<Object> {
        self.update_object(
            id,
            expected_rev,
            ObjectPatch {
                slots: Some(slots),
                parents: None,
            },
        )
        .await
    }

    /// Changes an object if its revision is still `expected_rev`.
    async fn update_object(
        &self,
        id: ObjectId,
        expected_rev: u64,
        patch: ObjectPatch,
    ) -> Result<Object> {
        let mut tx = self.begin().await?;
        let object = tx.update_object(id, expected_rev, patch).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// Deletes an object.
    async fn delete_object(&self, id: ObjectId) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.delete_object(id).await?;
        tx.commit().await
    }

    /// Stores the next version of a method.
    async fn put_method(&self, method: NewMethod) -> Result<Method> {
        let mut tx = self.begin().await?;
        let method = tx.put_method(method).await?;
        tx.commit().await?;
        Ok(method)
    }

    /// Makes an earlier version of a method current again.
    async fn rollback_method(
        &self,
        object: ObjectId,
        selector: &Selector,
        version: u32,
    ) -> Result<Method> {
        let mut tx = self.begin().await?;
        let method = tx.rollback_method(object, selector, version).await?;
        tx.commit().await?;
        Ok(method)
    }

    /// Adds a memory node.
    async fn add_memory_node(&self, node: NewMemoryNode) -> Result<MemoryNode> {
        let mut tx = self.begin().await?;
        let node = tx.add_memory_node(node).await?;
        tx.commit().await?;
        Ok(node)
    }

    /// Links two memory nodes or objects.
    async fn add_link(&self, link: ContextLink) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.add_link(link).await?;
        tx.commit().await
    }

    /// Appends an audit event.
    async fn append_event(&self, event: NewAuditEvent) -> Result<AuditEvent> {
        let mut tx = self.begin().await?;
        let event = tx.append_event(event).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Registers a facet.
    async fn put_facet(&self, facet: Facet) -> Result<Facet> {
        let mut tx = self.begin().await?;
        let facet = tx.put_facet(facet).await?;
        tx.commit().await?;
        Ok(facet)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
