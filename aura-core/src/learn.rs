//! The learn cycle: a message nothing understands becomes a method (DESIGN.md §4).
//!
//! mandate → cascade → guard (source and tests) → sandbox (tests) → one store
//! transaction. Every attempt, accepted or not, is appended to the audit trail as it
//! happens; only a passing candidate reaches the transaction that writes the method,
//! its `learn.committed` event and the memory nodes linking request, method and object.
//! Anything that fails before the commit leaves the store as it was, but for the trail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aura_cognition::{
    CandidateCheck, CascadeMode, CheckVerdict, CognitiveStatePacket, Evidence, Grounding,
    KnownMethod, LearnMandate, MethodCandidate,
};
use aura_sandbox::{ExecOutcome, ExecRequest, MethodSource};
use aura_store::{
    ContextLink, DynStore, Method, NewAuditEvent, NewMemoryNode, NewMethod, NodeRef, Object,
    Provenance, Selector, StoreExt,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dispatch::ChainView;
use crate::{Error, Result, Runtime};

/// What to learn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnRequest {
    /// The method's name.
    pub selector: String,
    /// The user's words ("teach yourself to calculate the fibonacci sequence").
    pub request_text: String,
    /// The arguments of the call that triggered learning, if any.
    pub args: Vec<Value>,
}

/// What a successful learn cycle produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Learned {
    /// The committed method.
    pub method: Method,
    /// How many attempts it took (1 = the first candidate passed).
    pub attempts: u32,
    /// How many tests it passed.
    pub tests_passed: usize,
}

/// Why one attempt failed, in words a model (and a person) can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFailure {
    /// Which stage refused it: `cascade`, `guard`, `tests` or `sandbox`.
    pub stage: String,
    /// Guard rule ids, when the guard refused it.
    pub rules: Vec<String>,
    /// What went wrong.
    pub message: String,
}

/// The store's memory graph as the cascade's grounding port: full-text search, best first.
#[derive(Debug, Clone)]
pub struct StoreGrounding {
    store: DynStore,
}

impl StoreGrounding {
    /// Grounds in `store`'s memory graph.
    pub fn new(store: DynStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Grounding for StoreGrounding {
    async fn ground(&self, query: &str, limit: usize) -> aura_cognition::Result<Vec<Evidence>> {
        let hits = self
            .store
            .search_memory(query, limit.min(u32::MAX as usize) as u32)
            .await
            .map_err(|e| aura_cognition::Error::Backend {
                backend: "store",
                message: e.to_string(),
            })?;
        Ok(hits
            .into_iter()
            .map(|h| Evidence {
                id: h.node.id.to_string(),
                text: h.node.text,
                source: format!("memory:{}", h.node.kind),
                score: Some(h.score),
            })
            .collect())
    }
}

/// Serialises learns of the same selector on the same object within one runtime, so
/// two concurrent misses produce one method: the second finds it and reuses it.
pub(crate) struct LearnLocks {
    locks: std::sync::Mutex<HashMap<LearnKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Idle locks are dropped once the map holds this many.
    max: usize,
}

type LearnKey = (aura_store::ObjectId, Selector);

impl LearnLocks {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            locks: std::sync::Mutex::default(),
            max: max.max(1),
        }
    }

    fn lock_for(&self, key: LearnKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max {
            // A lock only the map holds has nobody waiting on it: a later learner of that
            // selector simply makes a new one.
            map.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        map.entry(key).or_default().clone()
    }

    /// How many locks are kept.
    pub(crate) fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The full cascade's early exit: ROBIN's draft runs through the same guard and sandbox
/// tests as any candidate, against this object's state; a pass ends the cycle there and
/// its test run is kept, so the commit does not run the tests a second time.
struct EarlyExitCheck<'a> {
    runtime: &'a Runtime,
    object: &'a Object,
    view: &'a ChainView,
    selector: &'a Selector,
    passed: Mutex<Option<(MethodCandidate, ExecOutcome)>>,
}

impl std::fmt::Debug for EarlyExitCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarlyExitCheck")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl EarlyExitCheck<'_> {
    /// The test run of `candidate` if this check passed exactly that candidate.
    fn take_if_checked(&self, candidate: &MethodCandidate) -> Option<ExecOutcome> {
        let mut passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        match passed.take() {
            Some((checked, outcome))
                if checked.source == candidate.source && checked.tests == candidate.tests =>
            {
                Some(outcome)
            }
            _ => None,
        }
    }
}

#[async_trait]
impl CandidateCheck for EarlyExitCheck<'_> {
    async fn check(&self, candidate: &MethodCandidate) -> CheckVerdict {
        let outcome = self
            .runtime
            .check_candidate(self.object, self.view, self.selector, candidate)
            .await;
        match outcome {
            Ok(Ok(run)) => {
                *self.passed.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((candidate.clone(), run));
                CheckVerdict::Passed
            }
            Ok(Err(failure)) => CheckVerdict::Failed {
                reason: format!("{}: {}", failure.stage, failure.message),
            },
            // A broken port is not the draft's fault: let the cascade go on; the final
            // candidate's own check reports the port error.
            Err(e) => CheckVerdict::Failed {
                reason: format!("the draft could not be checked: {e}"),
            },
        }
    }
}

impl Runtime {
    /// Runs the learn cycle for `request.selector` on object `id` and commits the method.
    ///
    /// Returns [`Error::Refused`] when no attempt passed the guard and its tests: the
    /// reasons name the guard's rule ids or the last test failure, and nothing but the
    /// audit trail of the attempts was written.
    pub async fn learn(&self, id: aura_store::ObjectId, request: LearnRequest) -> Result<Learned> {
        let selector = crate::dispatch::parse_selector(&request.selector)?;
        let cascade = self.cascade().ok_or_else(|| Error::Unavailable {
            port: "model",
            message: "no language model is configured, so nothing can be learned: \
                      pass one to RuntimeBuilder::model (or install the local model with scripts/setup.sh)"
                .into(),
        })?;
        let lock = self.learn_locks().lock_for((id, selector.clone()));
        let _held = lock.lock().await;

        let object = self.object(id).await?;
        self.invalidate(id);
        let view = self.chain_view(id).await?;
        if let Some(existing) = view.resolve(&selector).filter(|m| m.object_id == id) {
            // Someone learned it while we waited for the lock: reuse theirs.
            return Ok(Learned {
                method: (**existing).clone(),
                attempts: 0,
                tests_passed: 0,
            });
        }
        tracing::info!(target: "Orchestrator", object = %object.name, %selector,
            request = %request.request_text, "doesNotUnderstand → creative mandate");

        let mut mandate = LearnMandate::new(
            object.name.clone(),
            selector.to_string(),
            json!(request.args),
        )
        .with_request(request.request_text.clone());
        mandate.slots = Value::Object(object.slots.clone());
        mandate.known_methods = view
            .methods
            .values()
            .map(|m| KnownMethod {
                name: m.selector.to_string(),
                doc: m.doc.clone(),
            })
            .collect();

        let max_attempts = self.config().learn_attempts.max(1);
        let mut failures: Vec<AttemptFailure> = Vec::new();
        for attempt in 1..=max_attempts {
            mandate.feedback = failures
                .iter()
                .map(|f| format!("{}: {}", f.stage, f.message))
                .collect();
            let early = EarlyExitCheck {
                runtime: self,
                object: &object,
                view: &view,
                selector: &selector,
                passed: Mutex::new(None),
            };
            let check = (self.config().early_exit && cascade.mode() == CascadeMode::Full)
                .then_some(&early as &dyn CandidateCheck);
            let (packet, result) = cascade.run_checked(&mandate, None, check).await;
            self.observe_cycle(&packet, result.as_ref().err());
            let failure = match result {
                Err(e) => AttemptFailure {
                    stage: "cascade".into(),
                    rules: vec![],
                    message: format!("the models gave no usable method: {e}"),
                },
                Ok(candidate) => {
                    let checked = match early.take_if_checked(&candidate) {
                        // ROBIN's draft already passed the guard and its tests: reuse that run.
                        Some(outcome) => Ok(outcome),
                        None => {
                            self.check_candidate(&object, &view, &selector, &candidate)
                                .await?
                        }
                    };
                    match checked {
                        Ok(outcome) => {
                            let learned = self
                                .commit_learned(
                                    &object, &selector, &request, candidate, &packet, &outcome,
                                    attempt,
                                )
                                .await?;
                            return Ok(learned);
                        }
                        Err(failure) => failure,
                    }
                }
            };
            tracing::warn!(target: "Orchestrator", %selector, attempt, stage = %failure.stage,
                "attempt failed: {}", failure.message);
            self.store()
                .append_event(NewAuditEvent::new(
                    "learn.attempt_failed",
                    Some(object.id),
                    json!({
                        "selector": selector.as_str(),
                        "attempt": attempt,
                        "failure": failure,
                        "packet": packet.to_json(),
                    }),
                ))
                .await?;
            failures.push(failure);
        }
        let rules: Vec<String> = failures.iter().flat_map(|f| f.rules.clone()).collect();
        self.store()
            .append_event(NewAuditEvent::new(
                "learn.refused",
                Some(object.id),
                json!({ "selector": selector.as_str(), "attempts": max_attempts, "rules": rules }),
            ))
            .await?;
        Err(Error::Refused {
            selector: selector.to_string(),
            attempts: max_attempts,
            failures,
        })
    }

    /// Guard, then tests in the sandbox. `Ok(Err(..))` is a failed attempt; `Err` a broken port.
    async fn check_candidate(
        &self,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
        candidate: &MethodCandidate,
    ) -> Result<std::result::Result<ExecOutcome, AttemptFailure>> {
        let source_verdict = self
            .guard()
            .audit_method(&candidate.source, selector.as_str());
        let tests_verdict = self.guard().audit_tests(&candidate.tests);
        if !source_verdict.accepted || !tests_verdict.accepted {
            let violations: Vec<_> = source_verdict
                .violations
                .iter()
                .chain(tests_verdict.violations.iter())
                .collect();
            tracing::warn!(target: "PersistenceGuardian", %selector, violations = violations.len(), "candidate rejected");
            return Ok(Err(AttemptFailure {
                stage: "guard".into(),
                rules: violations.iter().map(|v| v.rule.id().to_string()).collect(),
                message: violations
                    .iter()
                    .map(|v| v.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            }));
        }
        tracing::info!(target: "PersistenceGuardian", %selector, "candidate accepted by the guard");
        let request = ExecRequest {
            method: MethodSource {
                selector: selector.to_string(),
                source: candidate.source.clone(),
            },
            helpers: view.helpers_for(selector),
            slots: object.slots.clone(),
            args: vec![],
            tests: Some(candidate.tests.clone()),
            limits: self.config().limits.clone(),
        };
        let outcome = self.sandbox().execute(request).await?;
        tracing::info!(target: "Sandbox", %selector, ended = ?outcome.ended,
            passed = outcome.tests.iter().filter(|t| t.passed).count(), total = outcome.tests.len(),
            "tests ran");
        if outcome.tests.is_empty() {
            return Ok(Err(AttemptFailure {
                stage: "tests".into(),
                rules: vec![],
                message: "the tests module defines no test_* function; write at least one test that calls obj.<selector>(...) and asserts its result".into(),
            }));
        }
        if !outcome.succeeded() {
            return Ok(Err(AttemptFailure {
                stage: "tests".into(),
                rules: vec![],
                message: describe_failure(&outcome),
            }));
        }
        Ok(Ok(outcome))
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit_learned(
        &self,
        object: &Object,
        selector: &Selector,
        request: &LearnRequest,
        candidate: MethodCandidate,
        packet: &CognitiveStatePacket,
        outcome: &ExecOutcome,
        attempt: u32,
    ) -> Result<Learned> {
        let models: Vec<String> = {
            let mut m: Vec<String> = packet
                .contributions
                .iter()
                .map(|c| c.model.clone())
                .collect();
            m.sort();
            m.dedup();
            m
        };
        let mut tx = self.store().begin().await?;
        let event = tx
            .append_event(NewAuditEvent::new(
                "learn.committed",
                Some(object.id),
                json!({
                    "selector": selector.as_str(),
                    "attempt": attempt,
                    "request": request.request_text,
                    "candidate": candidate,
                    "tests": outcome.tests,
                    "packet": packet.to_json(),
                }),
            ))
            .await?;
        let method = tx
            .put_method(NewMethod {
                object_id: object.id,
                selector: selector.clone(),
                source: candidate.source.clone(),
                tests: candidate.tests.clone(),
                doc: candidate.doc.clone(),
                provenance: Provenance::Learned {
                    event: Some(event.id),
                    models,
                },
            })
            .await?;
        let method_node = tx
            .add_memory_node(NewMemoryNode {
                meta: json!({ "selector": selector.as_str(), "version": method.version, "object": object.name }),
                ..NewMemoryNode::new("method", format!("{selector}: {}\n{}", candidate.doc, candidate.source))
            })
            .await?;
        tx.add_link(ContextLink {
            from: NodeRef::Object(object.id),
            to: NodeRef::Node(method_node.id),
            kind: "defines".into(),
            weight: 1.0,
        })
        .await?;
        if !request.request_text.trim().is_empty() {
            let request_node = tx
                .add_memory_node(NewMemoryNode {
                    meta: json!({ "selector": selector.as_str(), "object": object.name }),
                    ..NewMemoryNode::new("request", request.request_text.clone())
                })
                .await?;
            tx.add_link(ContextLink {
                from: NodeRef::Node(request_node.id),
                to: NodeRef::Node(method_node.id),
                kind: "produced".into(),
                weight: 1.0,
            })
            .await?;
            tx.add_link(ContextLink {
                from: NodeRef::Node(request_node.id),
                to: NodeRef::Object(object.id),
                kind: "about".into(),
                weight: 1.0,
            })
            .await?;
        }
        tx.commit().await?;
        self.invalidate(object.id);
        tracing::info!(target: "Store", %selector, version = method.version, attempt, "method committed");
        Ok(Learned {
            method,
            attempts: attempt,
            tests_passed: outcome.tests.len(),
        })
    }
}

/// A short account of failed tests or a stopped run, for the next attempt's prompt.
fn describe_failure(outcome: &ExecOutcome) -> String {
    let failed: Vec<String> = outcome
        .tests
        .iter()
        .filter(|t| !t.passed)
        .map(|t| {
            format!(
                "{} failed: {}",
                t.name,
                t.message.as_deref().unwrap_or("no message")
            )
        })
        .collect();
    if !failed.is_empty() {
        return failed.join("; ");
    }
    match &outcome.error {
        Some(e) => format!("{:?}: {}: {}", outcome.ended, e.type_name, e.message),
        None => format!("the run ended with {:?}", outcome.ended),
    }
}
