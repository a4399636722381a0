"""AURA's Rust `tracing` events reach Python's `logging` under `aura.<target>`, without deadlocks."""

from __future__ import annotations

import asyncio
import collections
import faulthandler
import logging
import threading
import time
from typing import Callable, List, TypeVar

import pytest

import aura
from conftest import candidate

T = TypeVar("T")


class Collect(logging.Handler):
    """Keeps every record; with `delay`, sleeps in each one (releasing the GIL mid-delivery)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(logging.NOTSET)
        self.records: List[logging.LogRecord] = []
        self.delay = delay

    def emit(self, record: logging.LogRecord) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.records.append(record)

    def find(self, name: str, prefix: str) -> List[logging.LogRecord]:
        return [r for r in list(self.records) if r.name == name and r.getMessage().startswith(prefix)]


def eventually(probe: Callable[[], T], timeout: float = 10.0) -> T:
    """`probe()` once it is truthy (records may still be on their way), else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        out = probe()
        if out or time.monotonic() > deadline:
            return out
        time.sleep(0.01)


def log_level(level: int) -> None:
    logging.getLogger("aura").setLevel(level)
    aura.set_log_level()


@pytest.fixture
def logs():
    handler = Collect()
    logger = logging.getLogger("aura")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def no_hang():
    """A deadlock fails the run (with every thread's traceback) instead of hanging it."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def test_a_learn_logs_through_python_logging(caplog, scripted):
    caplog.set_level(logging.INFO, logger="aura")
    rt, _ = scripted(["this is not JSON", candidate()])
    calc = rt.create("calc")
    assert calc.fibonacci(10) == 55

    def find(name: str, prefix: str) -> List[logging.LogRecord]:
        return [r for r in caplog.records if r.name == name and r.getMessage().startswith(prefix)]

    [awake] = eventually(lambda: find("aura.Orchestrator", "runtime awake"))
    assert awake.levelno == logging.INFO and awake.levelname == "INFO"
    assert awake.aura_fields["store"] == "sqlite" and awake.aura_fields["sandbox"] == "jail"
    assert 'store="sqlite"' in awake.getMessage()

    [mandate] = eventually(lambda: find("aura.Orchestrator", "doesNotUnderstand → creative mandate"))
    assert mandate.aura_fields["object"] == "calc"
    assert mandate.aura_fields["selector"] == "fibonacci"
    assert "object=calc selector=fibonacci" in mandate.getMessage()

    [failed] = eventually(lambda: find("aura.Orchestrator", "candidate failed"))
    assert failed.levelno == logging.WARNING and failed.levelname == "WARNING"
    assert failed.aura_fields["sample"] == 1 and failed.aura_fields["selector"] == "fibonacci"

    [committed] = eventually(lambda: find("aura.Store", "method committed"))
    assert committed.aura_fields["version"] == 1
    assert committed.pathname.endswith("learn.rs") and committed.lineno > 0
    assert abs(committed.created - time.time()) < 60


def test_each_tracing_level_maps_to_its_logging_level(logs, rt):
    log_level(1)
    calc = rt.create("calc")
    calc.define("add", "def add(self, a, b):\n    return a + b\n")
    assert calc.add(1, 2) == 3
    [call] = eventually(lambda: logs.find("aura.Sandbox", "call finished"))
    assert call.levelno == logging.DEBUG and call.aura_fields["selector"] == "add"

    # AURA itself has no ERROR or TRACE event a test can provoke: the bridge's own hook emits each level.
    for level in ("ERROR", "WARN", "INFO", "DEBUG", "TRACE"):
        aura._aura._log_selftest(1, level=level)
    got = [(r.levelno, r.levelname) for r in logs.find("aura.selftest", "selftest event")]
    assert got == [(40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG"), (5, "TRACE")]


def test_disabled_levels_are_dropped_in_rust_and_enabled_ones_arrive(logs, data_dir):
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("aura").handlers)
    logging.getLogger("aura").setLevel(logging.WARNING)
    rt = aura.Runtime(data_dir=data_dir, model=None)  # reads the filter
    rt.create("quiet")
    # Twice what the queue holds: were they queued, the overflow would be reported at WARNING.
    aura._aura._log_selftest(2 * aura._aura.LOG_QUEUE_CAPACITY, level="INFO")
    time.sleep(0.2)
    assert [r for r in logs.records if r.levelno < logging.WARNING] == []
    assert [r for r in logs.records if "dropped" in r.getMessage()] == []

    # One component more verbose than the rest, by name.
    logging.getLogger("aura.selftest").setLevel(logging.DEBUG)
    aura.set_log_level()
    aura._aura._log_selftest(3, level="DEBUG")
    assert [r.aura_fields["i"] for r in logs.find("aura.selftest", "selftest event")] == [0, 1, 2]
    rt.create("still-quiet")
    time.sleep(0.2)
    assert logs.find("aura.Store", "object created") == []

    aura.set_log_level("INFO")  # a level name works too
    assert logging.getLogger("aura").level == logging.INFO
    rt.create("heard")
    [created] = eventually(lambda: logs.find("aura.Store", "object created"))
    assert created.aura_fields["object"] == "heard"


def test_emitting_never_waits_for_the_gil_and_overflow_is_counted(logs, no_hang):
    log_level(logging.INFO)
    capacity = aura._aura.LOG_QUEUE_CAPACITY
    threads = 4
    # Four Rust threads emit 4x what the queue holds while this thread keeps the GIL and
    # waits for them: if emitting needed the GIL, this would never return.
    started = time.monotonic()
    aura._aura._log_selftest(capacity, threads=threads)
    assert time.monotonic() - started < 30

    got = logs.find("aura.selftest", "selftest event")
    [report] = [r for r in logs.records if r.name == "aura" and "dropped" in r.getMessage()]
    assert report.levelno == logging.WARNING
    dropped = int(report.getMessage().split()[0])
    assert 0 < len(got) <= capacity
    assert len(got) + dropped >= capacity * threads
    for thread in range(threads):  # in order, per emitting thread
        seq = [r.aura_fields["i"] for r in got if r.aura_fields["thread"] == thread]
        assert seq == sorted(seq)
    assert {r.threadName for r in got} <= {f"aura-selftest-{t}" for t in range(threads)}


def test_many_events_from_background_threads_while_python_waits(logs, rt, no_hang):
    logs.delay = 0.0005  # every delivery releases the GIL inside the handler
    log_level(logging.DEBUG)
    calc = rt.create("calc")
    calc.define("add", "def add(self, a, b):\n    return a + b\n")
    concurrent, blocking = 80, 40

    async def burst():
        return await asyncio.gather(*(calc.send_async("add", i, i) for i in range(concurrent)))

    sums: List[int] = []
    worker = threading.Thread(target=lambda: sums.extend(calc.add(i, 1) for i in range(blocking)))
    worker.start()
    assert asyncio.run(burst()) == [2 * i for i in range(concurrent)]
    worker.join()
    assert sums == [i + 1 for i in range(blocking)]

    calls = eventually(lambda: len(logs.find("aura.Sandbox", "call finished")) >= concurrent + blocking)
    assert calls
    assert len(logs.find("aura.Sandbox", "call finished")) == concurrent + blocking
    assert [r for r in logs.records if "dropped" in r.getMessage()] == []


def test_a_second_runtime_does_not_install_a_second_bridge(logs, tmp_path):
    log_level(logging.INFO)
    first = aura.Runtime(data_dir=tmp_path / "a", model=None)
    second = aura.Runtime(data_dir=tmp_path / "b", model=None)
    first.create("one")
    second.create("two")
    eventually(lambda: len(logs.find("aura.Store", "object created")) >= 2)
    time.sleep(0.2)
    names = collections.Counter(r.aura_fields["object"] for r in logs.find("aura.Store", "object created"))
    assert names["one"] == 1 and names["two"] == 1
