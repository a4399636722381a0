//! Python values ⇄ JSON: arguments, slots and results cross the boundary as JSON,
//! the same shape the sandbox sees.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};

/// A Python value as JSON. Python's own encoder decides, strictly: anything JSON cannot
/// hold exactly (a set, bytes, an arbitrary object, NaN or infinity) is refused with its
/// `TypeError`/`ValueError` rather than silently changed into something else.
pub fn to_json(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    let text: String = py
        .import("json")?
        .getattr("dumps")?
        .call((value,), Some(&kwargs))?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| PyValueError::new_err(format!("not representable as JSON here: {e}")))
}

/// A Python dict as a JSON object.
pub fn to_json_object(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Map<String, Value>> {
    match to_json(value)? {
        Value::Object(map) => Ok(map),
        other => Err(PyTypeError::new_err(format!(
            "{what} must be a dict, not {}",
            json_type(&other)
        ))),
    }
}

/// JSON as a Python value (dicts, lists, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| PyTypeError::new_err(e.to_string()))
}

/// JSON as an owned Python value (for records and futures).
pub fn to_py_owned(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    Ok(to_py(py, value)?.unbind())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(_) => "a number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}
