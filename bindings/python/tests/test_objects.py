"""Objects, slots and delegation through the Python API, on the real SQLite store."""

import pytest

import aura


def test_create_and_read_back(rt):
    calc = rt.create("calc", slots={"base": 10, "tags": ["a", "b"]})
    assert calc.name == "calc"
    assert calc.slots == {"base": 10, "tags": ["a", "b"]}
    assert rt.get("calc") == calc
    assert rt.get(calc.id) == calc
    assert hash(rt.get("calc")) == hash(calc)
    assert "calc" in repr(calc)


def test_new_objects_delegate_to_the_root(rt):
    obj = rt.create("thing")
    assert obj.parents == [rt.root]
    assert rt.root.name == "genesis"


def test_slots_read_and_write_like_a_mapping(rt):
    obj = rt.create("box")
    obj["count"] = 1
    assert obj["count"] == 1
    assert "count" in obj and "missing" not in obj
    assert obj.get("missing", 42) == 42
    obj.update({"count": 2, "label": "two"})
    assert obj.slots == {"count": 2, "label": "two"}
    with pytest.raises(KeyError):
        obj["missing"]


def test_parents_can_be_named_by_object_id_or_name(rt):
    a = rt.create("a")
    b = rt.create("b", parents=[a])
    c = rt.create("c", parents=["b", a.id])
    assert c.parents == [b, a]
    a.set_parents([])
    assert a.parents == []


def test_a_parent_cycle_is_refused_and_changes_nothing(rt):
    a = rt.create("a")
    b = rt.create("b", parents=[a])
    with pytest.raises(aura.InvalidRequest) as err:
        a.set_parents([b])
    assert isinstance(err.value, ValueError)
    assert a.parents == [rt.root]


def test_unknown_objects_raise_not_found(rt):
    with pytest.raises(aura.NotFound) as err:
        rt.get("nobody")
    assert isinstance(err.value, LookupError)
    assert err.value.kind == "object"
    # The same stable code the gateway's error body carries.
    assert err.value.code == "not_found"


def test_taken_names_conflict(rt):
    rt.create("twin")
    with pytest.raises(aura.StoreConflict):
        rt.create("twin")


def test_values_json_cannot_hold_are_type_errors(rt):
    obj = rt.create("box")
    for bad in ({1, 2, 3}, b"bytes", object(), 1 + 2j):
        with pytest.raises(TypeError):
            obj["bad"] = bad
    with pytest.raises(ValueError):
        obj["bad"] = float("nan")
    assert "bad" not in obj


def test_listing_objects_pages(rt):
    for i in range(5):
        rt.create(f"o{i}")
    names = [o.name for o in rt.objects(limit=100)]
    assert names[0] == "genesis" and names[1:] == [f"o{i}" for i in range(5)]
    assert [o.name for o in rt.objects(offset=2, limit=2)] == ["o1", "o2"]


def test_an_object_outlives_its_runtime(data_dir):
    first = aura.Runtime(data_dir=data_dir, model=None)
    obj = first.create("keeper", slots={"n": 7})
    obj.define("twice", "def twice(self):\n    return self.n * 2\n")
    del first, obj

    second = aura.Runtime(data_dir=data_dir, model=None)
    assert second.get("keeper").twice() == 14


def test_bad_runtime_arguments_are_clear(data_dir):
    with pytest.raises(ValueError, match="sandbox"):
        aura.Runtime(data_dir=data_dir, sandbox="chroot", model=None)
    with pytest.raises(ValueError, match="model"):
        aura.Runtime(data_dir=data_dir, model="gpt-9")
    with pytest.raises(ValueError, match="cascade_mode"):
        aura.Runtime(data_dir=data_dir, model=None, cascade_mode="half")
