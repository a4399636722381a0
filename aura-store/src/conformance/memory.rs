//! The memory graph: nodes and links, neighbourhoods, ranked and hostile search, and many nodes.

use super::*;

/// Memory nodes round-trip; links need both ends to exist.
pub async fn memory_nodes_and_links(store: &dyn Store) {
    let object = create(store, "memory-owner").await;
    let full = store
        .add_memory_node(NewMemoryNode {
            id: Some(NodeId::new()),
            kind: "concept".into(),
            text: "the fibonacci sequence".into(),
            embedding: Some(vec![0.25, -1.5, 3.0e-7, f32::MAX]),
            meta: json!({"source": "conformance", "n": [1, 2]}),
        })
        .await
        .expect("add node");
    assert_eq!(store.get_memory_node(full.id).await.expect("get"), full);
    let plain = node(store, "a plain note").await;
    assert_eq!(plain.embedding, None);
    assert_eq!(
        store.get_memory_node(plain.id).await.expect("get").meta,
        Value::Null
    );
    assert_err!(
        store
            .add_memory_node(NewMemoryNode {
                id: Some(full.id),
                ..NewMemoryNode::new("note", "duplicate id")
            })
            .await,
        Error::Conflict(_)
    );

    store
        .add_link(link(NodeRef::Node(full.id), NodeRef::Node(plain.id)))
        .await
        .expect("node to node");
    store
        .add_link(link(NodeRef::Object(object.id), NodeRef::Node(full.id)))
        .await
        .expect("object to node");
    // Adding the same link again is not an error.
    store
        .add_link(ContextLink {
            weight: 2.0,
            ..link(NodeRef::Node(full.id), NodeRef::Node(plain.id))
        })
        .await
        .expect("same link again");
    assert_err!(
        store
            .add_link(link(NodeRef::Node(full.id), NodeRef::Node(NodeId::new())))
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .add_link(link(
                NodeRef::Object(ObjectId::new()),
                NodeRef::Node(full.id)
            ))
            .await,
        Error::NotFound { .. }
    );
    assert_err!(
        store
            .add_link(ContextLink {
                weight: f64::NAN,
                ..link(NodeRef::Node(full.id), NodeRef::Node(plain.id))
            })
            .await,
        Error::Invalid(_)
    );
    let near = store
        .neighbours(NodeRef::Object(object.id), 2, 10)
        .await
        .expect("neighbours");
    let got: Vec<(NodeId, u32)> = near.iter().map(|n| (n.node.id, n.depth)).collect();
    assert_eq!(got, vec![(full.id, 1), (plain.id, 2)]);
    assert_eq!(near[0].node, full);
}

/// Neighbours: both directions, nearest first, each node once at its least depth,
/// bounded by depth and limit, safe on cycles, passing through objects.
pub async fn neighbours_walk_breadth_first(store: &dyn Store) {
    // a -> b -> c -> d -> a (a cycle), e -> a (incoming), b -> f, object o -> d, o -> g.
    let mut ids = HashMap::new();
    for name in ["a", "b", "c", "d", "e", "f", "g"] {
        ids.insert(name, node(store, &format!("node {name}")).await.id);
    }
    let n = |name: &str| NodeRef::Node(ids[name]);
    let o = create(store, "graph-object").await;
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("d", "a"),
        ("e", "a"),
        ("b", "f"),
    ] {
        store.add_link(link(n(from), n(to))).await.expect("link");
    }
    store
        .add_link(link(NodeRef::Object(o.id), n("d")))
        .await
        .expect("link");
    store
        .add_link(link(NodeRef::Object(o.id), n("g")))
        .await
        .expect("link");

    let walk = |depth: u32, limit: u32| async move {
        store
            .neighbours(n("a"), depth, limit)
            .await
            .expect("neighbours")
            .into_iter()
            .map(|nb| (nb.node.id, nb.depth))
            .collect::<Vec<_>>()
    };
    let depth_of = |found: &[(NodeId, u32)], name: &str| {
        found
            .iter()
            .find(|(id, _)| *id == ids[name])
            .map(|(_, d)| *d)
    };

    assert!(walk(0, 10).await.is_empty(), "depth 0 finds nothing");
    let one = walk(1, 10).await;
    let set: HashSet<NodeId> = one.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        set,
        HashSet::from([ids["b"], ids["d"], ids["e"]]),
        "both directions"
    );
    assert!(one.iter().all(|(_, d)| *d == 1));

    let all = walk(10, 100).await;
    assert_eq!(
        all.len(),
        6,
        "every other node once, the start excluded: {all:?}"
    );
    let unique_ids: HashSet<NodeId> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(unique_ids.len(), all.len(), "each node once");
    assert!(
        !unique_ids.contains(&ids["a"]),
        "the start is not its own neighbour"
    );
    assert_eq!(depth_of(&all, "c"), Some(2));
    assert_eq!(depth_of(&all, "f"), Some(2));
    // g hangs off the object o, which hangs off d: a -> d (1) -> o (2) -> g (3).
    assert_eq!(depth_of(&all, "g"), Some(3), "walks through objects");
    let depths: Vec<u32> = all.iter().map(|(_, d)| *d).collect();
    let mut sorted = depths.clone();
    sorted.sort();
    assert_eq!(depths, sorted, "nearest first");

    let limited = walk(10, 2).await;
    assert_eq!(limited.len(), 2, "bounded by the limit");
    assert!(
        limited.iter().all(|(_, d)| *d == 1),
        "the nearest come first"
    );
    assert!(walk(2, 0).await.is_empty(), "a limit of 0 finds nothing");

    let lonely = node(store, "lonely").await;
    assert!(store
        .neighbours(NodeRef::Node(lonely.id), 3, 10)
        .await
        .expect("neighbours")
        .is_empty());
}

/// Search ranks better matches first and honours the limit; an empty query finds nothing.
pub async fn search_is_ranked(store: &dyn Store) {
    let caps = store.capabilities();
    if !caps.full_text_search {
        eprintln!(
            "store conformance [{}]: search_is_ranked: no full_text_search capability; \
             checking only that search does not fail",
            caps.backend
        );
        let _ = store.search_memory("anything", 5).await;
        return;
    }
    let word = format!("zq{}", uuid::Uuid::new_v4().simple());
    let strong = node(store, &format!("{word} {word} {word} recursion")).await;
    let weak = node(
        store,
        &format!("a long note that mentions {word} once among many other words about other things"),
    )
    .await;
    let unrelated = node(store, "nothing relevant here").await;
    let hits = store.search_memory(&word, 10).await.expect("search");
    let found: Vec<NodeId> = hits.iter().map(|h| h.node.id).collect();
    assert_eq!(
        found,
        vec![strong.id, weak.id],
        "best match first, non-matches left out"
    );
    assert!(hits[0].score >= hits[1].score, "scores fall");
    assert_eq!(hits[0].node, strong);
    assert!(!found.contains(&unrelated.id));

    let hits = store.search_memory(&word, 1).await.expect("search");
    assert_eq!(hits.len(), 1, "bounded by the limit");
    assert!(store
        .search_memory(&word, 0)
        .await
        .expect("search")
        .is_empty());
    for empty in ["", "   ", "\t\n"] {
        assert!(
            store
                .search_memory(empty, 10)
                .await
                .expect("search")
                .is_empty(),
            "an empty query finds nothing"
        );
    }
    // Case does not matter.
    let hits = store
        .search_memory(&word.to_uppercase(), 10)
        .await
        .expect("search");
    assert_eq!(hits.len(), 2);
}

/// Hostile search text (quotes, operators, SQL) never makes search fail.
pub async fn search_survives_hostile_queries(store: &dyn Store) {
    let word = format!("hx{}", uuid::Uuid::new_v4().simple());
    let target = node(
        store,
        &format!("it's {word}; \"quoted\" (parens) col:umn a*b NEAR/2 -minus ^caret DROP TABLE"),
    )
    .await;
    let hostile = [
        "\"",
        "'",
        "\"unbalanced",
        "''",
        "a AND",
        "OR",
        "AND OR NOT",
        "NEAR(",
        "NEAR(a b, 2)",
        "*",
        "^",
        "a*",
        "text:foo",
        "{text}: foo",
        "(((",
        ")))",
        "-",
        "+",
        "'; DROP TABLE memory_nodes; --",
        "\"; DELETE FROM objects; --",
        "\0",
        "nul\0inside",
        "\\",
        "%_%",
        "🦀🦀🦀",
        "\u{202e}rtl",
        "a\u{301}",
    ];
    for q in hostile {
        if let Err(e) = store.search_memory(q, 10).await {
            panic!("search for {q:?} failed: {e}");
        }
    }
    let long = "x\" OR ".repeat(5_000);
    store
        .search_memory(&long, 10)
        .await
        .expect("a long hostile query");
    if store.capabilities().full_text_search {
        let with_syntax = format!("\"{word}\" AND (NOT");
        let hits = store.search_memory(&with_syntax, 10).await.expect("search");
        assert!(
            hits.iter().any(|h| h.node.id == target.id),
            "the plain word inside hostile text is still found"
        );
    }
    // Nothing was dropped.
    assert_eq!(store.get_memory_node(target.id).await.expect("get"), target);
}

/// 10 000 memory nodes in one transaction; search and neighbours stay fast.
pub async fn many_memory_nodes_stay_fast(store: &dyn Store) {
    const NODES: usize = 10_000;
    let tag = format!("bulk{}", uuid::Uuid::new_v4().simple());
    let hub = create(store, "bulk-hub").await;
    let started = Instant::now();
    let mut tx = store.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let text = format!("{tag} note number {i} about topic{} and item{i}", i % 100);
        let n = tx
            .add_memory_node(NewMemoryNode::new("bulk", text))
            .await
            .expect("add");
        if let Some(previous) = ids.last() {
            tx.add_link(link(NodeRef::Node(*previous), NodeRef::Node(n.id)))
                .await
                .expect("chain link");
        }
        if i % 100 == 0 {
            tx.add_link(link(NodeRef::Object(hub.id), NodeRef::Node(n.id)))
                .await
                .expect("hub link");
        }
        ids.push(n.id);
    }
    tx.commit().await.expect("commit 10 000 nodes");
    let insert = started.elapsed();

    let started = Instant::now();
    let hits = store
        .search_memory(&format!("item{}", NODES / 2), 10)
        .await
        .expect("search");
    let search_one = started.elapsed();
    if store.capabilities().full_text_search {
        assert_eq!(hits.first().map(|h| h.node.id), Some(ids[NODES / 2]));
    }
    let started = Instant::now();
    let hits = store
        .search_memory(&format!("{tag} topic7"), 20)
        .await
        .expect("search");
    let search_many = started.elapsed();
    if store.capabilities().full_text_search {
        assert_eq!(hits.len(), 20);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    let started = Instant::now();
    let near = store
        .neighbours(NodeRef::Node(ids[NODES / 2]), 3, 50)
        .await
        .expect("neighbours");
    let walk = started.elapsed();
    assert!(!near.is_empty());
    let started = Instant::now();
    let wide = store
        .neighbours(NodeRef::Object(hub.id), 4, 200)
        .await
        .expect("neighbours of the hub");
    let walk_hub = started.elapsed();
    assert_eq!(wide.len(), 200);
    assert!(wide.windows(2).all(|w| w[0].depth <= w[1].depth));

    eprintln!(
        "store conformance: {NODES} nodes inserted in {insert:?}; search {search_one:?} / \
         {search_many:?}; neighbours {walk:?} / {walk_hub:?}"
    );
    let fast = Duration::from_secs(3);
    for (what, took) in [
        ("search", search_one),
        ("search", search_many),
        ("neighbours", walk),
        ("neighbours", walk_hub),
    ] {
        assert!(took < fast, "{what} over {NODES} nodes took {took:?}");
    }
}
