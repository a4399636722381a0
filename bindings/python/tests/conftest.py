"""Fixtures: runtimes on a temporary data directory, and a scripted model callable."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

# No network during tests: real-time context comes only from what a test configures.
for var in ("AURA_NEWS_FEED_URL", "NEWSAPI_KEY", "IP2LOCATION_KEY", "API_NINJAS_KEY"):
    os.environ.pop(var, None)

import aura  # noqa: E402  (after the environment is set)

GOOD_FIB = (
    "def fibonacci(self, n):\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
)
FIB_TESTS = (
    "def test_ten():\n    assert obj.fibonacci(10) == 55\n\n"
    "def test_zero():\n    assert obj.fibonacci(0) == 0\n"
)


def candidate(source: str = GOOD_FIB, tests: str = FIB_TESTS) -> str:
    return json.dumps(
        {"source": source, "tests": tests, "doc": "the n-th Fibonacci number", "rationale": "iterative"}
    )


class ScriptedModel:
    """A model callable that answers method requests from a script and records every request."""

    def __init__(self, replies: List[str]) -> None:
        self.replies = list(replies)
        self.requests: List[Dict[str, Any]] = []

    def __call__(self, request: Dict[str, Any]) -> str:
        self.requests.append(request)
        if not self.replies:
            raise RuntimeError("the script ran out of replies")
        return self.replies.pop(0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "aura-data"


@pytest.fixture
def rt(data_dir: Path) -> "aura.Runtime":
    """A runtime with the real store and jail and no model: misses are not understood."""
    return aura.Runtime(data_dir=data_dir, model=None)


@pytest.fixture
def scripted(data_dir: Path) -> Callable[[List[str]], "tuple[aura.Runtime, ScriptedModel]"]:
    """A runtime whose model is a scripted Python callable (single-persona cascade)."""

    def make(replies: List[str]):
        model = ScriptedModel(replies)
        # The script is an oracle: one candidate that passes its own asserts is enough.
        rt = aura.Runtime(data_dir=data_dir, model=model, cascade_mode="single", learn_agreement=1)
        return rt, model

    return make


@pytest.fixture(autouse=True)
def _restore_aura_log_levels():
    """Each test leaves the `aura` loggers' levels, and so AURA's log filter, as it found them."""

    def aura_loggers():
        return {
            name: logger
            for name, logger in list(logging.root.manager.loggerDict.items())
            if (name == "aura" or name.startswith("aura.")) and isinstance(logger, logging.Logger)
        }

    saved = {name: logger.level for name, logger in aura_loggers().items()}
    yield
    for name, logger in aura_loggers().items():
        logger.setLevel(saved.get(name, logging.NOTSET))
    aura.set_log_level()
