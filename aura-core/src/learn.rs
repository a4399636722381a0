//! The learn cycle: a message nothing understands becomes a method (docs/ARCHITECTURE.md, "The learn cycle").
//!
//! mandate → cascade → guard (source and tests) → sandbox (tests) → one store
//! transaction. Every attempt, accepted or not, is appended to the audit trail as it
//! happens; only a passing candidate reaches the transaction that writes the method,
//! its `learn.committed` event and the memory nodes linking request, method and object.
//! Anything that fails before the commit leaves the store as it was, but for the trail.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use std::time::Instant;

use aura_cognition::plan::{strip_learn_prefix, AnswerKind, Words};
use aura_cognition::{
    CandidateCheck, CascadeMode, CascadeRun, CheckVerdict, CognitiveStatePacket, EarlyExit,
    Evidence, Grounding, KnownMethod, LearnMandate, MethodCandidate, Persona, RunOptions, Sampling,
};
use aura_guard::normalize::{NormalizeError, Normalized};
use aura_sandbox::{ExecOutcome, ExecRequest, MethodSource};
use aura_store::{
    ContextLink, DynStore, Method, NewMemoryNode, NewMethod, NodeRef, Object, Provenance, Selector,
    StoreExt,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::field::Empty;
use tracing::Instrument as _;

pub use aura_forge::trail::AttemptFailure;
use aura_forge::trail::{LearnAttemptFailed, LearnCommitted, LearnRefused, Payload, Stage};

use crate::dispatch::{calls_of, ChainView};
use crate::library::Library;
use crate::reading::Reader;
use crate::search::{
    self, request_examples, CallOutput, Decision, Pool, SampleTiming, Spec, ValueKind,
};
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

/// How many calls a learned method's reply shows the person.
const SHOWN_CALLS: usize = 3;

/// What a successful learn cycle produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Learned {
    /// The committed method.
    pub method: Method,
    /// How many attempts it took (1 = the first candidate passed).
    pub attempts: u32,
    /// How many tests it passed.
    pub tests_passed: usize,
    /// A few calls and what the method returned or raised, for the person to check
    /// (where the samples parted first); empty when the method was reused, not learned.
    pub shown: Vec<(Vec<Value>, CallOutput)>,
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
            .map_err(|e| aura_cognition::Error::wrap("store", e))?;
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

    /// Waits for `key`'s lock and holds it until the returned guard drops; the map's
    /// entry goes with the last holder, so finished learns leave nothing behind.
    async fn hold(&self, key: LearnKey) -> LearnHold<'_> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= self.max {
                // Backstop for learners cancelled while waiting (their entry has no
                // holder left): a lock only the map holds has nobody waiting on it.
                map.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            map.entry(key.clone()).or_default().clone()
        };
        LearnHold {
            locks: self,
            key,
            guard: lock.lock_owned().await,
        }
    }

    /// How many locks are kept.
    pub(crate) fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The search's winner and everything its commit records.
struct Winner<'a> {
    object: &'a Object,
    selector: &'a Selector,
    request: &'a LearnRequest,
    /// The method as it will be stored (normalised; its tests the ones that ran).
    candidate: MethodCandidate,
    /// The winner's cascade packet, with its `Selection`.
    packet: &'a CognitiveStatePacket,
    /// Its tests' run before the commit.
    outcome: &'a ExecOutcome,
    pool: &'a Pool,
    /// The winner's place in the pool.
    index: usize,
    /// How many candidates were drawn.
    attempt: u32,
}

/// A held learn lock: dropping it releases the lock and, when nobody else waits for
/// it, removes its entry.
struct LearnHold<'a> {
    locks: &'a LearnLocks,
    key: LearnKey,
    guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for LearnHold<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.locks.lock().unwrap_or_else(|p| p.into_inner());
        // The map's handle and the guard's are the only ones: nobody waits. A waiter
        // holds its own clone, taken under this same map lock, so it cannot slip in.
        // (The guard itself is released right after, as the field drops.)
        if Arc::strong_count(tokio::sync::OwnedMutexGuard::mutex(&self.guard)) <= 2 {
            map.remove(&self.key);
        }
    }
}

/// The full cascade's early exit: ROBIN's draft gets the same hard checks as any
/// sample (guard, the request's examples, the call, its own asserts) on the inputs
/// the search has so far; a pass ends the cycle there.
struct EarlyExitCheck<'a> {
    runtime: &'a Runtime,
    object: &'a Object,
    view: &'a ChainView,
    selector: &'a Selector,
    pool: &'a Pool,
}

impl std::fmt::Debug for EarlyExitCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarlyExitCheck")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CandidateCheck for EarlyExitCheck<'_> {
    async fn check(&self, candidate: &MethodCandidate) -> CheckVerdict {
        let mut scratch = self.pool.scratch();
        let verified = self
            .runtime
            .verify(
                &mut scratch,
                candidate.clone(),
                self.object,
                self.view,
                self.selector,
            )
            .await;
        match verified {
            Ok(index) => match &scratch.drawn[index].failure {
                None => CheckVerdict::Passed,
                Some(f) => CheckVerdict::Failed {
                    reason: format!("{}: {}", f.stage, f.message),
                },
            },
            // A broken port is not the draft's fault: let the cascade go on; the final
            // candidate's own check reports the port error.
            Err(e) => CheckVerdict::Failed {
                reason: format!("the draft could not be checked: {e}"),
            },
        }
    }
}

/// The seed and temperature of the `n`-th sample, from a schedule of eight that
/// repeats: its first near-greedy (the model's most likely answer), the rest spread
/// over 0.4–0.8 for diversity. The schedule does not depend on how many samples a
/// search may draw, so a longer search replays a shorter one's first draws.
fn sampling(n: u32, base_seed: u64) -> Sampling {
    // A 135M model's samples get worse quickly above ~0.7: stay mostly below it.
    const SCHEDULE: [f32; 8] = [0.2, 0.4, 0.5, 0.6, 0.7, 0.5, 0.8, 0.6];
    let temperature = SCHEDULE[n as usize % SCHEDULE.len()];
    Sampling {
        seed: base_seed.wrapping_add(u64::from(n)),
        temperature,
        draw: n,
    }
}

/// What a learn does when the object already has the method.
#[derive(Clone, Copy)]
enum Existing {
    /// Returns it: someone learned it while this learn waited for the lock.
    Reuse,
    /// Learns a new version.
    Replace,
}

impl Runtime {
    /// Runs the learn cycle for `request.selector` on object `id` and commits the method.
    ///
    /// Draws up to `learn_samples` candidates within `learn_budget` and commits the
    /// first that the search accepts (see [`crate::search`]). Returns
    /// [`Error::Refused`] when none is accepted: the reasons name each candidate's
    /// failure (the guard's rule ids, the failing example, …) and the search's own,
    /// and nothing but the audit trail of the candidates was written.
    ///
    /// Traced as the span `aura.learn` (target `aura`), with a child per sample
    /// (`aura.sample`: its personas, guard and sandbox runs) and the commit (`aura.commit`).
    pub async fn learn(&self, id: aura_store::ObjectId, request: LearnRequest) -> Result<Learned> {
        self.learn_cycle(id, request, Existing::Reuse).await
    }

    /// Learns `request.selector` again although object `id` already has it, as when
    /// the user's own example shows the method is wrong ("fibonacci(10) == 55" when it
    /// gives 21). The same search runs; an accepted candidate becomes the method's
    /// next version (the old ones stay in [`Runtime::method_versions`]), and a refusal
    /// leaves the method as it was.
    pub async fn relearn(
        &self,
        id: aura_store::ObjectId,
        request: LearnRequest,
    ) -> Result<Learned> {
        self.learn_cycle(id, request, Existing::Replace).await
    }

    #[tracing::instrument(name = "aura.learn", target = "aura", level = "info", skip_all, fields(
        aura.selector = %request.selector, aura.object.id = %id, aura.object.name = Empty,
        aura.learn.outcome = Empty, aura.learn.samples = Empty))]
    async fn learn_cycle(
        &self,
        id: aura_store::ObjectId,
        request: LearnRequest,
        existing: Existing,
    ) -> Result<Learned> {
        let selector = crate::dispatch::parse_selector(&request.selector)?;
        let cascade = self.cascade().ok_or_else(|| Error::Unavailable {
            port: "model",
            message: "no language model is configured, so nothing can be learned: \
                      pass one to RuntimeBuilder::model (or install the local model with scripts/setup.sh)"
                .into(),
        })?;
        let _held = self.learn_locks().hold((id, selector.clone())).await;

        let object = self.object(id).await?;
        tracing::Span::current().record("aura.object.name", object.name.as_str());
        self.invalidate(id);
        let view = self.chain_view(id).await?;
        let own = view.resolve(&selector).filter(|m| m.object_id == id);
        if let (Some(existing), Existing::Reuse) = (own, existing) {
            // Someone learned it while we waited for the lock: reuse theirs.
            tracing::Span::current().record("aura.learn.outcome", "reused");
            return Ok(Learned {
                method: (**existing).clone(),
                attempts: 0,
                tests_passed: 0,
                shown: Vec::new(),
            });
        }
        tracing::info!(target: "Orchestrator", object = %object.name, %selector,
            request = %request.request_text, "doesNotUnderstand → creative mandate");

        let mut mandate = mandate_for(&object, &view, &selector, &request);

        let config = self.config();
        let spec = Spec {
            examples: request_examples(self.guard(), &request.request_text, selector.as_str()),
            trigger: (!request.args.is_empty()).then(|| request.args.clone()),
            hint: ValueKind::from_words(&request.request_text),
            answer: AnswerKind::of(strip_learn_prefix(&request.request_text), selector.as_str()),
            selector: selector.to_string(),
        };
        let mut pool = Pool::new(spec);
        let samples = config.learn_samples.max(1);
        let agreement = config.learn_agreement.max(1) as usize;
        let base_seed = config.learn_seed.unwrap_or_else(rand_seed);
        let started = Instant::now();
        let mut context = None;
        let mut packets: Vec<CognitiveStatePacket> = Vec::new();
        let mut undecided = String::new();
        // The writer's own model reads the asserts (see `crate::reading`).
        let mut reader = cascade
            .persona(Persona::Alfred)
            .filter(|_| config.learn_reading)
            .and_then(|p| Reader::new(p.model.clone(), &request.request_text, selector.as_str()));
        for n in 0..samples {
            if n > 0 && started.elapsed() >= config.learn_budget {
                undecided = format!(
                    "the search's {} s budget ran out after {n} samples; {undecided}",
                    config.learn_budget.as_secs()
                );
                break;
            }
            if cascade.mode() == CascadeMode::Full {
                mandate.feedback = pool
                    .failures()
                    .iter()
                    .map(|f| format!("{}: {}", f.stage, f.message))
                    .collect();
            }
            let early = EarlyExitCheck {
                runtime: self,
                object: &object,
                view: &view,
                selector: &selector,
                pool: &pool,
            };
            let check = if config.early_exit && cascade.mode() == CascadeMode::Full {
                EarlyExit::With(&early)
            } else {
                EarlyExit::Off
            };
            let options = RunOptions {
                context: context.clone(),
                check,
                sampling: Some(sampling(n, base_seed)),
            };
            let sample = tracing::info_span!(target: "aura", "aura.sample", aura.sample = n + 1,
                aura.sampling.seed = Empty, aura.sampling.temperature = Empty,
                aura.candidate.failure = Empty);
            if let (false, Some(draw)) = (sample.is_disabled(), options.sampling) {
                sample.record("aura.sampling.seed", draw.seed);
                sample.record("aura.sampling.temperature", f64::from(draw.temperature));
            }
            // The budget bounds the model's answer too: a backend that hangs must not
            // hold the learn (and its lock) forever. Nothing is written while the
            // cascade runs, so dropping it loses nothing.
            let asked = started.elapsed();
            let left = config.learn_budget.saturating_sub(asked);
            let run = cascade.run(&mandate, options).instrument(sample.clone());
            let run = tokio::time::timeout(left, run).await;
            let answered = started.elapsed();
            let Ok(CascadeRun { packet, result }) = run else {
                undecided = format!(
                    "the search's {} s budget ran out while the model was writing sample {} \
                     (it did not answer in time); {undecided}",
                    config.learn_budget.as_secs(),
                    n + 1
                );
                break;
            };
            self.observe_cycle(&packet, result.as_ref().err());
            if context.is_none() {
                context = packet.context.clone();
            }
            let index = match result {
                Ok(candidate) => {
                    self.verify(&mut pool, candidate, &object, &view, &selector)
                        .instrument(sample.clone())
                        .await?
                }
                Err(e) => pool.push_failed(AttemptFailure::new(
                    Stage::Model,
                    format!("the model gave no usable code: {e}"),
                )),
            };
            if let Some(failure) = pool.drawn[index].failure.clone() {
                sample.record("aura.candidate.failure", failure.stage.as_str());
                tracing::warn!(target: "Orchestrator", %selector, sample = n + 1, stage = %failure.stage,
                    "candidate failed: {}", failure.message);
                self.store()
                    .append_event(
                        LearnAttemptFailed {
                            selector: selector.to_string(),
                            attempt: n + 1,
                            failure,
                            candidate: pool.drawn[index].raw.clone(),
                            packet: packet.clone(),
                        }
                        .event(Some(object.id)),
                    )
                    .await?;
            }
            packets.push(packet);
            if n == 0 && config.learn_library {
                // After the model's first sample, so that the monologue tells the
                // cycle in order and the sample's inputs are there to run them on.
                self.propose_from_library(
                    &mut pool,
                    &mut packets,
                    &mandate,
                    &request,
                    &object,
                    &view,
                    &selector,
                )
                .instrument(sample.clone())
                .await?;
            }
            self.refresh(&mut pool, &object, &view, &selector)
                .instrument(sample.clone())
                .await?;
            pool.drawn[index].timing = SampleTiming {
                start_ms: asked.as_secs_f64() * 1e3,
                model_ms: (answered - asked).as_secs_f64() * 1e3,
                check_ms: (started.elapsed() - answered).as_secs_f64() * 1e3,
            };
            match pool.decide(agreement) {
                Decision::Accept {
                    index,
                    mut selection,
                    rivals,
                } => {
                    if let Some(reader) = reader.as_mut() {
                        match reader.weigh_against(&pool, index, &rivals).await {
                            Ok(Some(reading)) if reading.overrules() => {
                                let library = pool.drawn[reading.rival].library.as_deref();
                                undecided = reading.objection(selector.as_str(), library);
                                tracing::info!(target: "Orchestrator", %selector, sample = n + 1,
                                    margin = reading.margin, "the reading overrules the vote: {undecided}");
                                continue;
                            }
                            Ok(Some(reading)) => {
                                tracing::info!(target: "Orchestrator", %selector, sample = n + 1,
                                    margin = reading.margin, "the reading agrees with the vote");
                                selection.reading = Some(reading.margin);
                            }
                            Ok(None) => {}
                            // The reading is a second opinion: without it the vote stands.
                            Err(e) => tracing::warn!(target: "Orchestrator", %selector,
                                "the model could not read the asserts ({e}); the vote stands"),
                        }
                    }
                    match self
                        .confirm(&pool, index, &object, &view, &selector)
                        .instrument(sample.clone())
                        .await?
                    {
                        Ok((candidate, outcome)) => {
                            let mut packet = packets[index].clone();
                            packet.selection = Some(selection);
                            let winner = Winner {
                                object: &object,
                                selector: &selector,
                                request: &request,
                                candidate,
                                packet: &packet,
                                outcome: &outcome,
                                pool: &pool,
                                index,
                                attempt: n + 1,
                            };
                            drop(sample); // a span ends when its last handle drops
                            let learn = tracing::Span::current();
                            learn.record("aura.learn.outcome", "committed");
                            learn.record("aura.learn.samples", n + 1);
                            let commit = tracing::info_span!(target: "aura", "aura.commit",
                                aura.method.version = Empty);
                            return self.commit_learned(winner).instrument(commit).await;
                        }
                        Err(failure) => pool.drawn[index].failure = Some(failure),
                    }
                }
                Decision::Undecided(reason) => undecided = reason,
            }
        }
        Err(self.refuse(&object, &selector, &pool, undecided).await?)
    }

    /// The standard library's proposals for this request (see `crate::library`):
    /// verified like samples, each with a packet so that pool and packets stay aligned.
    #[allow(clippy::too_many_arguments)] // the search's state, passed as the loop holds it
    async fn propose_from_library(
        &self,
        pool: &mut Pool,
        packets: &mut Vec<CognitiveStatePacket>,
        mandate: &LearnMandate,
        request: &LearnRequest,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<()> {
        for function in Library::get().lookup(&request.request_text, selector.as_str()) {
            tracing::info!(target: "Orchestrator", %selector, function = %function.name,
                "the standard library proposes a candidate");
            let proposal = MethodCandidate {
                source: function.method_source(selector.as_str()),
                doc: function.doc.clone(),
                rationale: format!(
                    "the standard library's {}: its documentation matches the request",
                    function.name
                ),
                ..MethodCandidate::default()
            };
            let name = Some(function.name.clone());
            self.verify_from(pool, proposal, name, object, view, selector)
                .await?;
            packets.push(CognitiveStatePacket {
                mandate: mandate.clone(),
                ..CognitiveStatePacket::default()
            });
        }
        Ok(())
    }

    /// Records a search that committed nothing (`learn.refused`, every candidate's
    /// failure and then the search's own) and returns the error that says so.
    async fn refuse(
        &self,
        object: &Object,
        selector: &Selector,
        pool: &Pool,
        undecided: String,
    ) -> Result<Error> {
        let drawn = pool.samples().count() as u32;
        let learn = tracing::Span::current();
        learn.record("aura.learn.outcome", "refused");
        learn.record("aura.learn.samples", drawn);
        let mut failures = pool.failures();
        failures.push(AttemptFailure::new(Stage::Search, undecided));
        let rules: Vec<String> = failures.iter().flat_map(|f| f.rules.clone()).collect();
        self.store()
            .append_event(
                LearnRefused {
                    selector: selector.to_string(),
                    attempts: drawn,
                    rules,
                    failures: failures.clone(),
                    candidates: pool.summary(),
                }
                .event(Some(object.id)),
            )
            .await?;
        Ok(Error::Refused {
            selector: selector.to_string(),
            attempts: drawn,
            failures,
        })
    }

    /// Normalises, audits and runs one candidate on the pool's inputs, and judges it.
    /// Returns its index in the pool. `Err` is a broken port, not a bad candidate.
    pub(crate) async fn verify(
        &self,
        pool: &mut Pool,
        raw: MethodCandidate,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<usize> {
        self.verify_from(pool, raw, None, object, view, selector)
            .await
    }

    /// [`Runtime::verify`] for a candidate that calls the standard-library function
    /// `library` (the search's own proposal) when it is `Some`.
    async fn verify_from(
        &self,
        pool: &mut Pool,
        raw: MethodCandidate,
        library: Option<String>,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<usize> {
        let code = if raw.tests.trim().is_empty() {
            raw.source.clone()
        } else {
            format!("{}\n\n{}", raw.source, raw.tests)
        };
        // Every path below records the candidate exactly once.
        let grows = library.is_none();
        let push = move |pool: &mut Pool,
                         normalized: Option<Normalized>,
                         failure: Option<AttemptFailure>| {
            let index = pool.push(raw, normalized, failure);
            pool.drawn[index].library = library;
            index
        };
        // The span ends when it drops: before the sandbox runs, or with an early return.
        let audit = tracing::info_span!(target: "aura", "aura.guard",
            aura.guard.verdict = "accepted", aura.guard.rules = Empty);
        let normalized = match audit.in_scope(|| self.guard().normalize(&code, selector.as_str())) {
            Ok(n) => n,
            Err(NormalizeError::Rejected(verdict)) => {
                record_rejection(&audit, "rejected", &verdict);
                tracing::warn!(target: "PersistenceGuardian", %selector, "candidate rejected");
                return Ok(push(pool, None, Some(guard_failure(&verdict))));
            }
            Err(NormalizeError::Unusable(message)) => {
                audit.record("aura.guard.verdict", "unusable");
                return Ok(push(
                    pool,
                    None,
                    Some(AttemptFailure::new(Stage::Shape, message)),
                ));
            }
        };
        let verdict = audit.in_scope(|| {
            self.guard()
                .audit_method(&normalized.source, selector.as_str())
        });
        if !verdict.accepted {
            record_rejection(&audit, "rejected", &verdict);
            tracing::warn!(target: "PersistenceGuardian", %selector, "candidate rejected");
            return Ok(push(pool, Some(normalized), Some(guard_failure(&verdict))));
        }
        drop(audit);
        tracing::debug!(target: "PersistenceGuardian", %selector, "candidate accepted by the guard");
        // A standard-library proposal runs on the inputs the samples bring, never
        // adds its own: its arity is a guess from the request's words, and it must not
        // change what the samples are probed with (or which values a refusal asks for).
        if grows {
            pool.grow_for(&normalized);
        }
        let index = push(pool, Some(normalized), None);
        self.run_probes(pool, index, object, view, selector).await?;
        pool.judge(index);
        Ok(index)
    }

    /// Runs every eligible candidate on the inputs later candidates added: one
    /// sandbox batch, each candidate isolated in it as if run alone.
    async fn refresh(
        &self,
        pool: &mut Pool,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<()> {
        // Who ran on what, beside the requests the batch takes by value.
        let mut runs = Vec::new();
        let mut requests = Vec::new();
        for index in 0..pool.drawn.len() {
            if pool.drawn[index].failure.is_some() {
                continue;
            }
            if let Some((inputs, request)) = self.probe_request(pool, index, object, view, selector)
            {
                runs.push((index, inputs));
                requests.push(request);
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        let span = sandbox_span("probes", requests.len());
        let outcomes = self
            .sandbox()
            .execute_batch(requests)
            .instrument(span)
            .await?;
        for ((index, inputs), outcome) in runs.iter().zip(&outcomes) {
            pool.record_run(*index, inputs, outcome);
            pool.judge(*index);
        }
        Ok(())
    }

    /// One sandbox call: the harness runs the candidate on the inputs it lacks.
    async fn run_probes(
        &self,
        pool: &mut Pool,
        index: usize,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<()> {
        if let Some((inputs, request)) = self.probe_request(pool, index, object, view, selector) {
            let outcome = self
                .sandbox()
                .execute(request)
                .instrument(sandbox_span("probes", 1))
                .await?;
            pool.record_run(index, &inputs, &outcome);
        }
        Ok(())
    }

    /// The harness call that runs `drawn[index]` on the inputs it lacks, with those
    /// inputs; `None` when there are none, or it never became a method.
    fn probe_request(
        &self,
        pool: &Pool,
        index: usize,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Option<(Vec<Vec<Value>>, ExecRequest)> {
        let normalized = pool.drawn[index].normalized.as_ref()?;
        let inputs = pool.missing_inputs(index);
        if inputs.is_empty() {
            return None;
        }
        let mut helpers = view.helpers_for(selector, calls_of(&[&normalized.source]).as_deref());
        helpers.push(MethodSource {
            selector: selector.to_string(),
            source: normalized.source.clone(),
        });
        let request = ExecRequest {
            method: MethodSource {
                selector: search::HARNESS.into(),
                source: search::harness_source(selector.as_str()),
            },
            helpers,
            slots: object.slots.clone(),
            args: vec![json!(inputs)],
            tests: None,
            limits: self.config().limits.clone(),
        };
        Some((inputs, request))
    }

    /// Runs the winner's committed tests once more, as its tests, before the commit.
    async fn confirm(
        &self,
        pool: &Pool,
        index: usize,
        object: &Object,
        view: &ChainView,
        selector: &Selector,
    ) -> Result<std::result::Result<(MethodCandidate, ExecOutcome), AttemptFailure>> {
        let drawn = &pool.drawn[index];
        let Some(normalized) = &drawn.normalized else {
            return Ok(Err(AttemptFailure::new(
                Stage::Search,
                "the winner has no normalised source",
            )));
        };
        let tests = pool.tests_for(index, selector.as_str());
        let request = ExecRequest {
            method: MethodSource {
                selector: selector.to_string(),
                source: normalized.source.clone(),
            },
            helpers: view.helpers_for(selector, calls_of(&[&normalized.source, &tests]).as_deref()),
            slots: object.slots.clone(),
            args: vec![],
            tests: Some(tests.clone()),
            limits: self.config().limits.clone(),
        };
        let outcome = self
            .sandbox()
            .execute(request)
            .instrument(sandbox_span("tests", 1))
            .await?;
        tracing::info!(target: "Sandbox", %selector, ended = ?outcome.ended,
            passed = outcome.tests.iter().filter(|t| t.passed).count(), total = outcome.tests.len(),
            "the winner's tests ran");
        if outcome.tests.is_empty() || !outcome.succeeded() {
            return Ok(Err(AttemptFailure::new(
                Stage::Tests,
                describe_failure(&outcome),
            )));
        }
        Ok(Ok((
            MethodCandidate {
                source: normalized.source.clone(),
                tests,
                doc: clip_line(&drawn.raw.doc, 120),
                rationale: drawn.raw.rationale.clone(),
            },
            outcome,
        )))
    }

    /// Commits the search's winner in one transaction: the method, its
    /// `learn.committed` event, and the memory nodes and links that ground later learns.
    async fn commit_learned(&self, winner: Winner<'_>) -> Result<Learned> {
        let Winner {
            object,
            selector,
            request,
            candidate,
            packet,
            outcome,
            pool,
            index,
            attempt,
        } = winner;
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
        // The user's words say what the method is for better than a model's prose.
        let mut candidate = candidate;
        let task = strip_learn_prefix(&request.request_text);
        if !task.trim().is_empty() {
            candidate.doc = clip_line(task, 120);
        }
        let mut tx = self.store().begin().await?;
        let event = tx
            .append_event(
                LearnCommitted {
                    selector: selector.to_string(),
                    attempt,
                    request: request.request_text.clone(),
                    candidate: candidate.clone(),
                    tests: outcome.tests.clone(),
                    packet: packet.clone(),
                    candidates: pool.summary(),
                }
                .event(Some(object.id)),
            )
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
                calls: calls_of(&[&candidate.source]),
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
        tracing::Span::current().record("aura.method.version", method.version);
        self.method_written(&method);
        tracing::info!(target: "Store", %selector, version = method.version, attempt, "method committed");
        Ok(Learned {
            method,
            attempts: attempt,
            tests_passed: outcome.tests.len(),
            shown: pool.showcase(index, SHOWN_CALLS),
        })
    }
}

/// The creative mandate for `request` on `object`: its slots, and the methods its
/// chain already knows that look most like the request.
fn mandate_for(
    object: &Object,
    view: &ChainView,
    selector: &Selector,
    request: &LearnRequest,
) -> LearnMandate {
    let mut mandate = LearnMandate::new(
        object.name.clone(),
        selector.to_string(),
        json!(request.args),
    )
    .with_request(request.request_text.clone());
    mandate.slots = Value::Object(object.slots.clone());
    mandate.known_methods = known_methods(view, &request.request_text, selector);
    mandate
}

/// The span of one sandbox request (`aura.sandbox`): what it ran (`probes`: candidates on
/// probe inputs; `tests`: the winner's tests; `call`: a method called) and for how many
/// candidates (a batch runs several).
pub(crate) fn sandbox_span(purpose: &'static str, candidates: usize) -> tracing::Span {
    tracing::info_span!(target: "aura", "aura.sandbox", aura.sandbox.purpose = purpose,
        aura.sandbox.candidates = candidates as u64)
}

/// Records a refused candidate on its `aura.guard` span: the verdict and the rule ids.
fn record_rejection(span: &tracing::Span, verdict: &str, found: &aura_guard::Verdict) {
    if span.is_disabled() {
        return;
    }
    span.record("aura.guard.verdict", verdict);
    let rules: Vec<&str> = found.violations.iter().map(|v| v.rule.id()).collect();
    span.record("aura.guard.rules", rules.join(",").as_str());
}

/// The guard's verdict as a candidate's failure.
fn guard_failure(verdict: &aura_guard::Verdict) -> AttemptFailure {
    AttemptFailure {
        stage: Stage::Guard,
        rules: verdict
            .violations
            .iter()
            .map(|v| v.rule.id().to_string())
            .collect(),
        message: verdict
            .violations
            .iter()
            .map(|v| format!("{} [{}]", v.message, v.rule.id()))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The first line of `text`, at most `max` characters.
fn clip_line(text: &str, max: usize) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect()
}

/// A seed for a search nobody seeded: the clock's nanoseconds.
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A short account of failed tests or a stopped run.
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

/// The most methods a mandate names. A learned library holds thousands; the personas'
/// prompts show a few, and the packet (kept whole in the trail) should not carry them all.
const MAX_KNOWN_METHODS: usize = 16;

/// The methods a mandate names: those whose selector shares a word with the request,
/// then the nearest on the chain, each group in selector order (so prompts repeat).
/// A library holds thousands of methods and a mandate names a few, so each group keeps
/// only the few it can still use while the chain is read, never a list of them all.
fn known_methods(view: &ChainView, request: &str, selector: &Selector) -> Vec<KnownMethod> {
    let mut words = Words::of(request);
    words.add(selector.as_str());
    let mut related = Smallest::new(MAX_KNOWN_METHODS);
    let mut nearest: Vec<&Arc<Method>> = Vec::new();
    for table in view.chain() {
        let mut own = Smallest::new(MAX_KNOWN_METHODS - nearest.len());
        for m in table
            .methods()
            .filter(|m| view.resolve(&m.selector).is_some_and(|r| Arc::ptr_eq(r, m)))
        {
            if words.shared_by(m.selector.as_str()) {
                related.offer(m);
            } else {
                own.offer(m);
            }
        }
        nearest.extend(own.kept);
    }
    related
        .kept
        .into_iter()
        .chain(nearest)
        .take(MAX_KNOWN_METHODS)
        .map(|m| KnownMethod {
            name: m.selector.to_string(),
            doc: m.doc.clone(),
        })
        .collect()
}

/// The at most `cap` methods of smallest selector among those offered, in selector
/// order: a bounded selection, so a large library is never listed to name a few.
struct Smallest<'a> {
    cap: usize,
    kept: Vec<&'a Arc<Method>>,
}

impl<'a> Smallest<'a> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            kept: Vec::with_capacity(cap),
        }
    }

    fn offer(&mut self, m: &'a Arc<Method>) {
        if self.kept.len() == self.cap {
            match self.kept.last() {
                Some(last) if m.selector < last.selector => {}
                _ => return,
            }
        }
        let at = self.kept.partition_point(|k| k.selector <= m.selector);
        self.kept.insert(at, m);
        self.kept.truncate(self.cap);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test fixtures: a failed setup should panic loudly
mod tests {
    use super::*;
    use crate::dispatch::{ChainMethods, MethodTable};
    use aura_store::ObjectId;

    fn method(object: ObjectId, selector: &str) -> Method {
        Method {
            object_id: object,
            selector: Selector::new(selector).unwrap(),
            source: format!("def {selector}(self):\n    return 1\n"),
            tests: String::new(),
            doc: format!("does {selector}"),
            version: 1,
            provenance: Provenance::Manual,
            calls: Some(vec![]),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_mandate_names_a_few_methods_of_a_large_library_related_ones_first() {
        let (own, root) = (ObjectId::new(), ObjectId::new());
        let library: Vec<Method> = (0..5000)
            .map(|i| method(root, &format!("skill_{i:04}")))
            .chain([method(root, "prime_factors")])
            .collect();
        let view = ChainView {
            methods: ChainMethods::new(vec![
                Arc::new(MethodTable::new(
                    own,
                    "calc".into(),
                    vec![root],
                    vec![method(own, "area")],
                )),
                Arc::new(MethodTable::new(root, "genesis".into(), vec![], library)),
            ]),
        };
        let named = known_methods(
            &view,
            "check whether a number is prime",
            &Selector::new("is_prime").unwrap(),
        );
        let names: Vec<&str> = named.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names.len(), MAX_KNOWN_METHODS);
        assert_eq!(names[..3], ["prime_factors", "area", "skill_0000"]);
        assert_eq!(
            known_methods(
                &view,
                "check whether a number is prime",
                &Selector::new("is_prime").unwrap()
            ),
            named,
            "the same request names the same methods"
        );
    }

    #[tokio::test]
    async fn a_finished_learn_leaves_no_lock_behind_and_a_waiter_keeps_its_own() {
        let locks = Arc::new(LearnLocks::new(16));
        let key = (
            aura_store::ObjectId::new(),
            Selector::new("double").unwrap(),
        );
        let first = locks.hold(key.clone()).await;
        assert_eq!(locks.len(), 1);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let locks = locks.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let _second = locks.hold(key).await;
                let _ = tx.send(locks.len());
            })
        };
        // Let the waiter take its handle and block on the lock.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(first);
        // The waiter got the lock through the entry the first holder left in place.
        assert_eq!(rx.await.unwrap(), 1);
        waiter.await.unwrap();
        assert_eq!(locks.len(), 0, "the last holder removed the entry");
    }
}
