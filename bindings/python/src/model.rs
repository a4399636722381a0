//! A Python callable as a `LanguageModel`, so Python users can plug in any client.
//!
//! The callable receives one dict — `{"messages": [{"role", "content"}…], "options":
//! {…}, "schema": {…} | None}` — and returns the reply text. When the request carries a
//! JSON Schema the reply must be JSON valid against it; otherwise the call fails with
//! `InvalidOutput`, exactly as with the other backends.

use std::fmt;

use async_trait::async_trait;
use aura_core::cognition::{
    schema, ChatRequest, ChatResponse, Error, FinishReason, LanguageModel, ModelCapabilities,
    ModelInfo, Result, Usage,
};
use pyo3::prelude::*;
use serde_json::Value;

/// A `LanguageModel` that calls a Python function.
pub struct PythonModel {
    callable: Py<PyAny>,
    name: String,
}

impl fmt::Debug for PythonModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonModel")
            .field("name", &self.name)
            .finish()
    }
}

impl PythonModel {
    pub fn new(py: Python<'_>, callable: Py<PyAny>) -> PyResult<Self> {
        let name = callable
            .bind(py)
            .getattr("__name__")
            .and_then(|n| n.extract::<String>())
            .unwrap_or_else(|_| "python-callable".into());
        Ok(Self { callable, name })
    }

    /// Calls the function on a blocking thread (it takes the GIL and may do I/O).
    async fn call(&self, request: &ChatRequest) -> Result<String> {
        let payload = serde_json::to_value(request)
            .map_err(|e| Error::Invalid(format!("request is not serialisable: {e}")))?;
        let callable = Python::attach(|py| self.callable.clone_ref(py));
        let outcome = tokio::task::spawn_blocking(move || {
            Python::attach(|py| -> PyResult<String> {
                let arg = pythonize::pythonize(py, &payload)
                    .map_err(|e| pyo3::exceptions::PyTypeError::new_err(e.to_string()))?;
                callable.call1(py, (arg,))?.extract::<String>(py)
            })
        })
        .await
        .map_err(|e| backend(format!("the model callback did not finish: {e}")))?;
        outcome.map_err(|e| backend(format!("the model callback raised {e}")))
    }
}

fn backend(message: String) -> Error {
    Error::backend("python", message)
}

#[async_trait]
impl LanguageModel for PythonModel {
    fn capabilities(&self) -> ModelCapabilities {
        let mut capabilities = ModelCapabilities::new("python");
        // Structured replies are validated here; a whole reply is one stream piece.
        capabilities.structured_output = true;
        capabilities.streaming = true;
        capabilities
    }

    async fn info(&self) -> Result<ModelInfo> {
        Ok(ModelInfo {
            name: self.name.clone(),
            context_length: 0,
            embedding_dim: None,
            details: Value::Null,
        })
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let text = self.call(&request).await?;
        let structured = match &request.schema {
            Some(schema) => {
                let value: Value = serde_json::from_str(text.trim()).map_err(|e| {
                    Error::InvalidOutput(format!("the model callback's reply is not JSON: {e}"))
                })?;
                schema::validate(schema, &value)?;
                Some(value)
            }
            None => None,
        };
        Ok(ChatResponse {
            text,
            structured,
            model: self.name.clone(),
            finish: FinishReason::Stop,
            usage: Usage::default(),
        })
    }
}
