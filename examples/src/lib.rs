//! Shared helpers of AURA's example frontends: logging and opening the configured store.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aura_gateway::Monologue;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The default filter: AURA's components at info (the personas at debug, so the learn
/// cycle's monologue reads in full), everything else at warn.
pub const DEFAULT_FILTER: &str =
    "warn,Gateway=info,Orchestrator=info,Cascade=info,Cascade.BRICK=debug,\
     Cascade.ROBIN=debug,Cascade.BABS=debug,Cascade.ALFRED=debug,PersistenceGuardian=info,\
     Sandbox=info,Store=info,ContextIngestor=info,Forge=info,LocalModel=info";

/// The JSON log file's name inside the log directory.
pub const LOG_FILE: &str = "aura_core.log";

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Human-readable logs to stderr, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]).
pub fn init_tracing() {
    // A second initialisation (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The trace exporter [`init_server_logging`] started, if any: keep it until the process
/// ends, since dropping it sends the spans still queued.
#[derive(Debug, Default)]
pub struct Traces {
    #[cfg(feature = "otel")]
    telemetry: Option<aura_gateway::telemetry::Telemetry>,
}

impl Traces {
    /// Where spans are sent (the OTLP traces URL), if anywhere.
    pub fn endpoint(&self) -> Option<&str> {
        #[cfg(feature = "otel")]
        {
            self.telemetry
                .as_ref()
                .map(|t| t.config().traces_endpoint.as_str())
        }
        #[cfg(not(feature = "otel"))]
        {
            None
        }
    }
}

/// The server's logging: human-readable lines to stderr, JSON lines appended to
/// `<log_dir>/aura_core.log` (each with its component as `target`: `Gateway`,
/// `Orchestrator`, `Cascade.BRICK`, …), the monologue for `GET /v1/events`, and, in a
/// build with the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the requests'
/// and learn cycles' spans over OTLP (README, "Traces (OpenTelemetry)").
///
/// Both sinks use `RUST_LOG` (default [`DEFAULT_FILTER`]); the monologue carries every
/// component event at debug and above, whatever the filter. The spans (target `aura`)
/// are the exporter's alone: the default filter leaves them out of the log lines.
pub fn init_server_logging(log_dir: &Path) -> std::io::Result<(Monologue, PathBuf, Traces)> {
    std::fs::create_dir_all(log_dir)?;
    let path = log_dir.join(LOG_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let monologue = Monologue::default();
    let stderr = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_target(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(Mutex::new(file))
        .with_filter(filter());
    // Events only: the monologue reads no spans, so it does not enable them either (with
    // the exporter off, no layer wants the learn cycle's spans and they cost nothing).
    let live = monologue.layer().with_filter(
        tracing_subscriber::filter::filter_fn(|m| {
            m.is_event() && *m.level() <= tracing::Level::DEBUG
        })
        .with_max_level_hint(tracing::Level::DEBUG),
    );
    #[cfg(feature = "otel")]
    let traces = Traces {
        telemetry: aura_gateway::telemetry::Telemetry::from_env()
            .map_err(|e| std::io::Error::other(format!("traces: {e}")))?,
    };
    #[cfg(feature = "otel")]
    let otel = traces.telemetry.as_ref().map(|t| t.layer());
    #[cfg(not(feature = "otel"))]
    let (traces, otel) = (
        Traces::default(),
        None::<tracing_subscriber::layer::Identity>,
    );
    tracing_subscriber::registry()
        .with(stderr)
        .with(json)
        .with(live)
        .with(otel)
        .try_init()
        .map_err(std::io::Error::other)?;
    if let Some(endpoint) = traces.endpoint() {
        tracing::info!(target: "Gateway", endpoint, "exporting traces over OTLP");
    }
    Ok((monologue, path, traces))
}

/// The JSON log's directory: `flag` when given, else `AURA_LOG_DIR`, else `logs`.
pub fn log_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("AURA_LOG_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("logs"))
}

/// Which store backend `AURA_STORE` names (`sqlite`, the default, or `arangodb`).
pub fn store_backend() -> String {
    std::env::var("AURA_STORE")
        .map(|s| s.trim().to_ascii_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sqlite".into())
}

/// The store `AURA_STORE` asks for: `None` for SQLite (the runtime opens it itself at
/// `AURA_STORE_PATH`), an ArangoDB store when this build has the `arangodb` feature.
pub async fn configured_store() -> Result<Option<aura_store::DynStore>, String> {
    match store_backend().as_str() {
        "sqlite" => Ok(None),
        #[cfg(feature = "arangodb")]
        "arangodb" => {
            let store = aura_store::ArangoStoreBuilder::from_env()
                .build()
                .await
                .map_err(|e| format!("ArangoDB: {e}"))?;
            Ok(Some(std::sync::Arc::new(store)))
        }
        #[cfg(not(feature = "arangodb"))]
        "arangodb" => Err(
            "AURA_STORE=arangodb needs a build with the `arangodb` feature \
             (cargo run -p aura-examples --features arangodb …)"
                .into(),
        ),
        other => Err(format!(
            "AURA_STORE={other:?} is not `sqlite` or `arangodb`"
        )),
    }
}

/// The model flags the runtime-owning binaries share: they set the same settings as
/// `AURA_MODEL` and `AURA_MODEL_<PERSONA>`, and win over them.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ModelArgs {
    /// The backend of every persona without one of its own [env: AURA_MODEL]:
    /// local:PATH, ollama:MODEL or openai:URL#MODEL; a comma-separated list falls back
    /// in order when one is down.
    #[arg(long, value_name = "SPEC")]
    pub model: Option<String>,
    /// One persona's backend, as PERSONA=SPEC (brick, robin, babs or alfred); repeatable
    /// [env: AURA_MODEL_<PERSONA>].
    #[arg(long = "persona-model", value_name = "PERSONA=SPEC")]
    pub persona_models: Vec<String>,
}

impl ModelArgs {
    /// The flags as (setting, value) pairs; a flag without `=` is an error.
    pub fn settings(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = self
            .model
            .iter()
            .map(|m| ("AURA_MODEL".to_string(), m.clone()))
            .collect();
        for pm in &self.persona_models {
            let (persona, spec) = pm.split_once('=').ok_or_else(|| {
                format!("--persona-model {pm:?}: write PERSONA=SPEC, e.g. robin=ollama:llama3")
            })?;
            out.push((persona.trim().to_string(), spec.trim().to_string()));
        }
        Ok(out)
    }

    /// Writes the flags into `config`'s model settings.
    pub fn apply(&self, config: &mut aura_core::Config) -> Result<(), String> {
        for (key, value) in self.settings()? {
            config
                .models
                .set(&key, value)
                .map_err(|e| format!("--persona-model: {e}"))?;
        }
        Ok(())
    }
}

/// Opens the runtime on the configured store and models (the flags' over the
/// environment's), the embedded defaults otherwise.
pub async fn open_runtime(models: &ModelArgs) -> Result<aura_core::Runtime, String> {
    let mut builder = aura_core::Runtime::builder();
    if let Some(store) = configured_store().await? {
        builder = builder.store(store);
    }
    for (key, value) in models.settings()? {
        builder = builder.model_setting(key, value);
    }
    builder.build().await.map_err(|e| e.to_string())
}
