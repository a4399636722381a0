//! Every AQL query the adapter sends.
//!
//! [`Aql`] can only be built from `&'static str` pieces, so no runtime text — a user's
//! slot name, a model's memory text, a search query — can ever become part of a query:
//! such values travel in `bindVars` only. Collection, view, graph and analyzer names are
//! the fixed names of this schema ([`super::schema`]).

use std::borrow::Cow;

/// An AQL query text, assembled only from compile-time pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Aql(Cow<'static, str>);

impl Aql {
    /// A fixed query.
    pub(crate) const fn new(text: &'static str) -> Self {
        Self(Cow::Borrowed(text))
    }

    /// Appends a fixed piece (for queries whose filters depend on which options are set).
    pub(crate) fn then(mut self, piece: &'static str) -> Self {
        self.0.to_mut().push_str(piece);
        self
    }

    /// The query text.
    pub(crate) fn text(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------
// Objects

/// One object by key (`@key`).
pub(crate) const GET_OBJECT: Aql = Aql::new("FOR o IN Objects FILTER o._key == @key RETURN o");

/// One object by unique name (`@name`).
pub(crate) const FIND_OBJECT: Aql =
    Aql::new("FOR o IN Objects FILTER o.name == @name LIMIT 1 RETURN o");

/// A page of objects, oldest first (`@offset`, `@limit`).
pub(crate) const LIST_OBJECTS: Aql =
    Aql::new("FOR o IN Objects SORT o.created_us, o._key LIMIT @offset, @limit RETURN o");

/// Whether a key and a name are taken (`@key`, `@name`).
pub(crate) const CREATE_CHECK: Aql = Aql::new(
    "RETURN { \
       id_taken: LENGTH(FOR o IN Objects FILTER o._key == @key LIMIT 1 RETURN 1) > 0, \
       name_taken: LENGTH(FOR o IN Objects FILTER o.name == @name LIMIT 1 RETURN 1) > 0 \
     }",
);

/// The parent lists of the given objects (`@keys`), to check existence and walk ancestors.
pub(crate) const PARENTS_OF: Aql =
    Aql::new("FOR o IN Objects FILTER o._key IN @keys RETURN { key: o._key, parents: o.parents }");

/// Inserts an object document (`@doc`).
pub(crate) const INSERT_OBJECT: Aql = Aql::new("INSERT @doc INTO Objects RETURN NEW");

/// Replaces an object document if its `_rev` (inside `@doc`) is still current.
pub(crate) const REPLACE_OBJECT: Aql =
    Aql::new("REPLACE @doc IN Objects OPTIONS { ignoreRevs: false } RETURN NEW");

/// Up to three objects that delegate to `@key`.
pub(crate) const CHILDREN_OF: Aql =
    Aql::new("FOR o IN Objects FILTER @key IN o.parents SORT o._key LIMIT 3 RETURN o._key");

/// Removes an object (`@key`, handle `@handle`), its links and its methods.
pub(crate) const DELETE_OBJECT: Aql = Aql::new(
    "LET links = (FOR l IN ContextLinks FILTER l._from == @handle OR l._to == @handle \
                  REMOVE l IN ContextLinks) \
     LET methods = (FOR m IN Methods FILTER m.object_id == @key REMOVE m IN Methods) \
     REMOVE { _key: @key } IN Objects",
);

// ---------------------------------------------------------------------------------------
// Methods

/// Whether `@object` exists, and the newest version of its method `@selector`.
pub(crate) const GET_METHOD: Aql = Aql::new(
    "RETURN { \
       exists: LENGTH(FOR o IN Objects FILTER o._key == @object LIMIT 1 RETURN 1) > 0, \
       methods: (FOR m IN Methods FILTER m.object_id == @object AND m.selector == @selector \
                 SORT m.version DESC LIMIT 1 RETURN m) \
     }",
);

/// Whether `@object` exists, and the newest version of each of its methods.
pub(crate) const LIST_METHODS: Aql = Aql::new(
    "RETURN { \
       exists: LENGTH(FOR o IN Objects FILTER o._key == @object LIMIT 1 RETURN 1) > 0, \
       methods: (FOR m IN Methods FILTER m.object_id == @object \
                 COLLECT selector = m.selector AGGREGATE latest = MAX(m.version) \
                 FOR c IN Methods \
                   FILTER c.object_id == @object AND c.selector == selector AND c.version == latest \
                   RETURN c) \
     }",
);

/// Whether `@object` exists, and every version of its method `@selector`, oldest first.
pub(crate) const METHOD_VERSIONS: Aql = Aql::new(
    "RETURN { \
       exists: LENGTH(FOR o IN Objects FILTER o._key == @object LIMIT 1 RETURN 1) > 0, \
       methods: (FOR m IN Methods FILTER m.object_id == @object AND m.selector == @selector \
                 SORT m.version RETURN m) \
     }",
);

/// Whether `@object` exists, and version `@version` of its method `@selector`.
pub(crate) const METHOD_VERSION: Aql = Aql::new(
    "RETURN { \
       exists: LENGTH(FOR o IN Objects FILTER o._key == @object LIMIT 1 RETURN 1) > 0, \
       methods: (FOR m IN Methods FILTER m.object_id == @object AND m.selector == @selector \
                 AND m.version == @version LIMIT 1 RETURN m) \
     }",
);

/// Stores `@method` as the next version of its selector, if `@object` exists (else nothing).
pub(crate) const PUT_METHOD: Aql = Aql::new(
    "LET exists = LENGTH(FOR o IN Objects FILTER o._key == @object LIMIT 1 RETURN 1) > 0 \
     LET last = FIRST(FOR m IN Methods FILTER m.object_id == @object AND m.selector == @selector \
                      SORT m.version DESC LIMIT 1 RETURN m.version) \
     FOR ok IN (exists ? [1] : []) \
       INSERT MERGE(@method, { version: (last == null ? 0 : last) + 1 }) INTO Methods \
       RETURN NEW",
);

// ---------------------------------------------------------------------------------------
// Memory graph

/// One memory node by key (`@key`).
pub(crate) const GET_NODE: Aql = Aql::new("FOR n IN MemoryNodes FILTER n._key == @key RETURN n");

/// Inserts `@node` unless its key (`@key`) is taken; returns nothing when it is.
pub(crate) const ADD_NODE: Aql = Aql::new(
    "LET taken = LENGTH(FOR n IN MemoryNodes FILTER n._key == @key LIMIT 1 RETURN 1) > 0 \
     FOR ok IN (taken ? [] : [1]) \
       INSERT @node INTO MemoryNodes \
       RETURN NEW._key",
);

/// Adds (or re-weights) the link `@from` → `@to` of `@kind` when both ends exist.
pub(crate) const ADD_LINK: Aql = Aql::new(
    "LET from_ok = DOCUMENT(@from) != null \
     LET to_ok = DOCUMENT(@to) != null \
     LET written = (FOR ok IN ((from_ok AND to_ok) ? [1] : []) \
       UPSERT { _from: @from, _to: @to, kind: @kind } \
       INSERT { _from: @from, _to: @to, kind: @kind, weight: @weight } \
       UPDATE { weight: @weight } IN ContextLinks \
       RETURN 1) \
     RETURN { from_ok, to_ok }",
);

/// Whether the vertex `@start` (a document handle) exists.
pub(crate) const VERTEX_EXISTS: Aql = Aql::new("RETURN DOCUMENT(@start) != null");

/// Breadth-first walk of the context graph from `@start`, both directions, each vertex once
/// at its least depth; memory nodes only, nearest first, heavier links first at one depth.
pub(crate) const NEIGHBOURS: Aql = Aql::new(
    "RETURN { \
       found: DOCUMENT(@start) != null, \
       hits: (FOR v, e, p IN 1..@depth ANY @start GRAPH \"ContextGraph\" \
                OPTIONS { order: \"bfs\", uniqueVertices: \"global\" } \
                FILTER IS_SAME_COLLECTION(\"MemoryNodes\", v) \
                SORT LENGTH(p.edges), e.weight DESC \
                LIMIT @limit \
                RETURN { node: v, depth: LENGTH(p.edges) }) \
     }",
);

/// Ranked text search through the view: the query's words (analysed like the stored text,
/// at most 64) match whole words, and words of 3+ characters also match word prefixes
/// (the indexed edge n-grams). `waitForSync` makes just-committed nodes searchable.
pub(crate) const SEARCH: Aql = Aql::new(
    "LET terms = SLICE(UNIQUE(TOKENS(@query, \"aura_words\")), 0, 64) \
     FOR n IN MemoryView \
       SEARCH ANALYZER(n.text IN terms, \"aura_prefix\") \
       OPTIONS { waitForSync: true } \
       LET score = BM25(n) \
       SORT score DESC, n._key \
       LIMIT @limit \
       RETURN { node: n, score }",
);

// ---------------------------------------------------------------------------------------
// Audit trail

/// Appends `@event`.
pub(crate) const APPEND_EVENT: Aql = Aql::new("INSERT @event INTO AuditEvents RETURN NEW._key");

/// Whether event `@key` exists.
pub(crate) const EVENT_EXISTS: Aql =
    Aql::new("RETURN LENGTH(FOR e IN AuditEvents FILTER e._key == @key LIMIT 1 RETURN 1) > 0");

/// The start of an audit query; filters follow, then [`AUDIT_END`].
pub(crate) const AUDIT_START: &str = "FOR e IN AuditEvents";
/// Only events about `@object`.
pub(crate) const AUDIT_BY_OBJECT: &str = " FILTER e.object_id == @object";
/// Only events of kind `@kind`.
pub(crate) const AUDIT_BY_KIND: &str = " FILTER e.kind == @kind";
/// Only events whose kind starts with `@prefix`.
pub(crate) const AUDIT_BY_PREFIX: &str = " FILTER STARTS_WITH(e.kind, @prefix)";
/// Only events at or after `@since` (microseconds).
pub(crate) const AUDIT_SINCE: &str = " FILTER e.at_us >= @since";
/// Only events before `@until` (microseconds).
pub(crate) const AUDIT_UNTIL: &str = " FILTER e.at_us < @until";
/// Only events after event `@after` (keys are time-ordered ids).
pub(crate) const AUDIT_AFTER: &str = " FILTER e._key > @after";
/// Oldest first, `@count` at most.
pub(crate) const AUDIT_END: &str = " SORT e._key LIMIT @count RETURN e";

// ---------------------------------------------------------------------------------------
// Facets

/// Registers `@facet`, replacing the one named `@name`.
pub(crate) const PUT_FACET: Aql =
    Aql::new("UPSERT { name: @name } INSERT @facet REPLACE @facet IN Facets RETURN NEW");

/// One facet by name (`@name`).
pub(crate) const GET_FACET: Aql =
    Aql::new("FOR f IN Facets FILTER f.name == @name LIMIT 1 RETURN f");

/// Every facet.
pub(crate) const LIST_FACETS: Aql = Aql::new("FOR f IN Facets RETURN f");
