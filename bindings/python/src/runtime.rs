//! `aura.Runtime`: opens the object machine and reaches objects, memory and the audit trail.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aura_core::cognition::{CascadeMode, Persona};
use aura_core::store::{AuditQuery, EventId, ObjectId, Page};
use aura_core::{Config, Runtime, SandboxBackend};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::to_py_owned;
use crate::errors::{misuse, to_py_err};
use crate::model::PythonModel;
use crate::object::{lookup, object_id, PyObjectHandle};
use crate::records::{PyAuditEvent, PySearchHit};

/// The tokio runtime every call runs on (shared with the asyncio bridge).
fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` to completion with the GIL released.
///
/// Every 50 ms it briefly takes the GIL to let Python handle signals, so Ctrl-C
/// interrupts a long learn cycle: the future is dropped (an uncommitted learn
/// transaction rolls back) and `KeyboardInterrupt` is raised.
pub fn wait<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        // e.g. a Python model callback calling back into aura: blocking here would deadlock.
        return Err(misuse(
            "a blocking aura call cannot run inside aura's own event loop (from a model callback?); use the *_async methods",
        ));
    }
    let out = py.detach(|| {
        tokio_runtime().block_on(async {
            let mut fut = std::pin::pin!(fut);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    out = &mut fut => return out,
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    });
    // The call's log records reach `logging` before it returns (unless the
    // `aura-logging` thread is delivering them right now).
    crate::logging::drain(py);
    out
}

/// Runs a core call, mapping its error.
pub async fn core<T, E: Into<aura_core::Error>>(
    fut: impl Future<Output = Result<T, E>>,
) -> PyResult<T> {
    fut.await.map_err(|e| to_py_err(e.into()))
}

/// Which model the runtime uses, as `Runtime(model=…)` says.
pub enum ModelArg {
    /// `"local"` (the default): the embedded GGUF model when it is installed.
    Local,
    /// `None`: no model; a message nothing understands raises `DoesNotUnderstand`.
    Off,
    /// A Python callable `f(request: dict) -> str`.
    Callable(Py<PyAny>),
    /// A model setting, as `AURA_MODEL` takes it: `"openai:http://…/v1#name"`, …
    Spec(String),
}

impl<'a, 'py> FromPyObject<'a, 'py> for ModelArg {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(ModelArg::Off);
        }
        if let Ok(name) = obj.extract::<String>() {
            return match name.as_str() {
                "local" => Ok(ModelArg::Local),
                spec if spec.contains(':') => Ok(ModelArg::Spec(spec.to_string())),
                other => Err(PyValueError::new_err(format!(
                    "model={other:?}: pass \"local\", a backend (\"local:PATH\", \
                     \"ollama:MODEL\", \"openai:URL#MODEL\"), None, or a callable f(request) -> str"
                ))),
            };
        }
        if obj.is_callable() {
            return Ok(ModelArg::Callable(obj.to_owned().unbind()));
        }
        Err(PyTypeError::new_err(
            "model must be \"local\", a backend string, None, or a callable f(request) -> str",
        ))
    }
}

/// AURA's object machine: a store of prototype objects that learn the methods they lack.
///
/// Settings not passed here come from the environment and `.env` (see `.env.template`).
#[pyclass(name = "Runtime", module = "aura._aura", frozen)]
pub struct PyRuntime {
    pub(crate) rt: Runtime,
}

#[pymethods]
impl PyRuntime {
    #[new]
    #[pyo3(signature = (*, data_dir=None, store_path=None, sandbox=None, model=ModelArg::Local, models=None, cascade_mode=None, learn_samples=None, learn_agreement=None, root=None, forge=Some("default".to_string())))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, each optional
    fn new(
        py: Python<'_>,
        data_dir: Option<PathBuf>,
        store_path: Option<PathBuf>,
        sandbox: Option<String>,
        model: ModelArg,
        models: Option<std::collections::BTreeMap<String, String>>,
        cascade_mode: Option<String>,
        learn_samples: Option<u32>,
        learn_agreement: Option<u32>,
        root: Option<String>,
        forge: Option<String>,
    ) -> PyResult<Self> {
        // Installed on import; this re-reads the log filter from Python's loggers.
        crate::logging::install(py)?;
        let mut config = Config::from_env();
        if let Some(dir) = data_dir {
            config.store_path = dir.join("aura.sqlite");
            config.data_dir = dir;
        }
        if let Some(path) = store_path {
            config.store_path = path;
        }
        if let Some(backend) = sandbox {
            config.sandbox_backend = match backend.as_str() {
                "jail" => SandboxBackend::Jail,
                "docker" => SandboxBackend::Docker,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "sandbox={other:?}: pass \"jail\" or \"docker\""
                    )))
                }
            };
        }
        if let Some(mode) = cascade_mode {
            config.cascade_mode = Some(match mode.as_str() {
                "full" => CascadeMode::Full,
                "single" => CascadeMode::Single,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "cascade_mode={other:?}: pass \"full\" or \"single\""
                    )))
                }
            });
        }
        if let Some(n) = learn_samples {
            if n == 0 {
                return Err(PyValueError::new_err("learn_samples must be at least 1"));
            }
            config.learn_samples = n;
        }
        if let Some(n) = learn_agreement {
            if n == 0 {
                return Err(PyValueError::new_err("learn_agreement must be at least 1"));
            }
            config.learn_agreement = n;
        }
        if let Some(name) = root {
            config.root_object = name;
        }
        let mut builder = Runtime::builder().config(config);
        let wants_local = matches!(model, ModelArg::Local);
        // `models={"robin": "ollama:llama3", "default": "openai:…"}`: the settings
        // AURA_MODEL_ROBIN and AURA_MODEL take, over the environment's.
        for (key, value) in models.unwrap_or_default() {
            builder = builder.model_setting(key, value);
        }
        builder = match model {
            ModelArg::Local => builder,
            ModelArg::Off => builder.without_model(),
            ModelArg::Callable(f) => builder.model(Arc::new(PythonModel::new(py, f)?)),
            ModelArg::Spec(spec) => builder.model_setting("AURA_MODEL", spec),
        };
        builder = match forge.as_deref() {
            None => builder.without_forge(),
            Some("default") => builder,
            Some("local") => builder.forge(Arc::new(aura_core::forge::LocalForge::from_env())),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "forge={other:?}: pass \"default\", \"local\" or None"
                )))
            }
        };
        let rt = wait(py, core(builder.build()))?;
        if wants_local && rt.model().is_none() {
            warn_no_model(py)?;
        }
        Ok(Self { rt })
    }

    /// The genesis root every new object delegates to.
    #[getter]
    fn root(&self, py: Python<'_>) -> PyResult<PyObjectHandle> {
        self.handle(py, self.rt.root())
    }

    /// Which model writes methods (`"local"`, `"python"`, …), or None when learning is off.
    #[getter]
    fn model_backend(&self) -> Option<&'static str> {
        self.rt.model().map(|m| m.capabilities().backend)
    }

    /// Which backend serves each persona, in the notation of the model settings:
    /// `{"BRICK": "openai:http://127.0.0.1:8080/v1#qwen", …}`; empty when learning is off.
    #[getter]
    fn model_backends(&self) -> std::collections::BTreeMap<String, String> {
        let Some(cascade) = self.rt.cascade() else {
            return Default::default();
        };
        Persona::ALL
            .into_iter()
            .filter_map(|p| {
                cascade
                    .persona(p)
                    .map(|c| (p.name().to_string(), c.model.describe()))
            })
            .collect()
    }

    /// Which store and sandbox this runtime uses, e.g. `{"store": "sqlite", "sandbox": "jail"}`.
    #[getter]
    fn backends(&self) -> std::collections::BTreeMap<&'static str, &'static str> {
        [
            ("store", self.rt.store().capabilities().backend),
            ("sandbox", self.rt.sandbox().capabilities().backend),
        ]
        .into()
    }

    /// Creates an object. With no parents it delegates to the root.
    #[pyo3(signature = (name, *, parents=None, slots=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        parents: Option<Vec<Bound<'_, PyAny>>>,
        slots: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyObjectHandle> {
        let parents = parents
            .unwrap_or_default()
            .iter()
            .map(|p| object_id(py, &self.rt, p))
            .collect::<PyResult<Vec<_>>>()?;
        let slots = match slots {
            Some(s) => crate::convert::to_json_object(&s, "slots")?,
            None => Default::default(),
        };
        let new = aura_core::store::NewObject::named(name)
            .with_parents(parents)
            .with_slots(slots);
        let rt = self.rt.clone();
        let object = wait(py, core(rt.create_object(new)))?;
        Ok(PyObjectHandle::new(self.rt.clone(), object.id, object.name))
    }

    /// The object with this name (or id); raises `NotFound`.
    fn get(&self, py: Python<'_>, name_or_id: &str) -> PyResult<PyObjectHandle> {
        let object = lookup(py, &self.rt, name_or_id)?;
        Ok(PyObjectHandle::new(self.rt.clone(), object.id, object.name))
    }

    /// Objects, oldest first, a page at a time.
    #[pyo3(signature = (*, offset=0, limit=100))]
    fn objects(&self, py: Python<'_>, offset: u32, limit: u32) -> PyResult<Vec<PyObjectHandle>> {
        let store = self.rt.store().clone();
        let objects = wait(
            py,
            core(async move { store.list_objects(Page { offset, limit }).await }),
        )?;
        Ok(objects
            .into_iter()
            .map(|o| PyObjectHandle::new(self.rt.clone(), o.id, o.name))
            .collect())
    }

    /// Memories whose text matches `query`, best first.
    #[pyo3(signature = (query, *, limit=10))]
    fn search_memory(
        &self,
        py: Python<'_>,
        query: String,
        limit: u32,
    ) -> PyResult<Vec<PySearchHit>> {
        let store = self.rt.store().clone();
        let hits = wait(
            py,
            core(async move { store.search_memory(&query, limit).await }),
        )?;
        hits.into_iter().map(|h| PySearchHit::new(py, h)).collect()
    }

    /// The audit trail, oldest first; pass the last event's id as `after` for the next page.
    #[pyo3(signature = (*, kind=None, object=None, after=None, limit=100))]
    fn audit(
        &self,
        py: Python<'_>,
        kind: Option<String>,
        object: Option<Bound<'_, PyAny>>,
        after: Option<String>,
        limit: u32,
    ) -> PyResult<Vec<PyAuditEvent>> {
        let query = AuditQuery {
            kind,
            object_id: object.map(|o| object_id(py, &self.rt, &o)).transpose()?,
            after: after
                .map(|a| a.parse::<EventId>().map_err(|e| to_py_err(e.into())))
                .transpose()?,
            limit: Some(limit),
            ..AuditQuery::default()
        };
        let store = self.rt.store().clone();
        let page = wait(py, core(async move { store.query_audit(&query).await }))?;
        page.events
            .into_iter()
            .map(|e| PyAuditEvent::new(py, e))
            .collect()
    }

    /// Runs the forge loop for `persona` ("brick", "robin", "babs" or "alfred") and
    /// waits: curates its golden dataset from the audit trail, trains a LoRA adapter
    /// with the configured forge, registers the facet and promotes it when it does at
    /// least as well as its base. Returns the report as a dict.
    #[pyo3(signature = (persona, *, label=None, steps=None, promote=true))]
    fn forge(
        &self,
        py: Python<'_>,
        persona: &str,
        label: Option<String>,
        steps: Option<u32>,
        promote: bool,
    ) -> PyResult<Py<PyAny>> {
        let persona = parse_persona(persona)?;
        let mut request = self.rt.forge_request(persona);
        request.label = label;
        if let Some(steps) = steps {
            request.lora.steps = steps;
        }
        request.promote = promote;
        let rt = self.rt.clone();
        let report = wait(py, core(async move { rt.forge_persona(request).await }))?;
        to_py_owned(py, &to_value(&report)?)
    }

    /// Every port exercised (store, sandbox, each persona's model) with its verdict and
    /// latency, as the gateway's `/v1/health` reports it: `{"status": "ok", "checks": …}`.
    fn health(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let rt = self.rt.clone();
        let health = wait(
            py,
            core(async move { Ok::<_, aura_core::Error>(rt.health().await) }),
        )?;
        to_py_owned(py, &to_value(&health)?)
    }

    /// Which facet serves each persona, by persona key (None: its base model).
    fn serving(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let rt = self.rt.clone();
        let serving = wait(py, core(async move { rt.serving().await }))?;
        to_py_owned(py, &to_value(&serving)?)
    }

    /// The facets registry: every trained facet, as dicts.
    fn facets(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let rt = self.rt.clone();
        let facets = wait(py, core(async move { rt.facets().await }))?;
        facets
            .iter()
            .map(|f| to_py_owned(py, &to_value(f)?))
            .collect()
    }

    /// Makes facet `name` its persona's default (refused unless it beats its base).
    fn promote_facet(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        let rt = self.rt.clone();
        let facet = wait(py, core(async move { rt.promote_facet(&name).await }))?;
        to_py_owned(py, &to_value(&facet)?)
    }

    /// Undoes `persona`'s last promotion; returns the facet serving it now, or None.
    fn rollback_facet(&self, py: Python<'_>, persona: &str) -> PyResult<Option<Py<PyAny>>> {
        let persona = parse_persona(persona)?;
        let rt = self.rt.clone();
        let facet = wait(py, core(async move { rt.rollback_facet(persona).await }))?;
        facet.map(|f| to_py_owned(py, &to_value(&f)?)).transpose()
    }

    fn __repr__(&self) -> String {
        format!(
            "<aura.Runtime store={} sandbox={} model={}>",
            self.rt.store().capabilities().backend,
            self.rt.sandbox().capabilities().backend,
            self.model_backend().unwrap_or("none"),
        )
    }
}

/// Says through Python's `warnings` (a `UserWarning`, shown once by default) that the
/// embedded model was not found, where it was looked for, and what to do: a Python
/// program would otherwise only notice that nothing is ever learned.
fn warn_no_model(py: Python<'_>) -> PyResult<()> {
    let looked_in: Vec<String> = aura_core::cognition::model_search_path()
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    let message = format!(
        "aura.Runtime: no model file found, so learning is off. Looked in:\n{}\n\
         Run `scripts/setup.sh demo` in an AURA checkout (it installs SmolLM2-135M and links \
         it into ~/.local/share/aura/models), or set AURA_MODEL_PATH to a GGUF file; \
         pass model=None to run without a model and without this warning.",
        looked_in.join("\n")
    );
    let message = std::ffi::CString::new(message)
        .map_err(|e| PyValueError::new_err(format!("warning text: {e}")))?;
    PyErr::warn(
        py,
        &py.get_type::<pyo3::exceptions::PyUserWarning>(),
        &message,
        1,
    )
}

fn parse_persona(name: &str) -> PyResult<Persona> {
    name.parse::<Persona>()
        .map_err(|e| to_py_err(aura_core::Error::Invalid(e.to_string())))
}

fn to_value(value: &impl serde::Serialize) -> PyResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| PyValueError::new_err(e.to_string()))
}

impl PyRuntime {
    fn handle(&self, py: Python<'_>, id: ObjectId) -> PyResult<PyObjectHandle> {
        let rt = self.rt.clone();
        let object = wait(py, core(rt.object(id)))?;
        Ok(PyObjectHandle::new(self.rt.clone(), object.id, object.name))
    }
}
