//! Objects and their methods: the list (with search), one object (slots, parents, the
//! delegation chain drawn, the methods it responds to), one method (versions, source,
//! tests, a diff between versions) and the one write: rolling a method back.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use aura_core::store::{
    AuditQuery, Method, Object, ObjectId, Page as StorePage, Provenance, Selector,
};

use super::svg::{Graph, Node};
use super::{clip, json_text, layout, pager, percent, trusted_svg, when, OrPage, Page, PageError};
use crate::auth::{Granted, Scope};
use crate::routes::{method_history, resolve};
use crate::AppState;

/// Objects per page of the list.
const PAGE: u32 = 50;
/// Objects a search reads per request: a search looks through this many, then offers
/// to go on, so no request reads the table whole.
const SEARCH_WINDOW: u32 = 1000;
/// Selectors per page of an object's methods.
const SELECTORS: usize = 100;
/// Ancestors drawn in the delegation graph.
const MAX_ANCESTORS: usize = 40;

#[derive(Deserialize)]
pub(super) struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: u32,
}

/// `/ui/objects`: a page of objects, or those whose name contains `q`.
pub(super) async fn list(State(state): State<AppState>, Query(p): Query<ListParams>) -> Page {
    let q = p.q.trim().to_owned();
    let store = state.runtime.store();
    let limit = if q.is_empty() { PAGE } else { SEARCH_WINDOW };
    let objects = store
        .list_objects(StorePage {
            offset: p.offset,
            limit,
        })
        .await
        .or_page()?;
    let full = objects.len() as u32 == limit;
    let exact = if q.is_empty() {
        None
    } else {
        resolve(&state.runtime, &q).await.ok()
    };
    let needle = q.to_lowercase();
    let shown: Vec<&Object> = objects
        .iter()
        .filter(|o| needle.is_empty() || o.name.to_lowercase().contains(&needle))
        .collect();
    let link = |offset: u32| format!("/ui/objects?q={}&offset={offset}", percent(&q));
    let prev = (p.offset > 0).then(|| link(p.offset.saturating_sub(limit)));
    let next = full.then(|| link(p.offset.saturating_add(limit)));
    Ok(layout(
        "Objects",
        true,
        html! {
            h1 { "Objects" }
            form.search method="get" action="/ui/objects" {
                label for="q" { "Name contains, or an id" }
                input #q name="q" value=(q) type="search";
                button type="submit" { "Search" }
            }
            @if let Some(o) = &exact {
                p { "Exact match: " a href=(object_href(o.id)) { (o.name) } }
            }
            @if !q.is_empty() {
                p.muted { "Searched objects " (p.offset + 1) "–" (p.offset as usize + objects.len())
                    " by name: " (shown.len()) " match." @if full { " More objects follow: search on with “next”." } }
            }
            table.list {
                thead { tr { th { "name" } th { "id" } th { "parents" } th { "slots" } th { "updated" } } }
                tbody {
                    @for o in &shown {
                        tr {
                            td { a href=(object_href(o.id)) { (o.name) } }
                            td.mono { (o.id) }
                            td { (o.parents.len()) }
                            td { (o.slots.len()) }
                            td { (when(&o.updated_at)) }
                        }
                    }
                }
            }
            (pager(prev, next))
        },
    ))
}

pub(super) fn object_href(id: ObjectId) -> String {
    format!("/ui/objects/{id}")
}

fn method_href(object: ObjectId, selector: &str) -> String {
    format!("/ui/objects/{object}/methods/{}", percent(selector))
}

#[derive(Deserialize)]
pub(super) struct OffsetParam {
    #[serde(default)]
    offset: usize,
}

/// `/ui/objects/{object}`: slots, parents, the delegation chain, methods, recent cycles.
pub(super) async fn show(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Query(p): Query<OffsetParam>,
) -> Page {
    let rt = &state.runtime;
    let object = resolve(rt, &reference).await.or_page()?;
    let view = rt.chain_view(object.id).await.or_page()?;
    let page = view.selectors(false, p.offset, SELECTORS);
    let own = view.own().map_or(0, |t| t.len());
    let (graph, order) = chain_graph(&state, &object).await;
    let cycles = rt
        .store()
        .query_audit(&AuditQuery {
            object_id: Some(object.id),
            kind: Some("learn.*".into()),
            limit: Some(200),
            ..AuditQuery::default()
        })
        .await
        .or_page()?;
    let link = |offset: usize| format!("{}?offset={offset}", object_href(object.id));
    let prev = (p.offset > 0).then(|| link(p.offset.saturating_sub(SELECTORS)));
    let next = page.next_offset.map(link);
    let cycles: Vec<_> = cycles
        .events
        .iter()
        .filter(|e| super::cycles::is_cycle(e))
        .collect();
    Ok(layout(
        &object.name,
        true,
        html! {
            h1 { "Object " (object.name) }
            p.muted.mono { (object.id) " · revision " (object.rev) " · created " (when(&object.created_at)) " · updated " (when(&object.updated_at)) }
            h2 { "Slots" }
            @if object.slots.is_empty() { p.muted { "No slots." } }
            @else {
                table.list {
                    thead { tr { th { "slot" } th { "value" } } }
                    tbody { @for (k, v) in &object.slots { tr { td { (k) } td { pre { (json_text(v, 2000)) } } } } }
                }
            }
            h2 { "Delegation" }
            p { "Lookup order: " @for (i, (id, name)) in order.iter().enumerate() {
                @if i > 0 { " → " } a href=(object_href(*id)) { (name) } } }
            div.drawing { (trusted_svg(graph)) }
            h2 { "Methods" }
            p.muted { (own) " defined here; " (page.total) " it responds to along its chain." }
            table.list #methods {
                thead { tr { th { "selector" } th { "defined on" } th { "version" } } }
                tbody {
                    @for s in &page.selectors {
                        tr {
                            td { a href=(method_href(s.defined_on_id, &s.selector)) { (s.selector) } }
                            td { a href=(object_href(s.defined_on_id)) { (s.defined_on) } }
                            td { (s.version) }
                        }
                    }
                }
            }
            (pager(prev, next))
            h2 { "Learn cycles" }
            @if cycles.is_empty() { p.muted { "None yet." } }
            @else {
                (super::cycles::table(&cycles, &HashMap::from([(object.id, object.name.clone())])))
                p { a href=(format!("/ui/cycles?object={}", object.id)) { "Every learn cycle of this object →" } }
            }
        },
    ))
}

/// The object and its ancestors, level by level, with the depth-first lookup order
/// (the order dispatch searches). Bounded by [`MAX_ANCESTORS`].
async fn chain_graph(state: &AppState, object: &Object) -> (String, Vec<(ObjectId, String)>) {
    let store = state.runtime.store();
    let mut known: HashMap<ObjectId, (usize, Object)> = HashMap::new();
    let mut graph = Graph {
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let mut levels: Vec<Vec<usize>> = vec![vec![0]];
    graph.nodes.push(Node {
        label: object.name.clone(),
        href: None,
        class: "focus",
        x: 0.0,
        y: 0.0,
    });
    known.insert(object.id, (0, object.clone()));
    let mut frontier = vec![object.clone()];
    while !frontier.is_empty() && known.len() < MAX_ANCESTORS {
        let mut next_level = Vec::new();
        let mut next_frontier = Vec::new();
        for child in &frontier {
            let from = known.get(&child.id).map_or(0, |k| k.0);
            for (rank, parent) in child.parents.iter().enumerate() {
                let to = if let Some((i, _)) = known.get(parent) {
                    *i
                } else {
                    if known.len() >= MAX_ANCESTORS {
                        break;
                    }
                    let Ok(p) = store.get_object(*parent).await else {
                        continue;
                    };
                    let i = graph.nodes.len();
                    graph.nodes.push(Node {
                        label: p.name.clone(),
                        href: Some(object_href(p.id)),
                        class: "object",
                        x: 0.0,
                        y: 0.0,
                    });
                    known.insert(p.id, (i, p.clone()));
                    next_level.push(i);
                    next_frontier.push(p);
                    i
                };
                let label = (child.parents.len() > 1).then(|| format!("{}", rank + 1));
                graph.edges.push((from, to, label));
            }
        }
        if !next_level.is_empty() {
            levels.push(next_level);
        }
        frontier = next_frontier;
    }
    graph.place_in_levels(&levels);
    // Depth-first, left to right, each object once: the order `resolve` searches.
    let mut order = Vec::new();
    let mut stack = vec![object.id];
    while let Some(id) = stack.pop() {
        if order.iter().any(|(seen, _)| *seen == id) {
            continue;
        }
        let Some((_, o)) = known.get(&id) else {
            continue;
        };
        order.push((id, o.name.clone()));
        stack.extend(o.parents.iter().rev());
    }
    (
        graph.render(&format!("{}'s delegation chain", object.name)),
        order,
    )
}

#[derive(Deserialize)]
pub(super) struct MethodParams {
    /// The version to show (default: the current one).
    v: Option<u32>,
    /// Diff from this version…
    from: Option<u32>,
    /// …to this one (default: the shown one).
    to: Option<u32>,
    /// Set after a rollback, to say so.
    rolled: Option<u32>,
}

/// `/ui/objects/{object}/methods/{selector}`: a method's versions, one version's
/// source and tests, and a diff between two versions.
pub(super) async fn method(
    State(state): State<AppState>,
    Extension(Granted(scope)): Extension<Granted>,
    Path((reference, selector)): Path<(String, String)>,
    Query(p): Query<MethodParams>,
) -> Page {
    let (object, versions, current) = versions_of(&state, &reference, &selector).await?;
    let shown_v = p.v.unwrap_or(current);
    let Some(shown) = versions.iter().find(|m| m.version == shown_v) else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("{selector} has no version {shown_v}."),
        ));
    };
    let previous = versions.iter().rev().find(|m| m.version < shown.version);
    let from = p.from.or(previous.map(|m| m.version));
    let to = p.to.unwrap_or(shown.version);
    let diff = match (
        from.and_then(|f| versions.iter().find(|m| m.version == f)),
        versions.iter().find(|m| m.version == to),
    ) {
        (Some(a), Some(b)) if a.version != b.version => {
            Some((a.version, b.version, diff_lines(a, b)))
        }
        _ => None,
    };
    let here = method_href(object.id, &selector);
    Ok(layout(
        &selector,
        true,
        html! {
            h1 { (selector) " on " a href=(object_href(object.id)) { (object.name) } }
            @if let Some(v) = p.rolled { p.notice #rolled { "Rolled back: version " (v) " is now current." } }
            p.muted { "Showing version " span #shown-version { (shown.version) } "; current is " span #current-version { (current) } "." }
            @if !shown.doc.is_empty() { p { (shown.doc) } }
            h2 { "Source" }
            pre.code #source { (shown.source) }
            h2 { "Tests" }
            @if shown.tests.trim().is_empty() { p.muted { "No tests." } } @else { pre.code #tests { (shown.tests) } }
            h2 { "Versions" }
            table.list #versions {
                thead { tr { th { "version" } th { "how" } th { "when" } th {} } }
                tbody {
                    @for m in versions.iter().rev() {
                        tr {
                            td { a href=(format!("{here}?v={}", m.version)) { (m.version) } @if m.version == current { " (current)" } }
                            td { (provenance(&m.provenance)) }
                            td { (when(&m.created_at)) }
                            td {
                                @if m.version != current {
                                    a href=(format!("{here}?from={}&to={current}", m.version)) { "diff to current" }
                                    @if scope >= Scope::Teach {
                                        " · " a.button href=(format!("{here}/rollback?version={}", m.version)) { "roll back to this" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some((a, b, lines)) = diff {
                h2 { "Diff: version " (a) " → " (b) }
                (lines)
            }
        },
    ))
}

/// The object, every version of its method `selector` (oldest first) and the current
/// version's number.
async fn versions_of(
    state: &AppState,
    reference: &str,
    selector: &str,
) -> Result<(Object, Vec<Method>, u32), PageError> {
    let object = resolve(&state.runtime, reference).await.or_page()?;
    let selector = Selector::new(selector).or_page()?;
    let (versions, current) = method_history(&state.runtime, &object, &selector)
        .await
        .or_page()?;
    match current {
        Some(c) => Ok((object, versions, c)),
        None => Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("{} defines no method {selector}.", object.name),
        )),
    }
}

fn provenance(p: &Provenance) -> Markup {
    match p {
        Provenance::Manual => html! { "defined by hand" },
        Provenance::Learned { event, models } => html! {
            "learned"
            @if !models.is_empty() { " by " (models.join(", ")) }
            @if let Some(e) = event { " (" a href=(format!("/ui/cycles/{e}")) { "the cycle" } ")" }
        },
        Provenance::Rollback { from_version } => html! { "rolled back to version " (from_version) },
        _ => html! { "other" },
    }
}

/// A line diff of source and tests, as a table of kept, removed and added lines.
fn diff_lines(a: &Method, b: &Method) -> Markup {
    let text = |m: &Method| format!("{}\n\n# tests\n{}\n", m.source, m.tests);
    let (old, new) = (text(a), text(b));
    let diff = similar::TextDiff::from_lines(&old, &new);
    html! {
        table.diff #diff {
            tbody {
                @for change in diff.iter_all_changes() {
                    @let (class, sign) = match change.tag() {
                        similar::ChangeTag::Delete => ("del", "-"),
                        similar::ChangeTag::Insert => ("ins", "+"),
                        similar::ChangeTag::Equal => ("eq", " "),
                    };
                    tr class=(class) {
                        td.sign { (sign) }
                        td { pre { (clip(change.value().trim_end_matches('\n'), 2000)) } }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct VersionParam {
    version: u32,
}

/// `GET …/rollback?version=N`: asks first, showing what would change.
pub(super) async fn confirm_rollback(
    State(state): State<AppState>,
    Extension(Granted(scope)): Extension<Granted>,
    Path((reference, selector)): Path<(String, String)>,
    Query(p): Query<VersionParam>,
) -> Page {
    if scope < Scope::Teach {
        return Err(needs_teach(scope));
    }
    let (object, versions, current) = versions_of(&state, &reference, &selector).await?;
    let (Some(target), Some(now)) = (
        versions.iter().find(|m| m.version == p.version),
        versions.iter().find(|m| m.version == current),
    ) else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("{selector} has no version {}.", p.version),
        ));
    };
    let here = method_href(object.id, &selector);
    Ok(layout(
        "Roll back",
        true,
        html! {
            h1 { "Roll back " (selector) " on " (object.name) "?" }
            p { "Version " (target.version) " becomes current again, as a new version. Version " (current) " stays in the history." }
            h2 { "What changes" }
            (diff_lines(now, target))
            form method="post" action=(format!("{here}/rollback")) {
                input type="hidden" name="version" value=(target.version);
                button #confirm type="submit" { "Roll back to version " (target.version) }
                " " a href=(here) { "Cancel" }
            }
        },
    ))
}

/// `POST …/rollback`: makes the version current again, then shows the method.
pub(super) async fn rollback(
    State(state): State<AppState>,
    Extension(Granted(scope)): Extension<Granted>,
    Path((reference, selector)): Path<(String, String)>,
    Form(p): Form<VersionParam>,
) -> Response {
    if scope < Scope::Teach {
        return needs_teach(scope).into_response();
    }
    let object = match resolve(&state.runtime, &reference).await.or_page() {
        Ok(o) => o,
        Err(page) => return page.into_response(),
    };
    match state
        .runtime
        .rollback_method(object.id, &selector, p.version)
        .await
        .or_page()
    {
        Ok(_) => Redirect::to(&format!(
            "{}?rolled={}",
            method_href(object.id, &selector),
            p.version
        ))
        .into_response(),
        Err(page) => page.into_response(),
    }
}

fn needs_teach(scope: Scope) -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        format!(
            "Rolling a method back needs a token with the `teach` scope; this one has `{scope}`."
        ),
    )
}
