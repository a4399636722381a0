"""Methods: defining, calling in the jail, versions, and what failures look like."""

import threading
import time

import pytest

import aura


def test_define_and_call(rt):
    calc = rt.create("calc", slots={"base": 10})
    method = calc.define("add", "def add(self, a, b):\n    return a + b + self.base\n", doc="adds")
    assert (method.selector, method.version, method.doc) == ("add", 1, "adds")
    assert method.provenance == {"kind": "manual"}
    assert calc.send("add", 1, 2) == 13
    assert calc.add(1, 2) == 13  # the same message, as an attribute
    assert calc.responds_to("add") and not calc.responds_to("sub")


def test_methods_are_inherited_along_the_chain(rt):
    base = rt.create("base")
    base.define("hello", "def hello(self, who):\n    return 'hello ' + who\n")
    child = rt.create("child", parents=[base])
    assert child.hello("ada") == "hello ada"
    assert [m.selector for m in base.methods()] == ["hello"]
    assert child.methods() == []
    assert child.selectors() == [("hello", "base")]
    assert child.selectors(own=True) == []


def test_a_method_writes_slots(rt):
    counter = rt.create("counter", slots={"n": 0})
    counter.define("bump", "def bump(self, by):\n    self.n = self.n + by\n    return self.n\n")
    assert counter.bump(2) == 2
    assert counter.bump(3) == 5
    assert counter["n"] == 5


def test_structured_values_cross_both_ways(rt):
    obj = rt.create("echo")
    obj.define("echo", "def echo(self, value):\n    return value\n")
    value = {"list": [1, 2.5, "x", None, True], "nested": {"k": "v"}}
    assert obj.echo(value) == value


def test_integers_beyond_64_bits_stay_exact(rt):
    obj = rt.create("big", slots={"seed": 2**70})
    obj.define("times", "def times(self, n):\n    self.seed = self.seed * n\n    return [self.seed, n + 1]\n")
    assert obj.times(3**50) == [2**70 * 3**50, 3**50 + 1]
    assert obj["seed"] == 2**70 * 3**50
    assert obj.times(-(2**64)) == [-(2**134) * 3**50, -(2**64) + 1]
    with pytest.raises(ValueError, match="reserved"):
        obj.times({"$int": "12"})


def test_versions_and_rollback(rt):
    obj = rt.create("versioned")
    obj.define("answer", "def answer(self):\n    return 1\n")
    obj.define("answer", "def answer(self):\n    return 2\n")
    assert obj.answer() == 2
    restored = obj.rollback("answer", 1)
    assert restored.version == 3
    assert restored.provenance == {"kind": "rollback", "from_version": 1}
    assert obj.answer() == 1
    assert [m.version for m in obj.versions("answer")] == [1, 2, 3]


def test_the_guard_rejects_hostile_code_and_stores_nothing(rt):
    obj = rt.create("target")
    with pytest.raises(aura.GuardRejected) as err:
        obj.define("steal", "def steal(self):\n    import os\n    return os.environ\n")
    rules = {v["rule"] for v in err.value.violations}
    assert rules, "the violations name their rules"
    assert all("line" in v and "message" in v for v in err.value.violations)
    assert obj.methods() == []
    assert not obj.responds_to("steal")


def test_an_exception_in_a_method_is_a_method_error(rt):
    obj = rt.create("divider")
    obj.define("divide", "def divide(self, a, b):\n    return a / b\n")
    with pytest.raises(aura.MethodError) as err:
        obj.divide(1, 0)
    assert err.value.exception_type == "ZeroDivisionError"
    assert "divide" in err.value.guest_traceback


def test_a_runaway_method_is_stopped_by_the_sandbox(data_dir, monkeypatch):
    monkeypatch.setenv("AURA_SANDBOX_WALL_MS", "400")
    rt = aura.Runtime(data_dir=data_dir, model=None)
    obj = rt.create("spinner", slots={"n": 0})
    obj.define("spin", "def spin(self):\n    self.n = 1\n    while True:\n        pass\n")
    with pytest.raises(aura.SandboxError) as err:
        obj.spin()
    assert err.value.reason in ("timeout", "killed")
    assert obj["n"] == 0, "a stopped call writes no slots"


def test_without_a_model_a_miss_is_not_understood(rt):
    obj = rt.create("plain")
    with pytest.raises(aura.DoesNotUnderstand) as err:
        obj.fly()
    assert isinstance(err.value, AttributeError)
    assert err.value.selector == "fly"
    assert err.value.chain == ["plain", "genesis"]


def test_a_bad_selector_is_invalid(rt):
    obj = rt.create("plain")
    with pytest.raises(aura.InvalidRequest):
        obj.send("not a selector")


def test_blocking_calls_release_the_gil(rt):
    obj = rt.create("slow")
    obj.define("work", "def work(self):\n    total = 0\n    for i in range(3000000):\n        total += i\n    return total\n")
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.005)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        before = len(ticks)
        assert obj.work() == sum(range(3000000))
        during = len(ticks) - before
    finally:
        done.set()
        ticker.join()
    assert during > 0, "Python threads ran while the call waited"
