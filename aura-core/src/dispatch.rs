//! Dispatch: resolving a selector along an object's delegation chain, with a cache.
//!
//! The chain is the object itself, then each parent's chain in order (depth-first),
//! each object at most once (so parent cycles that reach the store some other way
//! cannot loop), at most [`MAX_DELEGATION_DEPTH`] levels deep. The nearest definition
//! of a selector wins.
//!
//! Each object's own methods are read from the store once, into an immutable
//! [`MethodTable`] shared (`Arc`) by every chain that passes through the object: a
//! library that teaches `genesis` thousands of methods keeps one copy of them, however
//! many objects delegate to it. A [`ChainView`] is only the chain's tables, nearest
//! first; resolving a selector looks it up in each table in turn (chains are short).
//!
//! Views and tables are cached, both bounded ([`CacheLimits`]) and evicted least
//! recently used first. Every write the runtime makes to an object's methods or parents
//! drops that object's table and the views of every object whose chain passes through
//! it, found through a reverse index. A load that overlapped such a write is answered
//! but not cached, so a stale table or view is never kept.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use aura_store::{Method, Object, ObjectId, Selector, Store};
use hashlink::LinkedHashMap;
use serde::Serialize;

use crate::config::CacheLimits;
use crate::{Error, Result};

/// How many delegation levels are searched below the receiver.
pub const MAX_DELEGATION_DEPTH: usize = 64;

/// What one cached entry costs beyond its strings: hash-map slots, `Arc` counts, list links.
const ENTRY_OVERHEAD: usize = 64;

/// A method in a table, found by its own selector: the table keeps no second copy of
/// the name, and copying a table copies only `Arc`s.
#[derive(Clone, Debug)]
struct ByName(Arc<Method>);

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.selector == other.0.selector
    }
}

impl Eq for ByName {}

impl std::hash::Hash for ByName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.selector.hash(state);
    }
}

impl std::borrow::Borrow<Selector> for ByName {
    fn borrow(&self) -> &Selector {
        &self.0.selector
    }
}

/// One object's own methods (their current versions), shared by every chain through it.
#[derive(Clone, Debug)]
pub struct MethodTable {
    object: ObjectId,
    name: String,
    /// The object's parents when the table was read: a cached table lets a chain be
    /// walked without reading its objects again. A parent change drops the table.
    parents: Vec<ObjectId>,
    methods: HashSet<ByName>,
    bytes: usize,
}

impl MethodTable {
    pub(crate) fn new(
        object: ObjectId,
        name: String,
        parents: Vec<ObjectId>,
        methods: Vec<Method>,
    ) -> Self {
        let mut bytes = std::mem::size_of::<Self>() + name.len() + parents.len() * 16;
        let methods: HashSet<ByName> = methods
            .into_iter()
            .map(|m| {
                bytes += method_bytes(&m);
                ByName(Arc::new(m))
            })
            .collect();
        Self {
            object,
            name,
            parents,
            methods,
            bytes,
        }
    }

    /// The object these methods are defined on.
    pub fn object(&self) -> ObjectId {
        self.object
    }

    /// That object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The method defined here for `selector`, if any.
    pub fn get(&self, selector: &Selector) -> Option<&Arc<Method>> {
        self.methods.get(selector).map(|m| &m.0)
    }

    /// Every method defined here, in no particular order.
    pub fn methods(&self) -> impl Iterator<Item = &Arc<Method>> {
        self.methods.iter().map(|m| &m.0)
    }

    /// How many methods are defined here.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether no method is defined here.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// An estimate of the memory the table holds, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the table holds `method`'s version of its selector or a newer one.
    fn has(&self, method: &Method) -> bool {
        self.get(&method.selector)
            .is_some_and(|old| old.version >= method.version)
    }

    /// Puts `method` in place of its selector's older version.
    fn put(&mut self, method: &Method) {
        let old = self.methods.replace(ByName(Arc::new(method.clone())));
        self.bytes = self.bytes - old.map_or(0, |m| method_bytes(&m.0)) + method_bytes(method);
    }
}

fn method_bytes(m: &Method) -> usize {
    std::mem::size_of::<Method>()
        + ENTRY_OVERHEAD
        + m.selector.as_ref().len()
        + m.source.len()
        + m.tests.len()
        + m.doc.len()
}

/// The methods visible through one chain: each selector's nearest definition.
///
/// It holds the chain's tables, never copies of their methods.
#[derive(Debug, Clone)]
pub struct ChainMethods {
    /// Nearest first; the receiver's own table is the first.
    tables: Vec<Arc<MethodTable>>,
    /// How many distinct selectors the tables define together: counted when first asked
    /// (object bodies show it), since counting reads every selector of a large library.
    visible: std::sync::OnceLock<usize>,
}

impl ChainMethods {
    pub(crate) fn new(tables: Vec<Arc<MethodTable>>) -> Self {
        Self {
            tables,
            visible: std::sync::OnceLock::new(),
        }
    }

    /// The nearest definition of `selector`.
    pub fn get(&self, selector: &Selector) -> Option<&Arc<Method>> {
        self.tables.iter().find_map(|t| t.get(selector))
    }

    /// Whether any object on the chain defines `selector`.
    pub fn contains_key(&self, selector: &Selector) -> bool {
        self.get(selector).is_some()
    }

    /// Each visible method with the table that defines it, each selector once, in no
    /// particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&MethodTable, &Arc<Method>)> {
        self.tables.iter().enumerate().flat_map(move |(i, table)| {
            let nearer = &self.tables[..i];
            table
                .methods()
                .filter(move |m| !nearer.iter().any(|n| n.methods.contains(&m.selector)))
                .map(move |m| (&**table, m))
        })
    }

    /// Every visible selector, each once.
    pub fn keys(&self) -> impl Iterator<Item = &Selector> {
        self.iter().map(|(_, m)| &m.selector)
    }

    /// Every visible method (the nearest definition of each selector).
    pub fn values(&self) -> impl Iterator<Item = &Arc<Method>> {
        self.iter().map(|(_, m)| m)
    }

    /// How many selectors are visible.
    pub fn len(&self) -> usize {
        *self.visible.get_or_init(|| {
            // A selector counts once, at its farthest definition: checking each table
            // against the ones after it costs nothing for the last (usually the root's).
            let tables = &self.tables;
            tables
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let farther = &tables[i + 1..];
                    t.methods()
                        .filter(|m| !farther.iter().any(|f| f.methods.contains(&m.selector)))
                        .count()
                })
                .sum()
        })
    }

    /// Whether nothing is visible.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.is_empty())
    }
}

/// Everything one object can respond to, resolved along its delegation chain.
#[derive(Debug, Clone)]
pub struct ChainView {
    /// The visible methods, through the chain's shared tables.
    pub methods: ChainMethods,
}

impl ChainView {
    /// The nearest definition of `selector`.
    pub fn resolve(&self, selector: &Selector) -> Option<&Arc<Method>> {
        self.methods.get(selector)
    }

    /// What a call of `selector` ships to the sandbox as its `self.other(…)` helpers:
    /// the nearest definition of every selector it can reach, following `calls` (the
    /// called code's own call graph) and then each reached method's recorded one, along
    /// this chain. A call that reaches nothing else ships nothing else, however large the
    /// library behind it.
    ///
    /// `None` anywhere on the way (a call graph that was not recorded) is answered
    /// conservatively: every visible method but `selector` is shipped.
    pub fn helpers_for(
        &self,
        selector: &Selector,
        calls: Option<&[Selector]>,
    ) -> Vec<aura_sandbox::MethodSource> {
        let Some(calls) = calls else {
            return self.every_helper(selector);
        };
        let mut seen: HashSet<&Selector> = HashSet::from([selector]);
        let mut next: Vec<&Selector> = calls.iter().collect();
        let mut helpers = Vec::new();
        while let Some(name) = next.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(method) = self.resolve(name) else {
                continue; // a slot, or a name used on another object
            };
            let Some(reached) = &method.calls else {
                return self.every_helper(selector);
            };
            next.extend(reached);
            helpers.push(helper(method));
        }
        helpers
    }

    fn every_helper(&self, selector: &Selector) -> Vec<aura_sandbox::MethodSource> {
        self.methods
            .values()
            .filter(|m| &m.selector != selector)
            .map(|m| helper(m))
            .collect()
    }

    /// The tables searched, nearest (the receiver's own) first.
    pub fn chain(&self) -> impl Iterator<Item = &MethodTable> {
        self.methods.tables.iter().map(|t| &**t)
    }

    /// The names searched, nearest first.
    pub fn chain_names(&self) -> Vec<String> {
        self.chain().map(|t| t.name.clone()).collect()
    }

    /// The receiver's own methods.
    pub fn own(&self) -> Option<&MethodTable> {
        self.chain().next()
    }

    /// One page of the selectors the receiver responds to (only its own with `own`), in
    /// name order, each with the object that defines it.
    pub fn selectors(&self, own: bool, offset: usize, limit: usize) -> SelectorPage {
        let mut all: Vec<(&MethodTable, &Arc<Method>)> = if own {
            self.own()
                .map(|t| t.methods().map(|m| (t, m)).collect())
                .unwrap_or_default()
        } else {
            self.methods.iter().collect()
        };
        let total = all.len();
        all.sort_unstable_by(|a, b| a.1.selector.cmp(&b.1.selector));
        let selectors: Vec<SelectorEntry> = all
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(table, m)| SelectorEntry {
                selector: m.selector.to_string(),
                defined_on: table.name.clone(),
                defined_on_id: table.object,
                version: m.version,
            })
            .collect();
        let end = offset.saturating_add(selectors.len());
        SelectorPage {
            next_offset: (end < total).then_some(end),
            selectors,
            total,
        }
    }
}

fn helper(method: &Method) -> aura_sandbox::MethodSource {
    aura_sandbox::MethodSource {
        selector: method.selector.to_string(),
        source: method.source.clone(),
    }
}

/// The call graph of code made of `sources` (a method, or a method and its tests): every
/// selector any of them can call, or `None` when one cannot be read, which makes a call
/// ship everything (see [`ChainView::helpers_for`]).
pub(crate) fn calls_of(sources: &[&str]) -> Option<Vec<Selector>> {
    let mut calls = std::collections::BTreeSet::new();
    for source in sources {
        // Names that cannot be selectors (`_private`, keywords) can never be methods.
        calls.extend(
            aura_guard::called_names(source)?
                .into_iter()
                .filter_map(|name| Selector::new(name).ok()),
        );
    }
    Some(calls.into_iter().collect())
}

/// One selector an object responds to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SelectorEntry {
    /// The selector.
    pub selector: String,
    /// The name of the nearest object on the chain that defines it.
    pub defined_on: String,
    /// That object's id.
    pub defined_on_id: ObjectId,
    /// The current version of that definition.
    pub version: u32,
}

/// A page of [`SelectorEntry`]s, in selector order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SelectorPage {
    /// This page.
    pub selectors: Vec<SelectorEntry>,
    /// How many selectors there are in all.
    pub total: usize,
    /// Where the next page starts; `None` on the last.
    pub next_offset: Option<usize>,
}

/// What the resolution cache holds and has done, for `/v1/health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Receivers with a cached view.
    pub views: usize,
    /// The most views kept.
    pub max_views: usize,
    /// Objects with a cached method table.
    pub tables: usize,
    /// The most tables kept.
    pub max_tables: usize,
    /// The estimated bytes those tables hold.
    pub table_bytes: usize,
    /// The most table bytes kept (one table larger than this is still kept alone).
    pub max_table_bytes: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that read the store.
    pub misses: u64,
    /// Views and tables dropped to stay within the bounds.
    pub evictions: u64,
}

#[derive(Default)]
struct CacheState {
    /// Least recently used first.
    views: LinkedHashMap<ObjectId, Arc<ChainView>>,
    /// Least recently used first.
    tables: LinkedHashMap<ObjectId, Arc<MethodTable>>,
    table_bytes: usize,
    /// For each object, the receivers whose cached view passes through it.
    dependents: HashMap<ObjectId, HashSet<ObjectId>>,
    /// Counts invalidations: a load that saw another number overlapped a write.
    epoch: u64,
    /// The last writes, oldest first: each invalidation's epoch and the object it
    /// touched (`None`: everything). A load that overlapped writes to other objects
    /// only is still cached; see [`CacheState::written_since`].
    recent_writes: std::collections::VecDeque<(u64, Option<ObjectId>)>,
    hits: u64,
    misses: u64,
    evictions: u64,
}

/// How many recent writes are remembered. A load that overlapped more writes than this
/// is not cached (it cannot tell whether one of them touched its objects).
const RECENT_WRITES: usize = 1024;

impl CacheState {
    /// Counts a write to `object` (`None`: to everything).
    fn wrote(&mut self, object: Option<ObjectId>) {
        self.epoch += 1;
        if self.recent_writes.len() == RECENT_WRITES {
            self.recent_writes.pop_front();
        }
        self.recent_writes.push_back((self.epoch, object));
    }

    /// Whether a write since `epoch` may have touched one of `objects`. A load compares
    /// this before caching what it read: with a single global epoch, a library whose
    /// `genesis` is written to more often than its 10,000 methods take to read could
    /// never cache that table again, and every request reread it.
    fn written_since(&self, epoch: u64, objects: impl Iterator<Item = ObjectId>) -> bool {
        if self.epoch == epoch {
            return false;
        }
        let remembered = self
            .recent_writes
            .front()
            .is_some_and(|(first, _)| *first <= epoch + 1);
        if !remembered {
            return true;
        }
        // Only the writes after `epoch`, newest first; a chain is a handful of objects.
        let objects: Vec<ObjectId> = objects.collect();
        self.recent_writes
            .iter()
            .rev()
            .take_while(|(e, _)| *e > epoch)
            .any(|(_, touched)| touched.is_none_or(|id| objects.contains(&id)))
    }

    fn remove_view(&mut self, receiver: ObjectId) {
        let Some(view) = self.views.remove(&receiver) else {
            return;
        };
        for table in view.chain() {
            if let Some(set) = self.dependents.get_mut(&table.object) {
                set.remove(&receiver);
                if set.is_empty() {
                    self.dependents.remove(&table.object);
                }
            }
        }
    }

    /// Drops `id`'s table and every view through it.
    fn remove_table(&mut self, id: ObjectId) {
        if let Some(table) = self.tables.remove(&id) {
            self.table_bytes = self.table_bytes.saturating_sub(table.bytes);
        }
        for receiver in self.dependents.remove(&id).unwrap_or_default() {
            self.remove_view(receiver);
        }
    }
}

/// Caches method tables per object and [`ChainView`]s per receiver, both bounded.
pub(crate) struct ResolutionCache {
    limits: CacheLimits,
    state: Mutex<CacheState>,
}

impl Default for ResolutionCache {
    fn default() -> Self {
        Self::new(CacheLimits::default())
    }
}

impl std::fmt::Debug for ResolutionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolutionCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ResolutionCache {
    pub(crate) fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached view of `receiver`, marking it and its tables as recently used.
    pub(crate) fn get(&self, receiver: ObjectId) -> Option<Arc<ChainView>> {
        let mut state = self.state();
        let Some(view) = state.views.to_back(&receiver).map(|v| v.clone()) else {
            state.misses += 1;
            return None;
        };
        state.hits += 1;
        for table in view.chain() {
            state.tables.to_back(&table.object);
        }
        Some(view)
    }

    /// Builds `receiver`'s view, reading from the store only the tables not cached, and
    /// caches it unless a write overlapped the load.
    pub(crate) async fn load(
        &self,
        store: &dyn Store,
        receiver: &Object,
    ) -> Result<Arc<ChainView>> {
        let epoch = self.state().epoch;
        let mut tables = Vec::new();
        let mut seen = HashSet::new();
        // Depth-first, parents in order: a stack of (object, depth) with parents pushed
        // reversed. The receiver's parents are the ones just read, not a cached table's.
        let mut stack = vec![(receiver.id, Some(receiver), 0usize)];
        while let Some((id, object, depth)) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let table = match self.table(id) {
                Some(t) => t,
                None => {
                    let (name, parents) = match object {
                        Some(o) => (o.name.clone(), o.parents.clone()),
                        None => match store.get_object(id).await {
                            Ok(o) => (o.name, o.parents),
                            // A parent deleted under us: skip it rather than fail every send.
                            Err(aura_store::Error::NotFound { .. }) => {
                                tracing::warn!(target: "Orchestrator", parent = %id, "missing parent skipped");
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        },
                    };
                    let methods = store.list_methods(id).await?;
                    self.insert_table(MethodTable::new(id, name, parents, methods), epoch)
                }
            };
            let parents = match object {
                Some(o) => &o.parents,
                None => &table.parents,
            };
            if depth >= MAX_DELEGATION_DEPTH {
                tracing::warn!(target: "Orchestrator", object = %table.name,
                    "delegation chain deeper than {MAX_DELEGATION_DEPTH}; not searching further");
            } else {
                for parent in parents.iter().rev() {
                    if !seen.contains(parent) {
                        stack.push((*parent, None, depth + 1));
                    }
                }
            }
            tables.push(table);
        }
        let view = Arc::new(ChainView {
            methods: ChainMethods::new(tables),
        });
        self.insert_view(receiver.id, view.clone(), epoch);
        Ok(view)
    }

    fn table(&self, id: ObjectId) -> Option<Arc<MethodTable>> {
        self.state().tables.to_back(&id).map(|t| t.clone())
    }

    /// Caches `table` unless a write overlapped its load, and returns the table to use:
    /// the one already cached when a concurrent load got there first, so both share it.
    fn insert_table(&self, table: MethodTable, epoch: u64) -> Arc<MethodTable> {
        let mut state = self.state();
        if let Some(cached) = state.tables.to_back(&table.object) {
            return cached.clone();
        }
        let table = Arc::new(table);
        if state.written_since(epoch, std::iter::once(table.object)) {
            return table;
        }
        self.keep_table(&mut state, table.clone());
        table
    }

    /// Caches `table`, then evicts the least recently used tables (never this one: one
    /// table larger than the budget is still better kept than read again for every chain
    /// through it) until the bounds hold.
    fn keep_table(&self, state: &mut CacheState, table: Arc<MethodTable>) {
        let id = table.object;
        state.table_bytes += table.bytes;
        state.tables.insert(id, table);
        while state.tables.len() > self.limits.tables.max(1)
            || (state.table_bytes > self.limits.table_bytes && state.tables.len() > 1)
        {
            let Some((&oldest, _)) = state.tables.front() else {
                break;
            };
            if oldest == id {
                break;
            }
            state.remove_table(oldest);
            state.evictions += 1;
        }
    }

    fn insert_view(&self, receiver: ObjectId, view: Arc<ChainView>, epoch: u64) {
        let mut state = self.state();
        // Every table of a cached view is cached too, so evicting a table can drop the
        // views that hold it and the byte bound is real.
        let tables_cached = view.methods.tables.iter().all(|t| {
            state
                .tables
                .get(&t.object)
                .is_some_and(|c| Arc::ptr_eq(c, t))
        });
        if !tables_cached || state.written_since(epoch, view.chain().map(|t| t.object)) {
            return;
        }
        state.remove_view(receiver);
        for table in view.chain() {
            state
                .dependents
                .entry(table.object)
                .or_default()
                .insert(receiver);
        }
        state.views.insert(receiver, view);
        while state.views.len() > self.limits.views.max(1) {
            let Some((&oldest, _)) = state.views.front() else {
                break;
            };
            state.remove_view(oldest);
            state.evictions += 1;
        }
    }

    /// Checks a miss of `selector` on `view` against the store: re-reads, for every
    /// object on the chain, its parents and its definition of `selector` alone, and drops
    /// the table (and the views through it) of each whose parents changed or that defines
    /// `selector` behind the runtime's back — another process, or a host writing to the
    /// store directly. A miss costs one point lookup per object on the chain, never a
    /// reread of every method of a large library (which, done on every miss, was most of
    /// what a busy gateway allocated).
    pub(crate) async fn revalidate_miss(
        &self,
        store: &dyn Store,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<()> {
        for table in view.chain() {
            let parents = match store.get_object(table.object).await {
                Ok(o) => Some(o.parents),
                Err(aura_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let defined = store.get_method(table.object, selector).await?;
            if parents.as_ref() != Some(&table.parents)
                || defined.is_some_and(|method| !table.has(&method))
            {
                self.invalidate(table.object);
            }
        }
        Ok(())
    }

    /// Takes in a method version the runtime has just stored. A cached table of its
    /// object gets the new version in place of the old, so a write to a large library
    /// does not make the next call reread its methods; the views through the object are
    /// dropped, as for any write.
    pub(crate) fn method_written(&self, method: &Method) {
        let mut state = self.state();
        let id = method.object_id;
        state.wrote(Some(id));
        let table = state.tables.get(&id).cloned();
        if table.as_ref().is_some_and(|t| t.has(method)) {
            return; // news of this version, or an older one, arriving late
        }
        state.remove_table(id);
        if let Some(table) = table {
            // With its views dropped the table is usually ours alone, and changes in
            // place; a view still lent out to a call keeps the old one, so it is copied.
            let mut table = Arc::try_unwrap(table).unwrap_or_else(|shared| (*shared).clone());
            table.put(method);
            self.keep_table(&mut state, Arc::new(table));
        }
    }

    /// Drops `changed`'s table and every view whose chain passes through it.
    pub(crate) fn invalidate(&self, changed: ObjectId) {
        let mut state = self.state();
        state.wrote(Some(changed));
        state.remove_table(changed);
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        let epoch = state.epoch + 1;
        let (hits, misses, evictions) = (state.hits, state.misses, state.evictions);
        *state = CacheState {
            epoch,
            hits,
            misses,
            evictions,
            ..CacheState::default()
        };
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let state = self.state();
        CacheStats {
            views: state.views.len(),
            max_views: self.limits.views,
            tables: state.tables.len(),
            max_tables: self.limits.tables,
            table_bytes: state.table_bytes,
            max_table_bytes: self.limits.table_bytes,
            hits: state.hits,
            misses: state.misses,
            evictions: state.evictions,
        }
    }
}

/// Parses a selector, turning a bad one into a clear [`Error::Invalid`].
pub(crate) fn parse_selector(selector: &str) -> Result<Selector> {
    Selector::new(selector).map_err(Error::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly
mod tests {
    use super::*;
    use aura_store::Provenance;

    fn method(object: ObjectId, selector: &str, version: u32) -> Method {
        Method {
            object_id: object,
            selector: Selector::new(selector).unwrap(),
            source: format!("def {selector}(self):\n    return {version}\n"),
            tests: String::new(),
            doc: String::new(),
            version,
            provenance: Provenance::Manual,
            calls: Some(vec![]),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_load_is_cached_unless_a_write_it_overlapped_touched_its_objects() {
        let (lib, other) = (ObjectId::new(), ObjectId::new());
        let table = || MethodTable::new(lib, "lib".into(), vec![], vec![method(lib, "a", 1)]);
        let cache = ResolutionCache::default();
        // A write to another object while `lib` was read: still cached.
        let epoch = cache.state().epoch;
        cache.invalidate(other);
        cache.insert_table(table(), epoch);
        assert!(cache.table(lib).is_some(), "a write elsewhere kept it out");
        // A write to `lib` itself while it was read: not cached (the read may be stale).
        cache.invalidate(lib);
        let epoch = cache.state().epoch;
        cache.method_written(&method(lib, "b", 1));
        cache.insert_table(table(), epoch);
        assert!(cache.table(lib).is_none(), "a stale read was cached");
        // More overlapping writes than are remembered: not cached either.
        let epoch = cache.state().epoch;
        for _ in 0..=RECENT_WRITES {
            cache.invalidate(other);
        }
        cache.insert_table(table(), epoch);
        assert!(cache.table(lib).is_none(), "cached past what is remembered");
        // And `clear` counts as a write to everything.
        let epoch = cache.state().epoch;
        cache.clear();
        cache.insert_table(table(), epoch);
        assert!(cache.table(lib).is_none(), "cached across a clear");
    }

    #[test]
    fn a_written_method_replaces_its_older_version_in_the_cached_table() {
        let id = ObjectId::new();
        let cache = ResolutionCache::default();
        let table = MethodTable::new(id, "lib".into(), vec![], vec![method(id, "a", 1)]);
        let before = cache.insert_table(table, 0);
        assert_eq!(cache.stats().tables, 1);

        cache.method_written(&method(id, "a", 2));
        cache.method_written(&method(id, "b", 1));
        let after = cache.table(id).unwrap();
        assert_eq!(
            after.get(&Selector::new("a").unwrap()).map(|m| m.version),
            Some(2)
        );
        assert_eq!(
            after.get(&Selector::new("b").unwrap()).map(|m| m.version),
            Some(1)
        );
        assert_eq!(
            after.bytes(),
            before.bytes() + method_bytes(&method(id, "b", 1))
        );
        assert_eq!(cache.stats().table_bytes, after.bytes());
        // The table handed out earlier is a snapshot and stays as it was.
        assert_eq!(
            before.get(&Selector::new("a").unwrap()).map(|m| m.version),
            Some(1)
        );

        // News of an older version arriving late changes nothing.
        cache.method_written(&method(id, "a", 1));
        let last = cache.table(id).unwrap();
        assert!(Arc::ptr_eq(&after, &last));
    }

    #[tokio::test]
    async fn a_miss_rereads_only_the_missed_selector_and_the_parents() {
        use aura_store::{NewMethod, NewObject, SqliteStore, StoreExt};
        let store = SqliteStore::open_in_memory().await.unwrap();
        let define = |object: ObjectId, selector: &str| NewMethod {
            object_id: object,
            selector: Selector::new(selector).unwrap(),
            source: format!("def {selector}(self):\n    return 1\n"),
            tests: String::new(),
            doc: String::new(),
            provenance: Provenance::Manual,
            calls: Some(vec![]),
        };
        let lib = store.create_object(NewObject::named("lib")).await.unwrap();
        store.put_method(define(lib.id, "a")).await.unwrap();
        let leaf = store
            .create_object(NewObject::named("leaf").with_parents([lib.id]))
            .await
            .unwrap();
        let cache = ResolutionCache::default();
        let view = cache.load(&store, &leaf).await.unwrap();
        let cached = cache.table(lib.id).unwrap();

        // Written behind the cache's back: a new version of `a`, and a new `b`.
        store.put_method(define(lib.id, "a")).await.unwrap();
        store.put_method(define(lib.id, "b")).await.unwrap();
        // A miss of a selector nobody defines keeps the library's table...
        let missing = Selector::new("c").unwrap();
        cache
            .revalidate_miss(&store, &view, &missing)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&cache.table(lib.id).unwrap(), &cached));
        // ...and a miss of one defined behind its back drops it, and the views through it.
        let b = Selector::new("b").unwrap();
        cache.revalidate_miss(&store, &view, &b).await.unwrap();
        assert!(cache.table(lib.id).is_none());
        assert!(cache.get(leaf.id).is_none());
        let view = cache.load(&store, &leaf).await.unwrap();
        assert_eq!(view.resolve(&b).map(|m| m.version), Some(1));

        // A parent changed behind its back drops the child's table.
        let other = store
            .create_object(NewObject::named("other"))
            .await
            .unwrap();
        store
            .update_object(
                leaf.id,
                leaf.rev,
                aura_store::ObjectPatch {
                    slots: None,
                    parents: Some(vec![other.id]),
                },
            )
            .await
            .unwrap();
        cache
            .revalidate_miss(&store, &view, &missing)
            .await
            .unwrap();
        assert!(cache.table(leaf.id).is_none());
    }

    #[test]
    fn a_written_method_of_an_uncached_object_caches_nothing() {
        let id = ObjectId::new();
        let cache = ResolutionCache::default();
        cache.method_written(&method(id, "a", 1));
        assert_eq!(cache.stats().tables, 0);
    }
}
