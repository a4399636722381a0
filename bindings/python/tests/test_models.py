"""Model backends by setting: ``model="openai:…"``, ``models={...}`` per persona."""

import pytest

import aura

DEAD = "openai:http://127.0.0.1:9/v1#qwen"  # nothing listens on port 9


def echo(request):
    return "hello"


def test_each_persona_can_have_its_own_backend(data_dir):
    rt = aura.Runtime(data_dir=data_dir, model=echo, models={"babs": DEAD, "AURA_MODEL_ALFRED": DEAD})
    backends = rt.model_backends
    assert backends["BABS"] == DEAD and backends["ALFRED"] == DEAD, backends
    assert backends["ROBIN"] == "python" and backends["BRICK"] == "python", backends


def test_a_backend_string_serves_every_persona(data_dir):
    rt = aura.Runtime(data_dir=data_dir, model=DEAD)
    assert rt.model_backend == "openai"
    assert set(rt.model_backends.values()) == {DEAD}


def test_a_list_falls_back_in_order(data_dir):
    rt = aura.Runtime(data_dir=data_dir, model=None, models={"default": f"{DEAD},ollama:llama3"})
    # model=None turns learning off whatever the settings say.
    assert rt.model_backends == {}
    rt = aura.Runtime(data_dir=data_dir, model=echo, models={"robin": f"{DEAD},ollama:llama3"})
    assert rt.model_backends["ROBIN"].startswith(f"{DEAD},ollama:llama3 at ")


@pytest.mark.parametrize(
    "models, says",
    [
        ({"robin": "vllm:qwen"}, "AURA_MODEL_ROBIN"),
        ({"default": "openai:http://127.0.0.1:8080/v1"}, "names no model"),
        ({"nobody": "ollama:llama3"}, "not a model setting"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(data_dir, models, says):
    with pytest.raises(aura.InvalidRequest, match=says):
        aura.Runtime(data_dir=data_dir, model=echo, models=models)
    assert not (data_dir / "aura.sqlite").exists(), "nothing is written before the models open"


def test_a_word_that_names_no_backend_is_a_value_error(data_dir):
    with pytest.raises(ValueError, match="openai:URL#MODEL"):
        aura.Runtime(data_dir=data_dir, model="gpt4")
