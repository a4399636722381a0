//! The Entropy Cascade: BRICK → ROBIN → BABS → ALFRED, each step grounded in memory.
//!
//! One cycle:
//!
//! 1. the real-time context is assembled (when an ingestor is configured) and shown to
//!    the first persona only;
//! 2. a grounding round on the mandate itself (selector + request words);
//! 3. each persona in order gets a short prompt — the mandate, the memory evidence so
//!    far, the earlier personas' output, earlier attempts' feedback — and its reply is
//!    recorded in the [`CognitiveStatePacket`]; a grounding round follows each step,
//!    its query built from the step's words, so the next persona sees new evidence;
//! 4. ROBIN drafts a [`MethodCandidate`]; with a [`CandidateCheck`] supplied, a passing
//!    draft ends the cycle early (BABS and ALFRED are skipped);
//! 5. ALFRED writes the final candidate as schema-checked JSON (one repair round);
//!    if ALFRED fails, ROBIN's draft is used when there is one;
//! 6. the cycle's CEM is computed and the timings filled in.
//!
//! [`CascadeMode::Single`] runs only ALFRED (after the mandate's grounding round).

mod packet;
mod repair;
mod types;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::Utc;
use tracing::field::Empty;
use tracing::Instrument as _;

pub use packet::{
    CascadeMode, CognitiveStatePacket, GroundingRound, PacketTiming, PersonaContribution, Verdict,
};
pub(crate) use repair::{chat_structured, loose_json};
pub use types::{
    big_int_digits, code_blocks, python_args, python_literal, CandidateCheck, CheckVerdict,
    DynCandidateCheck, DynGrounding, Evidence, Grounding, KnownMethod, LearnMandate,
    MethodCandidate, NoGrounding, Sampling, Selection, BIG_INT_KEY,
};

use crate::cem::{Cem, CemInput};
use crate::context::{ContextIngestor, RealTimeContextFractal};
use crate::{
    ChatRequest, DynLanguageModel, Error, GenerationOptions, Persona, PersonaConfig, PromptSet,
    Result,
};

macro_rules! persona_event {
    ($p:expr, $($arg:tt)+) => {
        match $p {
            Persona::Brick => tracing::debug!(target: "Cascade.BRICK", $($arg)+),
            Persona::Robin => tracing::debug!(target: "Cascade.ROBIN", $($arg)+),
            Persona::Babs => tracing::debug!(target: "Cascade.BABS", $($arg)+),
            Persona::Alfred => tracing::debug!(target: "Cascade.ALFRED", $($arg)+),
        }
    };
}

/// What a cycle produced: the candidate and the packet that explains it.
#[derive(Clone, Debug, PartialEq)]
pub struct CascadeOutcome {
    /// The method and tests to audit, test and commit.
    pub candidate: MethodCandidate,
    /// The cycle's full record.
    pub packet: CognitiveStatePacket,
}

/// How one cycle runs ([`Cascade::run`]); the default runs it as configured.
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// A context the caller already assembled, used instead of the ingestor's.
    pub context: Option<RealTimeContextFractal>,
    /// Which check may end the full cascade early on ROBIN's draft.
    pub check: EarlyExit<'a>,
    /// The candidate writers' seed and temperature: one sample of a
    /// sample-and-verify search (`None`: the models' own defaults).
    pub sampling: Option<Sampling>,
}

/// Which check runs ROBIN's draft in the full cascade; one that passes ends the cycle.
#[derive(Clone, Copy, Debug, Default)]
pub enum EarlyExit<'a> {
    /// The one configured with [`CascadeBuilder::candidate_check`], if any.
    #[default]
    Configured,
    /// This one, for this cycle: the caller knows the object the method is for, so
    /// it can run the draft against that object's state.
    With(&'a dyn CandidateCheck),
    /// None: every persona speaks.
    Off,
}

/// A finished cycle: its full record, and the candidate or why there is none.
#[derive(Debug)]
pub struct CascadeRun {
    /// The cycle's full record, kept whether or not it succeeded.
    pub packet: CognitiveStatePacket,
    /// The candidate to audit, test and commit, or the cycle's failure.
    pub result: Result<MethodCandidate>,
}

impl CascadeRun {
    /// The candidate with its packet, or the failure.
    pub fn outcome(self) -> Result<CascadeOutcome> {
        let packet = self.packet;
        self.result
            .map(|candidate| CascadeOutcome { candidate, packet })
    }
}

/// One persona's step: what it said, the candidate it wrote (if it writes one and
/// the reply held one), and why not otherwise.
struct Step {
    contribution: PersonaContribution,
    candidate: Option<MethodCandidate>,
    error: Option<Error>,
}

/// The persona cascade. Build it with [`Cascade::builder`].
#[derive(Debug)]
pub struct Cascade {
    personas: BTreeMap<Persona, PersonaConfig>,
    prompts: PromptSet,
    mode: CascadeMode,
    grounding: DynGrounding,
    evidence_limit: usize,
    check: Option<DynCandidateCheck>,
    context: Option<Arc<ContextIngestor>>,
    cem: Cem,
    history: Mutex<VecDeque<String>>,
    history_window: usize,
}

/// Configures a [`Cascade`].
#[derive(Debug)]
pub struct CascadeBuilder {
    personas: BTreeMap<Persona, PersonaConfig>,
    prompts: PromptSet,
    mode: CascadeMode,
    grounding: DynGrounding,
    evidence_limit: usize,
    check: Option<DynCandidateCheck>,
    context: Option<Arc<ContextIngestor>>,
    cem: Cem,
    history_window: usize,
}

impl CascadeBuilder {
    fn config(&mut self, persona: Persona) -> &mut PersonaConfig {
        // Every persona is inserted by `Cascade::builder`; re-insert defensively.
        let model = self.personas.values().next().map(|c| c.model.clone());
        self.personas.entry(persona).or_insert_with(|| {
            PersonaConfig::new(
                persona,
                model.unwrap_or_else(|| Arc::new(crate::cascade::NullModel)),
            )
        })
    }

    /// Serves `persona` with `model`.
    pub fn persona_model(mut self, persona: Persona, model: DynLanguageModel) -> Self {
        self.config(persona).model = model;
        self
    }

    /// Replaces `persona`'s system prompt template.
    pub fn persona_prompt(mut self, persona: Persona, prompt: impl Into<String>) -> Self {
        self.config(persona).prompt = prompt.into();
        self
    }

    /// Replaces `persona`'s sampling options.
    pub fn persona_options(mut self, persona: Persona, options: GenerationOptions) -> Self {
        self.config(persona).options = options;
        self
    }

    /// Replaces one persona's whole configuration.
    pub fn persona(mut self, config: PersonaConfig) -> Self {
        self.personas.insert(config.persona, config);
        self
    }

    /// Sets the method/test conventions substituted into prompts.
    pub fn prompts(mut self, prompts: PromptSet) -> Self {
        self.prompts = prompts;
        self
    }

    /// Full cascade or ALFRED alone.
    pub fn mode(mut self, mode: CascadeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The memory the steps are grounded in.
    pub fn grounding(mut self, grounding: DynGrounding) -> Self {
        self.grounding = grounding;
        self
    }

    /// How many pieces of evidence each grounding round asks for (default 3).
    pub fn evidence_limit(mut self, limit: usize) -> Self {
        self.evidence_limit = limit;
        self
    }

    /// Enables the early exit: ROBIN's draft is checked and, if it passes, used.
    pub fn candidate_check(mut self, check: DynCandidateCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// Assembles the real-time context at the start of each cycle.
    pub fn context(mut self, ingestor: Arc<ContextIngestor>) -> Self {
        self.context = Some(ingestor);
        self
    }

    /// Sets the CEM weights and cap.
    pub fn cem(mut self, cem: Cem) -> Self {
        self.cem = cem;
        self
    }

    /// How many earlier outputs the CEM's novelty compares against (default 8).
    pub fn history_window(mut self, window: usize) -> Self {
        self.history_window = window;
        self
    }

    /// The cascade.
    pub fn build(self) -> Cascade {
        Cascade {
            personas: self.personas,
            prompts: self.prompts,
            mode: self.mode,
            grounding: self.grounding,
            evidence_limit: self.evidence_limit,
            check: self.check,
            context: self.context,
            cem: self.cem,
            history: Mutex::new(VecDeque::new()),
            history_window: self.history_window,
        }
    }
}

/// A model that is never reached (placeholder for an impossible missing persona).
#[derive(Debug)]
struct NullModel;

#[async_trait::async_trait]
impl crate::LanguageModel for NullModel {
    fn capabilities(&self) -> crate::ModelCapabilities {
        crate::ModelCapabilities {
            backend: "none",
            structured_output: false,
            streaming: false,
            embeddings: false,
            deterministic_seed: false,
            lora: false,
            scoring: false,
        }
    }
    async fn info(&self) -> Result<crate::ModelInfo> {
        Err(Error::Unavailable("no model configured".into()))
    }
    async fn chat(&self, _request: ChatRequest) -> Result<crate::ChatResponse> {
        Err(Error::Unavailable("no model configured".into()))
    }
    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Err(Error::Unavailable("no model configured".into()))
    }
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "into", "your", "you", "our", "are",
    "was", "use", "using", "will", "should", "must", "can", "not", "def", "return", "self", "obj",
    "test", "assert", "step", "steps", "input", "inputs", "output", "value", "then", "its", "all",
    "any", "one", "two", "how", "what", "when", "yourself", "teach", "learn", "please", "method",
    "function", "python",
];

/// A short OR-query: the selector's parts, then salient words of `text`.
fn grounding_query(selector: &str, text: &str, max_terms: usize) -> String {
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    let words = selector.split('_').map(str::to_lowercase).chain(
        text.split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase)
            .filter(|w| w.len() >= 3 && !w.chars().all(|c| c.is_ascii_digit())),
    );
    for w in words {
        if w.is_empty() || STOPWORDS.contains(&w.as_str()) || !seen.insert(w.clone()) {
            continue;
        }
        terms.push(w);
        if terms.len() >= max_terms {
            break;
        }
    }
    terms.join(" ")
}

fn clip(text: &str, max_chars: usize) -> String {
    let t = text.trim();
    if t.chars().count() <= max_chars {
        return t.to_string();
    }
    let mut s: String = t.chars().take(max_chars).collect();
    s.push('…');
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cascade {
    /// A cascade with every persona served by `model` and the blueprint's defaults.
    pub fn builder(model: DynLanguageModel) -> CascadeBuilder {
        CascadeBuilder {
            personas: Persona::ALL
                .into_iter()
                .map(|p| (p, PersonaConfig::new(p, model.clone())))
                .collect(),
            prompts: PromptSet::default(),
            mode: CascadeMode::Full,
            grounding: Arc::new(NoGrounding),
            evidence_limit: 3,
            check: None,
            context: None,
            cem: Cem::default(),
            history_window: 8,
        }
    }

    /// The configuration of one persona.
    pub fn persona(&self, persona: Persona) -> Option<&PersonaConfig> {
        self.personas.get(&persona)
    }

    /// The conventions substituted into the persona prompts.
    pub fn prompts(&self) -> &PromptSet {
        &self.prompts
    }

    /// The mode the cascade runs in.
    pub fn mode(&self) -> CascadeMode {
        self.mode
    }

    /// Runs one cycle and returns its packet whether or not a candidate came out
    /// (failed cycles belong in the audit trail too). `options` say which context,
    /// early-exit check and sampling it uses; the defaults run it as configured.
    pub async fn run(&self, mandate: &LearnMandate, options: RunOptions<'_>) -> CascadeRun {
        let RunOptions {
            context,
            check,
            sampling,
        } = options;
        let check = match check {
            EarlyExit::Configured => self.check.as_deref(),
            EarlyExit::With(check) => Some(check),
            EarlyExit::Off => None,
        };
        let started = Instant::now();
        let mut packet = CognitiveStatePacket {
            started_at: Utc::now(),
            mandate: mandate.clone(),
            mode: self.mode,
            context,
            contributions: Vec::new(),
            grounding: Vec::new(),
            verdicts: Vec::new(),
            decided_by: None,
            candidate: None,
            cem: None,
            timing: PacketTiming::default(),
            sampling,
            selection: None,
        };
        if packet.context.is_none() {
            if let Some(ingestor) = &self.context {
                let t = Instant::now();
                packet.context = Some(ingestor.assemble().await);
                packet.timing.context_us = t.elapsed().as_micros() as u64;
            }
        }

        let mut seen_evidence = HashSet::new();
        let query = grounding_query(&mandate.selector, &mandate.request_text, 8);
        self.ground(&mut packet, None, query, &mut seen_evidence)
            .await;

        let order: &[Persona] = match self.mode {
            CascadeMode::Full => &Persona::ALL,
            CascadeMode::Single => &[Persona::Alfred],
        };
        let mut draft: Option<MethodCandidate> = None;
        let mut final_error: Option<Error> = None;
        for (index, &persona) in order.iter().enumerate() {
            let Step {
                contribution,
                candidate,
                error,
            } = self.step(persona, index == 0, &packet).await;
            let step_text = match &candidate {
                Some(c) => format!("{} {}", c.doc, c.source),
                None => contribution.text.clone(),
            };
            packet.contributions.push(contribution);
            match (persona, candidate) {
                (Persona::Alfred, Some(c)) => {
                    packet.candidate = Some(c);
                    packet.decided_by = Some(Persona::Alfred);
                }
                (Persona::Alfred, None) => final_error = error,
                (Persona::Robin, Some(c)) => {
                    draft = Some(c.clone());
                    if let Some(check) = check {
                        let t = Instant::now();
                        let outcome = check.check(&c).await;
                        let passed = outcome == CheckVerdict::Passed;
                        persona_event!(persona, passed, "early-exit check");
                        packet.verdicts.push(Verdict {
                            after: persona,
                            outcome,
                            early_exit: passed,
                            elapsed_us: t.elapsed().as_micros() as u64,
                        });
                        if passed {
                            packet.candidate = Some(c);
                            packet.decided_by = Some(Persona::Robin);
                        }
                    }
                }
                _ => {}
            }
            let query = grounding_query(&mandate.selector, &step_text, 8);
            self.ground(&mut packet, Some(persona), query, &mut seen_evidence)
                .await;
            if packet.candidate.is_some() {
                break;
            }
        }

        let candidate = match (packet.candidate.clone(), draft) {
            (Some(c), _) => c,
            (None, Some(d)) => {
                packet.candidate = Some(d.clone());
                packet.decided_by = Some(Persona::Robin);
                d
            }
            (None, None) => {
                let error = final_error.unwrap_or_else(|| {
                    Error::InvalidOutput("the cascade produced no candidate".into())
                });
                Self::finish_timing(&mut packet, started);
                tracing::warn!(target: "Cascade.ALFRED", selector = %mandate.selector, %error, "cascade cycle failed");
                return CascadeRun {
                    packet,
                    result: Err(error),
                };
            }
        };

        let history: Vec<String> = lock(&self.history).iter().cloned().collect();
        let texts: Vec<&str> = packet
            .contributions
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        let rounds: Vec<usize> = packet.grounding.iter().map(|r| r.evidence.len()).collect();
        packet.cem = Some(self.cem.score(&CemInput {
            output: &candidate.source,
            history: &history,
            contributions: &texts,
            evidence_per_round: &rounds,
            code: &candidate.source,
        }));
        {
            let mut h = lock(&self.history);
            h.push_back(candidate.source.clone());
            while h.len() > self.history_window {
                h.pop_front();
            }
        }

        Self::finish_timing(&mut packet, started);
        tracing::info!(
            target: "Cascade.ALFRED",
            selector = %mandate.selector,
            decided_by = ?packet.decided_by,
            cem = packet.cem.map(|c| c.value),
            total_us = packet.timing.total_us,
            "cascade cycle done"
        );
        CascadeRun {
            packet,
            result: Ok(candidate),
        }
    }

    fn finish_timing(packet: &mut CognitiveStatePacket, started: Instant) {
        let t = &mut packet.timing;
        t.model_us = packet.contributions.iter().map(|c| c.model_us).sum();
        t.grounding_us = packet.grounding.iter().map(|r| r.elapsed_us).sum();
        t.check_us = packet.verdicts.iter().map(|v| v.elapsed_us).sum();
        t.total_us = started.elapsed().as_micros() as u64;
        t.orchestration_us = t
            .total_us
            .saturating_sub(t.model_us + t.context_us + t.grounding_us + t.check_us);
    }

    async fn ground(
        &self,
        packet: &mut CognitiveStatePacket,
        after: Option<Persona>,
        query: String,
        seen: &mut HashSet<String>,
    ) {
        let t = Instant::now();
        let (evidence, error) = match self.grounding.ground(&query, self.evidence_limit).await {
            Ok(found) => (
                found
                    .into_iter()
                    .filter(|e| {
                        seen.insert(if e.id.is_empty() {
                            e.text.clone()
                        } else {
                            e.id.clone()
                        })
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        packet.grounding.push(GroundingRound {
            after,
            query,
            evidence,
            error,
            elapsed_us: t.elapsed().as_micros() as u64,
        });
    }

    async fn step(&self, persona: Persona, first: bool, packet: &CognitiveStatePacket) -> Step {
        let step_started = Instant::now();
        let mandate = &packet.mandate;
        let Some(config) = self.personas.get(&persona) else {
            let msg = format!("{persona} is not configured");
            return Step {
                contribution: PersonaContribution {
                    persona,
                    model: String::new(),
                    text: String::new(),
                    structured: None,
                    error: Some(msg.clone()),
                    attempts: 0,
                    usage: crate::Usage::default(),
                    model_us: 0,
                    step_us: 0,
                },
                candidate: None,
                error: Some(Error::Invalid(msg)),
            };
        };
        let system = self.prompts.render(&config.prompt, &mandate.selector);
        let user = self.user_prompt(persona, first, packet);
        let mut options = config.options.clone();
        if let (true, Some(draw)) = (persona.writes_candidate(), packet.sampling) {
            options.seed = Some(draw.seed);
            options.temperature = draw.temperature;
        }
        let request = ChatRequest::new(system, user).with_options(options);
        persona_event!(persona, selector = %mandate.selector, "step starts");

        let mut contribution = PersonaContribution {
            persona,
            model: String::new(),
            text: String::new(),
            structured: None,
            error: None,
            attempts: 1,
            usage: crate::Usage::default(),
            model_us: 0,
            step_us: 0,
        };
        let mut candidate = None;
        let mut error = None;
        let span = persona_span(persona, config, &request);
        let t = Instant::now();
        let reply = config.model.chat(request).instrument(span.clone()).await;
        contribution.model_us = t.elapsed().as_micros() as u64;
        record_reply(&span, contribution.model_us, &reply);
        match reply {
            Ok(r) => {
                contribution.model = r.model;
                contribution.usage = r.usage;
                if persona.writes_candidate() {
                    // Code first: the reply is read as fenced Python (or JSON, for
                    // models that answer that way); no repair round, since a search
                    // draws another sample instead.
                    match MethodCandidate::from_reply(&r.text) {
                        Ok(c) => {
                            contribution.structured = serde_json::to_value(&c).ok();
                            candidate = Some(c);
                        }
                        Err(e) => {
                            contribution.error = Some(e.clone());
                            error = Some(Error::InvalidOutput(e));
                        }
                    }
                }
                contribution.text = r.text;
            }
            Err(e) => {
                contribution.error = Some(e.to_string());
                error = Some(e);
            }
        }
        contribution.step_us = step_started.elapsed().as_micros() as u64;
        persona_event!(
            persona,
            model_us = contribution.model_us,
            error = ?contribution.error,
            "step done"
        );
        Step {
            contribution,
            candidate,
            error,
        }
    }

    fn user_prompt(&self, persona: Persona, first: bool, packet: &CognitiveStatePacket) -> String {
        user_prompt(persona, first, packet, self.evidence_limit)
    }
}

/// The span of one persona's model call, `aura.persona` (target `aura`), with
/// OpenTelemetry's GenAI attributes: what was asked of which model, and
/// [`record_reply`] adds what came back.
fn persona_span(persona: Persona, config: &PersonaConfig, request: &ChatRequest) -> tracing::Span {
    let span = tracing::info_span!(target: "aura", "aura.persona", otel.kind = "client",
        otel.status_code = Empty, aura.persona = %persona, gen_ai.operation.name = "chat",
        gen_ai.provider.name = Empty, gen_ai.system = Empty, gen_ai.request.model = Empty,
        aura.model.backend = Empty, gen_ai.request.temperature = Empty,
        gen_ai.request.seed = Empty, gen_ai.request.max_tokens = Empty,
        gen_ai.response.model = Empty, gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty, gen_ai.usage.output_tokens = Empty,
        aura.model_us = Empty, error.type = Empty);
    if span.is_disabled() {
        return span;
    }
    let backend = config.model.capabilities().backend;
    let described = config.model.describe();
    span.record("gen_ai.provider.name", backend);
    span.record("gen_ai.system", backend);
    span.record("gen_ai.request.model", model_name(&described));
    span.record("aura.model.backend", described.as_str());
    let options = &request.options;
    span.record("gen_ai.request.temperature", f64::from(options.temperature));
    span.record("gen_ai.request.max_tokens", options.max_tokens);
    if let Some(seed) = options.seed {
        span.record("gen_ai.request.seed", seed);
    }
    span
}

/// Records a model's answer on its `aura.persona` span: the model that answered, why it
/// stopped, the token counts (when the backend reports them) and the call's latency.
fn record_reply(span: &tracing::Span, model_us: u64, reply: &Result<crate::ChatResponse>) {
    if span.is_disabled() {
        return;
    }
    span.record("aura.model_us", model_us);
    match reply {
        Ok(r) => {
            span.record("gen_ai.response.model", r.model.as_str());
            let finish = match r.finish {
                crate::FinishReason::Stop | crate::FinishReason::StopSequence => "stop",
                crate::FinishReason::Length => "length",
            };
            span.record("gen_ai.response.finish_reasons", finish);
            let usage = &r.usage;
            if usage.prompt_tokens + usage.completion_tokens > 0 {
                span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
                span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
            }
        }
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error_type(e));
        }
    }
}

/// The model's name in a backend's description (`openai:URL#NAME`, `ollama:NAME`,
/// `local:PATH`: the file's name): what `gen_ai.request.model` carries.
fn model_name(described: &str) -> &str {
    if let Some((_, name)) = described.rsplit_once('#') {
        return name;
    }
    match described.split_once(':') {
        Some(("local", path)) => path.rsplit('/').next().unwrap_or(path),
        Some((_, name)) if !name.is_empty() => name,
        _ => described,
    }
}

/// A model error's kind, for `error.type`.
fn error_type(error: &Error) -> &'static str {
    match error {
        Error::Unavailable(_) => "unavailable",
        Error::Timeout(_) => "timeout",
        Error::ModelNotFound(_) => "model_not_found",
        Error::InvalidOutput(_) => "invalid_output",
        _ => "model_error",
    }
}

/// The packet as it stood when step `index` began: the contributions, grounding
/// rounds (the mandate's, then one after each step) and verdicts before it. With
/// [`user_prompt`] this rebuilds, from a recorded packet, the prompt a persona saw.
pub fn packet_before_step(packet: &CognitiveStatePacket, index: usize) -> CognitiveStatePacket {
    let mut p = packet.clone();
    p.contributions.truncate(index);
    p.grounding.truncate(index + 1);
    let before: Vec<Persona> = p.contributions.iter().map(|c| c.persona).collect();
    p.verdicts.retain(|v| before.contains(&v.after));
    p
}

/// The user prompt `persona` gets at its step, from the packet as it stood then
/// (see [`packet_before_step`]). `first` is whether it is the cycle's first step;
/// `evidence_limit` is the cascade's (default 3). The cascade and the forge's
/// curation both call this, so facets train on exactly the prompts personas see.
pub fn user_prompt(
    persona: Persona,
    first: bool,
    packet: &CognitiveStatePacket,
    evidence_limit: usize,
) -> String {
    if persona.writes_candidate() {
        return code_prompt(packet);
    }
    {
        let m = &packet.mandate;
        let mut p = String::new();
        let _ = writeln!(
            p,
            "Task: teach the object \"{}\" the method `{}`.",
            m.object_name, m.selector
        );
        if !m.request_text.trim().is_empty() {
            let _ = writeln!(p, "Request: {}", clip(&m.request_text, 300));
        }
        let _ = writeln!(p, "Example call: {}", m.example_call());
        if m.slots.as_object().is_some_and(|o| !o.is_empty()) {
            let _ = writeln!(p, "Slots: {}", clip(&m.slots.to_string(), 300));
        }
        if !m.known_methods.is_empty() {
            let known: Vec<String> = m
                .known_methods
                .iter()
                .take(8)
                .map(|k| {
                    if k.doc.is_empty() {
                        k.name.clone()
                    } else {
                        format!("{} ({})", k.name, clip(&k.doc, 60))
                    }
                })
                .collect();
            let _ = writeln!(p, "Known methods: {}", known.join("; "));
        }
        if first {
            if let Some(ctx) = &packet.context {
                let _ = writeln!(p, "{}", ctx.to_prompt(3));
            }
        }
        let evidence: Vec<&Evidence> = packet.evidence().take(evidence_limit * 2).collect();
        if !evidence.is_empty() {
            let _ = writeln!(p, "Memory:");
            for e in evidence {
                let _ = writeln!(p, "- {}", clip(&e.text, 200));
            }
        }
        for c in &packet.contributions {
            if let Some(v) = &c.structured {
                let source = v.get("source").and_then(|s| s.as_str()).unwrap_or_default();
                let tests = v.get("tests").and_then(|s| s.as_str()).unwrap_or_default();
                let _ = writeln!(
                    p,
                    "{} draft source:\n{}\n{} draft tests:\n{}",
                    c.persona,
                    clip(source, 800),
                    c.persona,
                    clip(tests, 600)
                );
            } else if !c.text.trim().is_empty() {
                let _ = writeln!(p, "{} said: {}", c.persona, clip(&c.text, 400));
            }
        }
        write_failures(&mut p, packet);
        p
    }
}

/// The failed checks of this cycle's drafts and earlier attempts' failures, as every
/// prompt after them shows them.
fn write_failures(p: &mut String, packet: &CognitiveStatePacket) {
    for v in &packet.verdicts {
        if let CheckVerdict::Failed { reason } = &v.outcome {
            let _ = writeln!(p, "The draft failed its check: {}", clip(reason, 300));
        }
    }
    let feedback = &packet.mandate.feedback;
    if !feedback.is_empty() {
        let _ = writeln!(p, "Earlier attempts failed:");
        for f in feedback.iter().rev().take(3) {
            let _ = writeln!(p, "- {}", clip(f, 300));
        }
    }
}

/// Memory that shows a candidate writer how a good answer looks: methods this runtime
/// learned, and the exemplar library genesis installs.
const EXEMPLAR_SOURCES: [&str; 2] = ["memory:method", "memory:exemplar"];

/// What a candidate writer sees: a plain programming task, as small code models
/// were trained on. The task in the user's words; the call and the examples only
/// when they are known (a made-up call misleads more than none); methods learned
/// before as exemplars; the object's slots when there are any; in the full
/// cascade, what the other personas said. The real-time context and the
/// conversation's memory stay with the personas that plan and answer: in a code
/// prompt they are noise a small model copies into the code.
fn code_prompt(packet: &CognitiveStatePacket) -> String {
    let m = &packet.mandate;
    let mut p = String::new();
    // Exemplars first and the task last: a small model follows what it read last.
    let exemplars: Vec<&Evidence> = packet
        .evidence()
        .filter(|e| EXEMPLAR_SOURCES.contains(&e.source.as_str()) && e.text.contains("def "))
        .collect();
    let exemplars: Vec<&Evidence> = match packet.sampling.map(|s| s.draw) {
        // A small model copies the exemplar it is shown, so samples that all saw the
        // same one agree on its mistakes. In a search, every other draw sees none and
        // the rest each see a different one: agreement then means the task, not the
        // exemplar.
        Some(draw) if draw % 2 == 0 => Vec::new(),
        Some(draw) => exemplars
            .get((draw as usize / 2) % exemplars.len().max(1))
            .copied()
            .into_iter()
            .collect(),
        None => exemplars.into_iter().take(1).collect(),
    };
    if !exemplars.is_empty() {
        let _ = writeln!(p, "Functions written before, for reference:");
        for e in exemplars {
            let code = e.text.split_once('\n').map_or(e.text.as_str(), |(_, c)| c);
            let _ = writeln!(p, "```python\n{}\n```", clip(code, 400));
        }
    }
    let task = crate::plan::strip_learn_prefix(&m.request_text);
    if task.trim().is_empty() {
        let _ = writeln!(p, "Write a Python function `{}`.", m.selector);
    } else {
        let _ = writeln!(
            p,
            "Write a Python function `{}` that does this: {}",
            m.selector,
            clip(task, 300)
        );
    }
    // "count the letter 'a'" means count_letter(text), not count_letter(text, letter):
    // without this line a small model makes a parameter of what the task fixes.
    // A value the call passes ("calculate fibonacci for 10") is an argument.
    let passed: Vec<String> = m.args.as_array().map_or_else(Vec::new, |args| {
        args.iter()
            .map(|a| python_literal(a).trim_matches('"').to_owned())
            .collect()
    });
    let fixed: Vec<String> = crate::plan::fixed_literals(task)
        .into_iter()
        .filter(|f| !passed.iter().any(|a| a == f.trim_matches(['\'', '"', '`'])))
        .collect();
    if !fixed.is_empty() {
        let (are, them, parameters) = match fixed.len() {
            1 => ("is", "it", "a parameter"),
            _ => ("are", "them", "parameters"),
        };
        let _ = writeln!(
            p,
            "{} {are} part of the task: write {them} inside the function, not as {parameters}.",
            fixed.join(" and ")
        );
    }
    if m.args.as_array().is_some_and(|a| !a.is_empty()) {
        let call = m.example_call();
        let _ = writeln!(p, "It is called like {}.", call.trim_start_matches("obj."));
    }
    if m.slots.as_object().is_some_and(|o| !o.is_empty()) {
        let _ = writeln!(
            p,
            "It is a method of an object with these slots (read them as self.<slot>): {}",
            clip(&m.slots.to_string(), 300)
        );
    }
    for c in &packet.contributions {
        if let Some(v) = &c.structured {
            let source = v.get("source").and_then(|s| s.as_str()).unwrap_or_default();
            let _ = writeln!(
                p,
                "{}'s draft:\n```python\n{}\n```",
                c.persona,
                clip(source, 800)
            );
        } else if !c.text.trim().is_empty() {
            let _ = writeln!(p, "{} said: {}", c.persona, clip(&c.text, 400));
        }
    }
    write_failures(&mut p, packet);
    let _ = write!(
        p,
        "Reply with one ```python code block: the function `{}`, then two asserts that call it.",
        m.selector
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_short_keyword_lists() {
        let q = grounding_query(
            "list_files",
            "Teach yourself to list the files in the current directory using the os module",
            8,
        );
        assert_eq!(q, "list files current directory module");
    }

    #[test]
    fn values_the_task_fixes_are_said_to_be_no_parameters() {
        let prompt_for = |request: &str, args: serde_json::Value| {
            let packet = CognitiveStatePacket {
                mandate: LearnMandate::new("o", "f", args).with_request(request),
                ..CognitiveStatePacket::default()
            };
            user_prompt(Persona::Alfred, true, &packet, 3)
        };
        let prompt = |request: &str| prompt_for(request, serde_json::Value::Null);
        // What the call passes is an argument, not part of the task.
        for (request, args) in [
            ("calculate fibonacci for 10", serde_json::json!([10])),
            (
                "count the letter 'a' in 'banana'",
                serde_json::json!(["a", "banana"]),
            ),
        ] {
            assert!(
                !prompt_for(request, args).contains("part of the task"),
                "{request}"
            );
        }
        assert!(
            prompt("teach yourself to remove every 'l' from a string").contains(
                "'l' is part of the task: write it inside the function, not as a parameter."
            )
        );
        assert!(prompt("teach yourself to replace every 'n' in a string with 'm'").contains(
            "'n' and 'm' are part of the task: write them inside the function, not as parameters."
        ));
        for plain in [
            "teach yourself to reverse a string",
            "teach yourself to calculate fibonacci numbers, where fibonacci for 10 is 55",
        ] {
            assert!(!prompt(plain).contains("part of the task"), "{plain}");
        }
    }

    #[test]
    fn clip_marks_cuts() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip(" ab ", 3), "ab");
    }
}
