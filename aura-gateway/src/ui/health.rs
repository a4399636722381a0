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
        @if let Some(svg) = learn_plot { div.drawing #learn-rate-plot { (trusted_svg(svg)) } }
    }
}
