"""A runtime that cannot find the embedded model says so through Python's warnings."""

import warnings

import pytest

import aura


def test_a_missing_model_is_explained(data_dir, monkeypatch):
    missing = data_dir / "no-such-model.gguf"
    monkeypatch.setenv("AURA_MODEL_PATH", str(missing))
    with pytest.warns(UserWarning, match="learning is off") as caught:
        rt = aura.Runtime(data_dir=data_dir)
    assert rt.model_backend is None
    assert "model=none" in repr(rt)
    text = str(caught[0].message)
    assert str(missing) in text, text
    assert "scripts/setup.sh demo" in text and "AURA_MODEL_PATH" in text, text


def test_no_warning_without_a_model_asked_for(data_dir, monkeypatch):
    monkeypatch.setenv("AURA_MODEL_PATH", str(data_dir / "no-such-model.gguf"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rt = aura.Runtime(data_dir=data_dir, model=None)
    assert rt.model_backend is None
