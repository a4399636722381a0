//! The one place where the core's errors become Python exceptions.
//!
//! The exception classes live in `aura/errors.py` (so they can also inherit the
//! built-in exception each one resembles, e.g. `NotFound` is a `LookupError`); this
//! module picks the class and the attributes it carries.

use aura_core::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Value};

use crate::convert;

/// The `aura` exception for a core error, with its details as attributes.
pub fn to_py_err(err: Error) -> PyErr {
    let message = err.to_string();
    let code = err.code();
    let (class, mut details) = classify(err);
    if let Value::Object(fields) = &mut details {
        fields.insert("code".into(), json!(code));
    }
    Python::attach(|py| build(py, class, &message, details).unwrap_or_else(|e| e))
}

/// The class name in `aura.errors` and the attributes for one error.
fn classify(err: Error) -> (&'static str, Value) {
    match err {
        Error::NotFound { kind, id } => ("NotFound", json!({ "kind": kind, "id": id })),
        Error::Conflict(_) => ("StoreConflict", json!({})),
        Error::Invalid(_) => ("InvalidRequest", json!({})),
        Error::DoesNotUnderstand {
            object,
            selector,
            chain,
        } => (
            "DoesNotUnderstand",
            json!({ "object": object, "selector": selector, "chain": chain }),
        ),
        Error::Rejected { selector, verdict } => (
            "GuardRejected",
            json!({ "selector": selector, "violations": verdict.violations }),
        ),
        Error::Refused {
            selector,
            attempts,
            failures,
        } => (
            "LearnRefused",
            json!({ "selector": selector, "attempts": attempts, "failures": failures }),
        ),
        Error::MethodRaised { selector, error } => (
            "MethodError",
            json!({
                "selector": selector,
                "exception_type": error.type_name,
                "exception_message": error.message,
                "guest_traceback": error.traceback,
            }),
        ),
        Error::Stopped {
            selector,
            reason,
            detail,
        } => (
            "SandboxError",
            json!({ "selector": selector, "reason": reason, "detail": detail }),
        ),
        Error::Unavailable { port, .. } => ("Unavailable", json!({ "port": port })),
        Error::Forge(e) => (
            "ForgeError",
            json!({ "reason": match e {
                aura_core::forge::Error::Cancelled => "cancelled",
                aura_core::forge::Error::Rejected(_) => "not_promoted",
                _ => "failed",
            } }),
        ),
        Error::Backend { port, .. } => ("AuraError", json!({ "port": port })),
        _ => ("AuraError", json!({})),
    }
}

fn build(py: Python<'_>, class: &str, message: &str, details: Value) -> PyResult<PyErr> {
    let cls = py.import("aura.errors")?.getattr(class)?;
    let kwargs = PyDict::new(py);
    if let Value::Object(fields) = details {
        for (name, value) in fields {
            kwargs.set_item(name, convert::to_py(py, &value)?)?;
        }
    }
    let instance = cls.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

/// For calls that cannot run where they were made (see [`crate::runtime::wait`]).
pub fn misuse(message: &str) -> PyErr {
    PyRuntimeError::new_err(message.to_string())
}
