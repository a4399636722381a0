//! Curation on a SQLite store seeded with learn cycles shaped exactly as aura-core's
//! learn cycle writes them: the packets are aura-cognition's own
//! `CognitiveStatePacket`s serialised with `to_json`, the test records aura-sandbox's
//! `TestResult`s, and the payload keys are those of `aura_core::learn`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use aura_cognition::cascade::{GroundingRound, PacketTiming, PersonaContribution};
use aura_cognition::{
    CascadeMode, CognitiveStatePacket, Evidence, LearnMandate, MethodCandidate, Persona, Usage,
};
use aura_forge::curate::{Example, MANIFEST_FILE, TRAIN_FILE, VALIDATION_FILE};
use aura_forge::EventKind;
use aura_forge::{curate, CurationConfig, Error, Manifest};
use aura_sandbox::TestResult;
use aura_store::{EventId, NewAuditEvent, ObjectId, SqliteStore, StoreExt};
use serde_json::{json, Value};

fn contribution(
    persona: Persona,
    text: &str,
    structured: Option<&MethodCandidate>,
) -> PersonaContribution {
    PersonaContribution {
        persona,
        model: "SmolLM2-135M-Instruct".into(),
        text: text.into(),
        structured: structured.map(|c| serde_json::to_value(c).unwrap()),
        error: None,
        attempts: 1,
        usage: Usage::default(),
        model_us: 1000,
        step_us: 1200,
    }
}

/// A candidate writer's reply: its code in a fence, as the cascade asks for.
fn fenced(c: &MethodCandidate) -> String {
    format!("```python\n{}\n```", c.source)
}

fn candidate(selector: &str, body: &str) -> MethodCandidate {
    MethodCandidate {
        source: format!("def {selector}(self, x):\n    {body}"),
        tests: format!("def test_{selector}():\n    assert obj.{selector}(2) is not None"),
        doc: format!("{selector} of x."),
        rationale: "Plain Python.".into(),
    }
}

/// A full cascade's packet: BRICK, ROBIN (draft), BABS, ALFRED (final).
fn packet(
    selector: &str,
    request: &str,
    robin: &MethodCandidate,
    alfred: &MethodCandidate,
    babs_text: &str,
) -> CognitiveStatePacket {
    let mut mandate = LearnMandate::new("calc", selector, json!([2])).with_request(request);
    mandate.slots = json!({"precision": 2});
    let evidence = |id: &str, text: &str| Evidence {
        id: id.into(),
        text: text.into(),
        source: "memory:method".into(),
        score: Some(1.0),
    };
    let round = |after: Option<Persona>, ev: Vec<Evidence>| GroundingRound {
        after,
        query: selector.into(),
        evidence: ev,
        error: None,
        elapsed_us: 10,
    };
    CognitiveStatePacket {
        started_at: chrono::Utc::now(),
        mandate,
        mode: CascadeMode::Full,
        context: None,
        contributions: vec![
            contribution(
                Persona::Brick,
                &format!("Parts of {selector}: input x, output."),
                None,
            ),
            contribution(Persona::Robin, &fenced(robin), Some(robin)),
            contribution(Persona::Babs, babs_text, None),
            contribution(Persona::Alfred, &fenced(alfred), Some(alfred)),
        ],
        grounding: vec![
            round(None, vec![evidence("n1", "double: returns 2*x")]),
            round(Some(Persona::Brick), vec![]),
            round(
                Some(Persona::Robin),
                vec![evidence("n2", "halve: returns x/2")],
            ),
            round(
                Some(Persona::Babs),
                vec![evidence("n3", "seen only by ALFRED")],
            ),
            round(Some(Persona::Alfred), vec![]),
        ],
        verdicts: vec![],
        decided_by: Some(Persona::Alfred),
        candidate: Some(alfred.clone()),
        cem: None,
        timing: PacketTiming::default(),
        sampling: None,
        selection: None,
    }
}

fn passed(names: &[&str]) -> Vec<TestResult> {
    names
        .iter()
        .map(|n| TestResult {
            name: (*n).into(),
            passed: true,
            message: None,
        })
        .collect()
}

/// `learn.committed` as `Runtime::commit_learned` writes it.
fn committed(
    selector: &str,
    request: &str,
    candidate: &MethodCandidate,
    tests: Vec<TestResult>,
    packet: &CognitiveStatePacket,
) -> Value {
    json!({
        "selector": selector,
        "attempt": 1,
        "request": request,
        "candidate": candidate,
        "tests": tests,
        "packet": packet.to_json(),
    })
}

struct Seeded {
    store: SqliteStore,
    /// The committed, passing cycles, in order.
    good: Vec<EventId>,
}

/// Seeds the trail: three good cycles (one repeated verbatim), a guard rejection, a
/// test failure, a refusal, and a committed cycle whose test record holds a failure.
async fn seed() -> Seeded {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let object = Some(ObjectId::new());
    let mut good = Vec::new();

    // 1. ALFRED's candidate was committed; ROBIN's draft differed (not kept for ROBIN).
    // Its request carries a secret and a host path, to be scrubbed.
    let request =
        "square x; config at /home/alice/aura/.env has OPENAI_API_KEY=sk-abcdefghijklmnopqrstu1234";
    let alfred = candidate("square", "return x * x");
    let robin = candidate("square", "return x ** 2");
    let p = packet(
        "square",
        request,
        &robin,
        &alfred,
        "Memory has double; square should mirror it. Token: Bearer abcdefghijklmnop",
    );
    let e = store
        .append_event(NewAuditEvent::new(
            EventKind::LearnCommitted.as_str(),
            object,
            committed("square", request, &alfred, passed(&["test_square"]), &p),
        ))
        .await
        .unwrap();
    good.push(e.id);

    // 2. A guard rejection and a failed-test attempt, then a refusal: never selected.
    let bad = candidate("hack", "return open('/etc/passwd').read()");
    let bad_packet = packet(
        "hack",
        "read a file",
        &bad,
        &bad,
        "BABS words from a rejected attempt",
    );
    for failure in [
        json!({"stage": "guard", "rules": ["call.open"], "message": "open is not allowed"}),
        json!({"stage": "tests", "rules": [], "message": "test_hack failed: AssertionError"}),
    ] {
        store
            .append_event(NewAuditEvent::new(
                EventKind::LearnAttemptFailed.as_str(),
                object,
                json!({"selector": "hack", "attempt": 1, "failure": failure, "packet": bad_packet.to_json()}),
            ))
            .await
            .unwrap();
    }
    store
        .append_event(NewAuditEvent::new(
            EventKind::LearnRefused.as_str(),
            object,
            json!({"selector": "hack", "attempts": 3, "rules": ["call.open"]}),
        ))
        .await
        .unwrap();

    // 3. A committed event whose test record holds a failure (never trusted).
    let broken = candidate("cube", "return x * x");
    let mut tests = passed(&["test_cube"]);
    tests.push(TestResult {
        name: "test_cube_3".into(),
        passed: false,
        message: Some("assert 9 == 27".into()),
    });
    let bp = packet(
        "cube",
        "cube x",
        &broken,
        &broken,
        "BABS words from a cycle with a failing test",
    );
    store
        .append_event(NewAuditEvent::new(
            EventKind::LearnCommitted.as_str(),
            object,
            committed("cube", "cube x", &broken, tests, &bp),
        ))
        .await
        .unwrap();

    // 4. ROBIN's draft was the committed candidate (ALFRED returned the same source).
    let same = candidate("negate", "return -x");
    let p = packet(
        "negate",
        "negate x",
        &same,
        &same,
        "Nothing in memory about negation.",
    );
    let e = store
        .append_event(NewAuditEvent::new(
            EventKind::LearnCommitted.as_str(),
            object,
            committed("negate", "negate x", &same, passed(&["test_negate"]), &p),
        ))
        .await
        .unwrap();
    good.push(e.id);

    // 5. The same cycle recorded twice (a duplicate example).
    let again = candidate("inc", "return x + 1");
    let p = packet(
        "inc",
        "add one",
        &again,
        &again,
        "inc is like double but adds.",
    );
    for _ in 0..2 {
        let e = store
            .append_event(NewAuditEvent::new(
                EventKind::LearnCommitted.as_str(),
                object,
                committed("inc", "add one", &again, passed(&["test_inc"]), &p),
            ))
            .await
            .unwrap();
        good.push(e.id);
    }
    // Unrelated events around them are not read.
    store
        .append_event(NewAuditEvent::new(
            EventKind::ConversationRefused.as_str(),
            object,
            json!({"text": "BABS said hi"}),
        ))
        .await
        .unwrap();
    Seeded { store, good }
}

fn read_examples(dir: &Path) -> Vec<Example> {
    [TRAIN_FILE, VALIDATION_FILE]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Example>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn alfred_gets_every_accepted_method_and_nothing_else() {
    let s = seed().await;
    let dir = tempfile::tempdir().unwrap();
    let ds = curate(&s.store, &CurationConfig::for_persona("ALFRED"), dir.path())
        .await
        .unwrap();
    let m = &ds.manifest;
    // square, negate, inc (once): the failing cube and the hack attempts are out.
    assert_eq!(m.train.examples + m.validation.examples, 3);
    assert_eq!(m.source_events, vec![s.good[0], s.good[1], s.good[2]]);
    assert_eq!(m.counts.committed, 5);
    assert_eq!(m.counts.committed_passing, 4);
    assert_eq!(m.counts.committed_without_passing_tests, 1);
    assert_eq!(m.counts.attempts_failed, 2);
    assert_eq!(m.counts.refused, 1);
    assert_eq!(m.counts.duplicates, 1);
    assert_eq!(m.counts.events_read, 8, "only learn.* events are read");

    let examples = read_examples(dir.path());
    let replies: BTreeSet<String> = examples
        .iter()
        .map(|e| e.messages[2].content.clone())
        .collect();
    // The assistant turn is the reply the model wrote: the code, fenced.
    let want: BTreeSet<String> = [
        "```python\ndef square(self, x):\n    return x * x\n```",
        "```python\ndef negate(self, x):\n    return -x\n```",
        "```python\ndef inc(self, x):\n    return x + 1\n```",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(replies, want);
    for e in &examples {
        let roles: Vec<&str> = e.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant"]);
        let user = &e.messages[1].content;
        // The cascade's code prompt: the task, the call, the slots, the drafts before.
        assert!(user.starts_with("Write a Python function `"), "{user}");
        assert!(user.contains("It is called like "), "{user}");
        assert!(user.contains("slots (read them as self.<slot>)"), "{user}");
        assert!(user.contains("ROBIN's draft:"), "{user}");
        assert!(user.contains("BABS said: "), "{user}");
        assert!(user.ends_with("then two asserts that call it."), "{user}");
        let all = serde_json::to_string(e).unwrap();
        assert!(!all.contains("hack") && !all.contains("cube"), "{all}");
    }
}

#[tokio::test]
async fn babs_and_robin_get_only_their_kept_contributions() {
    let s = seed().await;
    let dir = tempfile::tempdir().unwrap();
    let ds = curate(&s.store, &CurationConfig::for_persona("babs"), dir.path())
        .await
        .unwrap();
    let examples = read_examples(dir.path());
    let replies: BTreeSet<&str> = examples
        .iter()
        .map(|e| e.messages[2].content.as_str())
        .collect();
    assert_eq!(
        replies,
        BTreeSet::from([
            "Memory has double; square should mirror it. Token: Bearer [REDACTED]",
            "Nothing in memory about negation.",
            "inc is like double but adds.",
        ])
    );
    for e in &examples {
        let user = &e.messages[1].content;
        // BABS saw the rounds before its step only, and BRICK's and ROBIN's words.
        assert!(!user.contains("seen only by ALFRED"), "{user}");
        assert!(user.contains("- halve: returns x/2"), "{user}");
        assert!(user.contains("BRICK said: Parts of"), "{user}");
        assert!(!user.contains("Reply with the JSON object only."), "{user}");
        assert!(e.messages[0].content.starts_with("You are BABS"));
    }
    assert_eq!(ds.manifest.persona, "babs");

    // ROBIN: only the cycles where its draft is what was committed (not square).
    let dir = tempfile::tempdir().unwrap();
    let ds = curate(&s.store, &CurationConfig::for_persona("robin"), dir.path())
        .await
        .unwrap();
    assert_eq!(ds.manifest.source_events, vec![s.good[1], s.good[2]]);
    assert_eq!(ds.manifest.counts.contributions_not_kept, 1);
}

#[tokio::test]
async fn secrets_and_host_paths_are_scrubbed() {
    let s = seed().await;
    let dir = tempfile::tempdir().unwrap();
    let ds = curate(&s.store, &CurationConfig::for_persona("alfred"), dir.path())
        .await
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join(TRAIN_FILE)).unwrap()
        + &std::fs::read_to_string(dir.path().join(VALIDATION_FILE)).unwrap();
    assert!(!text.contains("sk-abcdefghijklmnopqrstu1234"), "{text}");
    assert!(!text.contains("/home/alice"), "{text}");
    assert!(text.contains("OPENAI_API_KEY=[REDACTED]"), "{text}");
    assert!(text.contains("config at <path> has"), "{text}");
    assert!(ds.manifest.counts.secrets_scrubbed >= 1);
    assert!(ds.manifest.counts.paths_scrubbed >= 1);
}

#[tokio::test]
async fn output_is_deterministic_and_the_manifest_hashes_the_files() {
    let s = seed().await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Small pages exercise paging; the result must not depend on the page size.
    let mut small = CurationConfig::for_persona("alfred");
    small.page_size = 2;
    curate(&s.store, &small, a.path()).await.unwrap();
    curate(&s.store, &CurationConfig::for_persona("alfred"), b.path())
        .await
        .unwrap();
    for f in [TRAIN_FILE, VALIDATION_FILE, MANIFEST_FILE] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(a.path().join(MANIFEST_FILE)).unwrap())
            .unwrap();
    for split in [&manifest.train, &manifest.validation] {
        let bytes = std::fs::read(a.path().join(&split.file)).unwrap();
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, split.sha256);
        assert_eq!(
            bytes.iter().filter(|&&c| c == b'\n').count(),
            split.examples
        );
    }
    // With at least two examples, validation is never empty.
    assert!(manifest.validation.examples >= 1 && manifest.train.examples >= 1);
}

#[tokio::test]
async fn an_empty_trail_or_an_unknown_persona_is_refused() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        curate(&store, &CurationConfig::for_persona("babs"), dir.path()).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        curate(&store, &CurationConfig::for_persona("jeeves"), dir.path()).await,
        Err(Error::Invalid(_))
    ));
}

/// A cycle recorded from the real cascade: for every persona, the curated prompt is
/// the prompt the cascade sent, byte for byte (one renderer, no copy to drift).
#[tokio::test]
async fn curated_prompts_are_the_prompts_the_cascade_sent() {
    use aura_cognition::{Cascade, ChatRequest, ScriptedModel};
    let model = std::sync::Arc::new(ScriptedModel::from_fn(|req: &ChatRequest| {
        let system = &req.messages[0].content;
        Ok(
            if system.starts_with("You are ROBIN") || system.starts_with("You are ALFRED") {
                "```python\ndef twice(x):\n    return 2 * x\n\nassert twice(2) == 4\n```".into()
            } else {
                "Read x; return it doubled.".into()
            },
        )
    }));
    let cascade = Cascade::builder(model.clone()).build();
    let mandate = LearnMandate::new("calc", "twice", json!([3]))
        .with_request("teach yourself to double a number");
    let aura_cognition::CascadeRun { packet, result } = cascade
        .run(&mandate, aura_cognition::RunOptions::default())
        .await;
    let candidate = result.unwrap();
    let store = SqliteStore::open_in_memory().await.unwrap();
    store
        .append_event(NewAuditEvent::new(
            EventKind::LearnCommitted.as_str(),
            None,
            committed(
                "twice",
                "double a number",
                &candidate,
                passed(&["test_it"]),
                &packet,
            ),
        ))
        .await
        .unwrap();
    let sent = model.requests();
    assert_eq!(sent.len(), 4, "BRICK, ROBIN, BABS, ALFRED");
    for (persona, request) in ["brick", "robin", "babs", "alfred"].iter().zip(&sent) {
        let dir = tempfile::tempdir().unwrap();
        curate(&store, &CurationConfig::for_persona(*persona), dir.path())
            .await
            .unwrap();
        let examples = read_examples(dir.path());
        assert_eq!(examples.len(), 1, "{persona}");
        let curated = &examples[0].messages;
        assert_eq!(curated[0].content, request.messages[0].content, "{persona}");
        assert_eq!(curated[1].content, request.messages[1].content, "{persona}");
    }
}

/// A trail the previous release wrote (a learn that committed, one refused after three
/// failed candidates; recorded from the Python bindings with a scripted model) still
/// reads with today's payload types, and curation still learns from it.
#[tokio::test]
async fn a_trail_written_by_the_previous_format_still_reads() {
    use aura_forge::trail::{LearnAttemptFailed, LearnCommitted, LearnRefused, Payload, Stage};

    let recorded: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/trail-0.1-2026-12-04.json")).unwrap();
    let store = SqliteStore::open_in_memory().await.unwrap();
    let mut kinds = Vec::new();
    for e in &recorded {
        let kind = EventKind::parse(e["kind"].as_str().unwrap()).unwrap();
        let event = store
            .append_event(NewAuditEvent::new(kind, None, e["payload"].clone()))
            .await
            .unwrap();
        match kind {
            EventKind::LearnCommitted => {
                let c = LearnCommitted::read(&event).unwrap();
                assert_eq!(c.selector, "fibonacci");
                assert!(c.tests_passed());
            }
            EventKind::LearnAttemptFailed => {
                let f = LearnAttemptFailed::read(&event).unwrap();
                assert!(matches!(f.failure.stage, Stage::Model | Stage::Guard));
            }
            EventKind::LearnRefused => {
                let r = LearnRefused::read(&event).unwrap();
                assert_eq!(r.attempts, 3);
                assert_eq!(r.failures.last().unwrap().stage, Stage::Search);
            }
            other => panic!("unexpected {other} in the recorded trail"),
        }
        kinds.push(kind);
    }
    assert_eq!(kinds.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let dataset = curate(&store, &CurationConfig::for_persona("alfred"), dir.path())
        .await
        .unwrap();
    assert_eq!(dataset.manifest.counts.committed_passing, 1);
    assert_eq!(dataset.manifest.counts.attempts_failed, 3);
    assert_eq!(dataset.manifest.counts.refused, 1);
}
