//! Traces over OTLP (feature `otel`): the gateway's requests and the learn cycles they
//! cause, exported to any OpenTelemetry backend (Jaeger, Tempo, an OTel collector, …).
//!
//! The libraries below only open `tracing` spans, all with the target [`SPAN_TARGET`]
//! (`aura`): `http.request` here, `aura.learn`, `aura.plan`, `aura.sample`,
//! `aura.persona`, `aura.guard`, `aura.sandbox` and `aura.commit` in aura-core and
//! aura-cognition (README, "Traces (OpenTelemetry)", lists their attributes). This
//! module turns them into OpenTelemetry spans: [`Telemetry::from_env`] starts an OTLP
//! exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and [`Telemetry::layer`] is the
//! `tracing_subscriber` layer to add to the host's subscriber. Without the variable
//! nothing is started, and a span no layer wants costs a callsite check.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//! let telemetry = aura_gateway::telemetry::Telemetry::from_env()?;
//! tracing_subscriber::registry()
//!     .with(telemetry.as_ref().map(|t| t.layer()))
//!     .init();
//! // … serve; dropping `telemetry` at exit sends the spans still queued.
//! # Ok::<(), aura_core::Error>(())
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use aura_core::{Error, Result};

/// The target of every span AURA opens; the layer exports spans of this target only.
pub const SPAN_TARGET: &str = "aura";
/// The OTLP base URL (`http://localhost:4318`); traces go to its `/v1/traces`. Unset:
/// no export.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The full traces URL, used as it is; wins over [`ENDPOINT_VAR`].
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `http/protobuf` (the default) or `http/json`.
pub const PROTOCOL_VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The `service.name` of the exported spans (default [`DEFAULT_SERVICE_NAME`]).
pub const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
/// The service name when [`SERVICE_NAME_VAR`] is unset.
pub const DEFAULT_SERVICE_NAME: &str = "aura";
/// How long one export may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how traces are sent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// The traces URL (`…/v1/traces`).
    pub traces_endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub protocol: Protocol,
    /// The exported `service.name`.
    pub service_name: String,
}

impl TelemetryConfig {
    /// Export to `traces_endpoint` (the full URL) as protobuf, as service `aura`.
    pub fn new(traces_endpoint: impl Into<String>) -> Self {
        Self {
            traces_endpoint: traces_endpoint.into(),
            protocol: Protocol::HttpBinary,
            service_name: DEFAULT_SERVICE_NAME.into(),
        }
    }

    /// Sends as `protocol`.
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The settings in `.env` and the process environment (which wins); `None` when no
    /// endpoint is set.
    pub fn from_env() -> Result<Option<Self>> {
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                tracing::warn!(target: "Gateway", "ignoring unreadable .env: {e}");
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The settings `get` returns; `None` when no endpoint is set. An unknown protocol
    /// (gRPC included: this build sends over HTTP only) is an error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        // The names are spelled out where they are read, for examples/tests/env_template.rs.
        let set = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let traces = set(get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        let base = set(get("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let traces_endpoint = match (traces, base) {
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let protocol = match set(get("OTEL_EXPORTER_OTLP_PROTOCOL")).as_deref() {
            None | Some("http/protobuf") => Protocol::HttpBinary,
            Some("http/json") => Protocol::HttpJson,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "{PROTOCOL_VAR}={other:?}: this build sends traces as `http/protobuf` \
                     (the default) or `http/json`"
                )))
            }
        };
        Ok(Some(Self {
            traces_endpoint,
            protocol,
            service_name: set(get("OTEL_SERVICE_NAME"))
                .unwrap_or_else(|| DEFAULT_SERVICE_NAME.into()),
        }))
    }
}

/// A running OTLP exporter: spans are queued and sent in batches from a thread of its
/// own. Dropping it sends what is queued and stops the exporter.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    config: TelemetryConfig,
}

impl Telemetry {
    /// Starts the exporter the environment (and `.env`) configures; `None`, starting
    /// nothing, when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.
    pub fn from_env() -> Result<Option<Self>> {
        TelemetryConfig::from_env()?.map(Self::start).transpose()
    }

    /// Starts an exporter to `config`'s endpoint. Nothing is sent until spans end.
    pub fn start(config: TelemetryConfig) -> Result<Self> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(BlockingClient::default())
            .with_endpoint(config.traces_endpoint.clone())
            .with_protocol(config.protocol)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| Error::Invalid(format!("the OTLP exporter: {e}")))?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Self { provider, config })
    }

    /// Where the spans go.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// The layer that exports AURA's spans (target [`SPAN_TARGET`]), with the component
    /// events at info and above inside them as span events.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + Send + Sync + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("aura"))
            // The span's own duration is its latency; busy/idle times and thread and
            // source attributes would cost every poll and add nothing a reader needs.
            // Nothing here reads OpenTelemetry's current context, so spans are not
            // activated on every poll either; a span's name (`otel.name`, the request's
            // route once the router matched it) can then change until it ends.
            .with_context_activation(false)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_filter(FilterFn::new(|meta| {
                if meta.is_span() {
                    meta.target() == SPAN_TARGET
                } else {
                    *meta.level() <= tracing::Level::INFO
                        && crate::monologue::is_component(meta.target())
                }
            }))
    }

    /// Sends every finished span now, waiting for the backend's answer.
    pub fn force_flush(&self) -> Result<()> {
        self.provider.force_flush().map_err(|e| Error::Unavailable {
            port: "telemetry",
            message: format!("cannot send traces to {}: {e}", self.config.traces_endpoint),
        })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(target: "Gateway", endpoint = %self.config.traces_endpoint,
                "traces not all sent at exit: {e}");
        }
    }
}

/// The exporter's HTTP client: the workspace's reqwest, blocking, since the batch
/// processor exports from its own thread (no async runtime there). Built on first use,
/// on that thread: a blocking client may not be built inside an async runtime.
#[derive(Debug, Default)]
struct BlockingClient {
    client: OnceLock<reqwest::blocking::Client>,
}

#[async_trait]
impl HttpClient for BlockingClient {
    async fn send_bytes(
        &self,
        request: Request<Bytes>,
    ) -> std::result::Result<Response<Bytes>, HttpError> {
        let client = match self.client.get() {
            Some(c) => c,
            None => {
                let built = reqwest::blocking::Client::builder()
                    .timeout(EXPORT_TIMEOUT)
                    .build()?;
                self.client.get_or_init(|| built)
            }
        };
        let (parts, body) = request.into_parts();
        let response = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut reply = Response::builder().status(status).body(response.bytes()?)?;
        *reply.headers_mut() = headers;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_variable_turns_export_on() {
        let none = TelemetryConfig::from_lookup(|_| None);
        assert!(matches!(none, Ok(None)));
        let blank = TelemetryConfig::from_lookup(|k| (k == ENDPOINT_VAR).then(|| " ".into()));
        assert!(matches!(blank, Ok(None)), "a blank endpoint is none");
        let base = TelemetryConfig::from_lookup(|k| match k {
            ENDPOINT_VAR => Some("http://localhost:4318/".into()),
            SERVICE_NAME_VAR => Some("aura-test".into()),
            _ => None,
        });
        let Ok(Some(base)) = base else {
            panic!("{base:?}")
        };
        assert_eq!(base.traces_endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(base.protocol, Protocol::HttpBinary);
        assert_eq!(base.service_name, "aura-test");
        let json = TelemetryConfig::from_lookup(|k| match k {
            ENDPOINT_VAR => Some("http://a:4318".into()),
            TRACES_ENDPOINT_VAR => Some("http://b:4318/traces".into()),
            PROTOCOL_VAR => Some("http/json".into()),
            _ => None,
        });
        let Ok(Some(json)) = json else {
            panic!("{json:?}")
        };
        assert_eq!(json.traces_endpoint, "http://b:4318/traces");
        assert_eq!(json.protocol, Protocol::HttpJson);
        assert_eq!(json.service_name, DEFAULT_SERVICE_NAME);
        let grpc = TelemetryConfig::from_lookup(|k| match k {
            ENDPOINT_VAR => Some("http://a:4317".into()),
            PROTOCOL_VAR => Some("grpc".into()),
            _ => None,
        });
        assert!(matches!(grpc, Err(Error::Invalid(_))), "{grpc:?}");
    }
}
