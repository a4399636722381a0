//! Memory: full-text search over memory nodes, and a node's neighbourhood drawn.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::html;
use serde::Deserialize;

use aura_core::store::{MemoryNode, NodeId, NodeRef};

use super::svg::{Graph, Node};
use super::{clip, json_text, layout, trusted_svg, when, OrPage, Page, PageError};
use crate::AppState;

/// Hits shown for a search.
const HITS: u32 = 50;
/// Nodes drawn around the centre, then around each of those.
const RING: u32 = 16;
const OUTER: u32 = 4;

#[derive(Deserialize)]
pub(super) struct SearchParams {
    #[serde(default)]
    q: String,
}

/// `/ui/memory?q=`: the best matches.
pub(super) async fn search(State(state): State<AppState>, Query(p): Query<SearchParams>) -> Page {
    let q = p.q.trim().to_owned();
    let hits = if q.is_empty() {
        Vec::new()
    } else {
        state
            .runtime
            .store()
            .search_memory(&q, HITS)
            .await
            .or_page()?
    };
    Ok(layout(
        "Memory",
        true,
        html! {
            h1 { "Memory" }
            form.search method="get" action="/ui/memory" {
                label for="q" { "Words to look for" }
                input #q name="q" value=(q) type="search";
                button type="submit" { "Search" }
            }
            @if !q.is_empty() {
                p.muted { (hits.len()) " best matches (at most " (HITS) ")." }
                table.list #hits {
                    thead { tr { th { "kind" } th { "text" } th { "when" } th { "score" } } }
                    tbody {
                        @for h in &hits {
                            tr {
                                td { (h.node.kind) }
                                td { a href=(format!("/ui/memory/{}", h.node.id)) { (clip(&h.node.text, 200)) } }
                                td { (when(&h.node.created_at)) }
                                td { (format!("{:.2}", h.score)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `/ui/memory/{node}`: the node, and the nodes linked to it (two hops, bounded).
pub(super) async fn node(State(state): State<AppState>, Path(id): Path<String>) -> Page {
    let Ok(id) = id.parse::<NodeId>() else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "That is not a memory node id.",
        ));
    };
    let store = state.runtime.store();
    let node = store.get_memory_node(id).await.or_page()?;
    let mut graph = Graph {
        nodes: vec![Node {
            label: format!("{}: {}", node.kind, node.text),
            href: None,
            class: "focus",
            x: 0.0,
            y: 0.0,
        }],
        edges: Vec::new(),
    };
    let mut index: HashMap<NodeId, usize> = HashMap::from([(id, 0)]);
    let mut rings = vec![Vec::new(), Vec::new()];
    let near = store
        .neighbours(NodeRef::Node(id), 1, RING)
        .await
        .or_page()?;
    for n in &near {
        let i = graph.nodes.len();
        graph.nodes.push(drawn(&n.node));
        index.insert(n.node.id, i);
        rings[0].push(i);
        graph.edges.push((0, i, None));
    }
    for n in &near {
        let from = index.get(&n.node.id).copied().unwrap_or(0);
        let outer = store
            .neighbours(NodeRef::Node(n.node.id), 1, OUTER)
            .await
            .or_page()?;
        for m in outer {
            let to = match index.get(&m.node.id) {
                Some(&i) => i,
                None => {
                    let i = graph.nodes.len();
                    graph.nodes.push(drawn(&m.node));
                    index.insert(m.node.id, i);
                    rings[1].push(i);
                    i
                }
            };
            if to != 0
                && !graph
                    .edges
                    .iter()
                    .any(|(a, b, _)| (*a, *b) == (from, to) || (*a, *b) == (to, from))
            {
                graph.edges.push((from, to, None));
            }
        }
    }
    rings.retain(|r| !r.is_empty());
    graph.place_in_rings(&rings);
    Ok(layout(
        "Memory node",
        true,
        html! {
            h1 { "Memory node: " (node.kind) }
            p.muted.mono { (node.id) " · " (when(&node.created_at)) }
            pre #node-text { (node.text) }
            @if !node.meta.is_null() { details { summary { "Metadata" } pre { (json_text(&node.meta, 4000)) } } }
            h2 { "Neighbourhood" }
            p.muted { (near.len()) " linked directly (at most " (RING) "), " (graph.nodes.len().saturating_sub(near.len() + 1)) " one hop further." }
            div.drawing { (trusted_svg(graph.render("The node's neighbourhood"))) }
        },
    ))
}

/// A linked memory node as the neighbourhood graph draws it, coloured by its kind.
fn drawn(node: &MemoryNode) -> Node {
    let class = match node.kind.as_str() {
        "message" | "request" => "message",
        "reply" => "reply",
        "method" => "method",
        _ => "object",
    };
    Node {
        label: format!("{}: {}", node.kind, node.text),
        href: Some(format!("/ui/memory/{}", node.id)),
        class,
        x: 0.0,
        y: 0.0,
    }
}
