//! The forge loop wired into the object machine: from stagnation (or a request) to a
//! persona served by a new facet.
//!
//! 1. **Trigger.** Every learn attempt feeds ALFRED's Composite Entropy Metric to the
//!    runtime's [`StagnationMonitor`] (an attempt whose models wrote nothing usable
//!    counts as 0). When the mean CEM of the last
//!    `AURA_STAGNATION_WINDOW` cycles (default 5) falls below
//!    `AURA_STAGNATION_THRESHOLD` (default 0.35), the runtime starts a forge run for
//!    `AURA_FORGE_PERSONA` (default ROBIN, whose draft most cycles commit) in the background and starts a fresh window,
//!    so one stagnant stretch starts one run (skipped, as `forge.skipped`, while no learn
//!    cycle has succeeded yet). Nothing starts when no forge is configured,
//!    when `AURA_FORGE_ON_STAGNATION=off`, or while another run is in progress. A host
//!    asks for a run itself with [`Runtime::forge_persona`] (the gateway's
//!    `POST /v1/forge` and the CLI's `aura forge` call it).
//! 2. **Golden dataset.** [`aura_forge::curate()`] writes BABS's dataset for the persona
//!    under `<data_dir>/forge/<persona>/<label>/dataset`, rendered with the system prompt
//!    the persona sees in the cascade.
//! 3. **Training** through the [`aura_forge::Forge`] port, with progress and
//!    cancellation; the adapter lands in `<data_dir>/forge/<persona>/<label>/adapter`.
//! 4. **Registration** of the facet `<persona>:<label>` in one store transaction.
//! 5. **Selection.** The facet is promoted only when it does at least as well as its
//!    base on the validation split and on the probe set; then the runtime rebuilds its
//!    cascade so the persona is served by the facet (see [`FacetModelLoader`]).
//!    [`Runtime::rollback_facet`] undoes a promotion the same way.
//!
//! Every step is in the audit trail: `forge.started` (with its trigger), then
//! `forge.registered`, `forge.promoted` (when it was) and `forge.finished` (the report),
//! or `forge.failed` (with the error).

use std::sync::{Arc, Mutex, PoisonError};

use aura_cognition::{
    CognitiveStatePacket, DynLanguageModel, Persona, Stagnation, StagnationMonitor,
};
use aura_forge::trail::{
    EventKind, ForgeFailed, ForgeFinished, ForgeSkipped, ForgeStarted, Payload,
};
pub use aura_forge::ForgeTrigger;
use aura_forge::{
    CurationConfig, Evaluation, FacetRegistration, LoraConfig, Progress, TrainingJob,
};
use aura_store::{Facet, StoreExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch, OwnedMutexGuard};

use crate::{Error, Result, Runtime};

/// What to forge.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ForgeRequest {
    /// The persona the facet is for.
    pub persona: Persona,
    /// The facet's label (`babs:<label>`); default `forge-<UTC date and time>`.
    pub label: Option<String>,
    /// LoRA hyperparameters.
    pub lora: LoraConfig,
    /// Promote the facet when it does at least as well as its base (default true).
    pub promote: bool,
}

impl ForgeRequest {
    /// A run for `persona` with the default hyperparameters, promoting a facet that earns it.
    pub fn new(persona: Persona) -> Self {
        Self {
            persona,
            label: None,
            lora: LoraConfig::default(),
            promote: true,
        }
    }

    /// Names the facet `<persona>:<label>`.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Trains for `steps` optimiser steps.
    #[must_use]
    pub fn steps(mut self, steps: u32) -> Self {
        self.lora.steps = steps;
        self
    }

    /// Registers the facet without promoting it.
    #[must_use]
    pub fn without_promotion(mut self) -> Self {
        self.promote = false;
        self
    }
}

/// What a forge run produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ForgeReport {
    /// The registered facet (its `metrics` hold the training figures and dataset manifest).
    pub facet: Facet,
    /// Examples in the golden dataset (train + validation).
    pub examples: usize,
    /// Base and facet losses on the validation split and the probe set, when measured.
    pub evaluation: Option<Evaluation>,
    /// Whether the facet is now its persona's default.
    pub promoted: bool,
    /// Why it was not promoted, when promotion was asked for and refused.
    pub not_promoted: Option<String>,
}

/// Turns a promoted facet into the model that serves its persona.
///
/// The default ([`default_facet_model`]) loads a local facet as its base GGUF with the
/// adapter applied (`LocalModel`, feature `local-model`). A host with other backends
/// passes its own to [`crate::RuntimeBuilder::facet_models`].
pub type FacetModelLoader = Arc<dyn Fn(&Facet) -> Result<DynLanguageModel> + Send + Sync>;

/// The default [`FacetModelLoader`]: a facet published to Ollama (feature `ollama`) is
/// served by that server; otherwise the base GGUF plus the GGUF adapter, in-process.
pub fn default_facet_model(facet: &Facet) -> Result<DynLanguageModel> {
    #[cfg(feature = "ollama")]
    if let Some((model, host)) = crate::publish::served_by_ollama(facet) {
        let mut builder = aura_cognition::OllamaModelBuilder::from_env().model(model);
        if let Some(host) = host {
            builder = builder.host(host);
        }
        return Ok(Arc::new(builder.build()?));
    }
    #[cfg(feature = "local-model")]
    {
        if facet.adapter_path.ends_with(".gguf") {
            let model = aura_cognition::LocalModelBuilder::from_env()
                .model_path(&facet.base_model)
                .lora(&facet.adapter_path, 1.0)
                .build()?;
            return Ok(Arc::new(model));
        }
    }
    Err(Error::Unavailable {
        port: "model",
        message: format!(
            "facet {} ({}) is not a GGUF adapter this build can load; \
             pass a loader to RuntimeBuilder::facet_models",
            facet.name, facet.adapter_path
        ),
    })
}

/// The runtime's share of the loop: the monitor and the one-run-at-a-time lock.
pub(crate) struct ForgeLoop {
    monitor: Mutex<StagnationMonitor>,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl ForgeLoop {
    pub(crate) fn new(window: usize, threshold: f64) -> Self {
        Self {
            monitor: Mutex::new(StagnationMonitor::new(window, threshold)),
            running: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn monitor(&self) -> std::sync::MutexGuard<'_, StagnationMonitor> {
        self.monitor.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Runtime {
    /// A request for `persona` with this runtime's defaults (`AURA_FORGE_STEPS` steps).
    pub fn forge_request(&self, persona: Persona) -> ForgeRequest {
        ForgeRequest::new(persona).steps(self.config().forge.steps)
    }

    /// Where ALFRED's stagnation monitor stands.
    pub fn stagnation(&self) -> Stagnation {
        self.forge_loop().monitor().state()
    }

    /// Runs the whole forge loop for one persona and waits for it: curate, train,
    /// register, and promote when the facet earns it. See [`Self::forge_persona_with`]
    /// to watch progress or cancel.
    pub async fn forge_persona(&self, request: ForgeRequest) -> Result<ForgeReport> {
        let (progress, drain) = unwatched_progress();
        let (_keep, cancel) = watch::channel(false);
        let report = self.forge_persona_with(request, progress, cancel).await;
        drain.abort();
        report
    }

    /// [`Self::forge_persona`], sending each training step to `progress` and stopping
    /// with [`Error::Forge`] (`Cancelled`) when `cancel` turns true. Only one run goes at
    /// a time: a second is refused with [`Error::Conflict`].
    pub async fn forge_persona_with(
        &self,
        request: ForgeRequest,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<ForgeReport> {
        let held = self.claim_forge()?;
        self.run_forge(request, ForgeTrigger::Request, progress, cancel, held)
            .await
    }

    /// Makes facet `name` its persona's default when its evaluation passes the promotion
    /// rule, and serves the persona with it from the next learn cycle on.
    pub async fn promote_facet(&self, name: &str) -> Result<Facet> {
        let facet = aura_forge::promote(self.store().as_ref(), name).await?;
        self.reload_cascade().await;
        Ok(facet)
    }

    /// Undoes `persona`'s last promotion; returns the facet that serves it now (`None`:
    /// its base model).
    pub async fn rollback_facet(&self, persona: Persona) -> Result<Option<Facet>> {
        let restored = aura_forge::rollback(self.store().as_ref(), persona.key()).await?;
        self.reload_cascade().await;
        Ok(restored)
    }

    /// Every trained facet, by name (the personas' promotion records are not facets:
    /// see [`Self::serving`]).
    pub async fn facets(&self) -> Result<Vec<Facet>> {
        Ok(aura_forge::facets(self.store().as_ref()).await?)
    }

    /// Which facet serves each persona, by persona key (`None`: its base model).
    pub async fn serving(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, Option<String>>> {
        Ok(aura_forge::serving(self.store().as_ref()).await?)
    }

    /// Feeds one cascade cycle's CEM to the monitor; starts a forge run on stagnation.
    ///
    /// A cycle whose models wrote nothing usable (`failure` is invalid output) counts as
    /// a CEM of 0: it added nothing. One that failed for another reason (a model server
    /// down, a timeout) says nothing about the personas and is not counted.
    pub(crate) fn observe_cycle(
        &self,
        packet: &CognitiveStatePacket,
        failure: Option<&aura_cognition::Error>,
    ) {
        let value = match (packet.cem, failure) {
            (Some(cem), _) => cem.value,
            (None, Some(aura_cognition::Error::InvalidOutput(_))) => 0.0,
            (None, _) => return,
        };
        let settings = &self.config().forge;
        let state = self.forge_loop().monitor().record(value);
        tracing::debug!(target: "Cascade.ALFRED", cem = value, ?state, "cycle observed");
        let Stagnation::Stagnant { mean } = state else {
            return;
        };
        if self.forge().is_none() || !settings.on_stagnation {
            return;
        }
        let Ok(held) = self.claim_forge() else {
            return;
        };
        // A fresh window: one stagnant stretch starts one run.
        self.forge_loop().monitor().reset();
        let trigger = ForgeTrigger::Stagnation {
            mean,
            window: settings.stagnation_window,
            threshold: settings.stagnation_threshold,
        };
        let request = self.forge_request(settings.persona);
        tracing::warn!(target: "Cascade.ALFRED", mean, persona = settings.persona.name(),
            "stagnation: starting a forge run");
        self.spawn_forge(request, trigger, held);
    }

    /// Starts [`Self::forge_persona`] in the background and returns the facet's name at
    /// once; the outcome lands in the audit trail (`forge.registered`, `forge.promoted`
    /// or `forge.failed`) and the log. Refused with [`Error::Conflict`] while another run
    /// is in progress and with [`Error::Unavailable`] when no forge is configured.
    pub fn start_forge(&self, mut request: ForgeRequest) -> Result<String> {
        if self.forge().is_none() {
            return Err(no_forge());
        }
        // Named now, so the caller learns the name the run will register.
        let name = FacetName::of(&mut request)?.name;
        let held = self.claim_forge()?;
        self.spawn_forge(request, ForgeTrigger::Request, held);
        Ok(name)
    }

    fn spawn_forge(&self, request: ForgeRequest, trigger: ForgeTrigger, held: OwnedMutexGuard<()>) {
        let runtime = self.clone();
        tokio::spawn(async move {
            let (progress, drain) = unwatched_progress();
            let (_keep, cancel) = watch::channel(false);
            // The outcome is in the audit trail and the log either way.
            if runtime.worth_forging(&trigger).await {
                let _ = runtime
                    .run_forge(request, trigger, progress, cancel, held)
                    .await;
            }
            drain.abort();
        });
    }

    /// A stagnation-triggered run needs at least one successful learn cycle to learn
    /// from; without one (a model that never yet wrote a method that passed) it is
    /// skipped, on the record, instead of failing every window.
    async fn worth_forging(&self, trigger: &ForgeTrigger) -> bool {
        if !matches!(trigger, ForgeTrigger::Stagnation { .. }) {
            return true;
        }
        let query = aura_store::AuditQuery {
            kind: Some(EventKind::LearnCommitted.into()),
            limit: Some(1),
            ..aura_store::AuditQuery::default()
        };
        match self.store().query_audit(&query).await {
            Ok(page) if page.events.is_empty() => {
                tracing::warn!(target: "Forge",
                    "stagnation, but no learn cycle has succeeded yet: nothing to train on");
                let skipped = ForgeSkipped {
                    trigger: trigger.clone(),
                    reason: "no successful learn cycle in the audit trail yet".into(),
                }
                .event(None);
                let _ = self.store().append_event(skipped).await;
                false
            }
            _ => true,
        }
    }

    /// Waits until no forge run is in progress (a background one included).
    pub async fn forge_idle(&self) {
        drop(self.forge_loop().running.lock().await);
    }

    fn claim_forge(&self) -> Result<OwnedMutexGuard<()>> {
        self.forge_loop()
            .running
            .clone()
            .try_lock_owned()
            .map_err(|_| Error::Conflict("a forge run is already in progress".into()))
    }

    async fn run_forge(
        &self,
        mut request: ForgeRequest,
        trigger: ForgeTrigger,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
        _held: OwnedMutexGuard<()>,
    ) -> Result<ForgeReport> {
        let facet = FacetName::of(&mut request)?;
        let FacetName { persona, name, .. } = &facet;
        let forge = self.forge().cloned().ok_or_else(no_forge)?;
        self.store()
            .append_event(
                ForgeStarted {
                    persona: persona.clone(),
                    facet: name.clone(),
                    trigger: trigger.clone(),
                    backend: forge.capabilities().backend.to_string(),
                    lora: request.lora.clone(),
                }
                .event(None),
            )
            .await?;
        tracing::info!(target: "Forge", facet = %name, ?trigger, "forge run starts");
        let outcome = self
            .forge_steps(&request, &facet, forge, progress, cancel)
            .await;
        if let Err(e) = &outcome {
            tracing::warn!(target: "Forge", facet = %name, "forge run failed: {e}");
            self.store()
                .append_event(
                    ForgeFailed {
                        persona: persona.clone(),
                        facet: name.clone(),
                        error: e.to_string(),
                    }
                    .event(None),
                )
                .await?;
        }
        outcome
    }

    async fn forge_steps(
        &self,
        request: &ForgeRequest,
        facet: &FacetName,
        forge: aura_forge::DynForge,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<ForgeReport> {
        let FacetName {
            persona,
            label,
            name,
        } = facet;
        let base_model = self.forge_base_model()?;
        let dir = self
            .config()
            .data_dir
            .join("forge")
            .join(persona)
            .join(label);
        let curation = CurationConfig {
            system_prompt: self.cascade().and_then(|c| {
                // Rendered as the cascade renders it, `{selector}` left for each example.
                c.persona(request.persona)
                    .map(|p| c.prompts().render(&p.prompt, "{selector}"))
            }),
            ..CurationConfig::for_persona(persona)
        };
        let dataset_dir = dir.join("dataset");
        let dataset = aura_forge::curate(self.store().as_ref(), &curation, &dataset_dir).await?;
        let examples = dataset.manifest.train.examples + dataset.manifest.validation.examples;
        if dataset.manifest.train.examples == 0 {
            return Err(Error::Invalid(format!(
                "the golden dataset for {} has no training example ({examples} in all)",
                request.persona.name()
            )));
        }
        let job = TrainingJob {
            persona: persona.to_string(),
            base_model: base_model.display().to_string(),
            dataset_dir: dataset_dir.clone(),
            output_dir: dir.join("adapter"),
            lora: request.lora.clone(),
        };
        let adapter = forge.train(job, progress, cancel).await?;
        let facet = aura_forge::register(
            self.store().as_ref(),
            FacetRegistration {
                name: name.to_string(),
                persona: persona.to_string(),
                base_model: base_model.display().to_string(),
                adapter,
                dataset_dir: dataset_dir.display().to_string(),
                manifest: dataset.manifest,
                // The runtime's loop measures likelihood; expert-iteration rounds
                // (the forge_round bench) measure learn rates too.
                learning: None,
            },
        )
        .await?;
        let evaluation = Evaluation::of_facet(&facet);
        let (facet, promoted, not_promoted) = if request.promote {
            match self.promote_facet(name).await {
                Ok(f) => (f, true, None),
                Err(Error::Forge(aura_forge::Error::Rejected(why))) => (facet, false, Some(why)),
                Err(e) => return Err(e),
            }
        } else {
            (facet, false, None)
        };
        let report = ForgeReport {
            facet,
            examples,
            evaluation,
            promoted,
            not_promoted,
        };
        self.store()
            .append_event(
                ForgeFinished {
                    persona: persona.to_string(),
                    facet: name.to_string(),
                    examples,
                    evaluation: report.evaluation,
                    promoted,
                    not_promoted: report.not_promoted.clone(),
                }
                .event(None),
            )
            .await?;
        tracing::info!(target: "Forge", facet = %name, promoted, not_promoted = ?report.not_promoted,
            "forge run done");
        Ok(report)
    }

    fn forge_base_model(&self) -> Result<std::path::PathBuf> {
        if let Some(path) = &self.config().forge.base_model {
            return Ok(path.clone());
        }
        #[cfg(feature = "local-model")]
        {
            Ok(aura_cognition::default_model_path())
        }
        #[cfg(not(feature = "local-model"))]
        {
            Err(Error::Invalid(
                "no base model to train on: set AURA_FORGE_BASE_MODEL to a GGUF file".into(),
            ))
        }
    }
}

/// A progress channel nobody watches (the forge logs each step itself), and the task
/// that drains it.
fn unwatched_progress() -> (mpsc::Sender<Progress>, tokio::task::JoinHandle<()>) {
    let (progress, mut watch) = mpsc::channel(64);
    let drain = tokio::spawn(async move { while watch.recv().await.is_some() {} });
    (progress, drain)
}

/// The parts of a run's facet name, `<persona>:<label>`.
struct FacetName {
    persona: String,
    label: String,
    name: String,
}

impl FacetName {
    /// The request's facet name, checked; a request without a label gets the default
    /// one (`forge-<UTC date and time>`) written into it.
    fn of(request: &mut ForgeRequest) -> Result<Self> {
        let label = request
            .label
            .get_or_insert_with(|| format!("forge-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")))
            .clone();
        let persona = request.persona.key().to_string();
        let name = format!("{persona}:{label}");
        aura_forge::validate_facet_name(&name, &persona)?;
        Ok(Self {
            persona,
            label,
            name,
        })
    }
}

fn no_forge() -> Error {
    Error::Unavailable {
        port: "forge",
        message: "no forge is configured: pass one to RuntimeBuilder::forge \
                  (the default, LocalForge, needs `AURA_SETUP_FORGE=1 scripts/setup.sh`)"
            .into(),
    }
}

/// Serves each persona that has a promoted facet with the facet's model; a facet that
/// cannot be loaded is reported and its persona keeps `base`.
pub(crate) async fn cascade_models(
    store: &dyn aura_store::Store,
    loader: &FacetModelLoader,
) -> Vec<(Persona, Facet, DynLanguageModel)> {
    let mut served = Vec::new();
    for persona in Persona::ALL {
        match aura_forge::promoted_facet(store, persona.key()).await {
            Ok(Some(facet)) => match loader(&facet) {
                Ok(model) => served.push((persona, facet, model)),
                Err(e) => tracing::warn!(target: "Forge", facet = %facet.name,
                    "the promoted facet cannot be loaded, {} stays on its base model: {e}",
                    persona.name()),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(target: "Forge", persona = persona.name(),
                "cannot read the facets registry: {e}"),
        }
    }
    served
}
