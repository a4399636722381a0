//! The runtime's health: each port really exercised, with its latency. One check for
//! every front end (the gateway's `/v1/health`, the CLI through it, Python's
//! `Runtime.health()`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aura_cognition::Persona;
use aura_sandbox::{EndReason, ExecRequest, MethodSource};
use serde::Serialize;
use serde_json::{json, Value};

use crate::dispatch::CacheStats;
use crate::Runtime;

/// How long one check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// It answered as it should.
    Ok,
    /// It failed or did not answer in time.
    Unavailable,
    /// Not configured (a choice, not an outage).
    Absent,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Its verdict.
    pub status: CheckStatus,
    /// How long it took, in milliseconds (none when nothing was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What answered (a backend's name) or what went wrong.
    pub detail: Value,
}

impl Check {
    /// Runs `work` within [`CHECK_TIMEOUT`] and times it.
    async fn run<F, T>(work: F) -> Check
    where
        F: std::future::Future<Output = Result<T, String>>,
        T: Into<Value>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(CHECK_TIMEOUT, work).await;
        let latency_ms = Some((started.elapsed().as_secs_f64() * 1e4).round() / 10.0);
        let (status, detail) = match result {
            Ok(Ok(detail)) => (CheckStatus::Ok, detail.into()),
            Ok(Err(message)) => (CheckStatus::Unavailable, message.into()),
            Err(_) => (
                CheckStatus::Unavailable,
                format!("no answer within {} s", CHECK_TIMEOUT.as_secs()).into(),
            ),
        };
        Check {
            status,
            latency_ms,
            detail,
        }
    }
}

/// Every port's check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checks {
    /// The store: the root object read back.
    pub store: Check,
    /// The sandbox: a trivial method called.
    pub sandbox: Check,
    /// Each persona's model, by persona name (`all`: absent when no model is set).
    pub models: BTreeMap<String, Check>,
}

/// What the long-lived maps hold against their bounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resources {
    /// The resolution cache.
    pub resolution: CacheStats,
    /// Learn cycles holding a lock now.
    pub learn_locks: usize,
}

/// The runtime's health.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    /// `ok` unless some check is unavailable.
    pub status: CheckStatus,
    /// Each port's check.
    pub checks: Checks,
    /// The bounded maps' fill.
    pub resources: Resources,
    /// The forge backend and the stagnation monitor (informational: a missing forge
    /// is a choice, not an outage).
    pub forge: Value,
}

impl Health {
    /// Whether everything that is configured answered.
    pub fn is_ok(&self) -> bool {
        self.status == CheckStatus::Ok
    }
}

impl Runtime {
    /// Exercises every port (the store, the sandbox, each persona's model) and reports
    /// each one's verdict and latency. Never fails: an outage is a verdict.
    pub async fn health(&self) -> Health {
        let store = Check::run(async {
            self.store()
                .get_object(self.root())
                .await
                .map(|_| Value::from(self.store().capabilities().backend))
                .map_err(|e| e.to_string())
        });
        let sandbox = Check::run(async {
            let mut request = ExecRequest::call(
                MethodSource {
                    selector: "ping".into(),
                    source: "def ping(self):\n    return 1\n".into(),
                },
                vec![],
            );
            request.limits = self.config().limits.clone();
            let outcome = self
                .sandbox()
                .execute(request)
                .await
                .map_err(|e| e.to_string())?;
            match (outcome.ended, outcome.value) {
                (EndReason::Ok, Some(v)) if v == json!(1) => {
                    Ok(Value::from(self.sandbox().describe()))
                }
                (ended, value) => Err(format!("trivial call ended {ended:?} with {value:?}")),
            }
        });
        let (store, sandbox) = tokio::join!(store, sandbox);
        let mut models = BTreeMap::new();
        match self.cascade() {
            Some(cascade) => {
                for persona in Persona::ALL {
                    if let Some(config) = cascade.persona(persona) {
                        let backend = config.model.describe();
                        let check = Check::run(async {
                            config
                                .model
                                .info()
                                .await
                                .map(|i| json!({ "model": i.name, "backend": backend }))
                                .map_err(|e| format!("{backend}: {e}"))
                        })
                        .await;
                        models.insert(persona.name().to_string(), check);
                    }
                }
            }
            None => {
                models.insert(
                    "all".into(),
                    Check {
                        status: CheckStatus::Absent,
                        latency_ms: None,
                        detail: "no language model is configured: learning is off".into(),
                    },
                );
            }
        }
        let down = [&store, &sandbox]
            .into_iter()
            .chain(models.values())
            .any(|c| c.status == CheckStatus::Unavailable);
        Health {
            status: if down {
                CheckStatus::Unavailable
            } else {
                CheckStatus::Ok
            },
            checks: Checks {
                store,
                sandbox,
                models,
            },
            resources: Resources {
                resolution: self.cache_stats(),
                learn_locks: self.learn_lock_count(),
            },
            forge: match self.forge() {
                Some(f) => json!({ "backend": f.capabilities().backend,
                                   "stagnation": self.stagnation() }),
                None => {
                    json!({ "backend": null, "detail": "no forge is configured: nothing is forged" })
                }
            },
        }
    }
}
