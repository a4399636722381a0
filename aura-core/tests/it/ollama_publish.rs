//! Publishing a facet to Ollama (issue #11), against recorded HTTP exchanges
//! (tests/fixtures/ollama_publish/*.json, request bodies included) served by a local
//! mock server; and against a live server when `AURA_TEST_OLLAMA_URL` is set.
#![cfg(feature = "ollama")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;

use aura_cognition::{OllamaModel, Persona, ScriptedModel};
use aura_core::forge::EventKind;
use aura_core::store::*;
use aura_core::{Config, Error, Runtime};
use aura_store::SqliteStore;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADAPTER: &[u8] = b"AURA test adapter\n";
const MERGED: &[u8] = b"GGUF merged model for the replay\n";

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/ollama_publish")
    .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// Mounts a recorded exchange; it answers only the exact recorded request body.
async fn mount(server: &MockServer, name: &str) {
    let f = fixture(name);
    let r = &f["response"];
    let status = r["status"].as_u64().unwrap() as u16;
    let response = match r["ndjson"].as_array() {
        Some(lines) => ResponseTemplate::new(status).set_body_raw(
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
            "application/x-ndjson",
        ),
        None => ResponseTemplate::new(status).set_body_json(r["json"].clone()),
    };
    Mock::given(method(f["request"]["method"].as_str().unwrap()))
        .and(path(f["request"]["path"].as_str().unwrap()))
        .and(body_json(f["request"]["body"].clone()))
        .respond_with(response)
        .expect(1)
        .mount(server)
        .await;
}

/// A blob the server lacks (HEAD → 404) and takes (POST → 201), checked byte for byte.
async fn mount_blob(server: &MockServer, bytes: &'static [u8]) {
    let blob = format!("/api/blobs/{}", digest(bytes));
    Mock::given(method("HEAD"))
        .and(path(blob.clone()))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(blob))
        .and(wiremock::matchers::body_bytes(bytes))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(server)
        .await;
}

struct Fixture {
    rt: Runtime,
    store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
}

/// A runtime whose registry holds the promoted facet `robin:t1` with a GGUF adapter file.
async fn fixture_with_facet() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter.gguf");
    std::fs::write(&adapter, ADAPTER).unwrap();
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    store
        .put_facet(Facet {
            name: "robin:t1".into(),
            persona: "robin".into(),
            base_model: "models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            adapter_path: adapter.display().to_string(),
            metrics: json!({ "status": "candidate" }),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let mut config = Config::default();
    config.data_dir = dir.path().to_path_buf();
    let rt = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(ScriptedModel::blueprint().named("base")))
        .build()
        .await
        .unwrap();
    Fixture { rt, store, dir }
}

fn server_model(uri: &str) -> OllamaModel {
    OllamaModel::builder()
        .host(uri)
        .model("smollm2:135m")
        .build()
        .unwrap()
}

impl Fixture {
    /// Publishes `robin:t1` on `smollm2:135m` to the server at `uri`, without a merged model.
    async fn publish(&self, uri: &str) -> aura_core::Result<aura_core::publish::Published> {
        self.rt
            .publish_facet_to_ollama(&server_model(uri), "robin:t1", "smollm2:135m", None)
            .await
    }
}

/// A mock server holding the recorded adapter-route exchanges: the blob, then `create`.
async fn adapter_route(create: &str) -> MockServer {
    let server = MockServer::start().await;
    mount_blob(&server, ADAPTER).await;
    mount(&server, create).await;
    server
}

async fn published(store: &SqliteStore) -> usize {
    common::events_of(store, EventKind::ForgePublished.as_str())
        .await
        .len()
}

#[tokio::test]
async fn the_adapter_route_uploads_the_blob_and_creates_the_model() {
    let f = fixture_with_facet().await;
    let server = adapter_route("create_from_adapter").await;

    let out = f.publish(&server.uri()).await.unwrap();
    assert_eq!(
        (out.model.as_str(), out.route),
        ("aura-robin:t1", "adapter")
    );
    let facet = f.store.get_facet("robin:t1").await.unwrap();
    assert_eq!(facet.metrics["serving"]["backend"], "ollama");
    assert_eq!(facet.metrics["serving"]["model"], "aura-robin:t1");
    assert_eq!(
        facet.metrics["status"], "candidate",
        "the rest of the record is kept"
    );
    assert_eq!(published(&f.store).await, 1);
    server.verify().await;
}

#[tokio::test]
async fn a_server_that_refuses_adapters_gets_the_merged_model() {
    let f = fixture_with_facet().await;
    let merged = f.dir.path().join("model.gguf");
    std::fs::write(&merged, MERGED).unwrap();
    let server = MockServer::start().await;
    mount_blob(&server, ADAPTER).await;
    mount(&server, "create_adapter_refused").await;
    mount_blob(&server, MERGED).await;
    mount(&server, "create_from_merged").await;

    let out =
        f.rt.publish_facet_to_ollama(
            &server_model(&server.uri()),
            "robin:t1",
            "smollm2:135m",
            Some(&merged),
        )
        .await
        .unwrap();
    assert_eq!(out.route, "merged");
    let facet = f.store.get_facet("robin:t1").await.unwrap();
    assert_eq!(facet.metrics["serving"]["route"], "merged");
    server.verify().await;
}

#[tokio::test]
async fn a_refusal_without_a_merged_model_or_a_dead_server_changes_nothing() {
    let f = fixture_with_facet().await;
    let before = f.store.get_facet("robin:t1").await.unwrap();
    let server = adapter_route("create_adapter_refused").await;
    let err = f.publish(&server.uri()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("ollama/ollama#14969"), "{err}");
    assert_eq!(f.store.get_facet("robin:t1").await.unwrap(), before);
    assert_eq!(published(&f.store).await, 0);

    // Nobody listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = f.publish(&dead).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(f.store.get_facet("robin:t1").await.unwrap(), before);

    let err =
        f.rt.publish_facet_to_ollama(&server_model(&dead), "robin:nope", "smollm2:135m", None)
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_published_promoted_facet_is_served_by_the_server() {
    let f = fixture_with_facet().await;
    let server = adapter_route("create_from_adapter").await;
    f.publish(&server.uri()).await.unwrap();
    // Promote by the registry's rule: the facet needs an evaluation that passes.
    let mut facet = f.store.get_facet("robin:t1").await.unwrap();
    facet.metrics["evaluation"] = json!({
        "base_validation_loss": 2.0, "facet_validation_loss": 1.5,
        "base_probe_loss": 3.0, "facet_probe_loss": 2.9 });
    f.store.put_facet(facet).await.unwrap();
    f.rt.promote_facet("robin:t1").await.unwrap();

    let cascade = f.rt.cascade().unwrap();
    let robin = &cascade.persona(Persona::Robin).unwrap().model;
    assert_eq!(robin.capabilities().backend, "ollama");
    assert!(format!("{robin:?}").contains("aura-robin:t1"), "{robin:?}");
    assert!(format!("{robin:?}").contains(&server.uri()), "{robin:?}");
}

/// Live: set `AURA_TEST_OLLAMA_URL`, and `AURA_TEST_OLLAMA_ADAPTER` to a GGUF LoRA
/// adapter made for `AURA_TEST_OLLAMA_BASE` (default `smollm2:135m`, pulled on the server).
#[tokio::test]
async fn live_server_publishes_a_facet() {
    let (Ok(url), Ok(adapter)) = (
        std::env::var("AURA_TEST_OLLAMA_URL"),
        std::env::var("AURA_TEST_OLLAMA_ADAPTER"),
    ) else {
        eprintln!(
            "skipped: set AURA_TEST_OLLAMA_URL and AURA_TEST_OLLAMA_ADAPTER to publish to a live Ollama server"
        );
        return;
    };
    let base = std::env::var("AURA_TEST_OLLAMA_BASE").unwrap_or_else(|_| "smollm2:135m".into());
    let f = fixture_with_facet().await;
    let mut facet = f.store.get_facet("robin:t1").await.unwrap();
    facet.adapter_path = adapter;
    facet.name = "robin:live-test".into();
    f.store.put_facet(facet).await.unwrap();
    let server = server_model(&url);
    match f
        .rt
        .publish_facet_to_ollama(&server, "robin:live-test", &base, None)
        .await
    {
        Ok(out) => {
            let names: Vec<String> = server
                .list_models()
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.name)
                .collect();
            assert!(names.iter().any(|n| n.starts_with(&out.model)), "{names:?}");
        }
        // A server from v0.34.1 on refuses adapters: that must be said clearly.
        Err(e) => assert!(e.to_string().contains("14969"), "{e}"),
    }
}
