"""The README's Python quick start runs as written, twice, in a directory of its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import aura

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_the_quick_start_runs_twice(tmp_path, monkeypatch):
    if not README.is_file():
        pytest.skip(f"no README at {README} (an installed package without the checkout)")
    blocks = python_blocks("Using it from Python")
    assert blocks, "the README's Python section has no python block"
    monkeypatch.chdir(tmp_path)  # the snippet's default data directory is ./data
    # Short learns: one sample each, within a small budget.
    monkeypatch.setenv("AURA_LEARN_SAMPLES", "1")
    monkeypatch.setenv("AURA_LEARN_BUDGET_SECS", "30")
    monkeypatch.setenv("AURA_CASCADE_MODE", "single")
    if aura.Runtime(data_dir=tmp_path / "probe", forge=None).model_backend is None:
        pytest.skip("no local model installed: run scripts/setup.sh demo")
    for run in (1, 2):
        checked = False
        for block in blocks:
            namespace: dict = {"__name__": f"readme_run_{run}"}
            exec(compile(block, f"README.md (python, run {run})", "exec"), namespace)
            calc = namespace.get("calc")
            if calc is not None:
                assert calc.add(1, 2) == 13, f"run {run}"
                assert calc["base"] == 10
                checked = True
        assert checked, f"run {run}: no README block defined `calc` to check"
    assert (tmp_path / "data" / "aura.sqlite").is_file()
    assert os.getcwd() == str(tmp_path)
