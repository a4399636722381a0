//! Runtime settings, read from the builder, the environment and `.env`.
//!
//! Precedence, highest first: what the builder is told, then process environment
//! variables, then a `.env` file in the working directory, then the defaults below.

use std::path::PathBuf;
use std::time::Duration;

use aura_sandbox::Limits;

/// The sandbox backends a runtime can open by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxBackend {
    /// `JailSandbox`: Linux namespaces, the embedded default.
    Jail,
    /// `DockerSandbox`: a container per call (needs aura-sandbox's `docker` feature).
    Docker,
}

/// Settings of a [`crate::Runtime`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Where AURA keeps its files (`AURA_DATA_DIR`, default `data`).
    pub data_dir: PathBuf,
    /// The SQLite store's file (`AURA_STORE_PATH`, default `<data_dir>/aura.sqlite`);
    /// `:memory:` keeps everything in memory.
    pub store_path: PathBuf,
    /// The name of the genesis root every new object delegates to (`AURA_ROOT_OBJECT`, default `genesis`).
    pub root_object: String,
    /// Which sandbox runs methods when the builder is given none (`AURA_SANDBOX`:
    /// `jail`, the default, or `docker`).
    pub sandbox_backend: SandboxBackend,
    /// Limits for every method call (`AURA_SANDBOX_WALL_MS`, `AURA_SANDBOX_CPU_MS`,
    /// `AURA_SANDBOX_MEMORY_MB`, `AURA_SANDBOX_OUTPUT_KB`).
    pub limits: Limits,
    /// Candidates the learn cycle draws at most before refusing (`AURA_LEARN_SAMPLES`,
    /// default 10): each is checked by the guard and run in the sandbox.
    pub learn_samples: u32,
    /// The lead in score a candidate needs over every rival behaviour when the
    /// request gives no example of its own (`AURA_LEARN_AGREEMENT`, default 2). A
    /// score is one per sample that behaves exactly like it on every probe input,
    /// plus one per model-written example it satisfies that a sample outside it wrote
    /// (its own asserts do not vote for it): at 2, two alike samples win
    /// alone, and beside a rival sample it takes three.
    pub learn_agreement: u32,
    /// Wall-clock budget of one learn cycle's search (`AURA_LEARN_BUDGET_SECS`,
    /// default 90): no new sample is drawn after it.
    pub learn_budget: Duration,
    /// Seed of the first sample (`AURA_LEARN_SEED`; default random per cycle). Later
    /// samples use the following seeds, so a run can be repeated exactly.
    pub learn_seed: Option<u64>,
    /// Whether genesis installs the exemplar library in memory, where learn cycles
    /// find the exemplars most like a request (`AURA_EXEMPLARS`, default off: the
    /// embedded 135M model copies exemplars instead of learning from them, which
    /// measured worse on the everyday suite; see `docs/ARCHITECTURE.md`).
    pub exemplars: bool,
    /// Whether a learn cycle also proposes methods that call the standard-library
    /// functions whose documentation matches the request (`AURA_LEARN_LIBRARY`, default
    /// on): candidates independent of the model, checked like samples, that add votes
    /// only to a behaviour a sample shows too (see `docs/ARCHITECTURE.md`, "The learn
    /// cycle").
    pub learn_library: bool,
    /// Whether a winner chosen by the samples' votes alone must also survive the
    /// model's reading (`AURA_LEARN_READING`, default on; needs a model that scores
    /// replies): where the winner and the strongest rival part, the model weighs asserts
    /// stating each answer, and a winner whose answers it finds far less likely is not
    /// committed (see `docs/ARCHITECTURE.md`, "The learn cycle").
    pub learn_reading: bool,
    /// Which personas take part (`AURA_CASCADE_MODE`: `full` or `single`). `None`, the
    /// default, lets the model decide ([`Config::cascade_mode_for`]).
    pub cascade_mode: Option<aura_cognition::CascadeMode>,
    /// How often a call is re-run when its slot write loses a revision race
    /// (`AURA_CONFLICT_RETRIES`, default 3).
    pub conflict_retries: u32,
    /// In the full cascade, test ROBIN's draft against the object and stop there when it
    /// passes, skipping BABS and ALFRED (`AURA_EARLY_EXIT`, default on; `0`/`false` off).
    pub early_exit: bool,
    /// The forge loop (see [`crate::evolution`]).
    pub forge: ForgeSettings,
    /// Bounds on the runtime's caches and per-key maps.
    pub cache: CacheLimits,
    /// Which backends serve the personas.
    pub models: ModelSettings,
}

/// Which backends serve the personas, as settings name them (see
/// [`aura_cognition::backends`]): `local:PATH`, `ollama:MODEL` or `openai:URL#MODEL`,
/// or a comma-separated list of them, tried in order.
///
/// The values are checked when the runtime is built: a malformed one fails
/// [`crate::RuntimeBuilder::build`] with [`crate::Error::Invalid`] naming the setting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelSettings {
    /// Every persona without a setting of its own (`AURA_MODEL`; default: the embedded
    /// local model when its file is installed).
    pub default: Option<String>,
    /// One persona's backends (`AURA_MODEL_BRICK`, `_ROBIN`, `_BABS`, `_ALFRED`).
    pub personas: std::collections::BTreeMap<aura_cognition::Persona, String>,
    /// Calls one backend serves at once, shared by every persona it serves
    /// (`AURA_MODEL_CONCURRENCY`, default 4).
    pub concurrency: usize,
    /// How long a backend that is down or timed out is skipped in favour of the next
    /// one in its list (`AURA_MODEL_COOLDOWN_SECS`, default 30).
    pub cooldown: Duration,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            default: None,
            personas: Default::default(),
            concurrency: aura_cognition::backends::DEFAULT_CONCURRENCY,
            cooldown: aura_cognition::backends::DEFAULT_COOLDOWN,
        }
    }
}

impl ModelSettings {
    /// The setting that names `persona`'s backends: `AURA_MODEL_ROBIN`, …
    pub fn key(persona: aura_cognition::Persona) -> &'static str {
        use aura_cognition::Persona::*;
        match persona {
            Brick => "AURA_MODEL_BRICK",
            Robin => "AURA_MODEL_ROBIN",
            Babs => "AURA_MODEL_BABS",
            Alfred => "AURA_MODEL_ALFRED",
        }
    }

    /// Sets one value by its setting's name: `AURA_MODEL` or `AURA_MODEL_<PERSONA>`, or
    /// their short forms `default` and a persona's name (Python's `models={...}`). An
    /// unknown key is [`crate::Error::Invalid`]; the value is checked at build time.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> crate::Result<()> {
        let k = key.trim();
        let persona = aura_cognition::Persona::ALL
            .into_iter()
            .find(|p| k.eq_ignore_ascii_case(Self::key(*p)) || k.eq_ignore_ascii_case(p.name()));
        if k.eq_ignore_ascii_case("AURA_MODEL") || k.eq_ignore_ascii_case("default") {
            self.default = Some(value.into());
        } else if let Some(persona) = persona {
            self.personas.insert(persona, value.into());
        } else {
            return Err(crate::Error::Invalid(format!(
                "{key:?} is not a model setting: use AURA_MODEL (or \"default\") or \
                 AURA_MODEL_BRICK/_ROBIN/_BABS/_ALFRED (or a persona's name)"
            )));
        }
        Ok(())
    }

    /// The parsed settings.
    pub fn chains(&self) -> crate::Result<ModelChains> {
        let default = self
            .default
            .as_deref()
            .map(|v| aura_cognition::ModelChain::parse("AURA_MODEL", v))
            .transpose()
            .map_err(invalid)?;
        let personas = self
            .personas
            .iter()
            .map(|(p, v)| {
                aura_cognition::ModelChain::parse(Self::key(*p), v)
                    .map(|c| (*p, c))
                    .map_err(invalid)
            })
            .collect::<crate::Result<_>>()?;
        Ok(ModelChains { default, personas })
    }
}

/// [`ModelSettings`], parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChains {
    /// `AURA_MODEL`'s backends.
    pub default: Option<aura_cognition::ModelChain>,
    /// Each persona's own backends.
    pub personas: Vec<(aura_cognition::Persona, aura_cognition::ModelChain)>,
}

/// A model setting's error: a malformed value is the caller's invalid request (not the
/// model port's internal failure, as other cognition errors are).
pub(crate) fn invalid(e: aura_cognition::Error) -> crate::Error {
    match e {
        aura_cognition::Error::Invalid(m) => crate::Error::Invalid(m),
        other => other.into(),
    }
}

/// Bounds on what the runtime keeps in memory; each is evicted least recently used first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheLimits {
    /// Receivers whose resolved delegation chain is kept (`AURA_CACHE_VIEWS`, default
    /// 16,384). A view holds only references to method tables: about 1 KB each.
    pub views: usize,
    /// Objects whose own methods are kept as a shared table (`AURA_CACHE_TABLES`,
    /// default 4,096). A table costs about 450 bytes of resident memory plus its
    /// methods' text; a miss reads one object's own methods (one indexed query), while
    /// the tables every chain shares (`genesis`) stay cached as the most used. At 16,384
    /// the soak's memory still grew 13 % after its first minute while the bound filled;
    /// at 4,096 it fills within the first minute.
    pub tables: usize,
    /// Bytes of method source, tests and docs those tables may hold together
    /// (`AURA_CACHE_TABLE_MB`, default 128 MiB).
    pub table_bytes: usize,
    /// Per-selector learn locks kept before idle ones are dropped (`AURA_CACHE_LEARN_LOCKS`,
    /// default 1,024; a lock in use is never dropped).
    pub learn_locks: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            views: 16 << 10,
            tables: 4 << 10,
            table_bytes: 128 << 20,
            learn_locks: 1 << 10,
        }
    }
}

/// When and how the runtime forges a persona's facet.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ForgeSettings {
    /// Start a forge run when ALFRED's monitor reports stagnation
    /// (`AURA_FORGE_ON_STAGNATION`, default on; `0`/`false` off). It needs a forge.
    pub on_stagnation: bool,
    /// The persona a stagnation-triggered run trains (`AURA_FORGE_PERSONA`, default
    /// `robin`: with the early exit on, ROBIN's draft is what most cycles commit).
    pub persona: aura_cognition::Persona,
    /// Cycles in the stagnation window (`AURA_STAGNATION_WINDOW`, default 5).
    pub stagnation_window: usize,
    /// Stagnant when the window's mean CEM is below this (`AURA_STAGNATION_THRESHOLD`,
    /// default 0.35).
    pub stagnation_threshold: f64,
    /// Optimiser steps of a run nobody sized (`AURA_FORGE_STEPS`, default 50).
    pub steps: u32,
    /// The GGUF file a local facet trains on (`AURA_FORGE_BASE_MODEL`; default the
    /// embedded model, `AURA_MODEL_PATH`).
    pub base_model: Option<PathBuf>,
}

impl Default for ForgeSettings {
    fn default() -> Self {
        Self {
            on_stagnation: true,
            persona: aura_cognition::Persona::Robin,
            stagnation_window: 5,
            stagnation_threshold: 0.35,
            steps: 50,
            base_model: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let data_dir = PathBuf::from("data");
        Self {
            store_path: data_dir.join("aura.sqlite"),
            data_dir,
            root_object: "genesis".into(),
            sandbox_backend: SandboxBackend::Jail,
            limits: Limits::default(),
            conflict_retries: 3,
            learn_samples: 10,
            learn_agreement: 2,
            learn_budget: Duration::from_secs(90),
            learn_seed: None,
            exemplars: false,
            learn_library: true,
            learn_reading: true,
            cascade_mode: None,
            early_exit: true,
            forge: ForgeSettings::default(),
            cache: CacheLimits::default(),
            models: ModelSettings::default(),
        }
    }
}

impl Config {
    /// The cascade mode for `model`: the configured one, else ALFRED alone for the
    /// embedded local model and the whole cascade for any other. On the embedded
    /// SmolLM2-135M the full cascade learned 17 of the everyday suite's first 24
    /// requests (2 wrong) against single mode's 15 (1 wrong), at 9× the time: the
    /// extra personas do not earn their model calls there.
    pub fn cascade_mode_for(
        &self,
        model: &dyn aura_cognition::LanguageModel,
    ) -> aura_cognition::CascadeMode {
        self.cascade_mode
            .unwrap_or(if model.capabilities().backend == "local" {
                aura_cognition::CascadeMode::Single
            } else {
                aura_cognition::CascadeMode::Full
            })
    }

    /// The defaults, overridden by `.env` and then by the process environment.
    pub fn from_env() -> Self {
        // A missing .env is normal; a malformed one is reported but not fatal.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                tracing::warn!(target: "Orchestrator", "ignoring unreadable .env: {e}");
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The defaults, overridden by whatever `get` returns for each variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut c = Self::default();
        if let Some(dir) = get("AURA_DATA_DIR") {
            c.data_dir = PathBuf::from(dir);
            c.store_path = c.data_dir.join("aura.sqlite");
        }
        if let Some(p) = get("AURA_STORE_PATH") {
            c.store_path = PathBuf::from(p);
        }
        if let Some(r) = get("AURA_ROOT_OBJECT") {
            c.root_object = r;
        }
        match get("AURA_SANDBOX").as_deref().map(str::trim) {
            Some("docker") => c.sandbox_backend = SandboxBackend::Docker,
            Some("jail") | None => {}
            Some(other) => tracing::warn!(target: "Orchestrator",
                "AURA_SANDBOX={other:?} is not `jail` or `docker`; using the jail"),
        }
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(ms) = num("AURA_SANDBOX_WALL_MS") {
            c.limits.wall = Duration::from_millis(ms);
        }
        if let Some(ms) = num("AURA_SANDBOX_CPU_MS") {
            c.limits.cpu = Duration::from_millis(ms);
        }
        if let Some(mb) = num("AURA_SANDBOX_MEMORY_MB") {
            c.limits.memory_bytes = mb << 20;
        }
        if let Some(kb) = num("AURA_SANDBOX_OUTPUT_KB") {
            c.limits.output_bytes = kb << 10;
        }
        if let Some(n) = num("AURA_LEARN_SAMPLES") {
            c.learn_samples = n.clamp(1, 64) as u32;
        }
        if let Some(n) = num("AURA_LEARN_AGREEMENT") {
            c.learn_agreement = n.clamp(1, 64) as u32;
        }
        if let Some(s) = num("AURA_LEARN_BUDGET_SECS") {
            c.learn_budget = Duration::from_secs(s.max(1));
        }
        c.learn_seed = num("AURA_LEARN_SEED");
        if let Some(on) = switch(&get, "AURA_EXEMPLARS") {
            c.exemplars = on;
        }
        if let Some(on) = switch(&get, "AURA_LEARN_LIBRARY") {
            c.learn_library = on;
        }
        if let Some(on) = switch(&get, "AURA_LEARN_READING") {
            c.learn_reading = on;
        }
        match get("AURA_CASCADE_MODE").as_deref().map(str::trim) {
            Some("single") => c.cascade_mode = Some(aura_cognition::CascadeMode::Single),
            Some("full") => c.cascade_mode = Some(aura_cognition::CascadeMode::Full),
            Some("") | None => {}
            Some(other) => tracing::warn!(target: "Orchestrator",
                "AURA_CASCADE_MODE={other:?} is not `full` or `single`; the model decides"),
        }
        if let Some(n) = num("AURA_CONFLICT_RETRIES") {
            c.conflict_retries = n.min(100) as u32;
        }
        if let Some(on) = switch(&get, "AURA_EARLY_EXIT") {
            c.early_exit = on;
        }
        if let Some(on) = switch(&get, "AURA_FORGE_ON_STAGNATION") {
            c.forge.on_stagnation = on;
        }
        if let Some(name) = get("AURA_FORGE_PERSONA") {
            match name.parse() {
                Ok(p) => c.forge.persona = p,
                Err(e) => {
                    tracing::warn!(target: "Orchestrator", "AURA_FORGE_PERSONA: {e}; using ROBIN")
                }
            }
        }
        if let Some(n) = num("AURA_STAGNATION_WINDOW") {
            c.forge.stagnation_window = n.clamp(1, 1000) as usize;
        }
        if let Some(x) = get("AURA_STAGNATION_THRESHOLD").and_then(|v| v.trim().parse::<f64>().ok())
        {
            if x.is_finite() {
                c.forge.stagnation_threshold = x;
            }
        }
        if let Some(n) = num("AURA_FORGE_STEPS") {
            c.forge.steps = n.clamp(1, 100_000) as u32;
        }
        if let Some(p) = get("AURA_FORGE_BASE_MODEL").filter(|p| !p.trim().is_empty()) {
            c.forge.base_model = Some(PathBuf::from(p));
        }
        let count = |k: &str| num(k).map(|n| n.clamp(1, 1 << 24) as usize);
        if let Some(n) = count("AURA_CACHE_VIEWS") {
            c.cache.views = n;
        }
        if let Some(n) = count("AURA_CACHE_TABLES") {
            c.cache.tables = n;
        }
        if let Some(mb) = num("AURA_CACHE_TABLE_MB") {
            c.cache.table_bytes = (mb.clamp(1, 1 << 20) as usize) << 20;
        }
        if let Some(n) = count("AURA_CACHE_LEARN_LOCKS") {
            c.cache.learn_locks = n;
        }
        c.models.default = get("AURA_MODEL").filter(|v| !v.trim().is_empty());
        for persona in aura_cognition::Persona::ALL {
            if let Some(v) = get(ModelSettings::key(persona)).filter(|v| !v.trim().is_empty()) {
                c.models.personas.insert(persona, v);
            }
        }
        if let Some(n) = count("AURA_MODEL_CONCURRENCY") {
            c.models.concurrency = n.min(1024);
        }
        if let Some(s) = num("AURA_MODEL_COOLDOWN_SECS") {
            c.models.cooldown = Duration::from_secs(s.min(86_400));
        }
        c
    }
}

/// An on/off variable: `Some(true|false)`, or `None` (with a warning) when unset or unreadable.
fn switch(get: &impl Fn(&str) -> Option<String>, key: &str) -> Option<bool> {
    match get(key)?.trim() {
        "0" | "false" | "off" | "no" => Some(false),
        "1" | "true" | "on" | "yes" => Some(true),
        other => {
            tracing::warn!(target: "Orchestrator", "{key}={other:?} is not on/off; keeping the default");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let c = Config::from_lookup(|k| match k {
            "AURA_DATA_DIR" => Some("/tmp/x".into()),
            "AURA_SANDBOX_WALL_MS" => Some("250".into()),
            "AURA_SANDBOX_MEMORY_MB" => Some("not a number".into()),
            "AURA_EARLY_EXIT" => Some("off".into()),
            "AURA_FORGE_PERSONA" => Some("Babs".into()),
            "AURA_STAGNATION_WINDOW" => Some("3".into()),
            "AURA_FORGE_ON_STAGNATION" => Some("maybe".into()),
            "AURA_CACHE_VIEWS" => Some("0".into()),
            "AURA_CACHE_TABLE_MB" => Some("16".into()),
            _ => None,
        });
        assert!(!c.early_exit);
        assert_eq!(c.forge.persona, aura_cognition::Persona::Babs);
        assert_eq!(c.forge.stagnation_window, 3);
        assert!(
            c.forge.on_stagnation,
            "an unreadable switch keeps its default"
        );
        assert_eq!(c.store_path, PathBuf::from("/tmp/x/aura.sqlite"));
        assert_eq!(c.limits.wall, Duration::from_millis(250));
        assert_eq!(c.limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(c.cache.views, 1, "zero would cache nothing");
        assert_eq!(c.cache.table_bytes, 16 << 20);
        assert_eq!(c.cache.tables, CacheLimits::default().tables);
    }

    #[test]
    fn model_settings_from_the_environment_and_by_name() {
        use aura_cognition::Persona;
        let c = Config::from_lookup(|k| match k {
            "AURA_MODEL" => Some("ollama:llama3,local:m.gguf".into()),
            "AURA_MODEL_ROBIN" => Some("openai:http://127.0.0.1:8080/v1#qwen".into()),
            "AURA_MODEL_BABS" => Some("  ".into()),
            "AURA_MODEL_CONCURRENCY" => Some("0".into()),
            "AURA_MODEL_COOLDOWN_SECS" => Some("5".into()),
            _ => None,
        });
        assert_eq!(
            c.models.default.as_deref(),
            Some("ollama:llama3,local:m.gguf")
        );
        assert_eq!(c.models.personas.len(), 1, "a blank value is no setting");
        assert_eq!(c.models.concurrency, 1, "zero would serve nothing");
        assert_eq!(c.models.cooldown, Duration::from_secs(5));
        let chains = c.models.chains().unwrap();
        assert_eq!(chains.default.unwrap().specs.len(), 2);
        assert_eq!(chains.personas[0].0, Persona::Robin);
        assert_eq!(chains.personas[0].1.setting, "AURA_MODEL_ROBIN");

        let mut m = ModelSettings::default();
        for key in ["AURA_MODEL_ALFRED", "alfred", "ALFRED", "aura_model_alfred"] {
            m.set(key, "ollama:x").unwrap();
        }
        m.set("default", "ollama:y").unwrap();
        assert_eq!(m.personas.len(), 1);
        assert_eq!(m.default.as_deref(), Some("ollama:y"));
        let e = m.set("AURA_MODEL_PATH", "x").unwrap_err().to_string();
        assert!(
            e.contains("AURA_MODEL_PATH") && e.contains("not a model setting"),
            "{e}"
        );
        m.set("robin", "gpt-4").unwrap();
        let e = m.chains().unwrap_err().to_string();
        assert!(
            e.contains("AURA_MODEL_ROBIN") && e.contains("names no backend"),
            "{e}"
        );
    }
}
