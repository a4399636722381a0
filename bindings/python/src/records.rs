//! Read-only records handed to Python: a method version, an audit event, a search hit,
//! a conversational reply. Each is a snapshot; it does not change when the store does.

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use serde_json::Value;

use crate::convert::to_py_owned;

/// One version of a method.
#[pyclass(name = "Method", module = "aura._aura", frozen, get_all)]
pub struct PyMethod {
    /// The id of the object it is defined on.
    object_id: String,
    /// Its selector.
    selector: String,
    /// Its version, from 1.
    version: u32,
    /// Its Python source.
    source: String,
    /// The tests it passed when it was learned (empty for hand-written methods).
    tests: String,
    /// What it does.
    doc: String,
    /// Where it came from: `{"kind": "manual" | "learned" | "rollback", …}`.
    provenance: Py<PyAny>,
    /// The selectors it may call on its receiver, or `None` when not recorded.
    calls: Option<Vec<String>>,
    /// When this version was stored.
    created_at: DateTime<Utc>,
}

impl PyMethod {
    pub fn new(py: Python<'_>, m: aura_core::store::Method) -> PyResult<Self> {
        let provenance = serde_json::to_value(&m.provenance).unwrap_or(Value::Null);
        Ok(Self {
            object_id: m.object_id.to_string(),
            selector: m.selector.to_string(),
            version: m.version,
            source: m.source,
            tests: m.tests,
            doc: m.doc,
            provenance: to_py_owned(py, &provenance)?,
            calls: m.calls.map(|c| c.iter().map(ToString::to_string).collect()),
            created_at: m.created_at,
        })
    }
}

#[pymethods]
impl PyMethod {
    fn __repr__(&self) -> String {
        format!("<Method {} v{}>", self.selector, self.version)
    }
}

/// One event of the audit trail.
#[pyclass(name = "AuditEvent", module = "aura._aura", frozen, get_all)]
pub struct PyAuditEvent {
    /// Its id (time-ordered; pass it as `after=` to read the next page).
    id: String,
    /// When it happened.
    at: DateTime<Utc>,
    /// What happened (`learn.committed`, `learn.refused`, …).
    kind: String,
    /// The object it concerns, if any.
    object_id: Option<String>,
    /// Its details.
    payload: Py<PyAny>,
}

impl PyAuditEvent {
    pub fn new(py: Python<'_>, e: aura_core::store::AuditEvent) -> PyResult<Self> {
        Ok(Self {
            id: e.id.to_string(),
            at: e.at,
            kind: e.kind,
            object_id: e.object_id.map(|id| id.to_string()),
            payload: to_py_owned(py, &e.payload)?,
        })
    }
}

#[pymethods]
impl PyAuditEvent {
    fn __repr__(&self) -> String {
        format!("<AuditEvent {} {}>", self.kind, self.at.to_rfc3339())
    }
}

/// A memory node that matched a search, with its score (higher is better).
#[pyclass(name = "SearchHit", module = "aura._aura", frozen, get_all)]
pub struct PySearchHit {
    /// The node's id.
    id: String,
    /// What kind of memory it is (`message`, `reply`, `method`, …).
    kind: String,
    /// Its text.
    text: String,
    /// How well it matched.
    score: f64,
    /// Its metadata.
    meta: Py<PyAny>,
}

impl PySearchHit {
    pub fn new(py: Python<'_>, hit: aura_core::store::SearchHit) -> PyResult<Self> {
        Ok(Self {
            id: hit.node.id.to_string(),
            kind: hit.node.kind,
            text: hit.node.text,
            score: hit.score,
            meta: to_py_owned(py, &hit.node.meta)?,
        })
    }
}

#[pymethods]
impl PySearchHit {
    fn __repr__(&self) -> String {
        let preview: String = self.text.chars().take(40).collect();
        format!("<SearchHit {:.3} {:?}>", self.score, preview)
    }
}

/// What an object said back to a natural-language message.
#[pyclass(name = "Reply", module = "aura._aura", frozen, get_all)]
pub struct PyReply {
    /// The answer, in words.
    text: String,
    /// The value a called method returned, if one was called.
    value: Py<PyAny>,
    /// True when a learn request was refused (the text says why).
    refused: bool,
    /// The plan the message became: `{"kind": "learn" | "invoke" | "reflect" | "answer", …}`.
    plan: Py<PyAny>,
    /// The texts of the memories the answer was built from.
    evidence: Vec<String>,
}

impl PyReply {
    pub fn new(py: Python<'_>, r: aura_core::Reply) -> PyResult<Self> {
        let plan = serde_json::to_value(&r.plan).unwrap_or(Value::Null);
        Ok(Self {
            text: r.text,
            value: to_py_owned(py, r.value.as_ref().unwrap_or(&Value::Null))?,
            refused: r.refused,
            plan: to_py_owned(py, &plan)?,
            evidence: r.evidence.into_iter().map(|n| n.text).collect(),
        })
    }
}

#[pymethods]
impl PyReply {
    fn __repr__(&self) -> String {
        format!("<Reply {:?}>", self.text)
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }
}
