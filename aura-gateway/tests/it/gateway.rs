//! The API gateway end to end over real HTTP: the server runs in the test on
//! 127.0.0.1:0 over the real SQLite store (in memory), the real jail and a scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aura_cognition::{
    CascadeMode, ChatRequest, ChatResponse, LanguageModel, ModelCapabilities, ModelInfo,
    ScriptedModel,
};
use aura_core::forge::EventKind;
use aura_core::{Config, Runtime};
use aura_gateway::{
    operations, required_scope, Gateway, GatewayConfig, Monologue, MonologueEvent, Scope,
};
use aura_store::SqliteStore;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};

pub(crate) const TOKEN: &str = "s3cret-token-for-tests";
const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local Gazette</title><link>http://localhost/</link>
<description>news</description>
<item><title>Harbour bridge reopens after repairs</title><link>http://localhost/1</link></item>
</channel></rss>"#;

/// One monologue for the whole test binary: tracing's global subscriber is set once.
fn monologue() -> Monologue {
    static MONOLOGUE: OnceLock<Monologue> = OnceLock::new();
    MONOLOGUE
        .get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            let m = Monologue::new(4096);
            let subscriber = tracing_subscriber::registry().with(m.layer());
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            m
        })
        .clone()
}

/// The tests share the process-wide monologue, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A model that, once armed, holds every chat until the test releases it: a learn
/// cycle that takes as long as the test wants, without sleeping.
#[derive(Debug)]
struct GatedModel {
    inner: ScriptedModel,
    armed: std::sync::atomic::AtomicBool,
    entered: Notify,
    release: Semaphore,
}

#[async_trait]
impl LanguageModel for GatedModel {
    fn capabilities(&self) -> ModelCapabilities {
        self.inner.capabilities()
    }
    async fn info(&self) -> aura_cognition::Result<ModelInfo> {
        self.inner.info().await
    }
    async fn chat(&self, request: ChatRequest) -> aura_cognition::Result<ChatResponse> {
        if self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.acquire().await.expect("open").forget();
        }
        self.inner.chat(request).await
    }
}

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    model: Arc<GatedModel>,
    _dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(TOKEN)
    }
    pub(crate) fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
    }
    pub(crate) async fn tell(&self, object: &str, text: &str) -> Value {
        let r = self
            .post(
                &format!("/v1/objects/{object}/messages"),
                json!({ "text": text }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{text}");
        r.json::<Value>().await.unwrap()["reply"].clone()
    }
}

pub(crate) async fn server_with(config: GatewayConfig) -> Server {
    let serial = SERIAL.lock().await;
    let monologue = monologue();
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("local.rss");
    std::fs::write(&feed, FEED).unwrap();
    let context = aura_cognition::offline_context("Lisbon", &feed);
    let model = Arc::new(GatedModel {
        inner: ScriptedModel::blueprint(),
        armed: false.into(),
        entered: Notify::new(),
        release: Semaphore::new(0),
    });
    let mut rt_config = Config::default();
    rt_config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    rt_config.learn_agreement = 1;
    rt_config.data_dir = dir.path().to_path_buf();
    rt_config.forge.base_model = Some(dir.path().join("base.gguf"));
    rt_config.forge.on_stagnation = false;
    let runtime = Runtime::builder()
        .config(rt_config)
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .sandbox(Arc::new(
            aura_sandbox::JailSandbox::builder().build().unwrap(),
        ))
        .forge(Arc::new(aura_forge::FakeForge))
        .model(model.clone())
        .context(Arc::new(context))
        .build()
        .await
        .unwrap();
    let gateway = Gateway::bind(
        runtime,
        config
            .addr("127.0.0.1:0".parse().unwrap())
            .monologue(monologue),
    )
    .await
    .unwrap();
    let base = format!("http://{}", gateway.local_addr());
    tokio::spawn(gateway.serve());
    Server {
        base,
        http: reqwest::Client::new(),
        model,
        _dir: dir,
        _serial: serial,
    }
}

pub(crate) async fn server() -> Server {
    server_with(GatewayConfig::default().token(TOKEN)).await
}

/// `GET /v1/health`, which needs no token.
async fn health(s: &Server) -> Value {
    s.http
        .get(s.url("/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn create(s: &Server, name: &str) -> Value {
    let r = s
        .post("/v1/objects", json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// Asserts the stable error shape and returns the code.
async fn error_code(r: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_blueprint_scenarios_over_http() {
    let s = server().await;
    create(&s, "aura").await;

    // 1. Teach, then use.
    let taught = s
        .tell("aura", "teach yourself to calculate the fibonacci sequence")
        .await;
    assert_eq!(taught["plan"]["kind"], "learn", "{taught}");
    assert_eq!(taught["refused"], false, "{taught}");
    let used = s.tell("aura", "calculate fibonacci for 10").await;
    assert_eq!(used["value"], 55, "{used}");
    // The same method, called by selector with JSON arguments.
    let called: Value = s
        .post(
            "/v1/objects/aura/messages",
            json!({ "selector": "fibonacci", "args": [12] }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(called["value"], 144, "{called}");

    // 2. Reflect on the conversation, from retrieved memory nodes.
    let summary = s
        .tell(
            "aura",
            "summarize our previous conversation about the fibonacci sequence",
        )
        .await;
    assert_eq!(summary["plan"]["kind"], "reflect");
    let evidence = summary["evidence"].as_array().unwrap();
    assert!(!evidence.is_empty());
    assert!(evidence.iter().all(|n| n["text"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("fibonacci")));

    // 3. News near me, from the injected context.
    let news = s
        .tell("aura", "what is the top news story near me right now?")
        .await;
    let text = news["text"].as_str().unwrap();
    assert!(
        text.contains("Harbour bridge reopens") && text.contains("Lisbon"),
        "{text}"
    );

    // 4. A hostile request is refused with the guard's rule id; nothing is learned.
    let refused = s
        .tell(
            "aura",
            "teach yourself to list the files in the current directory using the os module",
        )
        .await;
    assert_eq!(refused["refused"], true, "{refused}");
    assert!(
        refused["text"].as_str().unwrap().contains("import"),
        "{refused}"
    );
    let object: Value = s
        .get("/v1/objects/aura")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(object["methods"]["own"], 1, "{object}");
    assert_eq!(object["methods"]["responds_to"], 1, "{object}");
    let selectors: Value = s
        .get("/v1/objects/aura/selectors")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = selectors["selectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["selector"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fibonacci"]);
    assert_eq!(selectors["selectors"][0]["defined_on"], "aura");

    // The trail remembers the refusal; memory remembers the conversation.
    let trail: Value = s
        .get("/v1/audit?kind=learn.*&object=aura&limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&EventKind::LearnRefused.as_str()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&EventKind::LearnCommitted.as_str()),
        "{kinds:?}"
    );
    let memory: Value = s
        .get("/v1/memory?q=fibonacci")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!memory["hits"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_everywhere_but_health() {
    // Two refusals per route from one address: above the default failure limit.
    let s = server_with(
        GatewayConfig::default()
            .token(TOKEN)
            .auth_failures_per_minute(1000),
    )
    .await;
    let health = s.http.get(s.url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["forge"]["backend"], "fake", "{health}");
    assert_eq!(
        health["forge"]["stagnation"]["state"], "warming",
        "{health}"
    );
    for check in ["store", "sandbox"] {
        assert_eq!(health["checks"][check]["status"], "ok", "{health}");
        assert!(health["checks"][check]["latency_ms"].is_number());
    }
    // The jail names its interpreter, its version and why it was chosen.
    let sandbox = health["checks"]["sandbox"]["detail"].as_str().unwrap_or("");
    assert!(sandbox.starts_with("jail: Python 3."), "{health}");
    assert_eq!(
        health["checks"]["models"]["ROBIN"]["status"], "ok",
        "{health}"
    );

    for (method, path) in operations().iter().filter(|(_, p)| p != "/v1/health") {
        let path = path
            .replace("{object}", "aura")
            .replace("{selector}", "fibonacci");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let missing = s
            .http
            .request(m.clone(), s.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(missing, StatusCode::UNAUTHORIZED).await,
            "unauthorized",
            "{method} {path}"
        );
        let wrong = s
            .http
            .request(m, s.url(&path))
            .bearer_auth("s3cret-token-for-tesTS")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let ok = s.get("/v1/objects").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let doc: Value = s
        .get("/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_faults_are_4xx_with_the_stable_shape() {
    let s = server_with(GatewayConfig::default().token(TOKEN).max_body_bytes(1024)).await;
    create(&s, "aura").await;
    let messages = s.url("/v1/objects/aura/messages");

    let malformed = s
        .http
        .post(&messages)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed, StatusCode::BAD_REQUEST).await,
        "malformed_body"
    );

    assert_eq!(
        post_error(
            &s,
            "/v1/objects/aura/messages",
            json!({ "text": 3 }),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_body"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/objects/aura/messages",
            json!({ "text": "hi", "selector": "fibonacci" }),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_body"
    );

    assert_eq!(
        post_error(
            &s,
            "/v1/objects/aura/messages",
            json!({ "text": "x".repeat(4096) }),
            StatusCode::PAYLOAD_TOO_LARGE
        )
        .await,
        "payload_too_large"
    );

    assert_eq!(
        post_error(
            &s,
            "/v1/objects/nobody/messages",
            json!({ "text": "hello" }),
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
    assert_eq!(
        get_error(
            &s,
            "/v1/objects/0190a5b0-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
    assert_eq!(
        get_error(
            &s,
            "/v1/objects/aura/methods/fibonacci",
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
    assert_eq!(
        get_error(&s, "/v1/nothing-here", StatusCode::NOT_FOUND).await,
        "no_route"
    );
    assert_eq!(
        get_error(&s, "/v1/audit?after=yesterday", StatusCode::BAD_REQUEST).await,
        "invalid_parameter"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/objects/aura/messages",
            json!({ "selector": "not a selector!" }),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_body",
        "the body's selector does not match its schema"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/objects",
            json!({ "name": "aura" }),
            StatusCode::CONFLICT
        )
        .await,
        "conflict"
    );

    // A method that raises, and a hand-written method the guard rejects, are 422 with details.
    let define = |source: &str| {
        s.http
            .put(s.url("/v1/objects/aura/methods/half"))
            .bearer_auth(TOKEN)
            .json(&json!({ "source": source, "doc": "halves" }))
            .send()
    };
    let rejected = define("import os\ndef half(self, n):\n    return n / 2\n")
        .await
        .unwrap();
    assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = rejected.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rejected");
    assert!(!body["error"]["details"]["violations"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        define("def half(self, n):\n    return n / 2\n")
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let raised = s
        .post(
            "/v1/objects/aura/messages",
            json!({ "selector": "half", "args": [0, 1] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raised.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = raised.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_raised", "{body}");
    assert_eq!(
        body["error"]["details"]["error"]["type_name"], "TypeError",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_versions_list_and_roll_back() {
    let s = server().await;
    create(&s, "calc").await;
    for body in ["return n * 2", "return n * 3"] {
        let r = s
            .http
            .put(s.url("/v1/objects/calc/methods/scale"))
            .bearer_auth(TOKEN)
            .json(&json!({ "source": format!("def scale(self, n):\n    {body}\n") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let call = || async {
        s.post(
            "/v1/objects/calc/messages",
            json!({ "selector": "scale", "args": [5] }),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["value"]
            .clone()
    };
    assert_eq!(call().await, 15);
    let versions: Value = s
        .get("/v1/objects/calc/methods/scale")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    assert_eq!(versions["current"], 2);
    let back = s
        .post(
            "/v1/objects/calc/methods/scale/rollback",
            json!({ "version": 1 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(call().await, 10);
    assert_eq!(
        post_error(
            &s,
            "/v1/objects/calc/methods/scale/rollback",
            json!({ "version": 9 }),
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_is_filtered_and_paginated() {
    let s = server().await;
    for name in ["a1", "a2", "a3"] {
        create(&s, name).await;
        s.http
            .put(s.url(&format!("/v1/objects/{name}/methods/one")))
            .bearer_auth(TOKEN)
            .json(&json!({ "source": "def one(self):\n    return 1\n" }))
            .send()
            .await
            .unwrap();
        let learned = s
            .post(
                &format!("/v1/objects/{name}/messages"),
                json!({ "selector": "fibonacci", "args": [3] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(learned.status(), StatusCode::OK);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/audit?limit=1".to_string();
    loop {
        let page: Value = s.get(&path).send().await.unwrap().json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 1);
        seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/audit?limit=1&after={next}"),
            None => break,
        }
        assert!(seen.len() < 1000, "pagination ends");
    }
    let all: Value = s
        .get("/v1/audit?limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Vec<String> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!all.is_empty());
    assert_eq!(
        seen, all,
        "paging one by one visits every event once, in order"
    );
    let one: Value = s
        .get("/v1/audit?object=a2&limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a2: Value = s
        .get("/v1/objects/a2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = one["events"].as_array().unwrap();
    assert!(events.len() < all.len());
    assert!(events.iter().all(|e| e["object_id"] == a2["id"]));
}

/// Reads SSE frames from `response` until `done` says so, returning the monologue events.
async fn read_events(
    response: reqwest::Response,
    mut done: impl FnMut(&MonologueEvent) -> bool,
) -> Vec<MonologueEvent> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if frame
                .lines()
                .any(|l| l == "event: monologue" || l == "event:monologue")
            {
                let event: MonologueEvent = serde_json::from_str(&data).unwrap();
                let stop = done(&event);
                events.push(event);
                if stop {
                    return events;
                }
            }
        }
    }
    panic!("the stream ended before the learn was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learn_streams_its_monologue_in_order() {
    let s = server().await;
    create(&s, "narrator").await;
    let stream = s.get("/v1/events").send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let reader = tokio::spawn(read_events(stream, |e| {
        e.component == "Store" && e.message == "method committed"
    }));
    let reply: Value = s
        .post(
            "/v1/objects/narrator/messages",
            json!({ "selector": "fibonacci", "args": [10] }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["value"], 55, "{reply}");
    let events = reader.await.unwrap();
    let position = |component: &str, message: &str| {
        events
            .iter()
            .position(|e| e.component.starts_with(component) && e.message.contains(message))
            .unwrap_or_else(|| panic!("no {component} {message:?} in {events:#?}"))
    };
    let mandate = position("Orchestrator", "creative mandate");
    let cascade = position("Cascade", "");
    let guard = position("PersistenceGuardian", "accepted");
    let sandbox = position("Sandbox", "");
    let commit = position("Store", "method committed");
    assert!(
        mandate < cascade && cascade < guard && guard < sandbox && sandbox < commit,
        "{mandate} {cascade} {guard} {sandbox} {commit}"
    );
    assert_eq!(events[mandate].fields["object"], "narrator");
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq increases"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_learn_does_not_block_other_requests() {
    let s = server().await;
    create(&s, "slow").await;
    s.model
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let learning = {
        let request = s.post(
            "/v1/objects/slow/messages",
            json!({ "selector": "fibonacci", "args": [10] }),
        );
        tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    // The learn is now inside the model and stays there until released.
    s.model.entered.notified().await;
    let other = s.get("/v1/objects/slow").send().await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let health = s.http.get(s.url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        !learning.is_finished(),
        "the learn is still held by the model"
    );
    s.model.release.add_permits(1000);
    let reply = learning.await.unwrap();
    assert_eq!(reply["value"], 55, "{reply}");
}

#[tokio::test]
async fn a_public_address_needs_a_token() {
    let runtime = Runtime::builder()
        .config(Config::default())
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .sandbox(Arc::new(
            aura_sandbox::JailSandbox::builder().build().unwrap(),
        ))
        .without_model()
        .build()
        .await
        .unwrap();
    let public = GatewayConfig::default().addr("0.0.0.0:0".parse().unwrap());
    let err = Gateway::bind(runtime.clone(), public.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, aura_core::Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("AURA_GATEWAY_TOKEN"), "{err}");
    // With a token the same address is accepted; loopback without one is too.
    assert!(Gateway::bind(runtime.clone(), public.token(TOKEN))
        .await
        .is_ok());
    let local = GatewayConfig::default().addr("127.0.0.1:0".parse().unwrap());
    assert!(Gateway::bind(runtime, local).await.is_ok());
}

/// GETs `path`, expecting an error reply with `status`; returns its code.
async fn get_error(s: &Server, path: &str, status: StatusCode) -> String {
    error_code(s.get(path).send().await.unwrap(), status).await
}

/// POSTs `body`, expecting an error reply with `status`; returns its code.
async fn post_error(s: &Server, path: &str, body: Value, status: StatusCode) -> String {
    error_code(s.post(path, body).send().await.unwrap(), status).await
}

/// Starts a forge run, waiting out a previous run that is still finishing.
async fn start_forge(s: &Server, body: Value) -> reqwest::Response {
    for _ in 0..200 {
        let r = s.post("/v1/forge", body.clone()).send().await.unwrap();
        if r.status() != StatusCode::CONFLICT {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("a forge run never finished");
}

async fn wait_for_event(s: &Server, kind: &str, count: usize) -> Vec<Value> {
    for _ in 0..500 {
        let body: Value = s
            .get(&format!("/v1/audit?kind={kind}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all: Value = s
        .get("/v1/audit?kind=forge.*")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    panic!("no {count} {kind} event(s): {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forge_runs_are_started_listed_and_refused_clearly() {
    let s = server().await;
    create(&s, "aura").await;

    assert_eq!(
        post_error(
            &s,
            "/v1/forge",
            json!({ "persona": "joker" }),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/forge",
            json!({ "persona": "alfred", "label": "no spaces please" }),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid"
    );

    // Nothing learned yet: the run starts, and fails for want of examples, on the record.
    let r = start_forge(&s, json!({ "persona": "alfred", "label": "empty" })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let failed = wait_for_event(&s, EventKind::ForgeFailed.as_str(), 1).await;
    assert!(
        failed[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("no successful learn cycle"),
        "{failed:?}"
    );

    // After a learn cycle (single mode: ALFRED writes the candidate) a run registers a facet.
    s.tell("aura", "teach yourself to calculate the fibonacci sequence")
        .await;
    let r = start_forge(
        &s,
        json!({ "persona": "alfred", "label": "g1", "steps": 2 }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["facet"], "alfred:g1");
    wait_for_event(&s, EventKind::ForgeRegistered.as_str(), 1).await;

    let facets: Value = s
        .get("/v1/facets")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(facets["facets"][0]["name"], "alfred:g1", "{facets}");
    assert_eq!(facets["serving"]["alfred"], Value::Null);
    assert_eq!(facets["stagnation"]["state"], "warming");

    // FakeForge reports no evaluation: promotion is refused, and there is nothing to undo.
    assert_eq!(
        post_error(
            &s,
            "/v1/facets/alfred:g1/promote",
            json!({}),
            StatusCode::CONFLICT
        )
        .await,
        "not_promoted"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/facets/alfred:nope/promote",
            json!({}),
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
    assert_eq!(
        post_error(
            &s,
            "/v1/personas/alfred/rollback",
            json!({}),
            StatusCode::CONFLICT
        )
        .await,
        "conflict",
        "nothing to undo is the registry's state, not a bad request"
    );
}

async fn define(s: &Server, object: &str, selector: &str) {
    let r = s
        .http
        .put(s.url(&format!("/v1/objects/{object}/methods/{selector}")))
        .bearer_auth(TOKEN)
        .json(&json!({ "source": format!("def {selector}(self):\n    return 1\n") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{selector}");
}

async fn get_json(s: &Server, path: &str) -> Value {
    let r = s.get(path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_body_counts_methods_and_selectors_are_paged() {
    let s = server().await;
    create(&s, "base").await;
    let r = s
        .post(
            "/v1/objects",
            json!({ "name": "child", "parents": ["base"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for selector in ["area", "perimeter", "scale", "describe"] {
        define(&s, "base", selector).await;
    }
    define(&s, "child", "area").await;
    define(&s, "child", "rotate").await;

    let child = get_json(&s, "/v1/objects/child").await;
    assert!(child.get("responds_to").is_none(), "{child}");
    assert_eq!(child["methods"]["own"], 2, "{child}");
    assert_eq!(child["methods"]["responds_to"], 5, "{child}");
    let link = child["methods"]["selectors"].as_str().unwrap().to_string();

    // Every selector once, in name order, with the nearest object that defines it.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(&s, &format!("{link}?limit=2&offset={offset}")).await;
        assert_eq!(page["total"], 5);
        for e in page["selectors"].as_array().unwrap() {
            seen.push(format!(
                "{}@{}",
                e["selector"].as_str().unwrap(),
                e["defined_on"].as_str().unwrap()
            ));
        }
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "area@child",
            "describe@base",
            "perimeter@base",
            "rotate@child",
            "scale@base"
        ]
    );
    let own = get_json(&s, "/v1/objects/child/selectors?own=true").await;
    assert_eq!(own["total"], 2);
    assert_eq!(own["selectors"][1]["selector"], "rotate");
    assert_eq!(own["next_offset"], Value::Null);

    // A redefinition on the parent shows through the child at once.
    define(&s, "base", "describe").await;
    let page = get_json(&s, "/v1/objects/child/selectors?offset=1&limit=1").await;
    assert_eq!(page["selectors"][0]["version"], 2, "{page}");

    assert_eq!(
        get_error(&s, "/v1/objects/nobody/selectors", StatusCode::NOT_FOUND).await,
        "not_found"
    );
    assert_eq!(
        get_error(
            &s,
            "/v1/objects/child/selectors?limit=many",
            StatusCode::BAD_REQUEST
        )
        .await,
        "invalid_parameter"
    );
    let health = health(&s).await;
    let resources = &health["resources"];
    assert!(
        resources["resolution"]["views"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert!(
        resources["resolution"]["max_views"].as_u64().unwrap() > 0,
        "{health}"
    );
    assert!(
        resources["connections"]["open"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert_eq!(resources["event_streams"]["open"], 0, "{health}");
}

/// Reads from `stream` until the server closes it; how long that took.
async fn time_to_close(mut stream: tokio::net::TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed_and_the_cap_holds() {
    let s = server_with(
        GatewayConfig::default()
            .token(TOKEN)
            .header_timeout(Duration::from_secs(1))
            .idle_timeout(Duration::from_secs(1))
            .max_connections(3),
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A keep-alive connection that finished a request and then says nothing.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 401");

    // All three places are taken: a new request waits in the backlog...
    let waiting = {
        let request = s.get("/v1/objects");
        tokio::spawn(async move {
            let started = Instant::now();
            let status = request.send().await.unwrap().status();
            (status, started.elapsed())
        })
    };
    let closed =
        futures::future::join_all([silent, half, idle].map(|c| tokio::spawn(time_to_close(c))))
            .await;
    for took in closed {
        let took = took.unwrap();
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
    // ...and is answered once the timeout frees a place.
    let (status, took) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a place was free")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(took > Duration::from_millis(300), "it waited: {took:?}");
    let health = health(&s).await;
    assert_eq!(health["resources"]["connections"]["max"], 3, "{health}");
}

/// Sends one request on `stream` and reads its answer's status line.
async fn request_on(stream: &mut tokio::net::TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_and_idle_deadlines_are_kept_apart() {
    let s = server_with(
        GatewayConfig::default()
            .header_timeout(Duration::from_secs(1))
            .idle_timeout(Duration::from_secs(3)),
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // A fresh connection owes its first request within the header timeout.
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // An answered keep-alive connection may idle past the header timeout...
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert_eq!(request_on(&mut kept, "/v1/health").await, "HTTP/1.1 200 OK");
    // ...while one that starts its next request and stalls is held to the header timeout.
    let mut stalls = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert_eq!(
        request_on(&mut stalls, "/v1/health").await,
        "HTTP/1.1 200 OK"
    );
    stalls
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let silent = tokio::spawn(time_to_close(silent));
    let stalls = tokio::spawn(time_to_close(stalls));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        request_on(&mut kept, "/v1/health").await,
        "HTTP/1.1 200 OK",
        "idle for 1.8 s, past the header timeout but within the idle timeout"
    );
    let (silent, stalls) = (silent.await.unwrap(), stalls.await.unwrap());
    assert!(silent < Duration::from_millis(1900), "silent: {silent:?}");
    assert!(stalls < Duration::from_millis(1900), "stalled: {stalls:?}");
    let idle = time_to_close(kept).await;
    assert!(
        idle > Duration::from_secs(2) && idle < Duration::from_secs(5),
        "closed {idle:?} after its last answer (idle timeout 3 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_header_timeout_and_streams_are_capped() {
    let s = server_with(
        GatewayConfig::default()
            .token(TOKEN)
            .header_timeout(Duration::from_secs(1))
            .max_event_streams(1),
    )
    .await;
    let stream = s.get("/v1/events").send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        get_error(&s, "/v1/events", StatusCode::SERVICE_UNAVAILABLE).await,
        "too_many_streams"
    );
    let reader = tokio::spawn(read_events(stream, |e| {
        e.component == "Store" && e.message == "object created"
    }));
    // Well past the header timeout, the stream is still there to carry the next event.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    create(&s, "late").await;
    let events = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the event arrived")
        .unwrap();
    assert_eq!(events.last().unwrap().fields["object"], "late");
    // The reader is gone: its place is free again.
    let mut reopened = None;
    for _ in 0..50 {
        let r = s.get("/v1/events").send().await.unwrap();
        if r.status() == StatusCode::OK {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream gives its place back");
}

/// One secret per scope, each named after its scope.
fn scoped_config() -> GatewayConfig {
    Scope::ALL
        .into_iter()
        .fold(GatewayConfig::default(), |c, scope| {
            c.scoped_token(scope, format!("{scope}-secret"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_refuses_a_token_without_its_scope() {
    let s = server_with(scoped_config()).await;
    let mut forbidden = 0;
    for (method, path) in operations().iter().filter(|(_, p)| p != "/v1/health") {
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let needed = required_scope(&m, path).unwrap_or_else(|| panic!("{method} {path}"));
        // An object that does not exist: a route that may be used answers 404 or 4xx
        // for its body, never 401/403; the forge and rollbacks change nothing.
        let url = s.url(
            &path
                .replace("{object}", "nobody")
                .replace("{selector}", "nothing")
                .replace("{facet}", "nothing")
                .replace("{persona}", "NOBODY"),
        );
        for scope in Scope::ALL {
            let r = s
                .http
                .request(m.clone(), &url)
                .bearer_auth(format!("{scope}-secret"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            if scope < needed {
                assert_eq!(
                    error_code(r, StatusCode::FORBIDDEN).await,
                    "forbidden",
                    "{method} {path} with {scope}"
                );
                forbidden += 1;
            } else {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} with {scope}: {status}"
                );
            }
        }
    }
    assert!(forbidden >= 10, "only {forbidden} refusals");

    // A message in words may learn: `call` may not send one, `teach` may.
    create_as(&s, "teach-secret", "pupil").await;
    let words = |secret: &'static str| {
        s.http
            .post(s.url("/v1/objects/pupil/messages"))
            .bearer_auth(secret)
            .json(&json!({ "text": "teach yourself to compute the fibonacci sequence" }))
            .send()
    };
    let r = words("call-secret").await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`teach` scope"),
        "{body}"
    );
    // A call by selector that is not understood learns only for `teach`.
    let call = |secret: &'static str| {
        s.http
            .post(s.url("/v1/objects/pupil/messages"))
            .bearer_auth(secret)
            .json(&json!({ "selector": "fibonacci", "args": [10] }))
            .send()
    };
    let r = call("call-secret").await.unwrap();
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "does_not_understand"
    );
    let versions = s
        .http
        .get(s.url("/v1/objects/pupil/methods/fibonacci"))
        .bearer_auth("read-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), StatusCode::NOT_FOUND, "call learned");
    let r = call("teach-secret").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["value"], 55);
    // Once learned, `call` may use it.
    let r = call("call-secret").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["value"], 55);
}

async fn create_as(s: &Server, secret: &str, name: &str) {
    let r = s
        .http
        .post(s.url("/v1/objects"))
        .bearer_auth(secret)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address() {
    let s = server_with(scoped_config().auth_failures_per_minute(3)).await;
    let attempt =
        |secret: &'static str| s.http.get(s.url("/v1/objects")).bearer_auth(secret).send();
    for _ in 0..3 {
        let r = attempt("guess").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Refused before the token is read: even the right one, for the rest of the minute.
    for secret in ["guess", "read-secret"] {
        let r = attempt(secret).await.unwrap();
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
            "too_many_failures"
        );
    }
    // Health stays open and shows the tracked address.
    let health = health(&s).await;
    assert_eq!(
        health["resources"]["auth_failure_addresses"]["tracked"], 1,
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_scoped_tokens_stop_the_gateway_from_starting() {
    let config = GatewayConfig::from_lookup(|k| {
        (k == "AURA_GATEWAY_TOKENS").then(|| "read:ok,writer:x".to_owned())
    });
    let runtime = Runtime::builder()
        .store(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .build()
        .await
        .unwrap();
    let err = Gateway::bind(runtime, config.addr("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("AURA_GATEWAY_TOKENS") && text.contains("unknown scope"),
        "{text}"
    );
}
