"""Conversation memory and the audit trail, read from Python."""

import aura
from conftest import candidate


def test_messages_become_searchable_memory(rt):
    obj = rt.create("talker")
    reply = obj.tell("summarize our previous conversation about heliotrope")
    assert reply.plan["kind"] == "reflect"
    hits = rt.search_memory("heliotrope")
    assert hits, "the message was recorded"
    assert any("heliotrope" in h.text for h in hits)
    assert all(h.score >= hits[-1].score for h in hits)


def test_the_audit_trail_filters_and_pages(scripted):
    rt, _ = scripted([candidate()])
    calc = rt.create("calc")
    other = rt.create("other")
    calc.fibonacci(5)
    other.define("noop", "def noop(self):\n    return None\n")

    everything = rt.audit(limit=1000)
    assert everything, "the learn cycle was audited"
    assert [e.id for e in everything] == sorted(e.id for e in everything), "oldest first"
    mine = rt.audit(object=calc)
    assert mine and all(e.object_id == calc.id for e in mine)
    assert [e.id for e in rt.audit(object="calc")] == [e.id for e in mine]

    first, *rest = everything
    assert [e.id for e in rt.audit(after=first.id, limit=1000)] == [e.id for e in rest]
    assert len(rt.audit(limit=1)) == 1


def test_a_bad_cursor_is_invalid(rt):
    import pytest

    with pytest.raises(aura.InvalidRequest):
        rt.audit(after="not-an-id")
