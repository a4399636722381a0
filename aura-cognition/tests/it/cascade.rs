//! The Entropy Cascade on a scripted model: order, packet, grounding, early exit,
//! single-persona mode, repair, CEM and overhead.
#![cfg(feature = "test-utils")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aura_cognition::cascade::GroundingRound;
use aura_cognition::context::{Headline, ProviderState, ProviderStatus, TimeReading};
use aura_cognition::{
    CandidateCheck, Cascade, CascadeMode, ChatRequest, CheckVerdict, CognitiveStatePacket, Error,
    Evidence, Grounding, KnownMethod, LearnMandate, MethodCandidate, Persona,
    RealTimeContextFractal, RunOptions, ScriptedModel,
};
use serde_json::json;

fn persona_of(req: &ChatRequest) -> Persona {
    let system = &req.messages[0].content;
    Persona::ALL
        .into_iter()
        .find(|p| system.starts_with(&format!("You are {}", p.name())))
        .expect("a persona prompt")
}

fn user_of(req: &ChatRequest) -> &str {
    &req.messages[1].content
}

const ROBIN_JSON: &str = r#"{"source": "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", "tests": "def test_small():\n    assert obj.fibonacci(10) == 55", "doc": "The n-th Fibonacci number.", "rationale": "Iterative loop."}"#;
const ALFRED_JSON: &str = r#"{"source": "def fibonacci(self, n):\n    if n < 0:\n        raise ValueError('n must be >= 0')\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", "tests": "def test_ten():\n    assert obj.fibonacci(10) == 55\n\ndef test_zero():\n    assert obj.fibonacci(0) == 0", "doc": "The n-th Fibonacci number (n >= 0).", "rationale": "Iterative, rejects negatives."}"#;

/// Answers by persona: BRICK and BABS in text, ROBIN and ALFRED in JSON.
fn scripted() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        Ok(match persona_of(req) {
            Persona::Brick => "1. Take n. 2. Loop n times adding pairs. 3. Return a.".into(),
            Persona::Robin => ROBIN_JSON.into(),
            Persona::Babs => "Negative n is not handled. Test n = 0.".into(),
            Persona::Alfred => ALFRED_JSON.into(),
        })
    })
    .named("scripted-smol")
}

fn mandate() -> LearnMandate {
    let mut m = LearnMandate::new("calc", "fibonacci", json!([10]))
        .with_request("teach yourself to calculate the fibonacci sequence");
    m.slots = json!({"precision": 2});
    m.known_methods = vec![KnownMethod {
        name: "add".into(),
        doc: "Adds two numbers.".into(),
    }];
    m
}

/// Memory: returns stored notes containing any query word, and records queries.
#[derive(Debug, Default)]
struct Memory {
    notes: Vec<(String, String)>,
    queries: Mutex<Vec<String>>,
}

impl Memory {
    fn with(notes: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(Self {
            notes: notes
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            queries: Mutex::default(),
        })
    }
}

#[async_trait]
impl Grounding for Memory {
    async fn ground(&self, query: &str, limit: usize) -> aura_cognition::Result<Vec<Evidence>> {
        self.queries.lock().unwrap().push(query.to_string());
        let terms: Vec<&str> = query.split_whitespace().collect();
        Ok(self
            .notes
            .iter()
            .filter(|(_, text)| {
                let t = text.to_lowercase();
                terms.iter().any(|w| t.contains(w))
            })
            .take(limit)
            .map(|(id, text)| Evidence {
                id: id.clone(),
                text: text.clone(),
                source: "fts".into(),
                score: Some(1.0),
            })
            .collect())
    }
}

fn context() -> RealTimeContextFractal {
    RealTimeContextFractal {
        assembled_at: chrono::Utc::now(),
        time: Some(TimeReading {
            utc: chrono::Utc::now(),
            local: "2026-11-27 12:00 +01:00".into(),
            timezone: "Europe/Berlin".into(),
            utc_offset_seconds: 3600,
        }),
        place: None,
        headlines: vec![Headline {
            title: "Local library opens a maths club".into(),
            ..Headline::default()
        }],
        statuses: vec![ProviderStatus {
            provider: "ip2location".into(),
            kind: aura_cognition::ContextKind::Place,
            state: ProviderState::Failed {
                reason: "HTTP 401".into(),
            },
            elapsed_ms: 3,
        }],
    }
}

#[tokio::test]
async fn full_cascade_runs_the_personas_in_order_and_fills_the_packet() {
    let model = scripted();
    let memory = Memory::with(&[
        ("n1", "The fibonacci sequence starts 0, 1, 1, 2, 3, 5."),
        ("n2", "Negative numbers have no fibonacci value here."),
    ]);
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .grounding(memory.clone())
        .build();
    let out = cascade
        .run(
            &mandate(),
            RunOptions {
                context: Some(context()),
                ..RunOptions::default()
            },
        )
        .await
        .outcome()
        .unwrap();

    let order: Vec<Persona> = model.requests().iter().map(persona_of).collect();
    assert_eq!(order, Persona::ALL.to_vec());
    let p = &out.packet;
    assert_eq!(p.personas(), Persona::ALL.to_vec());
    assert_eq!(p.decided_by, Some(Persona::Alfred));
    assert!(out.candidate.source.contains("raise ValueError"));
    assert_eq!(p.candidate.as_ref(), Some(&out.candidate));
    assert!(out.candidate.tests.contains("obj.fibonacci(10)"));

    for c in &p.contributions {
        assert_eq!(c.model, "scripted-smol");
        assert!(!c.text.is_empty(), "{:?}", c.persona);
        assert!(c.usage.completion_tokens > 0);
        assert!(c.error.is_none());
        assert_eq!(c.structured.is_some(), c.persona.writes_candidate());
    }
    // code first: no persona is asked for JSON; candidate writers stop at the fence
    for req in model.requests() {
        assert!(req.schema.is_none());
        let stops = req.options.stop.contains(&"\n```\n".to_string());
        assert_eq!(stops, persona_of(&req).writes_candidate());
    }

    // the mandate's round, then one after each step
    let afters: Vec<Option<Persona>> = p.grounding.iter().map(|r| r.after).collect();
    assert_eq!(
        afters,
        vec![
            None,
            Some(Persona::Brick),
            Some(Persona::Robin),
            Some(Persona::Babs),
            Some(Persona::Alfred)
        ]
    );
    assert!(p.grounding.iter().all(|r| r.query.starts_with("fibonacci")));
    // evidence is not repeated across rounds
    let ids: Vec<&str> = p.evidence().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(memory.queries.lock().unwrap().len(), 5);

    // context only in the first persona's prompt
    let reqs = model.requests();
    assert!(user_of(&reqs[0]).contains("News: Local library opens a maths club"));
    assert!(reqs[1..].iter().all(|r| !user_of(r).contains("News:")));
    assert_eq!(p.context.as_ref().unwrap().statuses.len(), 1);

    // later personas see earlier ones
    assert!(user_of(&reqs[1]).contains("BRICK said: 1. Take n."));
    assert!(user_of(&reqs[2]).contains("ROBIN draft source:"));
    assert!(user_of(&reqs[3]).contains("BABS said: Negative n"));
    assert!(user_of(&reqs[0]).contains("Example call: obj.fibonacci(10)"));
    assert!(user_of(&reqs[0]).contains("Known methods: add (Adds two numbers.)"));
    assert!(user_of(&reqs[0]).contains("Memory:\n- The fibonacci sequence"));

    // timings and CEM
    let t = p.timing;
    assert!(t.total_us >= t.model_us + t.grounding_us);
    assert_eq!(
        t.orchestration_us,
        t.total_us - t.model_us - t.grounding_us - t.context_us - t.check_us
    );
    let cem = p.cem.unwrap();
    assert!((0.0..=1.0).contains(&cem.value));
    assert_eq!(cem.novelty, 1.0, "nothing in the history yet");

    // JSON round trip for the audit trail
    let json = p.to_json();
    assert_eq!(json["contributions"][0]["persona"], "BRICK");
    assert_eq!(json["mode"], "full");
    let back: CognitiveStatePacket = serde_json::from_value(json).unwrap();
    assert_eq!(&back, p);
}

/// Grounding that answers each round with a new, numbered note.
#[derive(Debug, Default)]
struct Counter(AtomicUsize);

#[async_trait]
impl Grounding for Counter {
    async fn ground(&self, _query: &str, _limit: usize) -> aura_cognition::Result<Vec<Evidence>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(vec![Evidence {
            id: format!("note-{n}"),
            text: format!("memory note number {n}"),
            source: format!("round-{n}"),
            score: None,
        }])
    }
}

#[tokio::test]
async fn each_step_adds_evidence_before_the_next_persona_speaks() {
    let model = scripted();
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .grounding(Arc::new(Counter::default()))
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    let rounds: &[GroundingRound] = &out.packet.grounding;
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r.evidence.len(), 1);
        assert_eq!(r.evidence[0].source, format!("round-{i}"));
    }
    let reqs = model.requests();
    for (i, req) in reqs.iter().enumerate() {
        if persona_of(req).writes_candidate() {
            // A code prompt shows learned methods as exemplars, not conversation notes.
            assert!(!user_of(req).contains("memory note number"));
        } else {
            // persona i saw notes 0..=i, not note i+1
            assert!(user_of(req).contains(&format!("memory note number {i}")));
            assert!(!user_of(req).contains(&format!("memory note number {}", i + 1)));
        }
    }
    assert_eq!(out.packet.cem.unwrap().coverage, 1.0);
}

#[derive(Debug)]
struct Fixed(CheckVerdict, AtomicUsize);

#[async_trait]
impl CandidateCheck for Fixed {
    async fn check(&self, candidate: &MethodCandidate) -> CheckVerdict {
        assert!(candidate.source.starts_with("def fibonacci("));
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.clone()
    }
}

#[tokio::test]
async fn a_passing_draft_ends_the_cascade_after_robin() {
    let model = scripted();
    let check = Arc::new(Fixed(CheckVerdict::Passed, AtomicUsize::new(0)));
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .candidate_check(check.clone())
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(out.packet.personas(), vec![Persona::Brick, Persona::Robin]);
    assert_eq!(model.requests().len(), 2);
    assert_eq!(out.packet.decided_by, Some(Persona::Robin));
    assert!(out.candidate.source.contains("for _ in range(n)"));
    assert!(!out.candidate.source.contains("ValueError"));
    assert_eq!(out.packet.verdicts.len(), 1);
    assert!(out.packet.verdicts[0].early_exit);
    assert_eq!(check.1.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_draft_goes_on_to_alfred_with_the_reason() {
    let model = scripted();
    let check = Arc::new(Fixed(
        CheckVerdict::Failed {
            reason: "test_small: assert 34 == 55".into(),
        },
        AtomicUsize::new(0),
    ));
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .candidate_check(check)
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(out.packet.personas(), Persona::ALL.to_vec());
    assert_eq!(out.packet.decided_by, Some(Persona::Alfred));
    assert!(!out.packet.verdicts[0].early_exit);
    let reqs = model.requests();
    assert!(user_of(&reqs[2]).contains("The draft failed its check: test_small: assert 34 == 55"));
    assert!(user_of(&reqs[3]).contains("The draft failed its check"));
}

#[tokio::test]
async fn single_persona_mode_asks_only_alfred() {
    let model = scripted();
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .mode(CascadeMode::Single)
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(out.packet.personas(), vec![Persona::Alfred]);
    assert_eq!(model.requests().len(), 1);
    assert_eq!(out.packet.mode, CascadeMode::Single);
    assert_eq!(out.packet.grounding.len(), 2);
    assert!(out.candidate.source.contains("def fibonacci(self, n)"));
    assert_eq!(out.packet.cem.unwrap().diversity, 0.0);
}

#[tokio::test]
async fn an_alfred_without_code_falls_back_to_robins_draft_or_errors() {
    // No repair round: a search draws another sample instead, so one bad reply is
    // recorded as it was and the cycle goes on with what it has.
    let bad = || ScriptedModel::new(["I cannot help with that."]);
    let cascade = Cascade::builder(Arc::new(scripted()))
        .persona_model(Persona::Alfred, Arc::new(bad()))
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(out.packet.decided_by, Some(Persona::Robin));
    let alfred = out.packet.contributions.last().unwrap();
    assert_eq!(alfred.attempts, 1);
    assert!(alfred.error.as_deref().unwrap().contains("no Python code"));

    let single = Cascade::builder(Arc::new(bad()))
        .mode(CascadeMode::Single)
        .build();
    match single
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
    {
        Err(Error::InvalidOutput(msg)) => assert!(msg.contains("```python"), "{msg}"),
        other => panic!("expected InvalidOutput, got {other:?}"),
    }
}

#[tokio::test]
async fn code_replies_are_read_from_fences_and_json_still_works() {
    // One block, function then asserts, as asked; generation stops at its fence, so
    // the second block a small model likes to add is never paid for.
    let code = ScriptedModel::new([
        "Here it is:\n```python\ndef fib(n):\n    return n\nassert fib(1) == 1\n```\n```python\nprint(fib(2))\n```",
    ]);
    let single = Cascade::builder(Arc::new(code))
        .mode(CascadeMode::Single)
        .build();
    let out = single
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(
        out.candidate.source,
        "def fib(n):\n    return n\nassert fib(1) == 1\n"
    );
    assert_eq!(out.candidate.doc, "Here it is:");
    assert!(!out.packet.contributions[0].text.contains("print"));
    // A model that answers with the JSON object still gives a candidate.
    let json = ScriptedModel::new([ALFRED_JSON]);
    let single = Cascade::builder(Arc::new(json))
        .mode(CascadeMode::Single)
        .build();
    assert!(single
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap()
        .candidate
        .source
        .contains("def fibonacci"));
}

#[derive(Debug)]
struct Broken;

#[async_trait]
impl Grounding for Broken {
    async fn ground(&self, _q: &str, _l: usize) -> aura_cognition::Result<Vec<Evidence>> {
        Err(Error::Unavailable("store is down".into()))
    }
}

#[tokio::test]
async fn grounding_failures_are_recorded_not_fatal() {
    let cascade = Cascade::builder(Arc::new(scripted()))
        .grounding(Arc::new(Broken))
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert!(out.packet.grounding.iter().all(|r| r
        .error
        .as_deref()
        .is_some_and(|e| e.contains("store is down"))));
    assert_eq!(out.packet.cem.unwrap().coverage, 0.0);
}

#[tokio::test]
async fn each_persona_can_have_its_own_model_prompt_and_options() {
    let base = scripted();
    let brick = ScriptedModel::new(["Steps: loop."]).named("phi3");
    let cascade = Cascade::builder(Arc::new(base.clone()))
        .persona_model(Persona::Brick, Arc::new(brick.clone()))
        .persona_prompt(Persona::Babs, "You are BABS. Say OK about {selector}.")
        .persona_options(
            Persona::Robin,
            aura_cognition::GenerationOptions {
                max_tokens: 77,
                ..Default::default()
            },
        )
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    assert_eq!(out.packet.contributions[0].model, "phi3");
    assert_eq!(brick.requests().len(), 1);
    let reqs = base.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].options.max_tokens, 77);
    assert_eq!(
        reqs[1].messages[0].content,
        "You are BABS. Say OK about fibonacci."
    );
    assert_eq!(
        cascade
            .persona(Persona::Alfred)
            .unwrap()
            .model
            .capabilities()
            .backend,
        "scripted"
    );
}

#[tokio::test]
async fn feedback_from_earlier_attempts_reaches_the_personas() {
    let model = scripted();
    let cascade = Cascade::builder(Arc::new(model.clone())).build();
    let m = mandate().with_feedback("guard: import of 'os' is not allowed (line 1)");
    cascade
        .run(&m, RunOptions::default())
        .await
        .outcome()
        .unwrap();
    for req in model.requests() {
        assert!(user_of(&req).contains("Earlier attempts failed:\n- guard: import of 'os'"));
    }
}

#[tokio::test]
async fn identical_outputs_lose_novelty_and_evidence_raises_coverage() {
    let cascade = Cascade::builder(Arc::new(scripted())).build();
    let first = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap()
        .packet
        .cem
        .unwrap();
    let second = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap()
        .packet
        .cem
        .unwrap();
    assert_eq!(first.novelty, 1.0);
    assert_eq!(second.novelty, 0.0);
    assert!(second.value < first.value);
    assert_eq!(first.coverage, 0.0);

    let grounded = Cascade::builder(Arc::new(scripted()))
        .grounding(Arc::new(Counter::default()))
        .build();
    let g = grounded
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap()
        .packet
        .cem
        .unwrap();
    assert!(g.coverage > first.coverage);
    assert!(g.value > first.value);
}

/// Orchestration overhead with a model that answers instantly: everything the packet
/// counts as `orchestration_us` is the cascade's own cost.
#[tokio::test]
async fn orchestration_overhead_is_small() {
    let cascade = Cascade::builder(Arc::new(scripted()))
        .grounding(Arc::new(Counter::default()))
        .build();
    let runs = 200u64;
    let mut orchestration = 0u64;
    let mut total = 0u64;
    for _ in 0..runs {
        let t = cascade
            .run(&mandate(), RunOptions::default())
            .await
            .outcome()
            .unwrap()
            .packet
            .timing;
        orchestration += t.orchestration_us;
        total += t.total_us;
    }
    let mean = orchestration / runs;
    println!(
        "cascade orchestration overhead (4 personas, scripted model): mean {mean} µs per cycle, \
         mean total {} µs",
        total / runs
    );
    // Generous bound for a debug build on a busy 2-core machine.
    assert!(mean < 20_000, "mean orchestration {mean} µs");
}

#[tokio::test]
async fn the_ingestors_context_is_recorded_and_shown_to_brick() {
    use aura_cognition::context::{ConfiguredPlaceProvider, SystemClockProvider};
    let ingestor = aura_cognition::ContextIngestor::builder()
        .provider(Arc::new(SystemClockProvider::new(Some(
            "Europe/Berlin".into(),
        ))))
        .provider(Arc::new(ConfiguredPlaceProvider::new("Riverside, US")))
        .build();
    let model = scripted();
    let cascade = Cascade::builder(Arc::new(model.clone()))
        .context(Arc::new(ingestor))
        .build();
    let out = cascade
        .run(&mandate(), RunOptions::default())
        .await
        .outcome()
        .unwrap();
    let ctx = out.packet.context.as_ref().unwrap();
    assert_eq!(ctx.place.as_ref().unwrap().name, "Riverside, US");
    assert_eq!(ctx.statuses.len(), 2);
    let first = model.requests()[0].messages[1].content.clone();
    assert!(first.contains("Place: Riverside, US"), "{first}");
    assert!(first.contains("(Europe/Berlin)"), "{first}");
    assert!(out.packet.timing.context_us > 0);
}
