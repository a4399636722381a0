//! The forge loop in the runtime (issue #11): an explicit request and ALFRED's
//! stagnation monitor start runs; a run curates the trail, trains through the Forge
//! port, registers the facet and promotes it only when it beats its base; the cascade
//! then serves the persona with the facet, and a rollback restores the base.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use aura_cognition::{Persona, ScriptedModel};
use aura_core::evolution::FacetModelLoader;
use aura_core::forge::EventKind;
use aura_core::forge::{
    FakeForge, Forge, ForgeCapabilities, Progress, TrainedAdapter, TrainingJob,
};
use aura_core::store::*;
use aura_core::{Config, Error, ForgeRequest, LearnRequest, Runtime};
use aura_store::SqliteStore;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// FakeForge, plus the evaluation a real trainer reports: the facet's losses are the
/// base's times `ratio` (below 1: better than its base).
#[derive(Debug)]
struct EvaluatingForge {
    ratio: f64,
}

#[async_trait]
impl Forge for EvaluatingForge {
    fn capabilities(&self) -> ForgeCapabilities {
        FakeForge.capabilities()
    }

    async fn train(
        &self,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> aura_core::forge::Result<TrainedAdapter> {
        let mut adapter = FakeForge.train(job, progress, cancel).await?;
        adapter.metrics = json!({
            "validation_loss_before": 2.0, "validation_loss_after": 2.0 * self.ratio,
            "probe_loss_before": 3.0, "probe_loss_after": 3.0 * self.ratio,
        });
        Ok(adapter)
    }
}

/// Serves a facet with a scripted model named after it, so the tests can see who speaks.
fn named_facet_models() -> FacetModelLoader {
    Arc::new(|facet: &Facet| {
        Ok(Arc::new(ScriptedModel::blueprint().named(format!("facet {}", facet.name))) as _)
    })
}

struct Fixture {
    rt: Runtime,
    store: Arc<SqliteStore>,
    _data: tempfile::TempDir,
}

async fn fixture(forge: Option<Arc<dyn Forge>>, tweak: impl FnOnce(&mut Config)) -> Fixture {
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mut config = Config::default();
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    config.data_dir = data.path().to_path_buf();
    config.forge.base_model = Some(data.path().join("base.gguf"));
    config.forge.on_stagnation = false;
    tweak(&mut config);
    let mut builder = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(ScriptedModel::blueprint().named("base")))
        .facet_models(named_facet_models());
    if let Some(forge) = forge {
        builder = builder.forge(forge);
    }
    Fixture {
        rt: builder.build().await.unwrap(),
        store,
        _data: data,
    }
}

/// Successful learn cycles on objects `calc<from>`…, one each (ROBIN's draft passes
/// every time).
async fn learn_cycles(rt: &Runtime, from: usize, n: usize) {
    for i in from..from + n {
        let object = rt
            .create_object(NewObject::named(format!("calc{i}")))
            .await
            .unwrap();
        rt.learn(
            object.id,
            LearnRequest {
                selector: "fibonacci".into(),
                request_text: format!("teach calculator {i} the fibonacci sequence"),
                args: vec![],
            },
        )
        .await
        .unwrap();
    }
}

/// The payloads of the trail's `kind` events.
async fn events(store: &SqliteStore, kind: &str) -> Vec<Value> {
    common::events_of(store, kind)
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

async fn speaker(rt: &Runtime, persona: Persona) -> String {
    let cascade = rt.cascade().unwrap();
    cascade
        .persona(persona)
        .unwrap()
        .model
        .info()
        .await
        .unwrap()
        .name
}

#[tokio::test]
async fn a_requested_run_registers_the_facet_but_promotes_only_an_evaluated_one() {
    let f = fixture(Some(Arc::new(FakeForge)), |_| {}).await;
    learn_cycles(&f.rt, 0, 6).await;

    let report =
        f.rt.forge_persona(ForgeRequest::new(Persona::Robin).label("t1").steps(3))
            .await
            .unwrap();
    assert_eq!(report.facet.name, "robin:t1");
    assert_eq!(report.examples, 6, "one example per committed cycle");
    assert!(!report.promoted);
    assert!(
        report
            .not_promoted
            .as_deref()
            .unwrap()
            .contains("no evaluation"),
        "{:?}",
        report.not_promoted
    );
    assert_eq!(speaker(&f.rt, Persona::Robin).await, "base");

    let started = events(&f.store, EventKind::ForgeStarted.as_str()).await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["trigger"]["reason"], "request");
    assert_eq!(started[0]["facet"], "robin:t1");
    assert_eq!(
        events(&f.store, EventKind::ForgeRegistered.as_str())
            .await
            .len(),
        1
    );
    let finished = events(&f.store, EventKind::ForgeFinished.as_str()).await;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["promoted"], false);
    assert_eq!(finished[0]["examples"], 6);
    let dataset = f.rt.config().data_dir.join("forge/robin/t1/dataset");
    assert!(dataset.join("manifest.json").is_file());
    // The dataset was rendered with ROBIN's cascade prompt, not a generic line.
    let train = std::fs::read_to_string(dataset.join("train.jsonl")).unwrap();
    assert!(train.contains("ROBIN"), "{train}");
}

#[tokio::test]
async fn a_better_facet_serves_its_persona_until_it_is_rolled_back() {
    let f = fixture(Some(Arc::new(EvaluatingForge { ratio: 0.5 })), |_| {}).await;
    learn_cycles(&f.rt, 0, 4).await;

    let report =
        f.rt.forge_persona(ForgeRequest::new(Persona::Robin).label("t2").steps(2))
            .await
            .unwrap();
    assert!(report.promoted, "{report:?}");
    assert_eq!(report.evaluation.unwrap().facet_validation_loss, 1.0);
    assert_eq!(speaker(&f.rt, Persona::Robin).await, "facet robin:t2");
    for other in [Persona::Brick, Persona::Babs, Persona::Alfred] {
        assert_eq!(speaker(&f.rt, other).await, "base");
    }
    // A runtime opened later on the same store serves the persona the same way.
    let again = Runtime::builder()
        .config(f.rt.config().clone())
        .store(f.store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(ScriptedModel::blueprint().named("base")))
        .facet_models(named_facet_models())
        .build()
        .await
        .unwrap();
    assert_eq!(speaker(&again, Persona::Robin).await, "facet robin:t2");
    // And the next learn cycle is decided by the facet's model.
    learn_cycles(&again, 4, 1).await;
    let committed = events(&f.store, EventKind::LearnCommitted.as_str()).await;
    let robin = committed[4]["packet"]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["persona"] == "ROBIN")
        .unwrap()
        .clone();
    assert_eq!(robin["model"], "facet robin:t2", "{robin}");

    assert_eq!(f.rt.rollback_facet(Persona::Robin).await.unwrap(), None);
    assert_eq!(speaker(&f.rt, Persona::Robin).await, "base");
    assert_eq!(
        events(&f.store, EventKind::ForgeRolledBack.as_str())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_worse_facet_is_registered_and_not_promoted() {
    let f = fixture(Some(Arc::new(EvaluatingForge { ratio: 1.5 })), |_| {}).await;
    learn_cycles(&f.rt, 0, 3).await;
    let report =
        f.rt.forge_persona(ForgeRequest::new(Persona::Robin).label("worse").steps(1))
            .await
            .unwrap();
    assert!(!report.promoted);
    let why = report.not_promoted.unwrap();
    assert!(why.contains("does worse than its base"), "{why}");
    assert_eq!(speaker(&f.rt, Persona::Robin).await, "base");
    // Promoting it by hand is refused the same way, with a clear error.
    let err = f.rt.promote_facet("robin:worse").await.unwrap_err();
    assert!(matches!(err, Error::Forge(_)), "{err:?}");
    assert!(events(&f.store, EventKind::ForgePromoted.as_str())
        .await
        .is_empty());
}

#[tokio::test]
async fn a_run_without_material_or_without_a_forge_fails_clearly() {
    let f = fixture(Some(Arc::new(FakeForge)), |_| {}).await;
    let err =
        f.rt.forge_persona(ForgeRequest::new(Persona::Babs))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("no successful learn cycle"),
        "{err}"
    );
    let failed = events(&f.store, EventKind::ForgeFailed.as_str()).await;
    assert_eq!(failed.len(), 1);
    assert!(f.rt.facets().await.unwrap().is_empty());

    let err =
        f.rt.forge_persona(ForgeRequest::new(Persona::Babs).label("bad label!"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("label"), "{err}");

    let none = fixture(None, |_| {}).await;
    let err = none
        .rt
        .forge_persona(ForgeRequest::new(Persona::Robin))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { port: "forge", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn one_run_at_a_time_and_a_cancelled_run_registers_nothing() {
    let f = fixture(Some(Arc::new(FakeForge)), |_| {}).await;
    learn_cycles(&f.rt, 0, 3).await;
    // Nobody reads progress, so the fake trainer blocks on its second step.
    let (progress, watcher) = mpsc::channel(1);
    let (cancel, cancelled) = watch::channel(false);
    let rt = f.rt.clone();
    let run = tokio::spawn(async move {
        rt.forge_persona_with(
            ForgeRequest::new(Persona::Robin).label("slow").steps(100),
            progress,
            cancelled,
        )
        .await
    });
    while events(&f.store, EventKind::ForgeStarted.as_str())
        .await
        .is_empty()
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let err =
        f.rt.forge_persona(ForgeRequest::new(Persona::Robin).label("second"))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    cancel.send(true).unwrap();
    drop(watcher);
    let err = run.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::Forge(aura_core::forge::Error::Cancelled)),
        "{err:?}"
    );
    assert!(f.rt.facets().await.unwrap().is_empty());
    assert_eq!(
        events(&f.store, EventKind::ForgeFailed.as_str())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn stagnation_starts_one_background_run() {
    let f = fixture(Some(Arc::new(FakeForge)), |c| {
        c.forge.on_stagnation = true;
        c.forge.persona = Persona::Robin;
        c.forge.stagnation_window = 3;
        // Every cycle's CEM is at most 1: each window is stagnant.
        c.forge.stagnation_threshold = 1.01;
        c.forge.steps = 2;
    })
    .await;
    learn_cycles(&f.rt, 0, 2).await;
    assert!(
        events(&f.store, EventKind::ForgeStarted.as_str())
            .await
            .is_empty(),
        "the window is not full yet"
    );
    learn_cycles(&f.rt, 2, 1).await;
    f.rt.forge_idle().await;

    let started = events(&f.store, EventKind::ForgeStarted.as_str()).await;
    assert_eq!(started.len(), 1, "{started:?}");
    let trigger = &started[0]["trigger"];
    assert_eq!(trigger["reason"], "stagnation");
    assert_eq!(trigger["window"], 3);
    assert!(trigger["mean"].as_f64().unwrap() < 1.01);
    assert_eq!(started[0]["persona"], "robin");
    assert_eq!(
        events(&f.store, EventKind::ForgeRegistered.as_str())
            .await
            .len(),
        1
    );
    // The window started afresh.
    assert!(matches!(
        f.rt.stagnation(),
        aura_cognition::Stagnation::Warming { cycles: 0 }
    ));
}

#[tokio::test]
async fn stagnation_starts_nothing_when_switched_off() {
    let f = fixture(Some(Arc::new(FakeForge)), |c| {
        c.forge.stagnation_window = 1;
        c.forge.stagnation_threshold = 1.01;
    })
    .await;
    learn_cycles(&f.rt, 0, 2).await;
    f.rt.forge_idle().await;
    assert!(events(&f.store, EventKind::ForgeStarted.as_str())
        .await
        .is_empty());
    assert!(matches!(
        f.rt.stagnation(),
        aura_cognition::Stagnation::Stagnant { .. }
    ));
}

/// Learn attempts whose model writes garbage: each counts as a CEM of 0.
#[tokio::test]
async fn stagnation_with_nothing_learned_yet_skips_the_run_on_the_record() {
    let f = fixture(Some(Arc::new(FakeForge)), |c| {
        c.forge.on_stagnation = true;
        c.forge.stagnation_window = 2;
        c.learn_samples = 2;
    })
    .await;
    let garbage = ScriptedModel::from_fn(|_| Ok("no JSON here".into()));
    let rt = Runtime::builder()
        .config(f.rt.config().clone())
        .store(f.store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(garbage))
        .forge(Arc::new(FakeForge))
        .build()
        .await
        .unwrap();
    let object = rt.create_object(NewObject::named("mute")).await.unwrap();
    let err = rt
        .learn(
            object.id,
            LearnRequest {
                selector: "fibonacci".into(),
                request_text: "teach yourself fibonacci".into(),
                args: vec![],
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    rt.forge_idle().await;
    let skipped = events(&f.store, EventKind::ForgeSkipped.as_str()).await;
    assert_eq!(
        skipped.len(),
        1,
        "two garbage attempts fill the window once"
    );
    assert_eq!(skipped[0]["trigger"]["reason"], "stagnation");
    assert_eq!(skipped[0]["trigger"]["mean"], 0.0);
    assert!(events(&f.store, EventKind::ForgeStarted.as_str())
        .await
        .is_empty());
}
