//! Python values ⇄ JSON: arguments, slots and results cross the boundary as JSON,
//! the same shape the sandbox sees.

use aura_core::cognition::{big_int_digits, BIG_INT_KEY};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde_json::{Map, Number, Value};

/// A Python value as JSON. Python's own encoder decides, strictly: anything JSON cannot
/// hold exactly (a set, bytes, an arbitrary object, NaN or infinity) is refused with its
/// `TypeError`/`ValueError` rather than silently changed into something else. An
/// integer beyond 64 bits becomes `{"$int": "<digits>"}`, as the sandbox carries it.
pub fn to_json(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = value.py();
    let json = py.import("json")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    let text: String = json
        .getattr("dumps")?
        .call((value,), Some(&kwargs))?
        .extract()?;
    if may_hold_big_ints(&text) {
        // serde_json would read such an integer as a float: walk Python's own reading.
        return plain_to_json(&json.getattr("loads")?.call1((text,))?);
    }
    serde_json::from_str(&text)
        .map_err(|e| PyValueError::new_err(format!("not representable as JSON here: {e}")))
}

/// Whether JSON text may hold an integer beyond 64 bits (19 digits or more) or the
/// object that carries one.
fn may_hold_big_ints(text: &str) -> bool {
    let tag = format!("\"{BIG_INT_KEY}\"");
    text.contains(&tag)
        || text
            .split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() >= 19)
}

/// Plain JSON data as `json.loads` returns it, as a `Value`.
fn plain_to_json(v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(u.into());
        }
        let digits: String = v.str()?.extract()?;
        return Ok(serde_json::json!({ BIG_INT_KEY: digits }));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err("NaN or infinity is not JSON"));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(list) = v.cast::<PyList>() {
        return list.iter().map(|item| plain_to_json(&item)).collect();
    }
    let dict = v.cast::<PyDict>()?;
    let mut map = Map::new();
    for (k, item) in dict.iter() {
        map.insert(k.extract()?, plain_to_json(&item)?);
    }
    let object = Value::Object(map);
    if big_int_digits(&object).is_some() {
        return Err(PyValueError::new_err(format!(
            "a dict of the one key {BIG_INT_KEY:?} holding digits is reserved for integers \
             beyond 64 bits: pass the int itself"
        )));
    }
    Ok(object)
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

/// JSON as a Python value (dicts, lists, str, int, float, bool, None); `{"$int": "…"}`
/// becomes the int it carries.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    if let Some(digits) = big_int_digits(value) {
        return py.get_type::<PyInt>().call1((digits,));
    }
    match value {
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|v| to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            Ok(dict.into_any())
        }
        leaf => pythonize::pythonize(py, leaf).map_err(|e| PyTypeError::new_err(e.to_string())),
    }
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
