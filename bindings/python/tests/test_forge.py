"""The forge loop from Python: facets, promotion and clear errors."""

import pytest

import aura
from conftest import ScriptedModel, candidate


def test_without_a_forge_a_run_is_unavailable_and_nothing_is_registered(data_dir):
    rt = aura.Runtime(data_dir=data_dir, model=ScriptedModel([candidate()]), forge=None,
                      cascade_mode="single", learn_agreement=1)
    rt.create("calc").fibonacci(10)
    assert rt.facets() == []
    with pytest.raises(aura.Unavailable) as e:
        rt.forge("alfred", steps=2)
    assert e.value.port == "forge"
    assert "no forge is configured" in str(e.value)
    assert rt.facets() == []


def test_bad_personas_facets_and_promotions_are_refused_clearly(data_dir):
    rt = aura.Runtime(data_dir=data_dir, model=None, forge=None)
    with pytest.raises(aura.InvalidRequest, match="not a persona"):
        rt.forge("joker")
    with pytest.raises(aura.StoreConflict, match="no promoted facet"):
        rt.rollback_facet("babs")
    with pytest.raises(aura.NotFound):
        rt.promote_facet("babs:never-trained")
    with pytest.raises(ValueError, match="forge="):
        aura.Runtime(data_dir=data_dir, model=None, forge="gpu-please")


def test_serving_names_every_persona_and_starts_on_the_base_model(rt):
    assert rt.serving() == {"alfred": None, "babs": None, "brick": None, "robin": None}


def test_health_checks_every_port_as_the_gateway_does(rt):
    health = rt.health()
    assert health["status"] == "ok"
    checks = health["checks"]
    assert checks["store"]["status"] == "ok" and checks["store"]["detail"] == "sqlite"
    assert checks["sandbox"]["status"] == "ok"
    # No model configured: learning is off, which is a choice, not an outage.
    assert checks["models"]["all"]["status"] == "absent"
    assert health["resources"]["learn_locks"] == 0
