//! The exemplar library: small, correct functions (`data/exemplars.py`, written by the
//! AURA team) that genesis installs in the memory graph once per library version.
//!
//! A learn cycle grounds its prompt in memory, so the exemplars most similar to a
//! request reach the code prompt next to the methods this runtime has learned: a tiny
//! model copies the shape of a good answer (one plain function, then asserts) far more
//! reliably than it follows instructions alone. They are memory, not methods: nothing
//! can call them, and they add nothing to a call's cost.

use aura_store::{DynStore, NewMemoryNode, NodeId};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Result;

/// The library's source: Python blocks separated by two blank lines, each a comment
/// line saying what the function does, the function, then asserts that call it.
const SOURCE: &str = include_str!("../data/exemplars.py");

/// The memory node kind exemplars are stored as (`memory:exemplar` as evidence).
pub(crate) const KIND: &str = "exemplar";

/// One exemplar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exemplar {
    /// The function's name.
    pub selector: String,
    /// What it does, in words.
    pub doc: String,
    /// The function and its asserts, as the model is asked to reply.
    pub code: String,
}

impl Exemplar {
    /// The memory text: `selector: doc` on the first line, the code below (the shape
    /// learned methods are remembered in).
    pub(crate) fn memory_text(&self) -> String {
        format!("{}: {}\n{}", self.selector, self.doc, self.code)
    }
}

/// Every exemplar in the library, in file order.
pub(crate) fn library() -> Vec<Exemplar> {
    SOURCE
        .split("\n\n\n")
        .filter_map(|block| {
            let block = block.trim_matches('\n');
            let (first, code) = block.split_once('\n')?;
            let doc = first.strip_prefix("# ")?.trim();
            let selector = code.lines().find_map(|l| {
                let rest = l.strip_prefix("def ")?;
                Some(rest.split('(').next()?.trim().to_string())
            })?;
            Some(Exemplar {
                selector,
                doc: doc.to_string(),
                code: code.trim_end().to_string(),
            })
        })
        .collect()
}

/// A stable node id for `selector` in this version of the library, so installing is
/// idempotent and a new version installs next to the old one.
fn node_id(version: &str, selector: &str) -> NodeId {
    let digest = Sha256::digest(format!("aura-exemplar\0{version}\0{selector}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    NodeId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// The library's version: a hash of its source.
fn version() -> String {
    let digest = Sha256::digest(SOURCE.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Installs this version of the library unless it is there already; returns how many
/// exemplars it wrote (0 when already installed). One transaction: all or none.
pub(crate) async fn install(store: &DynStore) -> Result<usize> {
    let version = version();
    let exemplars = library();
    let Some(last) = exemplars.last() else {
        return Ok(0);
    };
    if store
        .get_memory_node(node_id(&version, &last.selector))
        .await
        .is_ok()
    {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    for e in &exemplars {
        let node = NewMemoryNode {
            id: Some(node_id(&version, &e.selector)),
            meta: json!({ "library": version, "selector": e.selector }),
            ..NewMemoryNode::new(KIND, e.memory_text())
        };
        if let Err(err) = tx.add_memory_node(node).await {
            tx.rollback().await?;
            // A conflict: another runtime on the same store installed it first.
            return match err {
                aura_store::Error::Conflict(_) => Ok(0),
                other => Err(other.into()),
            };
        }
    }
    tx.commit().await?;
    tracing::info!(target: "Orchestrator", count = exemplars.len(), %version,
        "exemplar library installed in memory");
    Ok(exemplars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_is_one_named_documented_function_with_asserts() {
        let lib = library();
        assert!(lib.len() >= 20, "{} exemplars", lib.len());
        let mut names: Vec<&str> = lib.iter().map(|e| e.selector.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), lib.len(), "selectors are unique");
        for e in &lib {
            assert!(e.code.contains(&format!("def {}(", e.selector)), "{e:?}");
            assert!(e.code.contains(&format!("assert {}(", e.selector)), "{e:?}");
            assert!(!e.doc.is_empty() && !e.doc.starts_with('#'), "{e:?}");
            assert!(!e
                .memory_text()
                .lines()
                .next()
                .unwrap_or("")
                .contains("def "));
        }
    }

    #[tokio::test]
    async fn installing_twice_writes_once_and_memory_finds_them() {
        let store: DynStore = std::sync::Arc::new(
            aura_store::SqliteStore::open_in_memory()
                .await
                .expect("store"),
        );
        assert_eq!(install(&store).await.expect("install"), library().len());
        assert_eq!(install(&store).await.expect("again"), 0);
        let hits = store
            .search_memory("convert kilometers meters", 3)
            .await
            .expect("search");
        assert!(
            hits.iter()
                .any(|h| h.node.kind == KIND && h.node.text.starts_with("kilometers_to_meters: ")),
            "{hits:?}"
        );
    }

    #[test]
    fn ids_are_stable_per_version_and_distinct_per_selector() {
        assert_eq!(node_id("v1", "a"), node_id("v1", "a"));
        assert_ne!(node_id("v1", "a"), node_id("v1", "b"));
        assert_ne!(node_id("v1", "a"), node_id("v2", "a"));
    }
}
