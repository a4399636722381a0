//! Text and values that must come back exactly: Unicode, hostile strings, large slot values.

use super::*;

/// Unicode names, slots, memory text and searches round-trip.
pub async fn unicode_text_round_trips(store: &dyn Store) {
    let names = [
        "Grüße, Köln",
        "日本語のオブジェクト",
        "Ελληνικά",
        "עברית مرحبا",
        "emoji 🦀🧠✨",
        "combining e\u{301} vs é",
        "zero\u{200b}width",
    ];
    for base in names {
        let name = format!("{base} {}", uuid::Uuid::new_v4().simple());
        let value = json!({"text": base, "ключ": ["值", "🎉", "\u{10FFFF}"]});
        let mut s = slots(value);
        s.insert(base.to_string(), json!(base));
        let object = store
            .create_object(NewObject::named(&name).with_slots(s.clone()))
            .await
            .expect("create unicode");
        assert_eq!(object.name, name);
        let read = store.get_object(object.id).await.expect("get");
        assert_eq!(read.slots, s);
        assert_eq!(read.name, name);
        assert_eq!(
            store.find_object(&name).await.expect("find").map(|o| o.id),
            Some(object.id)
        );
    }
    // "é" composed and decomposed are different names (no silent normalisation).
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let composed = store
        .create_object(NewObject::named(format!("caf\u{e9} {tag}")))
        .await
        .expect("composed");
    let decomposed = store
        .create_object(NewObject::named(format!("cafe\u{301} {tag}")))
        .await
        .expect("decomposed is a different name");
    assert_ne!(composed.id, decomposed.id);

    let texts = [
        ("Straße", "Die Straße ist nass"),
        ("Привет", "Привет, мир"),
        ("日本語", "日本語 テキスト"),
        ("Ελληνικά", "γλώσσα Ελληνικά"),
    ];
    let mut ids = Vec::new();
    for (_, text) in texts {
        let full = format!("{text} 🦀 {tag}");
        let n = node(store, &full).await;
        assert_eq!(store.get_memory_node(n.id).await.expect("get").text, full);
        ids.push(n.id);
    }
    if store.capabilities().full_text_search {
        for ((word, _), id) in texts.iter().zip(&ids) {
            let hits = store.search_memory(word, 50).await.expect("unicode search");
            assert!(
                hits.iter().any(|h| h.node.id == *id),
                "searching {word:?} finds its node"
            );
        }
    }
}

/// Names and slots full of quotes, semicolons and SQL are stored exactly as given.
pub async fn hostile_text_round_trips(store: &dyn Store) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let hostile = [
        "Robert'); DROP TABLE objects;--",
        "\"; DELETE FROM methods; --",
        "a' OR '1'='1",
        "%_\\*?[]{}",
        "$1 ?1 :name @x",
        "NEAR(a b) AND \"x\" OR y*",
        "<script>alert(1)</script>",
    ];
    for text in hostile {
        let name = format!("{text} {tag}");
        let mut s = Map::new();
        s.insert(text.to_string(), json!(text));
        s.insert(
            "sql".into(),
            json!(format!("{text}; SELECT * FROM objects")),
        );
        let object = store
            .create_object(NewObject::named(&name).with_slots(s.clone()))
            .await
            .expect("create hostile");
        let read = store
            .find_object(&name)
            .await
            .expect("find")
            .expect("found");
        assert_eq!(read.id, object.id);
        assert_eq!(read.slots, s);
        let m = store
            .put_method(NewMethod {
                doc: text.to_string(),
                tests: text.to_string(),
                ..method(
                    object.id,
                    "echo",
                    &format!("def echo(self):\n    return {text:?}\n"),
                )
            })
            .await
            .expect("hostile method");
        assert_eq!(
            store
                .get_method(object.id, &selector("echo"))
                .await
                .expect("get"),
            Some(m)
        );
        let event = store
            .append_event(NewAuditEvent::new(
                text,
                Some(object.id),
                json!({"text": text}),
            ))
            .await
            .expect("hostile event kind");
        let page = store
            .query_audit(&AuditQuery {
                kind: Some(text.to_string()),
                object_id: Some(object.id),
                ..AuditQuery::default()
            })
            .await
            .expect("query by hostile kind");
        assert_eq!(page.events, vec![event]);
    }
    // Everything is still there.
    assert!(all_objects(store).await.len() >= hostile.len());
}

/// A 1 MiB slot value round-trips; a document over the declared maximum is `Invalid`.
pub async fn large_slot_values_round_trip(store: &dyn Store) {
    let big: String = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let object = store
        .create_object(NewObject::named(unique("big")).with_slots(slots(json!({"blob": big}))))
        .await
        .expect("create with 1 MiB slot");
    let read = store.get_object(object.id).await.expect("get");
    assert_eq!(read.slots["blob"].as_str().map(str::len), Some(big.len()));
    assert_eq!(read.slots, object.slots);
    let bigger = format!("{big}{big}");
    let updated = store
        .update_slots(
            object.id,
            1,
            slots(json!({"blob": bigger, "unicode": "ü".repeat(100_000)})),
        )
        .await
        .expect("update with 2 MiB");
    assert_eq!(store.get_object(object.id).await.expect("get"), updated);

    let max = store.capabilities().max_document_bytes;
    let too_big = "x".repeat(max + 1);
    assert_err!(
        store
            .update_slots(object.id, 2, slots(json!({ "blob": too_big })))
            .await,
        Error::Invalid(_)
    );
    assert_eq!(store.get_object(object.id).await.expect("get").rev, 2);
}
