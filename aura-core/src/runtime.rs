//! The runtime: objects, slots, methods and message sends over the ports.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use aura_cognition::cascade::DynGrounding;
use aura_cognition::{
    Cascade, CascadeMode, ContextIngestor, ContextIngestorBuilder, DynLanguageModel, ModelOpener,
    Persona,
};
use aura_forge::trail::{MethodDefined, MethodRolledBack, Payload};
use aura_forge::DynForge;
use aura_guard::Guard;
use aura_sandbox::{DynSandbox, EndReason, ExecRequest, MethodSource};
use aura_store::{
    DynStore, Method, NewMethod, NewObject, Object, ObjectId, ObjectPatch, Provenance, Selector,
    SqliteStore, StoreExt,
};
use serde_json::{Map, Value};
use tracing::Instrument as _;

use crate::config::SandboxBackend;
use crate::dispatch::{calls_of, parse_selector, CacheStats, ChainView, ResolutionCache};
use crate::evolution::{cascade_models, default_facet_model, FacetModelLoader, ForgeLoop};
use crate::learn::{sandbox_span, LearnLocks, LearnRequest, StoreGrounding};
use crate::{Config, Error, Result};

/// Builds a [`Runtime`]; any port left unset gets its embedded default.
#[derive(Default)]
#[must_use]
pub struct RuntimeBuilder {
    config: Option<Config>,
    store: Option<DynStore>,
    sandbox: Option<DynSandbox>,
    model: Option<DynLanguageModel>,
    persona_models: BTreeMap<Persona, DynLanguageModel>,
    model_settings: Vec<(String, String)>,
    forge: Option<DynForge>,
    guard: Option<Guard>,
    cascade: Option<Cascade>,
    context: Option<Arc<ContextIngestor>>,
    facet_models: Option<FacetModelLoader>,
    without_model: bool,
    without_forge: bool,
}

impl RuntimeBuilder {
    /// Audits methods with this guard (default: `Guard::default()`, deny by default).
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Uses these settings instead of [`Config::from_env`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Uses this store (default: [`SqliteStore`] at `Config::store_path`).
    pub fn store(mut self, store: DynStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this sandbox (default: `JailSandbox`, or Docker when `AURA_SANDBOX=docker`).
    pub fn sandbox(mut self, sandbox: DynSandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Uses this language model for every persona.
    pub fn model(mut self, model: DynLanguageModel) -> Self {
        self.model = Some(model);
        self
    }

    /// Serves `persona` with this model (the others keep [`Self::model`] or the default).
    /// A facet promoted for the persona later serves it instead.
    pub fn persona_model(mut self, persona: Persona, model: DynLanguageModel) -> Self {
        self.persona_models.insert(persona, model);
        self
    }

    /// Sets a model setting as the environment would: `("AURA_MODEL", "ollama:llama3")`,
    /// `("AURA_MODEL_ROBIN", "openai:http://127.0.0.1:8080/v1#qwen,local:models/x.gguf")`
    /// (see [`crate::ModelSettings`]). It overrides the configuration; a bad key or value
    /// fails [`Self::build`] with [`Error::Invalid`] naming the setting. A model given to
    /// [`Self::model`] or [`Self::persona_model`] wins over a setting.
    pub fn model_setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.model_settings.push((key.into(), value.into()));
        self
    }

    /// Configures no language model, not even the embedded default: nothing is learned,
    /// and a miss is reported as [`Error::DoesNotUnderstand`].
    pub fn without_model(mut self) -> Self {
        self.model = None;
        self.cascade = None;
        self.without_model = true;
        self
    }

    /// Learns with this cascade (default: every persona served by the configured model,
    /// grounded in the store's memory graph).
    pub fn cascade(mut self, cascade: Cascade) -> Self {
        self.cascade = Some(cascade);
        self
    }

    /// Takes real-time context (time, place, news) from this ingestor
    /// (default: `ContextIngestor::from_env()`).
    pub fn context(mut self, ingestor: Arc<ContextIngestor>) -> Self {
        self.context = Some(ingestor);
        self
    }

    /// Uses this forge (default: `LocalForge` when its training venv is installed,
    /// otherwise none: nothing is forged).
    pub fn forge(mut self, forge: DynForge) -> Self {
        self.forge = Some(forge);
        self
    }

    /// Configures no forge, not even the default: nothing is forged, and a forge
    /// request is refused as unavailable.
    pub fn without_forge(mut self) -> Self {
        self.forge = None;
        self.without_forge = true;
        self
    }

    /// Loads promoted facets with this instead of [`default_facet_model`]. It applies
    /// when the runtime builds the cascade itself (no [`Self::cascade`] given).
    pub fn facet_models(mut self, loader: FacetModelLoader) -> Self {
        self.facet_models = Some(loader);
        self
    }

    /// Opens the ports and makes sure the genesis root object exists.
    pub async fn build(self) -> Result<Runtime> {
        let mut config = self.config.unwrap_or_else(Config::from_env);
        for (key, value) in self.model_settings {
            config.models.set(&key, value)?;
        }
        // The models are opened (and their settings checked) before anything is written.
        let (model, persona_models) = if self.without_model {
            // Learning is off, but a malformed setting is still reported.
            config.models.chains()?;
            (None, BTreeMap::new())
        } else {
            open_models(&config, self.model, self.persona_models)?
        };
        let store: DynStore = match self.store {
            Some(s) => s,
            None => open_default_store(&config).await?,
        };
        let sandbox: DynSandbox = match self.sandbox {
            Some(s) => s,
            None => open_default_sandbox(&config).await?,
        };
        let root = ensure_root(&store, &config.root_object).await?;
        if config.exemplars {
            crate::exemplars::install(&store).await?;
        }
        let context = self
            .context
            .unwrap_or_else(|| Arc::new(ContextIngestorBuilder::from_env().build()));
        let recipe = match (&self.cascade, &model) {
            (None, Some(m)) => Some(CascadeRecipe {
                model: m.clone(),
                persona_models,
                mode: config.cascade_mode_for(m.as_ref()),
                grounding: Arc::new(StoreGrounding::new(store.clone())),
                context: context.clone(),
                facets: self
                    .facet_models
                    .unwrap_or_else(|| Arc::new(default_facet_model)),
            }),
            _ => None,
        };
        let cascade = match (self.cascade, &recipe) {
            (Some(c), _) => Some(Arc::new(c)),
            (None, Some(r)) => Some(Arc::new(r.build(store.as_ref()).await)),
            (None, None) => None,
        };
        let forge = match self.forge {
            Some(f) => Some(f),
            None if self.without_forge => None,
            None => default_forge(),
        };
        tracing::info!(target: "Orchestrator", root = %root.id,
            store = store.capabilities().backend, sandbox = sandbox.capabilities().backend,
            "runtime awake");
        Ok(Runtime {
            inner: Arc::new(Inner {
                store,
                sandbox,
                model,
                forge_loop: ForgeLoop::new(
                    config.forge.stagnation_window,
                    config.forge.stagnation_threshold,
                ),
                cascade: RwLock::new(cascade),
                recipe,
                context,
                learn_locks: LearnLocks::new(config.cache.learn_locks),
                forge,
                guard: self.guard.unwrap_or_default(),
                root: root.id,
                cache: ResolutionCache::new(config.cache.clone()),
                config,
            }),
        })
    }
}

/// `LocalForge` when its training venv is installed; otherwise no forge (the venv is
/// an opt-in setup step, `AURA_SETUP_FORGE=1 scripts/setup.sh`).
fn default_forge() -> Option<DynForge> {
    #[cfg(feature = "local-forge")]
    {
        let forge = aura_forge::LocalForge::from_env();
        if forge.python().is_file() {
            return Some(Arc::new(forge));
        }
    }
    None
}

/// How the runtime builds its cascade, kept so that it can rebuild it when a facet is
/// promoted or rolled back.
struct CascadeRecipe {
    model: DynLanguageModel,
    /// Personas served by a model of their own (until a facet is promoted for them).
    persona_models: BTreeMap<Persona, DynLanguageModel>,
    mode: CascadeMode,
    grounding: DynGrounding,
    context: Arc<ContextIngestor>,
    facets: FacetModelLoader,
}

impl CascadeRecipe {
    /// Every persona on `model`, but those with a promoted facet, served by the facet.
    async fn build(&self, store: &dyn aura_store::Store) -> Cascade {
        let mut builder = Cascade::builder(self.model.clone())
            .mode(self.mode)
            .grounding(self.grounding.clone())
            .context(self.context.clone());
        for (persona, model) in &self.persona_models {
            builder = builder.persona_model(*persona, model.clone());
        }
        for (persona, facet, model) in cascade_models(store, &self.facets).await {
            tracing::info!(target: "Forge", persona = persona.name(), facet = %facet.name,
                "persona served by its promoted facet");
            builder = builder.persona_model(persona, model);
        }
        builder.build()
    }
}

async fn open_default_store(config: &Config) -> Result<DynStore> {
    if config.store_path.as_os_str() == ":memory:" {
        return Ok(Arc::new(SqliteStore::open_in_memory().await?));
    }
    if let Some(dir) = config
        .store_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::Unavailable {
            port: "store",
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    Ok(Arc::new(SqliteStore::open(&config.store_path).await?))
}

/// The models the builder and the settings name: the default model (the builder's, else
/// `AURA_MODEL`'s, else the embedded one, else the first persona's own) and the personas
/// served by a model of their own. Each backend is opened once.
fn open_models(
    config: &Config,
    model: Option<DynLanguageModel>,
    mut persona_models: BTreeMap<Persona, DynLanguageModel>,
) -> Result<(
    Option<DynLanguageModel>,
    BTreeMap<Persona, DynLanguageModel>,
)> {
    let crate::ModelChains {
        default: default_chain,
        personas: persona_chains,
    } = config.models.chains()?;
    let mut opener = ModelOpener::new(|k| std::env::var(k).ok())
        .concurrency(config.models.concurrency)
        .cooldown(config.models.cooldown);
    let mut open =
        |chain: &aura_cognition::ModelChain| opener.open(chain).map_err(crate::config::invalid);
    for (persona, chain) in &persona_chains {
        if !persona_models.contains_key(persona) {
            persona_models.insert(*persona, open(chain)?);
        }
    }
    let model = match (model, default_chain) {
        (Some(m), _) => Some(m),
        (None, Some(chain)) => Some(open(&chain)?),
        (None, None) => match open_default_model()? {
            Some(m) => Some(m),
            None => persona_models.values().next().cloned(),
        },
    };
    for (persona, m) in &persona_models {
        tracing::info!(target: "Orchestrator", persona = persona.name(), backend = %m.describe(),
            "persona served by its own model");
    }
    if let Some(m) = &model {
        tracing::info!(target: "Orchestrator", backend = %m.describe(), "default model");
    }
    Ok((model, persona_models))
}

/// The embedded model when this build has it and its file is installed; `None` otherwise
/// (then nothing can be learned, and a miss is reported as not understood).
fn open_default_model() -> Result<Option<DynLanguageModel>> {
    #[cfg(feature = "local-model")]
    {
        let path = aura_cognition::default_model_path();
        if path.exists() {
            let model = aura_cognition::LocalModel::from_env()?;
            return Ok(Some(Arc::new(model)));
        }
        let looked_in = aura_cognition::model_search_path()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        tracing::warn!(target: "Orchestrator", path = %path.display(), %looked_in,
            "no model file found: learning is off (scripts/setup.sh demo installs the \
             model; AURA_MODEL_PATH names another GGUF file)");
    }
    Ok(None)
}

/// The configured sandbox. Both backends run the runtime layer that enforces the same API
/// allowlist as the guard, so each wall holds without the other.
async fn open_default_sandbox(config: &Config) -> Result<DynSandbox> {
    match config.sandbox_backend {
        SandboxBackend::Jail => Ok(Arc::new(
            aura_sandbox::JailSandboxBuilder::from_env()
                .module_api(aura_guard::module_api_json())
                .build()?,
        )),
        #[cfg(feature = "docker")]
        SandboxBackend::Docker => Ok(Arc::new(
            aura_sandbox::DockerSandboxBuilder::from_env()
                .module_api(aura_guard::module_api_json())
                .build()
                .await?,
        )),
        #[cfg(not(feature = "docker"))]
        SandboxBackend::Docker => Ok(aura_sandbox::docker_from_env().await?),
    }
}

/// Finds or creates the root object; two runtimes racing to create it both end up with one.
async fn ensure_root(store: &DynStore, name: &str) -> Result<Object> {
    if let Some(root) = store.find_object(name).await? {
        return Ok(root);
    }
    match store.create_object(NewObject::named(name)).await {
        Ok(root) => Ok(root),
        Err(aura_store::Error::Conflict(_)) => store
            .find_object(name)
            .await?
            .ok_or_else(|| Error::Conflict(format!("root object {name:?} vanished"))),
        Err(e) => Err(e.into()),
    }
}

struct Inner {
    config: Config,
    store: DynStore,
    sandbox: DynSandbox,
    model: Option<DynLanguageModel>,
    cascade: RwLock<Option<Arc<Cascade>>>,
    recipe: Option<CascadeRecipe>,
    forge_loop: ForgeLoop,
    context: Arc<ContextIngestor>,
    learn_locks: LearnLocks,
    forge: Option<DynForge>,
    guard: Guard,
    root: ObjectId,
    cache: ResolutionCache,
}

/// The object machine: a handle shared cheaply (`Clone`) across tasks.
///
/// Writes made through the runtime keep its resolution cache correct. A host that
/// writes methods or parents through the store directly (or from another process)
/// calls [`Runtime::invalidate`] to make them visible at once; a selector that misses
/// the cache is always re-read from the store before it is declared not understood.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("store", &self.inner.store)
            .field("sandbox", &self.inner.sandbox)
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder; unset ports get their embedded defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store port.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The sandbox port.
    pub fn sandbox(&self) -> &DynSandbox {
        &self.inner.sandbox
    }

    /// The language model, when one is configured.
    pub fn model(&self) -> Option<&DynLanguageModel> {
        self.inner.model.as_ref()
    }

    /// The learn cycle's cascade, when a model is configured. A promotion or rollback
    /// through the runtime replaces it; a learn cycle keeps the one it started with.
    pub fn cascade(&self) -> Option<Arc<Cascade>> {
        self.inner
            .cascade
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the cascade from the facets registry (when the runtime built it).
    pub(crate) async fn reload_cascade(&self) {
        if let Some(recipe) = &self.inner.recipe {
            let cascade = Arc::new(recipe.build(self.inner.store.as_ref()).await);
            *self
                .inner
                .cascade
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(cascade);
        }
    }

    pub(crate) fn forge_loop(&self) -> &ForgeLoop {
        &self.inner.forge_loop
    }

    /// The real-time context ingestor.
    pub fn context(&self) -> &Arc<ContextIngestor> {
        &self.inner.context
    }

    pub(crate) fn learn_locks(&self) -> &LearnLocks {
        &self.inner.learn_locks
    }

    /// How many per-selector learn locks are kept (bounded by `AURA_CACHE_LEARN_LOCKS`).
    pub fn learn_lock_count(&self) -> usize {
        self.inner.learn_locks.len()
    }

    /// The forge, when one is configured.
    pub fn forge(&self) -> Option<&DynForge> {
        self.inner.forge.as_ref()
    }

    /// The genesis root object's id.
    pub fn root(&self) -> ObjectId {
        self.inner.root
    }

    /// Creates an object; with no parents given it delegates to the genesis root.
    pub async fn create_object(&self, mut new: NewObject) -> Result<Object> {
        aura_store::validate_object_name(&new.name)?;
        if new.parents.is_empty() {
            new.parents.push(self.inner.root);
        }
        let object = self.inner.store.create_object(new).await?;
        tracing::info!(target: "Store", object = %object.name, id = %object.id, "object created");
        Ok(object)
    }

    /// Reads an object.
    pub async fn object(&self, id: ObjectId) -> Result<Object> {
        Ok(self.inner.store.get_object(id).await?)
    }

    /// Finds an object by name.
    pub async fn find(&self, name: &str) -> Result<Object> {
        self.inner
            .store
            .find_object(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "object",
                id: name.to_string(),
            })
    }

    /// Reads one slot (`None` when the object has no such slot).
    pub async fn slot(&self, id: ObjectId, name: &str) -> Result<Option<Value>> {
        Ok(self.object(id).await?.slots.get(name).cloned())
    }

    /// Sets one slot, retrying when another writer got there first.
    pub async fn set_slot(&self, id: ObjectId, name: &str, value: Value) -> Result<Object> {
        let mut changes = Map::new();
        changes.insert(name.to_string(), value);
        self.merge_slots(id, changes).await
    }

    /// Merges `changes` into an object's slots, retrying on revision conflicts.
    pub async fn merge_slots(&self, id: ObjectId, changes: Map<String, Value>) -> Result<Object> {
        let mut attempt = 0;
        loop {
            let object = self.object(id).await?;
            let mut slots = object.slots.clone();
            slots.extend(changes.clone());
            match self.inner.store.update_slots(id, object.rev, slots).await {
                Err(aura_store::Error::Conflict(_))
                    if attempt < self.inner.config.conflict_retries =>
                {
                    attempt += 1;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Replaces an object's parents; a cycle is refused and nothing changes.
    pub async fn set_parents(&self, id: ObjectId, parents: Vec<ObjectId>) -> Result<Object> {
        let object = self.object(id).await?;
        let patch = ObjectPatch {
            slots: None,
            parents: Some(parents),
        };
        let updated = self
            .inner
            .store
            .update_object(id, object.rev, patch)
            .await?;
        self.inner.cache.invalidate(id);
        Ok(updated)
    }

    /// Deletes an object (refused while others delegate to it).
    pub async fn delete_object(&self, id: ObjectId) -> Result<()> {
        if id == self.inner.root {
            return Err(Error::Invalid(
                "the genesis root object cannot be deleted".into(),
            ));
        }
        self.inner.store.delete_object(id).await?;
        self.inner.cache.invalidate(id);
        Ok(())
    }

    /// The guard every method passes before it is stored.
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    /// Stores a method written by hand as the next version on `id`, after the guard
    /// accepts it ([`Error::Rejected`] with every violation otherwise).
    pub async fn define_method(
        &self,
        id: ObjectId,
        selector: &str,
        source: impl Into<String>,
        doc: impl Into<String>,
    ) -> Result<Method> {
        let selector = parse_selector(selector)?;
        let source = source.into();
        let verdict = self.inner.guard.audit_method(&source, selector.as_str());
        if !verdict.accepted {
            tracing::warn!(target: "PersistenceGuardian", %selector, violations = verdict.violations.len(), "method rejected");
            return Err(Error::Rejected {
                selector: selector.to_string(),
                verdict,
            });
        }
        // The version and its `method.defined` event in one transaction: the trail
        // names every version, and no event names a version that is not stored.
        let mut tx = self.inner.store.begin().await?;
        let method = tx
            .put_method(NewMethod {
                object_id: id,
                selector,
                calls: calls_of(&[&source]),
                source,
                tests: String::new(),
                doc: doc.into(),
                provenance: Provenance::Manual,
            })
            .await?;
        let event = MethodDefined {
            selector: method.selector.to_string(),
            version: method.version,
        };
        tx.append_event(event.event(Some(id))).await?;
        tx.commit().await?;
        self.inner.cache.method_written(&method);
        tracing::info!(target: "Store", selector = %method.selector, version = method.version, "method defined");
        Ok(method)
    }

    /// Every version of a method defined directly on `id`, oldest first.
    pub async fn method_versions(&self, id: ObjectId, selector: &str) -> Result<Vec<Method>> {
        let selector = parse_selector(selector)?;
        Ok(self.inner.store.method_versions(id, &selector).await?)
    }

    /// Makes an earlier version of a method current again.
    pub async fn rollback_method(
        &self,
        id: ObjectId,
        selector: &str,
        version: u32,
    ) -> Result<Method> {
        let selector = parse_selector(selector)?;
        let mut tx = self.inner.store.begin().await?;
        let method = tx.rollback_method(id, &selector, version).await?;
        let event = MethodRolledBack {
            selector: method.selector.to_string(),
            from_version: version,
            version: method.version,
        };
        tx.append_event(event.event(Some(id))).await?;
        tx.commit().await?;
        self.inner.cache.method_written(&method);
        Ok(method)
    }

    /// Takes a method version this runtime just stored into the resolution cache.
    pub(crate) fn method_written(&self, method: &Method) {
        self.inner.cache.method_written(method);
    }

    /// Forgets cached resolutions through `id` (after writing through the store directly).
    pub fn invalidate(&self, id: ObjectId) {
        self.inner.cache.invalidate(id);
    }

    /// Forgets every cached resolution.
    pub fn invalidate_all(&self) {
        self.inner.cache.clear();
    }

    /// Every method `id` responds to, resolved along its delegation chain (cached).
    pub async fn chain_view(&self, id: ObjectId) -> Result<Arc<ChainView>> {
        if let Some(view) = self.inner.cache.get(id) {
            return Ok(view);
        }
        let object = self.object(id).await?;
        self.load_view(&object).await
    }

    async fn load_view(&self, object: &Object) -> Result<Arc<ChainView>> {
        self.inner
            .cache
            .load(self.inner.store.as_ref(), object)
            .await
    }

    /// What the resolution cache holds against its bounds, and its hits and misses.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The method `id` would run for `selector`, if any.
    pub async fn resolve(&self, id: ObjectId, selector: &str) -> Result<Option<Arc<Method>>> {
        let selector = parse_selector(selector)?;
        Ok(self.chain_view(id).await?.resolve(&selector).cloned())
    }

    /// Sends a message: finds the method along the delegation chain and runs it in the
    /// sandbox; slot changes it makes are committed atomically with a revision check.
    ///
    /// A selector nothing answers is learned first (when a model is configured), from
    /// what an earlier turn asked this object to learn under that name, if anything.
    pub async fn send(&self, id: ObjectId, selector: &str, args: Vec<Value>) -> Result<Value> {
        self.send_with(id, selector, args, OnMiss::Learn { words: None })
            .await
    }

    /// Sends a message the receiver already understands: like [`Runtime::send`], but a
    /// selector no method answers is [`Error::DoesNotUnderstand`] instead of a learn, so
    /// a caller that may use objects but not teach them changes no behaviour.
    pub async fn send_understood(
        &self,
        id: ObjectId,
        selector: &str,
        args: Vec<Value>,
    ) -> Result<Value> {
        self.send_with(id, selector, args, OnMiss::Refuse).await
    }

    pub(crate) async fn send_with(
        &self,
        id: ObjectId,
        selector: &str,
        args: Vec<Value>,
        on_miss: OnMiss<'_>,
    ) -> Result<Value> {
        let selector = parse_selector(selector)?;
        let mut attempt = 0;
        let mut learned = false;
        loop {
            let object = self.object(id).await?;
            let view = match self.inner.cache.get(id) {
                // A cached miss may predate a write made elsewhere: re-read before giving up.
                Some(v) if v.resolve(&selector).is_none() => {
                    self.inner
                        .cache
                        .revalidate_miss(self.inner.store.as_ref(), &v, &selector)
                        .await?;
                    self.load_view(&object).await?
                }
                Some(v) => v,
                None => self.load_view(&object).await?,
            };
            let Some(method) = view.resolve(&selector).cloned() else {
                let words = match on_miss {
                    OnMiss::Learn { words } if self.cascade().is_some() && !learned => words,
                    _ => return self.does_not_understand(&object, &selector, &view),
                };
                let call = format!("{}({})", selector, render_args(&args));
                let request = LearnRequest {
                    selector: selector.to_string(),
                    request_text: self
                        .request_on_miss(&object, selector.as_str(), words.unwrap_or(&call))
                        .await?,
                    args: args.clone(),
                };
                self.learn(id, request).await?;
                learned = true;
                continue;
            };
            match self.invoke(&object, &view, &method, args.clone()).await {
                Err(Error::Conflict(_)) if attempt < self.inner.config.conflict_retries => {
                    attempt += 1;
                    tracing::debug!(target: "Orchestrator", %selector, attempt, "slot write lost a race; calling again");
                }
                other => return other,
            }
        }
    }

    fn does_not_understand(
        &self,
        object: &Object,
        selector: &Selector,
        view: &ChainView,
    ) -> Result<Value> {
        tracing::info!(target: "Orchestrator", object = %object.name, %selector, "doesNotUnderstand");
        Err(Error::DoesNotUnderstand {
            object: object.name.clone(),
            selector: selector.to_string(),
            chain: view.chain_names(),
        })
    }

    async fn invoke(
        &self,
        object: &Object,
        view: &ChainView,
        method: &Method,
        args: Vec<Value>,
    ) -> Result<Value> {
        let helpers = view.helpers_for(&method.selector, method.calls.as_deref());
        let request = ExecRequest {
            method: MethodSource {
                selector: method.selector.to_string(),
                source: method.source.clone(),
            },
            helpers,
            slots: object.slots.clone(),
            args,
            tests: None,
            limits: self.inner.config.limits.clone(),
        };
        let outcome = self
            .inner
            .sandbox
            .execute(request)
            .instrument(sandbox_span("call", 1))
            .await?;
        tracing::debug!(target: "Sandbox", selector = %method.selector, ended = ?outcome.ended,
            wall_ms = outcome.usage.wall_ms, "call finished");
        match outcome.ended {
            EndReason::Ok => {}
            EndReason::Exception => {
                let error = outcome.error.unwrap_or_else(|| aura_sandbox::GuestError {
                    type_name: "Exception".into(),
                    message: "the method raised without details".into(),
                    traceback: String::new(),
                });
                return Err(Error::MethodRaised {
                    selector: method.selector.to_string(),
                    error,
                });
            }
            reason => {
                return Err(Error::Stopped {
                    selector: method.selector.to_string(),
                    reason,
                    detail: truncate(&outcome.stderr, 500),
                })
            }
        }
        if !outcome.slot_changes.is_empty() {
            let mut slots = object.slots.clone();
            slots.extend(outcome.slot_changes);
            // Any conflict here makes `send` run the method again on fresh slots.
            self.inner
                .store
                .update_slots(object.id, object.rev, slots)
                .await?;
        }
        Ok(outcome.value.unwrap_or(Value::Null))
    }
}

/// What a send does with a selector no method on the chain answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OnMiss<'a> {
    /// Says so: [`Error::DoesNotUnderstand`].
    Refuse,
    /// Learns it, then calls it. `words` is what the person said that made the call
    /// ("calculate fibonacci for 10"); without them the call itself is the request.
    Learn { words: Option<&'a str> },
}

pub(crate) fn render_args(args: &[Value]) -> String {
    args.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
