//! Traces over OTLP: one learn cycle, taught by a message through the router, exported
//! by `aura_gateway::telemetry` to an OTLP/HTTP receiver inside the test, and its span
//! tree checked: names, parent links and attributes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aura_cognition::{
    CascadeMode, ChatRequest, ChatResponse, LanguageModel, ModelCapabilities, ModelInfo,
    ScriptedModel,
};
use aura_core::{Config, Runtime};
use aura_gateway::telemetry::{Telemetry, TelemetryConfig};
use aura_gateway::GatewayConfig;
use aura_store::SqliteStore;
use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// What the receiver got: each span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on 127.0.0.1:0, on a thread and
/// runtime of its own: a flush blocks the caller's thread until the receiver answers.
fn receiver() -> (String, Received) {
    let received = Received::default();
    let spans = received.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let export = move |body: Bytes| {
                let spans = spans.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).unwrap();
                    let mut spans = spans.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .as_ref()
                            .and_then(|r| attr(&r.attributes, "service.name"))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                spans.push((service.clone(), span));
                            }
                        }
                    }
                    // An empty ExportTraceServiceResponse: full success.
                    (
                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            };
            let app = axum::Router::new().route("/v1/traces", axum::routing::post(export));
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), received)
}

/// An attribute's value as text (strings as they are, numbers and booleans printed).
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// The blueprint's scripted model, reporting token counts as a real backend does.
#[derive(Debug)]
struct CountingModel(ScriptedModel);

#[async_trait]
impl LanguageModel for CountingModel {
    fn capabilities(&self) -> ModelCapabilities {
        self.0.capabilities()
    }
    fn describe(&self) -> String {
        "openai:http://127.0.0.1:9/v1#tiny-coder".into()
    }
    async fn info(&self) -> aura_cognition::Result<ModelInfo> {
        self.0.info().await
    }
    async fn chat(&self, request: ChatRequest) -> aura_cognition::Result<ChatResponse> {
        let mut reply = self.0.chat(request).await?;
        reply.usage.prompt_tokens = 120;
        reply.usage.completion_tokens = 34;
        Ok(reply)
    }
}

async fn runtime(dir: &std::path::Path) -> Runtime {
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    config.data_dir = dir.to_path_buf();
    config.forge.on_stagnation = false;
    let feed = dir.join("local.rss");
    std::fs::write(
        &feed,
        "<rss version=\"2.0\"><channel><title>t</title></channel></rss>",
    )
    .unwrap();
    Runtime::builder()
        .config(config)
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .sandbox(Arc::new(
            aura_sandbox::JailSandbox::builder().build().unwrap(),
        ))
        .forge(Arc::new(aura_forge::FakeForge))
        .model(Arc::new(CountingModel(ScriptedModel::blueprint())))
        .context(Arc::new(aura_cognition::offline_context("Lisbon", &feed)))
        .build()
        .await
        .unwrap()
}

async fn post(router: &axum::Router, path: &str, body: serde_json::Value) -> StatusCode {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

// A current-thread runtime: the subscriber is this thread's default, and the tasks the
// gateway spawns run on this thread too.
#[tokio::test(flavor = "current_thread")]
async fn a_learn_cycle_is_one_trace_under_its_request() {
    let (endpoint, received) = receiver();
    let telemetry = Telemetry::start(TelemetryConfig::new(format!("{endpoint}/v1/traces")))
        .expect("an exporter");
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let _default = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let router = aura_gateway::router(runtime(dir.path()).await, GatewayConfig::default());
    assert_eq!(
        post(&router, "/v1/objects", json!({ "name": "tutor" })).await,
        StatusCode::CREATED
    );
    let taught = json!({ "text": "teach yourself to calculate the fibonacci sequence" });
    assert_eq!(
        post(&router, "/v1/objects/tutor/messages", taught).await,
        StatusCode::OK
    );
    telemetry
        .force_flush()
        .expect("the receiver took the spans");

    let received = received.lock().unwrap().clone();
    assert!(
        received.iter().all(|(service, _)| service == "aura"),
        "service.name"
    );
    let spans: Vec<&Span> = received.iter().map(|(_, s)| s).collect();
    let route = "/v1/objects/{object}/messages";
    let root = spans
        .iter()
        .find(|s| attr(&s.attributes, "http.route").as_deref() == Some(route))
        .unwrap_or_else(|| panic!("no span for the message's request in {:#?}", names(&spans)));
    // The request's span is the root of its trace, named by its route.
    assert!(root.parent_span_id.is_empty(), "the request span is a root");
    assert_eq!(root.name, format!("POST {route}"));
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(
        attr(&root.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attr(&root.attributes, "url.path").as_deref(),
        Some("/v1/objects/tutor/messages")
    );
    assert_eq!(
        attr(&root.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );

    let trace: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| s.trace_id == root.trace_id)
        .collect();
    let named =
        |name: &str| -> Vec<&Span> { trace.iter().copied().filter(|s| s.name == name).collect() };
    let one = |name: &str| -> &Span {
        let found = named(name);
        assert_eq!(found.len(), 1, "one {name} in {:#?}", names(&trace));
        found[0]
    };
    let child_of = |span: &Span, parent: &Span| {
        assert_eq!(
            span.parent_span_id, parent.span_id,
            "{} is a child of {}",
            span.name, parent.name
        );
    };

    let plan = one("aura.plan");
    child_of(plan, root);
    assert_eq!(
        attr(&plan.attributes, "aura.plan.kind").as_deref(),
        Some("learn")
    );

    let learn = one("aura.learn");
    child_of(learn, root);
    assert_eq!(
        attr(&learn.attributes, "aura.selector").as_deref(),
        Some("fibonacci")
    );
    assert_eq!(
        attr(&learn.attributes, "aura.object.name").as_deref(),
        Some("tutor")
    );
    assert_eq!(
        attr(&learn.attributes, "aura.learn.outcome").as_deref(),
        Some("committed")
    );
    assert_eq!(
        attr(&learn.attributes, "aura.learn.samples").as_deref(),
        Some("1")
    );

    let sample = one("aura.sample");
    child_of(sample, learn);
    assert_eq!(
        attr(&sample.attributes, "aura.sample").as_deref(),
        Some("1")
    );
    assert!(attr(&sample.attributes, "aura.sampling.seed").is_some());

    // The cascade's one step (single mode: ALFRED), with the GenAI attributes.
    let persona = one("aura.persona");
    child_of(persona, sample);
    assert_eq!(persona.kind, SpanKind::Client as i32);
    let a = |key: &str| attr(&persona.attributes, key);
    assert_eq!(a("aura.persona").as_deref(), Some("ALFRED"));
    assert_eq!(a("gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(a("gen_ai.provider.name").as_deref(), Some("scripted"));
    assert_eq!(a("gen_ai.request.model").as_deref(), Some("tiny-coder"));
    assert_eq!(a("gen_ai.response.model").as_deref(), Some("scripted"));
    assert_eq!(a("gen_ai.usage.input_tokens").as_deref(), Some("120"));
    assert_eq!(a("gen_ai.usage.output_tokens").as_deref(), Some("34"));
    assert!(a("gen_ai.request.temperature").is_some());
    assert!(a("aura.model_us").is_some(), "the model call's latency");

    let guard = one("aura.guard");
    child_of(guard, sample);
    assert_eq!(
        attr(&guard.attributes, "aura.guard.verdict").as_deref(),
        Some("accepted")
    );

    // The candidate's probe run and the winner's tests, each a sandbox request.
    let sandbox = named("aura.sandbox");
    assert!(!sandbox.is_empty(), "sandbox runs in {:#?}", names(&trace));
    for run in &sandbox {
        child_of(run, sample);
    }
    let purposes: Vec<String> = sandbox
        .iter()
        .filter_map(|s| attr(&s.attributes, "aura.sandbox.purpose"))
        .collect();
    assert!(purposes.iter().any(|p| p == "tests"), "{purposes:?}");

    let commit = one("aura.commit");
    child_of(commit, learn);
    assert_eq!(
        attr(&commit.attributes, "aura.method.version").as_deref(),
        Some("1")
    );

    // Every span of the trace hangs from the request's.
    let ids: HashMap<&[u8], &Span> = trace.iter().map(|s| (s.span_id.as_slice(), *s)).collect();
    for span in &trace {
        let mut at = *span;
        while !at.parent_span_id.is_empty() {
            at = ids
                .get(at.parent_span_id.as_slice())
                .unwrap_or_else(|| panic!("{}'s parent is not in the trace", at.name));
        }
        assert_eq!(
            at.span_id, root.span_id,
            "{} hangs from the request",
            span.name
        );
    }
}

fn names(spans: &[&Span]) -> Vec<String> {
    spans.iter().map(|s| s.name.clone()).collect()
}
