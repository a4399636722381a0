//! `aura._aura`: the Python extension module behind `import aura`.
//!
//! Everything here is a thin shell over `aura-core`: handles that hold a cloned
//! [`aura_core::Runtime`], conversions between Python values and JSON, and one place
//! (`errors`) that maps the core's errors onto the `aura` exception hierarchy.
//! Blocking calls release the GIL while they wait; every call also has an `…_async`
//! twin that returns an asyncio awaitable. `logging` forwards the core's `tracing`
//! events to Python's `logging` under `aura.<target>`.

mod convert;
mod errors;
mod logging;
mod model;
mod object;
mod records;
mod runtime;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _aura(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<runtime::PyRuntime>()?;
    m.add_class::<object::PyObjectHandle>()?;
    m.add_class::<object::Message>()?;
    m.add_class::<records::PyMethod>()?;
    m.add_class::<records::PyAuditEvent>()?;
    m.add_class::<records::PySearchHit>()?;
    m.add_class::<records::PyReply>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(logging::set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_log_selftest, m)?)?;
    m.add("LOG_QUEUE_CAPACITY", logging::CAPACITY)?;
    logging::install(m.py())?;
    Ok(())
}
