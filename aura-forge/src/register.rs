//! The facets registry: record a trained adapter as a cognitive facet, promote it to a
//! persona's default when it beats its base, and roll a promotion back.
//!
//! # Records
//!
//! - A **facet** (`babs:grounding-v2`): the base model, the adapter, and in `metrics`
//!   `{status, training, dataset, evaluation}`. `status` is `candidate`, then
//!   `promoted` or `rolled_back`.
//! - The **promotion record** of a persona, a facet named `promoted:<persona>`: its
//!   `metrics` are `{registry: "promotion", current, history}` — `current` is the
//!   promoted facet's name (`null` = the base model), `history` the names promoted
//!   before it, oldest first. Its `adapter_path` and `base_model` copy the current
//!   facet's, so a reader of that one record knows what to load. Names starting with
//!   `promoted:` are reserved for these records.
//!
//! Every change is one store transaction: the facet records and an audit event
//! (`forge.registered`, `forge.promoted`, `forge.rolled_back`) commit together.
//!
//! # Promotion rule
//!
//! A facet is promoted only when, by the [`Evaluation`] recorded with it, its mean
//! per-token loss (negative log-likelihood of the reference replies) is **at most**
//! the base model's on both the dataset's validation split and the fixed probe set
//! the trainer ships (`python/probes.jsonl`). Lower loss is higher likelihood, so "at
//! most" is "at least as good". A missing or non-finite figure refuses promotion.
//!
//! When the evaluation also carries [`Learning`] (learn rates measured through the real
//! learn cycle, as the forge's expert-iteration rounds do), loss is not enough: the
//! facet must also **learn more requests** than the model serving its persona on both
//! the curriculum's held-out tasks and the everyday suite, **with no more
//! committed-but-wrong methods** on either. A likelier reply is worth nothing if fewer
//! requests become correct methods.

use std::collections::BTreeMap;

use aura_cognition::Persona;
use aura_store::{Facet, Store, Transaction};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::curate::Manifest;
use crate::trail::{DatasetRecord, ForgePromoted, ForgeRegistered, ForgeRolledBack, Payload};
use crate::{Error, Result, TrainedAdapter};

/// The prefix of promotion records' names.
const PROMOTION_PREFIX: &str = "promoted:";

/// How a facet and its base did on held-out data: mean per-token loss, lower is better.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The base model on the validation split.
    pub base_validation_loss: f64,
    /// The facet on the validation split.
    pub facet_validation_loss: f64,
    /// The base model on the fixed probe set.
    pub base_probe_loss: f64,
    /// The facet on the fixed probe set.
    pub facet_probe_loss: f64,
    /// Learn rates through the real learn cycle, when they were measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<Learning>,
}

/// How one model did on one set of requests through the learn cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnRate {
    /// Requests told.
    pub requests: u32,
    /// Requests that became a method passing the request's hidden checks.
    pub learned: u32,
    /// Methods committed that fail the hidden checks (the worst outcome).
    pub wrong: u32,
}

impl std::fmt::Display for LearnRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} learned, {} wrong",
            self.learned, self.requests, self.wrong
        )
    }
}

/// A facet against the model serving its persona on the same requests, with the same
/// search budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnComparison {
    /// The model serving the persona when the facet was measured.
    pub serving: LearnRate,
    /// The facet.
    pub facet: LearnRate,
}

impl LearnComparison {
    /// Whether the facet learns more of the same requests with no more wrong methods.
    pub fn beats(&self) -> bool {
        self.facet.requests > 0
            && self.facet.requests == self.serving.requests
            && self.facet.learned > self.serving.learned
            && self.facet.wrong <= self.serving.wrong
    }
}

/// Learn rates of a facet and of the model serving its persona, measured through the
/// real learn cycle (sample and verify, guard, sandbox) and scored by hidden checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learning {
    /// The curriculum's held-out tasks (never trained on).
    pub held_out: LearnComparison,
    /// The everyday suite, which a facet must not lose on.
    pub everyday: LearnComparison,
}

impl Evaluation {
    /// Reads the figures a trainer reports (`validation_loss_before/after`,
    /// `probe_loss_before/after`), when all four are there.
    pub fn from_training_metrics(metrics: &Value) -> Option<Self> {
        let f = |k: &str| metrics.get(k).and_then(Value::as_f64);
        Some(Self {
            base_validation_loss: f("validation_loss_before")?,
            facet_validation_loss: f("validation_loss_after")?,
            base_probe_loss: f("probe_loss_before")?,
            facet_probe_loss: f("probe_loss_after")?,
            learning: None,
        })
    }

    /// The evaluation recorded with a registered facet, when there is one.
    pub fn of_facet(facet: &Facet) -> Option<Self> {
        serde_json::from_value(facet.metrics.get("evaluation")?.clone()).ok()
    }

    /// Whether the facet passes the promotion rule (see the module's documentation).
    pub fn passes(&self) -> bool {
        self.shortfall().is_none()
    }

    /// Why the facet fails the promotion rule, every reason with its figures; `None`
    /// when it passes.
    pub fn shortfall(&self) -> Option<String> {
        let mut why = Vec::new();
        let all = [
            self.base_validation_loss,
            self.facet_validation_loss,
            self.base_probe_loss,
            self.facet_probe_loss,
        ];
        let likelier = all.iter().all(|x| x.is_finite())
            && self.facet_validation_loss <= self.base_validation_loss
            && self.facet_probe_loss <= self.base_probe_loss;
        if !likelier {
            why.push(format!(
                "it does worse than its base: validation loss {:.4} vs base {:.4}, \
                 probe loss {:.4} vs base {:.4}",
                self.facet_validation_loss,
                self.base_validation_loss,
                self.facet_probe_loss,
                self.base_probe_loss
            ));
        }
        if let Some(learning) = self.learning {
            if !(learning.held_out.beats() && learning.everyday.beats()) {
                let side = |c: &LearnComparison| format!("{} against {}", c.facet, c.serving);
                why.push(format!(
                    "it does not learn better than the model serving its persona (more \
                     requests learned, no more wrong methods, on both sets): held-out \
                     tasks {}; everyday suite {}",
                    side(&learning.held_out),
                    side(&learning.everyday)
                ));
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// What to record about a trained adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetRegistration {
    /// The facet's name: `<persona>:<label>`, like `babs:grounding-v2`.
    pub name: String,
    /// The persona it serves (lower-case).
    pub persona: String,
    /// The base model the adapter applies to.
    pub base_model: String,
    /// The trainer's result.
    pub adapter: TrainedAdapter,
    /// Where the dataset lives.
    pub dataset_dir: String,
    /// The dataset's manifest.
    pub manifest: Manifest,
    /// Learn rates measured before registering (see the module's promotion rule). They
    /// go into the facet's evaluation, which exists only when the trainer reported its
    /// losses too: without them the facet cannot be promoted anyway.
    pub learning: Option<Learning>,
}

/// Records a facet (status `candidate`) and its `forge.registered` event in one transaction.
///
/// Its evaluation is read from the training metrics when the trainer reported it.
/// Registering a name again replaces the facet (a retrained adapter).
pub async fn register(store: &dyn Store, reg: FacetRegistration) -> Result<Facet> {
    validate_facet_name(&reg.name, &reg.persona)?;
    let evaluation = Evaluation::from_training_metrics(&reg.adapter.metrics).map(|e| Evaluation {
        learning: reg.learning,
        ..e
    });
    let facet = Facet {
        name: reg.name.clone(),
        persona: reg.persona.clone(),
        base_model: reg.base_model.clone(),
        adapter_path: reg.adapter.adapter_path.clone(),
        metrics: json!({
            "status": "candidate",
            "training": reg.adapter.metrics,
            "dataset": {
                "dir": reg.dataset_dir,
                "manifest": reg.manifest,
            },
            "evaluation": evaluation,
        }),
        created_at: Utc::now(),
    };
    let mut tx = store.begin().await?;
    let facet = tx.put_facet(facet).await?;
    tx.append_event(
        ForgeRegistered {
            facet: facet.name.clone(),
            persona: facet.persona.clone(),
            base_model: facet.base_model.clone(),
            adapter_path: facet.adapter_path.clone(),
            dataset: DatasetRecord {
                train_sha256: reg.manifest.train.sha256.clone(),
                validation_sha256: reg.manifest.validation.sha256.clone(),
                examples: reg.manifest.train.examples + reg.manifest.validation.examples,
            },
            evaluation,
        }
        .event(None),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(target: "Forge", facet = %facet.name, "facet registered");
    Ok(facet)
}

/// Checks that `name` is a valid facet name for `persona`: `<persona>:<label>`, the
/// label made of letters, digits, `-`, `_` or `.`.
pub fn validate_facet_name(name: &str, persona: &str) -> Result<()> {
    let valid = name
        .strip_prefix(persona)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if persona.is_empty() || name.starts_with(PROMOTION_PREFIX) || !valid {
        return Err(Error::Invalid(format!(
            "facet name {name:?} must be \"{persona}:<label>\" with a label of letters, \
             digits, '-', '_' or '.' (like \"{persona}:grounding-v2\")"
        )));
    }
    Ok(())
}

/// The promotion record's contents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Promotion {
    current: Option<String>,
    history: Vec<String>,
}

impl Promotion {
    /// The contents of a promotion record.
    fn of(record: &Facet) -> Self {
        Promotion {
            current: record
                .metrics
                .get("current")
                .and_then(Value::as_str)
                .map(str::to_string),
            history: record
                .metrics
                .get("history")
                .and_then(Value::as_array)
                .map(|h| {
                    h.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The name of `persona`'s promotion record.
fn promotion_record(persona: &str) -> String {
    format!("{PROMOTION_PREFIX}{persona}")
}

async fn read_promotion(store: &dyn Store, persona: &str) -> Result<Promotion> {
    match store.get_facet(&promotion_record(persona)).await {
        Ok(record) => Ok(Promotion::of(&record)),
        Err(aura_store::Error::NotFound { .. }) => Ok(Promotion::default()),
        Err(e) => Err(e.into()),
    }
}

async fn write_promotion(
    tx: &mut dyn Transaction,
    persona: &str,
    promotion: &Promotion,
    current: Option<&Facet>,
) -> Result<()> {
    tx.put_facet(Facet {
        name: promotion_record(persona),
        persona: persona.to_string(),
        base_model: current.map(|f| f.base_model.clone()).unwrap_or_default(),
        adapter_path: current.map(|f| f.adapter_path.clone()).unwrap_or_default(),
        metrics: json!({
            "registry": "promotion",
            "current": promotion.current,
            "history": promotion.history,
        }),
        created_at: Utc::now(),
    })
    .await?;
    Ok(())
}

fn with_status(facet: Facet, status: &str) -> Facet {
    with_metric(facet, "status", json!(status))
}

/// `facet` with `metrics[key]` set to `value` (metrics that are not an object become one).
pub fn with_metric(mut facet: Facet, key: &str, value: Value) -> Facet {
    if let Value::Object(m) = &mut facet.metrics {
        m.insert(key.into(), value);
    } else {
        facet.metrics = json!({ key: value });
    }
    facet
}

/// Makes facet `name` its persona's default when its recorded evaluation passes the
/// promotion rule; otherwise [`Error::Rejected`] with the figures, and nothing changes.
pub async fn promote(store: &dyn Store, name: &str) -> Result<Facet> {
    let facet = store.get_facet(name).await?;
    let evaluation = Evaluation::of_facet(&facet).ok_or_else(|| {
        Error::Rejected(format!(
            "{name} has no evaluation (base and facet losses on validation and probes)"
        ))
    })?;
    if let Some(why) = evaluation.shortfall() {
        return Err(Error::Rejected(format!("{name} is not promoted: {why}")));
    }
    let mut promotion = read_promotion(store, &facet.persona).await?;
    if promotion.current.as_deref() == Some(name) {
        return Ok(facet);
    }
    if let Some(previous) = promotion.current.take() {
        promotion.history.push(previous);
    }
    promotion.current = Some(name.to_string());
    let facet = with_status(facet, "promoted");
    let mut tx = store.begin().await?;
    let facet = tx.put_facet(facet).await?;
    write_promotion(tx.as_mut(), &facet.persona, &promotion, Some(&facet)).await?;
    tx.append_event(
        ForgePromoted {
            facet: name.to_string(),
            persona: facet.persona.clone(),
            evaluation: Some(evaluation),
            previous: promotion.history.last().cloned(),
        }
        .event(None),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(target: "Forge", facet = %name, "facet promoted");
    Ok(facet)
}

/// Undoes `persona`'s last promotion: the facet promoted before it becomes the default
/// again (or the base model, when there was none). Returns the default facet now.
pub async fn rollback(store: &dyn Store, persona: &str) -> Result<Option<Facet>> {
    let mut promotion = read_promotion(store, persona).await?;
    let Some(current) = promotion.current.take() else {
        // A conflict with the registry's state, not a bad request: the same call
        // succeeds once a facet has been promoted.
        return Err(Error::Store(aura_store::Error::Conflict(format!(
            "{persona} has no promoted facet to roll back"
        ))));
    };
    promotion.current = promotion.history.pop();
    let restored = match &promotion.current {
        Some(name) => Some(store.get_facet(name).await?),
        None => None,
    };
    let demoted = store.get_facet(&current).await.ok();
    let mut tx = store.begin().await?;
    if let Some(demoted) = demoted {
        tx.put_facet(with_status(demoted, "rolled_back")).await?;
    }
    write_promotion(tx.as_mut(), persona, &promotion, restored.as_ref()).await?;
    tx.append_event(
        ForgeRolledBack {
            persona: persona.to_string(),
            facet: current.clone(),
            restored: promotion.current.clone(),
        }
        .event(None),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(target: "Forge", %persona, facet = %current, restored = ?promotion.current, "promotion rolled back");
    Ok(restored)
}

/// Whether `facet` is a persona's promotion record (which facet serves it, and the
/// ones before), not a trained facet.
pub fn is_promotion_record(facet: &Facet) -> bool {
    facet.name.starts_with(PROMOTION_PREFIX)
}

/// The trained facets in `store`, without the promotion records.
pub async fn facets(store: &dyn Store) -> Result<Vec<Facet>> {
    let mut facets = store.list_facets().await?;
    facets.retain(|f| !is_promotion_record(f));
    Ok(facets)
}

/// Which facet serves each persona, by persona key (`None`: its base model), from one
/// read of the registry.
pub async fn serving(store: &dyn Store) -> Result<BTreeMap<&'static str, Option<String>>> {
    let records = store.list_facets().await?;
    Ok(Persona::ALL
        .into_iter()
        .map(|persona| {
            let name = promotion_record(persona.key());
            let current = records
                .iter()
                .find(|f| f.name == name)
                .and_then(|record| Promotion::of(record).current);
            (persona.key(), current)
        })
        .collect())
}

/// The facet promoted for `persona`, or `None` when it runs on its base model.
pub async fn promoted_facet(store: &dyn Store, persona: &str) -> Result<Option<Facet>> {
    match read_promotion(store, persona).await?.current {
        Some(name) => Ok(Some(store.get_facet(&name).await?)),
        None => Ok(None),
    }
}
