//! The audit trail and the facets registry.

use super::*;

/// The audit trail filters by object, kind (exact or `prefix*`) and time range, exactly.
pub async fn audit_trail_filters(store: &dyn Store) {
    let a = create(store, "audit-a").await;
    let b = create(store, "audit-b").await;
    let mut written = Vec::new();
    let kinds = [
        "learn.attempt",
        "learn.accepted",
        "guard.rejected",
        "learned",
        "learn.attempt",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        for object in [a.id, b.id] {
            let e = store
                .append_event(NewAuditEvent::new(*kind, Some(object), json!({"i": i})))
                .await
                .expect("append");
            assert_eq!(e.kind, *kind);
            written.push(e);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let loose = store
        .append_event(NewAuditEvent::new("learn.attempt", None, json!(null)))
        .await
        .expect("event without object");
    assert_eq!(loose.object_id, None);

    let of_a: Vec<AuditEvent> = written
        .iter()
        .filter(|e| e.object_id == Some(a.id))
        .cloned()
        .collect();
    assert_eq!(
        all_events(store, a.id).await,
        of_a,
        "by object, oldest first, as written"
    );

    let query = |kind: &str, since, until| AuditQuery {
        object_id: Some(a.id),
        kind: Some(kind.to_string()),
        since,
        until,
        ..AuditQuery::default()
    };
    let exact = store
        .query_audit(&query("learn.attempt", None, None))
        .await
        .expect("exact");
    assert_eq!(exact.events.len(), 2);
    assert!(exact.events.iter().all(|e| e.kind == "learn.attempt"));
    let prefix = store
        .query_audit(&query("learn.*", None, None))
        .await
        .expect("prefix");
    assert_eq!(
        prefix
            .events
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["learn.attempt", "learn.accepted", "learn.attempt"],
        "a prefix matches `learn.` but not `learned`"
    );
    let learn_any = store
        .query_audit(&query("learn*", None, None))
        .await
        .expect("prefix");
    assert_eq!(learn_any.events.len(), 4);
    let none = store
        .query_audit(&query("learn", None, None))
        .await
        .expect("exact");
    assert!(none.events.is_empty(), "without `*` the kind is exact");

    // Time ranges are exact: since inclusive, until exclusive.
    let since = of_a[1].at;
    let until = of_a[3].at;
    let expected: Vec<AuditEvent> = of_a
        .iter()
        .filter(|e| e.at >= since && e.at < until)
        .cloned()
        .collect();
    let ranged = store
        .query_audit(&AuditQuery {
            object_id: Some(a.id),
            since: Some(since),
            until: Some(until),
            ..AuditQuery::default()
        })
        .await
        .expect("range");
    assert_eq!(ranged.events, expected);
    assert!(ranged.events.contains(&of_a[1]) && !ranged.events.contains(&of_a[3]));
    let empty = store
        .query_audit(&AuditQuery {
            object_id: Some(a.id),
            since: Some(since),
            until: Some(since),
            ..AuditQuery::default()
        })
        .await
        .expect("empty range");
    assert!(empty.events.is_empty());
    let global = store
        .query_audit(&AuditQuery {
            since: Some(loose.at),
            kind: Some("learn.attempt".into()),
            limit: Some(MAX_AUDIT_PAGE),
            ..AuditQuery::default()
        })
        .await
        .expect("global");
    assert!(
        global.events.contains(&loose),
        "events without an object are kept"
    );
}

/// Paging with `after` returns every event exactly once, in order.
pub async fn audit_pagination_covers_every_event_once(store: &dyn Store) {
    let object = create(store, "audit-pages").await;
    let mut tx = store.begin().await.expect("begin");
    let mut written = Vec::new();
    for i in 0..250 {
        written.push(
            tx.append_event(NewAuditEvent::new(
                "page.test",
                Some(object.id),
                json!({"i": i}),
            ))
            .await
            .expect("append")
            .id,
        );
    }
    tx.commit().await.expect("commit");

    for size in [1u32, 7, 100, 250, 1000] {
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = store
                .query_audit(&AuditQuery {
                    object_id: Some(object.id),
                    after,
                    limit: Some(size),
                    ..AuditQuery::default()
                })
                .await
                .expect("page");
            pages += 1;
            assert!(page.events.len() <= size as usize);
            seen.extend(page.events.iter().map(|e| e.id));
            match page.next {
                Some(next) => {
                    assert_eq!(Some(next), page.events.last().map(|e| e.id));
                    after = Some(next);
                }
                None => break,
            }
            assert!(pages <= 300, "paging terminates");
        }
        assert_eq!(
            seen, written,
            "page size {size}: every event once, oldest first"
        );
    }
    let clamped = store
        .query_audit(&AuditQuery {
            object_id: Some(object.id),
            limit: Some(0),
            ..AuditQuery::default()
        })
        .await
        .expect("limit 0");
    assert_eq!(clamped.events.len(), 1, "a limit of 0 is clamped to 1");
    let default = store
        .query_audit(&AuditQuery {
            object_id: Some(object.id),
            ..AuditQuery::default()
        })
        .await
        .expect("default");
    assert_eq!(default.events.len(), 100, "the default page is 100");
    assert!(default.next.is_some());
}

/// Facets: put replaces by name, get, list by name.
pub async fn facets_registry(store: &dyn Store) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let facet = |name: &str, persona: &str| Facet {
        name: format!("{name}-{tag}"),
        persona: persona.into(),
        base_model: "qwen2.5:0.5b".into(),
        adapter_path: "/adapters/x".into(),
        metrics: json!({"loss": 0.5, "samples": 120}),
        created_at: chrono::Utc::now(),
    };
    let b = store
        .put_facet(facet("b:grounding-v1", "babs"))
        .await
        .expect("put");
    let a = store
        .put_facet(facet("a:deconstruct-v1", "brick"))
        .await
        .expect("put");
    assert_eq!(store.get_facet(&b.name).await.expect("get"), b);
    let replacement = Facet {
        metrics: json!({"loss": 0.25}),
        adapter_path: "/adapters/y".into(),
        ..b.clone()
    };
    let replaced = store.put_facet(replacement).await.expect("replace");
    assert_eq!(store.get_facet(&b.name).await.expect("get"), replaced);
    assert_eq!(replaced.adapter_path, "/adapters/y");
    let mine: Vec<Facet> = store
        .list_facets()
        .await
        .expect("list")
        .into_iter()
        .filter(|f| f.name.ends_with(&tag))
        .collect();
    assert_eq!(mine, vec![a, replaced], "listed by name, one per name");
    assert_err!(
        store.get_facet(&unique("no-facet")).await,
        Error::NotFound { .. }
    );
}
