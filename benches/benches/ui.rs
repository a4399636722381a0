//! The inspector's pages, rendered through the gateway's router in process, on a store
//! with 1,000 methods on `genesis` (every object inherits them), 10,000 memory nodes
//! linked into a graph, and the audit trail of a committed and a refused learn cycle.
//!
//! Goal (issue #18): every page ≤ 100 ms of server time.
#![allow(missing_docs)]
#![allow(clippy::expect_used)] // bench setup: a failed fixture should stop the bench loudly

use std::sync::Arc;

use aura_cognition::{CascadeMode, ScriptedModel};
use aura_core::store::{ContextLink, NewMemoryNode, NewObject, NodeRef};
use aura_core::{Config, Runtime};
use aura_gateway::GatewayConfig;
use aura_store::{SqliteStore, Store as _};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt as _;

const METHODS: usize = 1_000;
const NODES: usize = 10_000;

/// The store, and the pages to render (each a path with what it needs filled in).
async fn fixture(dir: &std::path::Path) -> (axum::Router, Vec<(&'static str, String)>) {
    let store = Arc::new(
        SqliteStore::open(dir.join("store.sqlite"))
            .await
            .expect("store"),
    );
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_agreement = 1;
    config.data_dir = dir.to_path_buf();
    let runtime = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(
            aura_sandbox::JailSandbox::builder().build().expect("jail"),
        ))
        .model(Arc::new(ScriptedModel::blueprint()))
        .build()
        .await
        .expect("runtime");
    let genesis = runtime.root();
    for i in 0..METHODS {
        runtime
            .define_method(
                genesis,
                &format!("m{i}"),
                &format!("def m{i}(self, x):\n    return x + {i}\n"),
                "",
            )
            .await
            .expect("method");
    }
    let aura = runtime
        .create_object(NewObject::named("aura").with_parents([genesis]))
        .await
        .expect("object");
    for i in 0..200 {
        runtime
            .create_object(NewObject::named(format!("level{i}")).with_parents([aura.id]))
            .await
            .expect("object");
    }
    runtime
        .tell(
            aura.id,
            "teach yourself to calculate the fibonacci sequence",
        )
        .await
        .expect("learned");
    let _ = runtime
        .tell(
            aura.id,
            "teach yourself to list the files in the current directory using the os module",
        )
        .await;
    let words = [
        "harbour",
        "bridge",
        "fibonacci",
        "lisbon",
        "sequence",
        "weather",
        "news",
        "method",
    ];
    // A chain of replies, each node also linked to one 37 back: every node has four
    // neighbours and a two-hop neighbourhood of a dozen.
    let mut ids = Vec::with_capacity(NODES);
    for chunk in 0..NODES / 500 {
        let mut tx = store.begin().await.expect("tx");
        for i in 0..500 {
            let n = chunk * 500 + i;
            let text = format!("note {n} about {} and {}", words[n % 8], words[(n / 8) % 8]);
            let added = tx
                .add_memory_node(NewMemoryNode::new("message", text))
                .await
                .expect("node");
            for back in [1, 37] {
                if let Some(&p) = n.checked_sub(back).and_then(|b| ids.get(b)) {
                    tx.add_link(ContextLink {
                        from: NodeRef::Node(p),
                        to: NodeRef::Node(added.id),
                        kind: "replied_to".into(),
                        weight: 1.0,
                    })
                    .await
                    .expect("link");
                }
            }
            ids.push(added.id);
        }
        tx.commit().await.expect("commit");
    }
    let node = ids.get(NODES / 2).copied();
    let cycles = runtime
        .store()
        .query_audit(&aura_core::store::AuditQuery {
            kind: Some("learn.refused".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let refused = cycles.events.first().expect("a refused cycle").id;
    let router = aura_gateway::router(runtime, GatewayConfig::default());
    let pages = vec![
        ("objects", "/ui/objects".to_string()),
        ("objects: search", "/ui/objects?q=level1".to_string()),
        (
            "object under 1,000 inherited methods",
            "/ui/objects/level7".to_string(),
        ),
        ("method", "/ui/objects/genesis/methods/m500".to_string()),
        ("learn cycles", "/ui/cycles".to_string()),
        (
            "learn cycle (refused, 8 candidates)",
            format!("/ui/cycles/{refused}"),
        ),
        ("memory search", "/ui/memory?q=harbour".to_string()),
        (
            "memory node",
            format!("/ui/memory/{}", node.expect("a node")),
        ),
        ("health", "/ui/health".to_string()),
        ("monologue", "/ui/monologue".to_string()),
    ];
    (router, pages)
}

fn ui(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (router, pages) = rt.block_on(fixture(dir.path()));
    let mut group = c.benchmark_group("ui");
    group.sample_size(20);
    for (name, path) in pages {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let request = Request::get(path.as_str())
                    .body(Body::empty())
                    .expect("request");
                let response = router.clone().oneshot(request).await.expect("response");
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                axum::body::to_bytes(response.into_body(), 16 << 20)
                    .await
                    .expect("body")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ui);
criterion_main!(benches);
