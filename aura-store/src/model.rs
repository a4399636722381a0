//! The persisted data model (docs/ARCHITECTURE.md, "Data model").

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|e| Error::Invalid(format!("{s:?} is not a valid id: {e}")))
            }
        }
    };
}

id_type!(
    /// Identifies an object.
    ObjectId
);
id_type!(
    /// Identifies a memory node.
    NodeId
);
id_type!(
    /// Identifies an audit event.
    EventId
);

/// The longest selector accepted.
pub const MAX_SELECTOR_LEN: usize = 64;

/// Python's reserved words: none of them can name a method.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "match", "case", "type", "_",
];

/// A method name: an ASCII Python identifier that is neither a keyword nor private.
///
/// Selectors become Python function names and `self.<selector>` attributes, so they
/// must be identifiers; private (`_x`) and dunder names are refused because the guard
/// forbids reaching them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selector(String);

impl Selector {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut chars = name.chars();
        let valid_start = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if name.is_empty() || !valid_start || !valid_rest {
            return Err(Error::Invalid(format!(
                "selector {name:?} is not a valid method name: use letters, digits and \
                 underscores, starting with a letter (for example `fibonacci`)"
            )));
        }
        if name.len() > MAX_SELECTOR_LEN {
            return Err(Error::Invalid(format!(
                "selector {name:?} is longer than {MAX_SELECTOR_LEN} characters"
            )));
        }
        if PYTHON_KEYWORDS.contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "selector {name:?} is a Python keyword and cannot name a method"
            )));
        }
        Ok(Self(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rules of [`Selector::new`] as a JSON Schema string: its pattern spells out the
/// keywords it refuses (a lookahead), so a generated document cannot drift from them.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Selector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let pattern = format!(
            "^(?!(?:{})$)[A-Za-z][A-Za-z0-9_]*$",
            PYTHON_KEYWORDS.join("|")
        );
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "a method's name: a letter, then letters, digits and underscores; \
                 not a Python keyword",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_SELECTOR_LEN))
            .pattern(Some(pattern))
            .examples(["fibonacci"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Selector {}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Selector {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Selector::new(s)
    }
}

impl From<Selector> for String {
    fn from(s: Selector) -> String {
        s.0
    }
}

impl FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Selector::new(s)
    }
}

impl AsRef<str> for Selector {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The longest object name accepted.
pub const MAX_NAME_LEN: usize = 256;

/// Checks an object's name: not blank, at most [`MAX_NAME_LEN`] characters, no control
/// characters. Counted in characters, as JSON Schema's `maxLength` counts, so the
/// gateway's document can state the rule exactly.
pub fn validate_object_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::Invalid("an object's name cannot be empty".into()));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "an object's name is at most {MAX_NAME_LEN} characters (got {chars})"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "an object's name cannot hold control characters".into(),
        ));
    }
    Ok(())
}

/// A prototype object: named slots, and parents it delegates to, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Object {
    /// The object's id.
    pub id: ObjectId,
    /// A unique, human-readable name.
    pub name: String,
    /// The objects this one delegates to, searched in this order.
    pub parents: Vec<ObjectId>,
    /// The object's data: a JSON object of slot name → value.
    pub slots: Map<String, Value>,
    /// The revision, incremented by every write; writes name the revision they read.
    pub rev: u64,
    /// When the object was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to create an object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewObject {
    /// The id to use; a fresh one when `None`.
    pub id: Option<ObjectId>,
    /// A unique name.
    pub name: String,
    /// The parents, in delegation order.
    pub parents: Vec<ObjectId>,
    /// The initial slots.
    pub slots: Map<String, Value>,
}

impl NewObject {
    /// An object named `name` with no parents and no slots.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the parents.
    pub fn with_parents(mut self, parents: impl IntoIterator<Item = ObjectId>) -> Self {
        self.parents = parents.into_iter().collect();
        self
    }

    /// Sets the slots.
    pub fn with_slots(mut self, slots: Map<String, Value>) -> Self {
        self.slots = slots;
        self
    }
}

/// A change to an existing object, checked against the revision the writer read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectPatch {
    /// New slots (replacing all slots) when set.
    pub slots: Option<Map<String, Value>>,
    /// New parents when set; a cycle is refused.
    pub parents: Option<Vec<ObjectId>>,
}

/// Where a method came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Provenance {
    /// Written by a person or a host program.
    Manual,
    /// Learned by the cascade in the learn cycle whose audit event is named.
    Learned {
        /// The audit event that records the accepted attempt.
        event: Option<EventId>,
        /// The models that took part.
        models: Vec<String>,
    },
    /// Restored from an earlier version.
    Rollback {
        /// The version restored.
        from_version: u32,
    },
}

/// One version of a method on an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Method {
    /// The object the method lives on.
    pub object_id: ObjectId,
    /// The method's name.
    pub selector: Selector,
    /// Python source defining `def <selector>(self, …)`.
    pub source: String,
    /// Python test functions for it (may be empty).
    pub tests: String,
    /// What it does, in words.
    pub doc: String,
    /// 1 for the first version, then counting up; never reused.
    pub version: u32,
    /// Where it came from.
    pub provenance: Provenance,
    /// The selectors this version may call on its receiver (its call graph), as the
    /// guard read its source when it was stored. `None` says it was not recorded (a
    /// method stored before AURA recorded them): a call then ships every method on
    /// the chain, the conservative answer.
    #[serde(default)]
    pub calls: Option<Vec<Selector>>,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
}

/// A method to store as the next version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMethod {
    /// The object it belongs to.
    pub object_id: ObjectId,
    /// Its name.
    pub selector: Selector,
    /// Its Python source.
    pub source: String,
    /// Its tests.
    pub tests: String,
    /// Its description.
    pub doc: String,
    /// Where it came from.
    pub provenance: Provenance,
    /// The selectors it may call on its receiver; `None` when not known (see
    /// [`Method::calls`]).
    #[serde(default)]
    pub calls: Option<Vec<Selector>>,
}

/// A node in an object's graph memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryNode {
    /// The node's id.
    pub id: NodeId,
    /// What it records ("message", "reply", "method", "concept", …).
    pub kind: String,
    /// Its text, searchable.
    pub text: String,
    /// An optional embedding vector.
    pub embedding: Option<Vec<f32>>,
    /// Free-form metadata.
    pub meta: Value,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A memory node to add.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMemoryNode {
    /// The id to use; a fresh one when `None`.
    pub id: Option<NodeId>,
    /// Its kind.
    pub kind: String,
    /// Its text.
    pub text: String,
    /// An optional embedding.
    pub embedding: Option<Vec<f32>>,
    /// Metadata (a JSON value; `null` when none).
    pub meta: Value,
}

impl NewMemoryNode {
    /// A node of `kind` holding `text`.
    pub fn new(kind: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: None,
            kind: kind.into(),
            text: text.into(),
            embedding: None,
            meta: Value::Null,
        }
    }
}

/// Either end of a context link: memory nodes and objects can both be linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum NodeRef {
    /// A memory node.
    Node(NodeId),
    /// An object.
    Object(ObjectId),
}

/// A directed, weighted edge in the memory graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextLink {
    /// Where it starts.
    pub from: NodeRef,
    /// Where it ends.
    pub to: NodeRef,
    /// What it means ("about", "replied_to", "defines", …).
    pub kind: String,
    /// How strong it is (1.0 by default).
    pub weight: f64,
}

/// A memory node found near another, with how far away it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// The node.
    pub node: MemoryNode,
    /// Hops from the start (1 = directly linked).
    pub depth: u32,
}

/// A memory node matched by text search, with its rank (higher is better).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The node.
    pub node: MemoryNode,
    /// Relevance; only comparable within one search.
    pub score: f64,
}

/// One entry of the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// The event's id (time-ordered).
    pub id: EventId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened ("learn.attempt", "method.committed", "guard.rejected", …).
    pub kind: String,
    /// The object it concerns, if any.
    pub object_id: Option<ObjectId>,
    /// The details.
    pub payload: Value,
}

/// An audit event to append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    /// Its kind.
    pub kind: String,
    /// The object it concerns.
    pub object_id: Option<ObjectId>,
    /// The details.
    pub payload: Value,
}

impl NewAuditEvent {
    /// An event of `kind` with `payload`.
    pub fn new(kind: impl Into<String>, object_id: Option<ObjectId>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            object_id,
            payload,
        }
    }
}

/// Which audit events to read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only events about this object.
    pub object_id: Option<ObjectId>,
    /// Only events of this kind; a trailing `*` matches a prefix (`learn.*`).
    pub kind: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this event (from [`AuditPage::next`]).
    pub after: Option<EventId>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The largest page of audit events one query returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

impl AuditQuery {
    /// The page size this query asks for, clamped to 1..=[`MAX_AUDIT_PAGE`].
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE)
    }
}

/// A page of audit events, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, when there may be one.
    pub next: Option<EventId>,
}

/// A cognitive facet: a persona's model specialised by a LoRA adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facet {
    /// Unique name, like `babs:grounding-v2`.
    pub name: String,
    /// The persona it serves.
    pub persona: String,
    /// The base model it adapts.
    pub base_model: String,
    /// Where its adapter lives (a file path, or a model name on a server).
    pub adapter_path: String,
    /// Training and evaluation figures.
    pub metrics: Value,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Paging for listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// How many to skip.
    pub offset: u32,
    /// How many at most.
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: 100,
        }
    }
}
