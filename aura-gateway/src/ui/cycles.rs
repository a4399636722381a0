//! Learn cycles, read from the audit trail: the list, and one cycle with its mandate,
//! each persona's contribution, every sampled candidate (guard verdict with rule ids,
//! sandbox outcome, what it returned on each probe input), the agreement clusters, the
//! winner and why, and a waterfall of where the time went.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use aura_core::cognition::cascade::{PacketTiming, PersonaContribution};
use aura_core::forge::trail::{
    EventKind, LearnAttemptFailed, LearnCommitted, LearnRefused, Payload,
};
use aura_core::store::{AuditEvent, AuditQuery, EventId, ObjectId};

use super::objects::object_href;
use super::svg::{format_ms, waterfall, Bar};
use super::{clip, json_text, layout, pager, trusted_svg, when, OrPage, Page, PageError};
use crate::routes::resolve;
use crate::AppState;

/// Audit events read per page of the list.
const PAGE: u32 = 200;
/// Distinct objects whose names one page looks up.
const MAX_NAMES: usize = 100;

/// Whether `event` ends a learn cycle (committed or refused).
pub(super) fn is_cycle(event: &AuditEvent) -> bool {
    EventKind::LearnCommitted.is(event) || EventKind::LearnRefused.is(event)
}

/// A table of cycles, newest last, with the objects' names where known.
pub(super) fn table(events: &[&AuditEvent], names: &HashMap<ObjectId, String>) -> Markup {
    html! {
        table.list.cycles {
            thead { tr { th { "when" } th { "object" } th { "method" } th { "outcome" } th { "candidates" } } }
            tbody {
                @for e in events {
                    @let selector = e.payload.get("selector").and_then(Value::as_str).unwrap_or("?");
                    @let committed = EventKind::LearnCommitted.is(e);
                    @let drawn = e.payload.get(if committed { "attempt" } else { "attempts" }).and_then(Value::as_u64).unwrap_or(0);
                    tr {
                        td { a href=(format!("/ui/cycles/{}", e.id)) { (when(&e.at)) } }
                        td { @if let Some(id) = e.object_id {
                            a href=(object_href(id)) { (names.get(&id).cloned().unwrap_or_else(|| id.to_string())) } } }
                        td { (selector) }
                        td { @if committed { span.ok { "committed" } } @else { span.bad { "refused" } } }
                        td { (drawn) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ListParams {
    object: Option<String>,
    after: Option<EventId>,
}

/// `/ui/cycles`: every learn cycle, oldest first, a page at a time.
pub(super) async fn list(State(state): State<AppState>, Query(p): Query<ListParams>) -> Page {
    let rt = &state.runtime;
    let object = match &p.object {
        Some(r) => Some(resolve(rt, r).await.or_page()?),
        None => None,
    };
    let page = rt
        .store()
        .query_audit(&AuditQuery {
            object_id: object.as_ref().map(|o| o.id),
            kind: Some("learn.*".into()),
            after: p.after,
            limit: Some(PAGE),
            ..AuditQuery::default()
        })
        .await
        .or_page()?;
    let cycles: Vec<&AuditEvent> = page.events.iter().filter(|e| is_cycle(e)).collect();
    let mut names = HashMap::new();
    for id in cycles.iter().filter_map(|e| e.object_id) {
        if names.len() >= MAX_NAMES || names.contains_key(&id) {
            continue;
        }
        if let Ok(o) = rt.store().get_object(id).await {
            names.insert(id, o.name);
        }
    }
    let filter = object
        .as_ref()
        .map(|o| format!("object={}&", o.id))
        .unwrap_or_default();
    let next = page.next.map(|n| format!("/ui/cycles?{filter}after={n}"));
    Ok(layout(
        "Learn cycles",
        true,
        html! {
            h1 { "Learn cycles" @if let Some(o) = &object { " of " a href=(object_href(o.id)) { (o.name) } } }
            @if cycles.is_empty() { p.muted { "No learn cycle on this page." } }
            @else { (table(&cycles, &names)) }
            (pager(None, next))
        },
    ))
}

/// The learn event `id`, found from its time: ids are time-ordered (UUID v7) and made
/// within moments of the event's own time, so a few pages around it hold it.
async fn find_event(state: &AppState, id: EventId) -> Result<AuditEvent, PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, format!("No learn cycle {id}."));
    let ms = id.0.as_bytes()[..6]
        .iter()
        .fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    let Some(made) = chrono::DateTime::from_timestamp_millis(ms) else {
        return Err(not_found());
    };
    let mut query = AuditQuery {
        kind: Some("learn.*".into()),
        since: Some(made - chrono::Duration::seconds(5)),
        until: Some(made + chrono::Duration::seconds(5)),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    for _ in 0..5 {
        let page = state.runtime.store().query_audit(&query).await.or_page()?;
        if let Some(e) = page.events.iter().find(|e| e.id == id) {
            return Ok(e.clone());
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Err(not_found())
}

/// `/ui/cycles/{event}`: one learn cycle.
pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Page {
    let Ok(id) = id.parse::<EventId>() else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "That is not an event id.",
        ));
    };
    let event = find_event(&state, id).await?;
    let object = match event.object_id {
        Some(id) => state.runtime.store().get_object(id).await.ok(),
        None => None,
    };
    let object_link = html! { @if let Some(o) = &object { a href=(object_href(o.id)) { (o.name) } } @else { "an object" } };
    let body = if let Some(c) = LearnCommitted::read(&event) {
        committed(&c, &event, object_link)
    } else if let Some(r) = LearnRefused::read(&event) {
        let attempts = failed_attempts(&state, &event, &r.selector).await?;
        refused(&r, &event, &attempts, object_link)
    } else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!(
                "Event {id} is a {} event, not the end of a learn cycle.",
                event.kind
            ),
        ));
    };
    Ok(layout("Learn cycle", true, body))
}

/// The `learn.attempt_failed` events of the search a refusal ended: same object and
/// selector, within one learn budget before it.
async fn failed_attempts(
    state: &AppState,
    event: &AuditEvent,
    selector: &str,
) -> Result<Vec<LearnAttemptFailed>, PageError> {
    let budget = chrono::Duration::from_std(state.runtime.config().learn_budget)
        .unwrap_or(chrono::Duration::seconds(90));
    let page = state
        .runtime
        .store()
        .query_audit(&AuditQuery {
            object_id: event.object_id,
            kind: Some(EventKind::LearnAttemptFailed.as_str().into()),
            since: Some(event.at - budget - chrono::Duration::seconds(5)),
            until: Some(event.at + chrono::Duration::seconds(1)),
            limit: Some(200),
            ..AuditQuery::default()
        })
        .await
        .or_page()?;
    Ok(page
        .events
        .iter()
        .filter_map(LearnAttemptFailed::read)
        .filter(|a| a.selector == selector)
        .collect())
}

/// Each persona's reply in one draw.
fn personas(steps: &[PersonaContribution]) -> Markup {
    html! {
        @for step in steps {
            details.persona {
                summary { strong { (step.persona.to_string()) } " · " (step.model) " · " (step.usage.prompt_tokens) " + " (step.usage.completion_tokens) " tokens · " (format_ms(step.model_us as f64 / 1e3)) }
                @if let Some(e) = &step.error { p.error { (e) } }
                pre { (clip(&step.text, 8000)) }
            }
        }
    }
}

fn committed(c: &LearnCommitted, event: &AuditEvent, object: Markup) -> Markup {
    let packet = &c.packet;
    let selection = packet.selection.as_ref();
    let winner = selection.map(|s| s.winner);
    html! {
        h1 { "Learned " (c.selector) " on " (object) }
        p.muted { (when(&event.at)) " · " (c.attempt) " candidates drawn · " span.ok #outcome { "committed" } }
        h2 { "Mandate" }
        p.request { (c.request) }
        @if !packet.mandate.known_methods.is_empty() {
            p.muted { "Methods it was shown: " (packet.mandate.known_methods.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")) }
        }
        h2 { "Why this one" }
        @if let Some(s) = selection {
            p #reason { (s.reason) }
            p.muted { "Drawn " (s.drawn) ", passed the hard checks " (s.eligible) ", agreement clusters " (format!("{:?}", s.clusters))
                ", agreeing with the winner " (s.agreeing) ", probes " (s.probes) ", request examples " (s.request_examples)
                ", other samples' asserts satisfied " (s.support) " / contradicted " (s.against) "." }
            @if let Some(margin) = s.reading {
                p.muted #reading { "The model's reading of the asserts where the winner and its strongest rival part: "
                    (format!("{margin:+.1}")) " in log-likelihood for the winner." }
            }
        } @else { p.muted { "Chosen before searches recorded their reasons." } }
        h2 { "Where the time went" }
        (timing(&c.candidates, winner))
        (stages(&packet.timing))
        h2 { "Candidates" }
        (candidates(&c.candidates, winner))
        h2 { "Personas (the winner's draw)" }
        (personas(&packet.contributions))
        h2 { "Committed method" }
        pre.code { (c.candidate.source) }
        @if !c.tests.is_empty() {
            ul { @for t in &c.tests { li { @if t.passed { span.ok { "passed" } } @else { span.bad { "failed" } } " " (t.name) } } }
        }
    }
}

fn refused(
    r: &LearnRefused,
    event: &AuditEvent,
    attempts: &[LearnAttemptFailed],
    object: Markup,
) -> Markup {
    let search = r
        .failures
        .iter()
        .rev()
        .find(|f| f.stage == aura_core::forge::Stage::Search);
    html! {
        h1 { "Refused to learn " (r.selector) " on " (object) }
        p.muted { (when(&event.at)) " · " (r.attempts) " candidates drawn · " span.bad #outcome { "refused" } }
        @if let Some(f) = search { p #reason { (f.message) } }
        @if !r.rules.is_empty() { p { "Guard rules that refused candidates: " @for (rule, n) in counted(&r.rules) { code.rule { (rule) } " ×" (n) " " } } }
        h2 { "Where the time went" }
        (timing(&r.candidates, None))
        h2 { "Candidates" }
        (candidates(&r.candidates, None))
        h2 { "Personas (each failed draw)" }
        @if attempts.is_empty() { p.muted { "No draw reached a model." } }
        @for a in attempts {
            h3 { "Candidate " (a.attempt) ": " span.bad { (a.failure.stage.as_str()) } }
            (personas(&a.packet.contributions))
        }
    }
}

/// Each distinct rule id with how often it refused, in first-seen order.
fn counted(rules: &[String]) -> Vec<(&str, usize)> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for r in rules {
        match out.iter_mut().find(|(seen, _)| *seen == r.as_str()) {
            Some((_, n)) => *n += 1,
            None => out.push((r, 1)),
        }
    }
    out
}

/// The waterfall: each candidate's model time then its checks, on the search's clock.
fn timing(pool: &Value, winner: Option<usize>) -> Markup {
    let bars: Vec<Bar> = pool_candidates(pool)
        .iter()
        .map(|c| {
            let t = |k: &str| {
                c.get("timing")
                    .and_then(|t| t.get(k))
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
            };
            let i = index(c);
            let won = winner == Some(i);
            Bar {
                label: format!(
                    "#{} {}",
                    i + 1,
                    if won { "winner" } else { verdict_word(c) }
                ),
                segments: vec![
                    (t("start_ms"), t("model_ms"), "model"),
                    (
                        t("start_ms") + t("model_ms"),
                        t("check_ms"),
                        if won { "check won" } else { "check" },
                    ),
                ],
            }
        })
        .collect();
    if bars.iter().all(|b| b.segments.iter().all(|s| s.1 == 0.0)) {
        return html! { p.muted { "This cycle was recorded before samples were timed." } };
    }
    html! {
        div.drawing #waterfall { (trusted_svg(waterfall("Samples: model, then guard and sandbox", &bars))) }
        p.legend { span.key.model {} " model " span.key.check {} " guard, sandbox and judging " span.key.won {} " the winner's checks" }
    }
}

/// The winner's own draw, stage by stage (the packet keeps each stage's total).
fn stages(t: &PacketTiming) -> Markup {
    let ms = |us: u64| us as f64 / 1e3;
    let mut at = 0.0;
    let segments: Vec<(f64, f64, &'static str)> = [
        (t.context_us, "context"),
        (t.grounding_us, "grounding"),
        (t.model_us, "model"),
        (t.check_us, "check"),
        (t.orchestration_us, "orchestration"),
    ]
    .into_iter()
    .map(|(us, class)| {
        let seg = (at, ms(us), class);
        at += ms(us);
        seg
    })
    .collect();
    let bars: Vec<Bar> = segments
        .iter()
        .map(|s| Bar {
            label: s.2.to_string(),
            segments: vec![*s],
        })
        .collect();
    html! {
        div.drawing #stages { (trusted_svg(waterfall("The winner's draw, stage by stage", &bars))) }
    }
}

fn pool_candidates(pool: &Value) -> Vec<&Value> {
    pool.get("candidates")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn index(c: &Value) -> usize {
    c.get("index").and_then(Value::as_u64).unwrap_or(0) as usize
}

fn verdict_word(c: &Value) -> &str {
    c.get("failure")
        .and_then(|f| f.get("stage"))
        .and_then(Value::as_str)
        .unwrap_or("eligible")
}

/// What a candidate returned on each probe, as one comparable key.
fn behaviour(c: &Value) -> String {
    c.get("outputs").map(Value::to_string).unwrap_or_default()
}

/// The candidates table: verdict (with guard rule ids), outputs on the probes, and
/// which agreement cluster each eligible one falls in (largest first).
fn candidates(pool: &Value, winner: Option<usize>) -> Markup {
    let all = pool_candidates(pool);
    let mut sizes: HashMap<String, usize> = HashMap::new();
    for c in all
        .iter()
        .filter(|c| c.get("failure").is_none_or(Value::is_null))
    {
        *sizes.entry(behaviour(c)).or_default() += 1;
    }
    let mut ranked: Vec<(&String, &usize)> = sizes.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let cluster: HashMap<&str, usize> = ranked
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i + 1))
        .collect();
    let examples = pool
        .get("request_examples")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    html! {
        p.muted { (all.len()) " drawn; " (pool.get("inputs").and_then(Value::as_u64).unwrap_or(0)) " probe inputs; "
            (examples) " examples from the request; " (ranked.len()) " behaviours among those that passed the hard checks." }
        table.list #candidates {
            thead { tr { th { "#" } th { "verdict" } th { "cluster" } th { "outputs on the probes" } th { "source" } } }
            tbody {
                @for c in &all {
                    @let i = index(c);
                    @let failure = c.get("failure").filter(|f| !f.is_null());
                    tr class=(if winner == Some(i) { "winner" } else if failure.is_some() { "failed" } else { "eligible" }) {
                        td { (i + 1) @if winner == Some(i) { " ★" } }
                        td.verdict {
                            @if let Some(f) = failure {
                                span.bad { (f.get("stage").and_then(Value::as_str).unwrap_or("?")) }
                                @if let Some(rules) = f.get("rules").and_then(Value::as_array) {
                                    @for rule in rules { " " code.rule { (rule.as_str().unwrap_or("?")) } }
                                }
                                div.muted { (clip(f.get("message").and_then(Value::as_str).unwrap_or(""), 400)) }
                            } @else { span.ok { "passed" } }
                        }
                        td { @if failure.is_none() { (cluster.get(behaviour(c).as_str()).copied().unwrap_or(0)) } }
                        td { ul.outputs { @for o in c.get("outputs").and_then(Value::as_array).map(|a| a.iter().take(12).collect::<Vec<_>>()).unwrap_or_default() {
                            li { code { (clip(&args_text(o.get("args")), 80)) } " → " code { (clip(&output_text(o.get("output")), 80)) } }
                        } } }
                        td { details {
                            summary {
                                @if let Some(name) = c.get("library").and_then(Value::as_str) {
                                    "the standard library's " code { (name) }
                                } @else {
                                    (c.get("written_as").and_then(Value::as_str).unwrap_or("as written"))
                                }
                            }
                            pre.code { (code_of(c)) }
                        } }
                    }
                }
            }
        }
        @if examples > 0 {
            details { summary { "The request's examples" } pre { (json_text(pool.get("request_examples").unwrap_or(&Value::Null), 4000)) } }
        }
    }
}

/// The candidate's method, or what the model wrote when it never became one.
fn code_of(c: &Value) -> &str {
    ["source", "raw_source"]
        .iter()
        .find_map(|k| c.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or("(no code)")
}

fn args_text(args: Option<&Value>) -> String {
    match args.and_then(Value::as_array) {
        Some(a) => format!(
            "({})",
            a.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "()".into(),
    }
}

fn output_text(output: Option<&Value>) -> String {
    match output {
        Some(o) if o.get("value").is_some() => {
            o.get("value").map(Value::to_string).unwrap_or_default()
        }
        Some(o) => format!(
            "raised {}",
            o.get("raised").and_then(Value::as_str).unwrap_or("?")
        ),
        None => "?".into(),
    }
}
