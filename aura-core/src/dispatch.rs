//! Dispatch: resolving a selector along an object's delegation chain, with a cache.
//!
//! The chain is the object itself, then each parent's chain in order (depth-first),
//! each object at most once (so parent cycles that reach the store some other way
//! cannot loop), at most [`MAX_DELEGATION_DEPTH`] levels deep. The nearest definition
//! of a selector wins.
//!
//! A [`ChainView`] — every method visible to one object — is computed once and cached.
//! Every write the runtime makes to an object's methods or parents invalidates the views
//! of all objects whose chain passes through it, found through a reverse index.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use aura_store::{Method, Object, ObjectId, Selector, Store};

use crate::{Error, Result};

/// How many delegation levels are searched below the receiver.
pub const MAX_DELEGATION_DEPTH: usize = 64;

/// Everything one object can respond to, resolved along its delegation chain.
#[derive(Debug, Clone)]
pub struct ChainView {
    /// The objects searched, nearest first, with their names.
    pub chain: Vec<(ObjectId, String)>,
    /// For each selector, the nearest definition.
    pub methods: HashMap<Selector, Arc<Method>>,
}

impl ChainView {
    /// Builds the view by walking the chain in the store.
    pub(crate) async fn load(store: &dyn Store, receiver: &Object) -> Result<Self> {
        let mut chain = Vec::new();
        let mut methods: HashMap<Selector, Arc<Method>> = HashMap::new();
        let mut seen = HashSet::new();
        // Depth-first, parents in order: a stack of (object, depth) with parents pushed reversed.
        let mut stack = vec![(receiver.clone(), 0usize)];
        while let Some((object, depth)) = stack.pop() {
            if !seen.insert(object.id) {
                continue;
            }
            for method in store.list_methods(object.id).await? {
                methods
                    .entry(method.selector.clone())
                    .or_insert_with(|| Arc::new(method));
            }
            chain.push((object.id, object.name.clone()));
            if depth >= MAX_DELEGATION_DEPTH {
                tracing::warn!(target: "Orchestrator", object = %object.name,
                    "delegation chain deeper than {MAX_DELEGATION_DEPTH}; not searching further");
                continue;
            }
            for parent in object.parents.iter().rev() {
                if seen.contains(parent) {
                    continue;
                }
                match store.get_object(*parent).await {
                    Ok(p) => stack.push((p, depth + 1)),
                    // A parent deleted under us: skip it rather than fail every send.
                    Err(aura_store::Error::NotFound { .. }) => {
                        tracing::warn!(target: "Orchestrator", parent = %parent, "missing parent skipped")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Self { chain, methods })
    }

    /// The nearest definition of `selector`.
    pub fn resolve(&self, selector: &Selector) -> Option<&Arc<Method>> {
        self.methods.get(selector)
    }

    /// Every visible method but `selector`, as the sandbox's `self.other(…)` helpers.
    pub fn helpers_for(&self, selector: &Selector) -> Vec<aura_sandbox::MethodSource> {
        self.methods
            .values()
            .filter(|m| &m.selector != selector)
            .map(|m| aura_sandbox::MethodSource {
                selector: m.selector.to_string(),
                source: m.source.clone(),
            })
            .collect()
    }

    /// The names searched, nearest first.
    pub fn chain_names(&self) -> Vec<String> {
        self.chain.iter().map(|(_, n)| n.clone()).collect()
    }
}

#[derive(Default)]
struct CacheState {
    views: HashMap<ObjectId, Arc<ChainView>>,
    /// For each object, the receivers whose cached view passes through it.
    dependents: HashMap<ObjectId, HashSet<ObjectId>>,
}

/// Caches [`ChainView`]s per receiver, invalidated through a reverse index.
#[derive(Default)]
pub(crate) struct ResolutionCache {
    state: RwLock<CacheState>,
}

impl std::fmt::Debug for ResolutionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolutionCache")
            .field("views", &self.len())
            .finish()
    }
}

impl ResolutionCache {
    pub(crate) fn get(&self, receiver: ObjectId) -> Option<Arc<ChainView>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.views.get(&receiver).cloned()
    }

    pub(crate) fn insert(&self, receiver: ObjectId, view: Arc<ChainView>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for (id, _) in &view.chain {
            state.dependents.entry(*id).or_default().insert(receiver);
        }
        state.views.insert(receiver, view);
    }

    /// Drops every view whose chain passes through `changed`.
    pub(crate) fn invalidate(&self, changed: ObjectId) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let Some(receivers) = state.dependents.remove(&changed) else {
            return;
        };
        for receiver in receivers {
            if let Some(view) = state.views.remove(&receiver) {
                for (id, _) in &view.chain {
                    if let Some(set) = state.dependents.get_mut(id) {
                        set.remove(&receiver);
                        if set.is_empty() {
                            state.dependents.remove(id);
                        }
                    }
                }
            }
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        *state = CacheState::default();
    }

    pub(crate) fn len(&self) -> usize {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.views.len()
    }
}

/// Parses a selector, turning a bad one into a clear [`Error::Invalid`].
pub(crate) fn parse_selector(selector: &str) -> Result<Selector> {
    Selector::new(selector).map_err(Error::from)
}
