//! The whole learn cycle on the real embedded model (SmolLM2-135M-Instruct, installed by
//! scripts/setup.sh), the real store and the real jail. It asserts honesty, not
//! cleverness: either a method that passes its own tests is committed and answers, or
//! nothing is committed and the refusal names every attempt's reason.
#![cfg(feature = "local-model")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;

use aura_cognition::{CascadeMode, LocalModel};
use aura_core::forge::EventKind;
use aura_core::store::{NewObject, Store};
use aura_core::{Config, Error, LearnRequest, Runtime};
use aura_store::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_on_the_embedded_model_commits_a_passing_method_or_refuses_honestly() {
    let path = aura_cognition::default_model_path();
    assert!(
        path.is_file(),
        "the local test model is missing at {}: run scripts/setup.sh or set AURA_MODEL_PATH",
        path.display()
    );
    let model = LocalModel::builder().model_path(path).build().unwrap();
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    config.learn_samples = 2;
    // A fixed seed: the same samples on every run, so the outcome does not flip.
    config.learn_seed = Some(7);
    let rt = Runtime::builder()
        .config(config)
        .store(store.clone())
        .sandbox(Arc::new(common::jail()))
        .model(Arc::new(model))
        .build()
        .await
        .unwrap();
    let calc = rt.create_object(NewObject::named("calc")).await.unwrap();

    let outcome = rt
        .learn(
            calc.id,
            LearnRequest {
                selector: "double".into(),
                request_text: "teach yourself to double a number: double(4) is 8".into(),
                args: vec![],
            },
        )
        .await;
    let audit = |kind: &'static str| common::events_of(store.as_ref(), kind);
    match outcome {
        Ok(learned) => {
            // Committed: it passed its own tests in the jail, and it is what the store holds.
            assert!(learned.tests_passed > 0);
            let stored = store.list_methods(calc.id).await.unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].source, learned.method.source);
            assert_eq!(audit(EventKind::LearnCommitted.as_str()).await.len(), 1);
            // Calling it runs in the jail and returns something (or raises) — never a crash.
            match rt.send(calc.id, "double", vec![serde_json::json!(4)]).await {
                Ok(_) | Err(Error::MethodRaised { .. }) | Err(Error::Stopped { .. }) => {}
                Err(e) => panic!("calling the learned method failed unexpectedly: {e}"),
            }
        }
        Err(Error::Refused {
            attempts, failures, ..
        }) => {
            // Refused: each failed sample says why and the search's own reason comes
            // last; only the trail was written.
            assert!((1..=2).contains(&attempts), "{attempts} samples");
            let (search, samples) = failures.split_last().unwrap();
            assert_eq!(search.stage.as_str(), "search", "{failures:?}");
            assert!(samples.len() <= 2, "{failures:?}");
            assert!(
                failures.iter().all(|f| !f.message.is_empty()),
                "{failures:?}"
            );
            assert!(store.list_methods(calc.id).await.unwrap().is_empty());
            assert!(audit(EventKind::LearnCommitted.as_str()).await.is_empty());
            assert!(audit(EventKind::LearnAttemptFailed.as_str()).await.len() <= samples.len());
            assert_eq!(audit(EventKind::LearnRefused.as_str()).await.len(), 1);
        }
        Err(e) => panic!("the cycle must commit or refuse, not fail: {e}"),
    }
}
