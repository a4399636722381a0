//! Health: the store, the sandbox and each persona's model, checked now; the bounded
//! maps' fill; and the forge's runs, with their loss and learn-rate plots.

use axum::extract::State;
use maud::{html, Markup};
use serde_json::Value;

use aura_core::forge::trail::{EventKind, ForgeFinished, Payload};
use aura_core::store::{AuditEvent, AuditQuery};
use aura_core::{Check, CheckStatus};

use super::svg::line_plot;
use super::{json_text, layout, trusted_svg, when, OrPage, Page};
use crate::AppState;

/// Forge events read for the plots: the trail's first page of them.
const FORGE_EVENTS: u32 = 1000;

/// `/ui/health`.
pub(super) async fn show(State(state): State<AppState>) -> Page {
    let rt = &state.runtime;
    let health = rt.health().await;
    let forge = rt
        .store()
        .query_audit(&AuditQuery {
            kind: Some("forge.*".into()),
            limit: Some(FORGE_EVENTS),
            ..AuditQuery::default()
        })
        .await
        .or_page()?;
    let mut checks: Vec<(String, &Check)> = vec![
        ("store".into(), &health.checks.store),
        ("sandbox".into(), &health.checks.sandbox),
    ];
    checks.extend(
        health
            .checks
            .models
            .iter()
            .map(|(p, c)| (format!("model: {p}"), c)),
    );
    let resources = serde_json::to_value(&health.resources).unwrap_or(Value::Null);
    Ok(layout(
        "Health",
        true,
        html! {
            h1 { "Health: " (status(health.status)) }
            table.list #checks {
                thead { tr { th { "check" } th { "status" } th { "latency" } th { "detail" } } }
                tbody {
                    @for (name, c) in &checks {
                        tr {
                            td { (name) }
                            td { (status(c.status)) }
                            td { @if let Some(ms) = c.latency_ms { (format!("{ms:.1} ms")) } }
                            td { pre { (detail(&c.detail)) } }
                        }
                    }
                }
            }
            h2 { "Bounded resources" }
            pre { (json_text(&resources, 4000)) }
            p.muted { "Open connections and event streams: "
                (state.connections.open().map_or_else(|| "not counted (the host serves the router)".to_string(), |n| n.to_string()))
                " / " (state.event_streams()) " streams." }
            h2 { "Forge" }
            pre { (json_text(&health.forge, 4000)) }
            (forge_runs(&forge.events))
        },
    ))
}

fn status(s: CheckStatus) -> Markup {
    let word = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    html! { span class=(if s == CheckStatus::Ok { "ok" } else { "bad" }) { (word) } }
}

fn detail(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => json_text(other, 2000),
    }
}

/// The forge's runs as a table, with validation loss by run and held-out learn rate by
/// expert-iteration round.
fn forge_runs(events: &[AuditEvent]) -> Markup {
    let finished: Vec<(&AuditEvent, ForgeFinished)> = events
        .iter()
        .filter_map(|e| ForgeFinished::read(e).map(|f| (e, f)))
        .collect();
    let failed: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| EventKind::ForgeFailed.is(e))
        .collect();
    let losses: Vec<(usize, &ForgeFinished)> = finished
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| f.evaluation.is_some())
        .map(|(i, (_, f))| (i + 1, f))
        .collect();
    let loss_plot = (!losses.is_empty()).then(|| {
        let series = |pick: fn(&aura_core::forge::Evaluation) -> f64| {
            losses
                .iter()
                .filter_map(|(i, f)| f.evaluation.as_ref().map(|e| (*i as f64, pick(e))))
                .collect::<Vec<_>>()
        };
        line_plot(
            "Validation loss by forge run",
            "run",
            &[
                ("base model", "base", series(|e| e.base_validation_loss)),
                ("facet", "facet", series(|e| e.facet_validation_loss)),
            ],
        )
    });
    let rounds: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| EventKind::ForgeRound.is(e))
        .collect();
    let rate = |v: Option<&Value>| {
        let n = |k: &str| v.and_then(|t| t.get(k)).and_then(Value::as_f64);
        Some(100.0 * n("correct")? / n("requests")?.max(1.0))
    };
    let learn_plot = (!rounds.is_empty()).then(|| {
        let series = |which: &str| {
            rounds
                .iter()
                .filter_map(|e| {
                    let round = e.payload.get("round").and_then(Value::as_f64)?;
                    Some((
                        round,
                        rate(e.payload.get("held_out").and_then(|h| h.get(which)))?,
                    ))
                })
                .collect::<Vec<_>>()
        };
        line_plot(
            "Held-out learn rate (%) by round",
            "round",
            &[
                ("serving model", "base", series("before")),
                ("forged", "facet", series("after")),
            ],
        )
    });
    html! {
        h3 { "Runs" }
        @if finished.is_empty() && failed.is_empty() { p.muted { "The forge has not run yet." } }
        @else {
            table.list #forge-runs {
                thead { tr { th { "when" } th { "persona" } th { "facet" } th { "examples" } th { "validation loss" } th { "promoted" } } }
                tbody {
                    @for (e, f) in &finished {
                        tr {
                            td { (when(&e.at)) } td { (f.persona) } td { (f.facet) } td { (f.examples) }
                            td { @if let Some(ev) = &f.evaluation { (format!("{:.3} → {:.3}", ev.base_validation_loss, ev.facet_validation_loss)) } }
                            td { @if f.promoted { span.ok { "yes" } } @else { span.muted { "no" } @if let Some(why) = &f.not_promoted { " (" (why) ")" } } }
                        }
                    }
                    @for e in &failed {
                        tr.failed { td { (when(&e.at)) } td colspan="5" { span.bad { "failed: " } (e.payload.get("error").and_then(Value::as_str).unwrap_or("")) } }
                    }
                }
            }
        }
        @if let Some(svg) = loss_plot { div.drawing #loss-plot { (trusted_svg(svg)) } }
        @if !rounds.is_empty() { (round_table(&rounds)) }
        @if let Some(svg) = learn_plot { div.drawing #learn-rate-plot { (trusted_svg(svg)) } }
    }
}

/// Expert-iteration rounds (`forge.round` events, from `forge_round`'s trail): what each
/// kept, how both models learned, whether the facet was promoted, and where the time went.
fn round_table(rounds: &[&AuditEvent]) -> Markup {
    let num = |v: &Value, path: &[&str]| {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_u64)
    };
    // "23 (15 wrong)": learned correctly out of the set, with the committed-but-wrong.
    let learned = |e: &AuditEvent, set: &str, which: &str| match (
        num(&e.payload, &[set, which, "correct"]),
        num(&e.payload, &[set, which, "wrong"]),
        num(&e.payload, &[set, which, "requests"]),
    ) {
        (Some(c), Some(w), Some(n)) => format!("{c}/{n} ({w} wrong)"),
        _ => String::new(),
    };
    let seconds = |e: &AuditEvent, phase: &str| {
        e.payload
            .get("seconds")
            .and_then(|s| s.get(phase))
            .and_then(Value::as_f64)
            .map_or_else(String::new, |s| format!("{s:.0}"))
    };
    html! {
        h3 { "Expert-iteration rounds" }
        table.list #forge-rounds {
            thead { tr {
                th { "when" } th { "round" } th { "kept" }
                th { "held-out: serving → forged" } th { "everyday: serving → forged" }
                th { "promoted" } th { "seconds: sampling / training / measuring" }
            } }
            tbody {
                @for e in rounds {
                    tr {
                        td { (when(&e.at)) }
                        td { (num(&e.payload, &["round"]).map_or_else(String::new, |r| r.to_string())) }
                        td { (match (num(&e.payload, &["kept"]), num(&e.payload, &["sampled", "requests"])) {
                            (Some(k), Some(n)) => format!("{k} of {n}"),
                            _ => String::new(),
                        }) }
                        td { (learned(e, "held_out", "before")) " → " (learned(e, "held_out", "after")) }
                        td { (learned(e, "everyday", "before")) " → " (learned(e, "everyday", "after")) }
                        td {
                            @if e.payload.get("promoted").and_then(Value::as_bool) == Some(true) { span.ok { "yes" } }
                            @else {
                                span.muted { "no" }
                                @if let Some(why) = e.payload.get("not_promoted").and_then(Value::as_str) { " (" (why) ")" }
                            }
                        }
                        td { (seconds(e, "sampling")) " / " (seconds(e, "training")) " / " (seconds(e, "measuring")) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::store::EventId;
    use serde_json::json;

    fn round(n: u64, promoted: bool) -> AuditEvent {
        AuditEvent {
            id: EventId::new(),
            at: chrono::Utc::now(),
            kind: "forge.round".into(),
            object_id: None,
            payload: json!({
                "round": n, "kept": 26, "sampled": {"requests": 120, "correct": 26, "wrong": 4},
                "promoted": promoted,
                "not_promoted": (!promoted).then_some("it commits more wrong methods"),
                "held_out": {"before": {"requests": 65, "correct": 15, "wrong": 6},
                             "after": {"requests": 65, "correct": 23, "wrong": 15}},
                "everyday": {"before": {"requests": 45, "correct": 29, "wrong": 3},
                             "after": {"requests": 45, "correct": 26, "wrong": 10}},
                "seconds": {"sampling": 366.2, "training": 51.0, "measuring": 129.4},
            }),
        }
    }

    #[test]
    fn rounds_show_their_figures_the_verdict_and_the_learn_rate_plot() {
        let page = forge_runs(&[round(1, false), round(2, true)]).into_string();
        assert!(page.contains("id=\"forge-rounds\""), "{page}");
        assert!(page.contains("26 of 120"), "{page}");
        assert!(
            page.contains("15/65 (6 wrong) → 23/65 (15 wrong)"),
            "{page}"
        );
        assert!(
            page.contains("29/45 (3 wrong) → 26/45 (10 wrong)"),
            "{page}"
        );
        assert!(page.contains("(it commits more wrong methods)"), "{page}");
        assert!(page.contains("366 / 51 / 129"), "{page}");
        assert!(page.contains("id=\"learn-rate-plot\""), "{page}");
        // No rounds: no table.
        assert!(!forge_runs(&[]).into_string().contains("forge-rounds"));
    }
}
