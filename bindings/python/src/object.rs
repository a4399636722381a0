//! `aura.Object`: a handle on one persistent object.
//!
//! The handle holds only the object's id; every read goes to the store, so two handles
//! (or two processes) on the same object always agree.

use aura_core::store::{Object, ObjectId};
use aura_core::Runtime;
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;

use crate::convert::{to_json, to_json_object, to_py, to_py_owned};
use crate::records::{PyMethod, PyReply};
use crate::runtime::{core, wait};

/// Reads the object named by an id or a name.
pub fn lookup(py: Python<'_>, rt: &Runtime, name_or_id: &str) -> PyResult<Object> {
    let rt = rt.clone();
    match name_or_id.parse::<ObjectId>() {
        Ok(id) => wait(py, core(rt.object(id))),
        Err(_) => wait(py, core(rt.find(name_or_id))),
    }
}

/// The id of an object given as an `aura.Object`, an id or a name.
pub fn object_id(py: Python<'_>, rt: &Runtime, value: &Bound<'_, PyAny>) -> PyResult<ObjectId> {
    if let Ok(handle) = value.extract::<PyRef<'_, PyObjectHandle>>() {
        return Ok(handle.id);
    }
    let text: String = value.extract().map_err(|_| {
        PyTypeError::new_err("an object is named by an aura.Object, its id or its name")
    })?;
    Ok(lookup(py, rt, &text)?.id)
}

/// Sends `selector` with Python arguments and returns the result as a Python value.
fn send(
    py: Python<'_>,
    rt: &Runtime,
    id: ObjectId,
    selector: &str,
    args: &Bound<'_, PyTuple>,
) -> PyResult<Py<PyAny>> {
    let args = args_json(args)?;
    let rt = rt.clone();
    let value = wait(py, core(rt.send(id, selector, args)))?;
    to_py_owned(py, &value)
}

fn args_json(args: &Bound<'_, PyTuple>) -> PyResult<Vec<Value>> {
    args.iter().map(|a| to_json(&a)).collect()
}

/// A persistent object: slots, methods along its delegation chain, and messages.
///
/// `obj.send("fibonacci", 10)` and `obj.fibonacci(10)` are the same message; a message
/// no object on the chain understands is learned (when a model is configured) or raises
/// `aura.DoesNotUnderstand`.
#[pyclass(name = "Object", module = "aura._aura", frozen)]
pub struct PyObjectHandle {
    rt: Runtime,
    pub(crate) id: ObjectId,
    name: String,
}

impl PyObjectHandle {
    pub fn new(rt: Runtime, id: ObjectId, name: String) -> Self {
        Self { rt, id, name }
    }

    fn read(&self, py: Python<'_>) -> PyResult<Object> {
        let rt = self.rt.clone();
        wait(py, core(rt.object(self.id)))
    }
}

#[pymethods]
impl PyObjectHandle {
    /// The object's id.
    #[getter]
    fn id(&self) -> String {
        self.id.to_string()
    }

    /// The object's unique name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of the object's slots.
    #[getter]
    fn slots<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let object = self.read(py)?;
        to_py(py, &Value::Object(object.slots))
    }

    /// The parents, in delegation order.
    #[getter]
    fn parents(&self, py: Python<'_>) -> PyResult<Vec<PyObjectHandle>> {
        let object = self.read(py)?;
        object
            .parents
            .into_iter()
            .map(|id| {
                let parent = wait(py, core(self.rt.clone().object(id)))?;
                Ok(PyObjectHandle::new(self.rt.clone(), id, parent.name))
            })
            .collect()
    }

    /// Replaces the parents (objects, ids or names), in delegation order.
    fn set_parents(&self, py: Python<'_>, parents: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        let ids = parents
            .iter()
            .map(|p| object_id(py, &self.rt, p))
            .collect::<PyResult<Vec<_>>>()?;
        let rt = self.rt.clone();
        wait(py, core(rt.set_parents(self.id, ids)))?;
        Ok(())
    }

    fn __getitem__<'py>(&self, py: Python<'py>, slot: &str) -> PyResult<Bound<'py, PyAny>> {
        let rt = self.rt.clone();
        match wait(py, core(rt.slot(self.id, slot)))? {
            Some(value) => to_py(py, &value),
            None => Err(PyKeyError::new_err(slot.to_string())),
        }
    }

    fn __setitem__(&self, py: Python<'_>, slot: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = to_json(value)?;
        let rt = self.rt.clone();
        wait(py, core(rt.set_slot(self.id, slot, value)))?;
        Ok(())
    }

    fn __contains__(&self, py: Python<'_>, slot: &str) -> PyResult<bool> {
        let rt = self.rt.clone();
        Ok(wait(py, core(rt.slot(self.id, slot)))?.is_some())
    }

    /// A slot's value, or `default` when the object has no such slot.
    #[pyo3(signature = (slot, default=None))]
    fn get(&self, py: Python<'_>, slot: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        let rt = self.rt.clone();
        match wait(py, core(rt.slot(self.id, slot)))? {
            Some(value) => to_py_owned(py, &value),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// Sets several slots in one revision-checked write.
    fn update(&self, py: Python<'_>, slots: &Bound<'_, PyDict>) -> PyResult<()> {
        let changes = to_json_object(slots.as_any(), "slots")?;
        let rt = self.rt.clone();
        wait(py, core(rt.merge_slots(self.id, changes)))?;
        Ok(())
    }

    /// Sends a message: runs the method the delegation chain finds for `selector`
    /// in the sandbox (learning it first if nothing has it) and returns its result.
    #[pyo3(signature = (selector, *args))]
    fn send(
        &self,
        py: Python<'_>,
        selector: &str,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        send(py, &self.rt, self.id, selector, args)
    }

    /// `send` as an asyncio awaitable.
    #[pyo3(signature = (selector, *args))]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        selector: String,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = args_json(args)?;
        let (rt, id) = (self.rt.clone(), self.id);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let value = core(rt.send(id, &selector, args)).await?;
            Python::attach(|py| to_py_owned(py, &value))
        })
    }

    /// Tells the object something in natural language ("teach yourself to …",
    /// "calculate fibonacci for 10", a question) and returns its reply.
    fn tell(&self, py: Python<'_>, message: String) -> PyResult<PyReply> {
        let rt = self.rt.clone();
        let reply = wait(py, core(async move { rt.tell(self.id, &message).await }))?;
        PyReply::new(py, reply)
    }

    /// `tell` as an asyncio awaitable.
    fn tell_async<'py>(&self, py: Python<'py>, message: String) -> PyResult<Bound<'py, PyAny>> {
        let (rt, id) = (self.rt.clone(), self.id);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let reply = core(rt.tell(id, &message)).await?;
            Python::attach(|py| PyReply::new(py, reply))
        })
    }

    /// Defines (or re-defines, as a new version) a method written by hand; the guard
    /// audits it first and raises `aura.GuardRejected` with every violation.
    #[pyo3(signature = (selector, source, *, doc=String::new()))]
    fn define(
        &self,
        py: Python<'_>,
        selector: String,
        source: String,
        doc: String,
    ) -> PyResult<PyMethod> {
        let rt = self.rt.clone();
        let method = wait(
            py,
            core(async move { rt.define_method(self.id, &selector, source, doc).await }),
        )?;
        PyMethod::new(py, method)
    }

    /// The current version of every method defined on this object itself.
    fn methods(&self, py: Python<'_>) -> PyResult<Vec<PyMethod>> {
        let store = self.rt.store().clone();
        let methods = wait(py, core(async move { store.list_methods(self.id).await }))?;
        methods.into_iter().map(|m| PyMethod::new(py, m)).collect()
    }

    /// Whether a message `selector` would find a method along the delegation chain.
    fn responds_to(&self, py: Python<'_>, selector: &str) -> PyResult<bool> {
        let rt = self.rt.clone();
        Ok(wait(py, core(rt.resolve(self.id, selector)))?.is_some())
    }

    /// The selectors this object responds to, in name order, each with the name of the
    /// nearest object on its chain that defines it; `own=True` keeps only its own.
    #[pyo3(signature = (*, own=false, offset=0, limit=None))]
    fn selectors(
        &self,
        py: Python<'_>,
        own: bool,
        offset: usize,
        limit: Option<usize>,
    ) -> PyResult<Vec<(String, String)>> {
        let rt = self.rt.clone();
        let view = wait(py, core(rt.chain_view(self.id)))?;
        let page = view.selectors(own, offset, limit.unwrap_or(usize::MAX));
        Ok(page
            .selectors
            .into_iter()
            .map(|e| (e.selector, e.defined_on))
            .collect())
    }

    /// Every version of a method defined on this object, oldest first.
    fn versions(&self, py: Python<'_>, selector: &str) -> PyResult<Vec<PyMethod>> {
        let rt = self.rt.clone();
        let versions = wait(py, core(rt.method_versions(self.id, selector)))?;
        versions.into_iter().map(|m| PyMethod::new(py, m)).collect()
    }

    /// Makes an earlier version current again (stored as a new version).
    fn rollback(&self, py: Python<'_>, selector: &str, version: u32) -> PyResult<PyMethod> {
        let rt = self.rt.clone();
        let method = wait(py, core(rt.rollback_method(self.id, selector, version)))?;
        PyMethod::new(py, method)
    }

    /// Deletes the object and its methods (refused while others delegate to it).
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let rt = self.rt.clone();
        wait(py, core(rt.delete_object(self.id)))
    }

    /// `obj.fibonacci` is the message `fibonacci`, ready to be called.
    fn __getattr__(&self, name: &str) -> PyResult<Message> {
        if name.starts_with('_') {
            return Err(PyAttributeError::new_err(name.to_string()));
        }
        Ok(Message {
            rt: self.rt.clone(),
            id: self.id,
            selector: name.to_string(),
        })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .extract::<PyRef<'_, PyObjectHandle>>()
            .is_ok_and(|o| o.id == self.id)
    }

    fn __hash__(&self) -> u64 {
        self.id.0.as_u64_pair().0 ^ self.id.0.as_u64_pair().1
    }

    fn __repr__(&self) -> String {
        format!("<aura.Object {} {}>", self.name, self.id)
    }
}

/// A message bound to its receiver: calling it sends it.
#[pyclass(module = "aura._aura", frozen)]
pub struct Message {
    rt: Runtime,
    id: ObjectId,
    selector: String,
}

#[pymethods]
impl Message {
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        send(py, &self.rt, self.id, &self.selector, args)
    }

    fn __repr__(&self) -> String {
        format!("<aura.Message {}>", self.selector)
    }
}
