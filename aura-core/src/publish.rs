//! Publishing a facet to an Ollama server (feature `ollama`), so that a persona served
//! by Ollama can use it.
//!
//! Two routes, tried in this order:
//! - **adapter**: upload the GGUF LoRA adapter as a blob and create a model `from` the
//!   persona's base model on the server with `adapters` (small and quick);
//! - **merged**: upload a merged GGUF model (base with the adapter folded in, which
//!   `UnslothForge` writes) and create the model from `files`. Ollama v0.34.1 and later
//!   refuse adapter creation (ollama/ollama#14969), so a server that rejects the first
//!   route gets this one when a merged file exists.
//!
//! The facet's record then says where it is served (`metrics.serving`), in one store
//! transaction with a `forge.published` audit event; [`crate::evolution::default_facet_model`]
//! serves such a facet through Ollama.

use std::path::Path;

use aura_cognition::{OllamaCreateRequest, OllamaModel};
use aura_forge::trail::{ForgePublished, Payload};
use aura_store::Facet;
use serde_json::{json, Value};

use crate::{Error, Result, Runtime};

/// Where a facet was published.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Published {
    /// The model's name on the server (`aura-<persona>:<label>`).
    pub model: String,
    /// `adapter` or `merged`.
    pub route: &'static str,
}

/// The name a facet gets on an Ollama server: the persona as the model, the label as its tag.
pub fn ollama_name(facet: &Facet) -> String {
    let label = facet.name.split_once(':').map_or("", |(_, l)| l);
    format!("aura-{}:{label}", facet.persona)
}

impl Runtime {
    /// Publishes facet `name` to the Ollama server `server` talks to, on top of
    /// `base` (the persona's base model on that server), and records where it is served.
    /// `merged` is a merged GGUF model to fall back on when the server refuses adapters.
    pub async fn publish_facet_to_ollama(
        &self,
        server: &OllamaModel,
        name: &str,
        base: &str,
        merged: Option<&Path>,
    ) -> Result<Published> {
        let facet = self.store().get_facet(name).await?;
        let model = ollama_name(&facet);
        let adapter = Path::new(&facet.adapter_path);
        let mut adapter_error = None;
        if adapter.is_file() {
            match create_from_file(server, &model, adapter, Some(base)).await {
                Ok(()) => return self.record_published(facet, server, model, "adapter").await,
                Err(e) if merged.is_some() => {
                    tracing::warn!(target: "Forge", %model,
                        "the server refused the adapter route ({e}); publishing the merged model");
                    adapter_error = Some(e.to_string());
                }
                Err(e) => {
                    return Err(Error::Unavailable {
                        port: "model",
                        message: format!(
                            "Ollama refused to create {model} from the adapter: {e}. Servers \
                             from v0.34.1 on refuse adapters (ollama/ollama#14969): publish a \
                             merged GGUF model instead"
                        ),
                    })
                }
            }
        }
        let Some(merged) = merged else {
            return Err(Error::Invalid(format!(
                "facet {name} has no adapter file ({}) and no merged model was given",
                facet.adapter_path
            )));
        };
        create_from_file(server, &model, merged, None)
            .await
            .map_err(|e| match &adapter_error {
                Some(first) => Error::Unavailable {
                    port: "model",
                    message: format!(
                        "Ollama refused both routes for {model}: adapter: {first}; merged: {e}"
                    ),
                },
                None => e.into(),
            })?;
        self.record_published(facet, server, model, "merged").await
    }

    async fn record_published(
        &self,
        facet: Facet,
        server: &OllamaModel,
        model: String,
        route: &'static str,
    ) -> Result<Published> {
        let serving = json!({ "backend": "ollama", "model": model, "route": route,
                              "host": server.host() });
        let facet = aura_forge::register::with_metric(facet, "serving", serving.clone());
        let mut tx = self.store().begin().await?;
        tx.put_facet(facet.clone()).await?;
        tx.append_event(
            ForgePublished {
                facet: facet.name.clone(),
                serving,
            }
            .event(None),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(target: "Forge", facet = %facet.name, %model, route, "facet published to Ollama");
        // A promoted facet is now served from the server.
        self.reload_cascade().await;
        Ok(Published { model, route })
    }
}

/// Uploads `file` and creates `model` from it: as a LoRA adapter on the server's model
/// `adapter_on`, or, without one, as the model's own weights (a merged GGUF).
async fn create_from_file(
    server: &OllamaModel,
    model: &str,
    file: &Path,
    adapter_on: Option<&str>,
) -> aura_cognition::Result<()> {
    let digest = server.upload_blob(file).await?;
    let mut request = OllamaCreateRequest {
        model: model.to_string(),
        ..OllamaCreateRequest::default()
    };
    match adapter_on {
        Some(base) => {
            request.from = Some(base.to_string());
            request.adapters.insert("adapter.gguf".into(), digest);
        }
        None => {
            request.files.insert("model.gguf".into(), digest);
        }
    }
    server
        .create_model(
            &request,
            |p| tracing::debug!(target: "Forge", status = %p.status, "ollama create"),
        )
        .await
}

/// The Ollama model (and server) a published facet is served by, if it was published.
pub(crate) fn served_by_ollama(facet: &Facet) -> Option<(String, Option<String>)> {
    let serving = facet.metrics.get("serving")?;
    if serving.get("backend")?.as_str()? != "ollama" {
        return None;
    }
    let model = serving.get("model")?.as_str()?.to_string();
    let host = serving
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((model, host))
}
