"""The embedded defaults: SQLite, the namespace jail and the local GGUF model."""

import pytest

import aura


def test_the_embedded_defaults(data_dir):
    rt = aura.Runtime(data_dir=data_dir)
    assert rt.backends == {"store": "sqlite", "sandbox": "jail"}
    assert (data_dir / "aura.sqlite").exists()
    if rt.model_backend is None:
        pytest.skip("no local model installed: run scripts/setup.sh")
    assert rt.model_backend == "local"
    calc = rt.create("calc")
    calc.define("square", "def square(self, x):\n    return x * x\n")
    assert calc.square(12) == 144
    reply = calc.tell("calculate square for 9")
    assert reply.value == 81


def test_the_package_is_typed():
    from importlib import resources

    files = resources.files("aura")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_aura.pyi").is_file()


def test_the_package_docstring_example_runs():
    import doctest

    failures, tried = doctest.testmod(aura, verbose=False)
    assert tried > 0 and failures == 0
