"""The learn cycle driven from Python, with a Python callable as the model."""

import asyncio

import pytest

import aura
from conftest import GOOD_FIB, candidate


def test_a_missed_message_is_learned_then_called(scripted):
    rt, model = scripted([candidate()])
    calc = rt.create("calc")
    assert rt.model_backend == "python"
    assert calc.fibonacci(10) == 55
    assert calc.fibonacci(12) == 144  # now a plain call: no second model request
    assert len(model.requests) == 1
    request = model.requests[0]
    # Code first: no JSON schema; the persona is asked for a fenced Python block.
    assert not request.get("schema")
    assert "```python" in request["messages"][0]["content"]
    assert any("fibonacci" in m["content"] for m in request["messages"])

    [method] = calc.methods()
    assert method.source == GOOD_FIB
    assert method.provenance["kind"] == "learned"
    [event] = rt.audit(kind="learn.committed")
    assert event.object_id == calc.id


def test_natural_language_goes_through_the_planner(scripted):
    rt, _ = scripted([candidate()])
    calc = rt.create("calc")
    calc.fibonacci(1)
    reply = calc.tell("calculate fibonacci for 10")
    assert reply.value == 55
    assert reply.plan["kind"] == "invoke"
    assert not reply.refused
    assert "55" in str(reply)


def test_a_model_that_writes_garbage_is_refused_and_loses_nothing(scripted):
    rt, model = scripted(["this is not JSON", "{\"source\": 1}", "def fibonacci(:"])
    calc = rt.create("calc", slots={"keep": True})
    with pytest.raises(aura.LearnRefused) as err:
        calc.fibonacci(10)
    assert err.value.selector == "fibonacci"
    # Each candidate's failure, then the search's own verdict.
    assert len(err.value.failures) == err.value.attempts + 1
    assert err.value.failures[-1]["stage"] == "search"
    assert calc.methods() == []
    assert calc.slots == {"keep": True}
    assert rt.audit(kind="learn.committed") == []
    assert len(rt.audit(kind="learn.refused")) == 1


def test_a_hostile_candidate_is_refused_by_the_guard(scripted):
    hostile = candidate(source="def fibonacci(self, n):\n    import subprocess\n    return subprocess.run(['id'])\n")
    rt, _ = scripted([hostile] * 5)
    calc = rt.create("calc")
    with pytest.raises(aura.LearnRefused) as err:
        calc.fibonacci(3)
    # The five hostile candidates are the guard's; the script then runs dry.
    assert [f["stage"] for f in err.value.failures[:5]] == ["guard"] * 5
    assert calc.methods() == []


def test_a_model_callback_that_raises_is_reported(data_dir):
    def broken(request):
        raise ConnectionError("the model server is down")

    rt = aura.Runtime(data_dir=data_dir, model=broken, cascade_mode="single")
    calc = rt.create("calc")
    with pytest.raises(aura.AuraError) as err:
        calc.fibonacci(3)
    assert "the model server is down" in str(err.value)
    assert calc.methods() == []
    assert rt.audit(kind="learn.committed") == []


def test_async_calls_are_awaitable_and_run_concurrently(scripted):
    rt, model = scripted([candidate()])
    calc = rt.create("calc")

    async def main():
        first = await calc.send_async("fibonacci", 10)
        rest = await asyncio.gather(*(calc.send_async("fibonacci", n) for n in range(5)))
        reply = await calc.tell_async("calculate fibonacci for 7")
        return first, rest, reply

    first, rest, reply = asyncio.run(main())
    assert first == 55
    assert rest == [0, 1, 1, 2, 3]
    assert reply.value == 13
    assert len(model.requests) == 1


def test_async_errors_are_the_same_exceptions(rt):
    obj = rt.create("plain")

    async def main():
        await obj.send_async("fly")

    with pytest.raises(aura.DoesNotUnderstand):
        asyncio.run(main())
