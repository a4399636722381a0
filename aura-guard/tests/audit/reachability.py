"""Reachability audit of the API allowlist (aura-guard/data/module_api.json).

Run by tests/it/reachability.rs with the sandbox's interpreter (python3 -I -S). From every
allowed name of every allowed module, and from every allowed builtin, it walks every
public attribute path up to DEPTH attributes deep, skipping only the attribute names the
guard rejects on any object (private names, frame/code attributes, denied builtins), and
classifies each object reached. It prints every path it walked, then one JSON line:

    {"walked": N, "roots": R, "findings": [{"path": ..., "kind": ..., "what": ...}],
     "accepted": [{"path": ..., "reason": ...}]}

With --whole-modules it walks every public name of each allowed module instead (the rule
before the allowlist), to show what the allowlist closes.

A finding is a path to one of: a module outside the allowlist, a denied builtin, a
function that opens files, sockets or processes, a code/frame/traceback object, or a
class factory that takes a namespace. The Rust test then checks that the guard rejects
each finding's path; `accepted` lists the curated exceptions (api_curation.json,
"reachable") with their reasons.
"""

import builtins
import importlib
import json
import sys
import types

DEPTH = 3
DATA = json.load(open(sys.argv[1], encoding="utf-8"))
CUR = json.load(open(sys.argv[2], encoding="utf-8"))
MODULES = DATA["modules"]
FRAME = set(DATA["frame_attributes"])
FRAME_PREFIXES = tuple(DATA["frame_attribute_prefixes"])
DENIED_NAMES = set(DATA["denied_builtins"])
REACHABLE_OK = CUR.get("reachable", {})

# Modules whose functions open files, sockets or processes, read source lines, or
# introspect the interpreter: a callable defined in one of them is a finding.
OPENER_MODULES = {
    "os", "posix", "nt", "io", "_io", "socket", "_socket", "ssl", "_ssl", "subprocess",
    "_posixsubprocess", "linecache", "tokenize", "pathlib", "shutil", "tempfile", "glob",
    "fileinput", "codecs", "_codecs", "ctypes", "_ctypes", "importlib", "_imp", "sys",
    "runpy", "zipimport", "pkgutil", "inspect", "gc", "traceback", "pdb", "signal",
    "_signal", "threading", "_thread", "multiprocessing", "mmap", "select", "selectors",
    "marshal", "pickle", "_pickle", "warnings", "_warnings", "dis", "code", "codeop",
    "site", "pty", "fcntl", "resource", "pwd", "grp", "shelve", "dbm", "zipfile",
    "tarfile", "gzip", "bz2", "lzma", "urllib", "http", "webbrowser", "pydoc", "doctest",
    "unittest", "logging", "atexit", "faulthandler", "tracemalloc",
}
DENIED_OBJECTS = {id(getattr(builtins, n)): n for n in DENIED_NAMES if hasattr(builtins, n)}
FACTORIES = {id(types.new_class): "types.new_class", id(types.prepare_class): "types.prepare_class"}
try:
    import dataclasses
    FACTORIES[id(dataclasses.make_dataclass)] = "dataclasses.make_dataclass"
except ImportError:
    pass
try:
    from enum import Enum as ENUM
except ImportError:
    ENUM = None
FRAME_TYPES = (types.CodeType, types.FrameType, types.TracebackType, types.CellType)


def skipped(name):
    return (name.startswith("_") or name in FRAME or name.startswith(FRAME_PREFIXES)
            or name in DENIED_NAMES)


def classify(path, obj):
    """(kind, what) when obj is dangerous, else None."""
    if isinstance(obj, types.ModuleType):
        if path in MODULES and obj.__name__ == path:
            return None
        return ("module", "module %s" % obj.__name__)
    if id(obj) in DENIED_OBJECTS:
        return ("denied-builtin", DENIED_OBJECTS[id(obj)])
    if isinstance(obj, FRAME_TYPES):
        return ("frame", type(obj).__name__)
    if id(obj) in FACTORIES:
        return ("class-factory", FACTORIES[id(obj)])
    if isinstance(obj, type) and issubclass(obj, type):
        return ("class-factory", "metaclass %s.%s" % (obj.__module__, obj.__qualname__))
    if isinstance(obj, type) and ENUM is not None and issubclass(obj, ENUM) and not obj.__members__:
        # Enum('Name', names): the names mapping becomes the class namespace.
        return ("class-factory", "member-less enum %s (functional API)" % obj.__qualname__)
    if callable(obj) and not isinstance(obj, type):
        mod = getattr(obj, "__module__", None)
        if mod is None:
            owner = getattr(obj, "__self__", None)
            if isinstance(owner, types.ModuleType):
                mod = owner.__name__
        if isinstance(mod, str) and mod.split(".")[0] in OPENER_MODULES:
            return ("opener", "%s from %s" % (getattr(obj, "__qualname__", repr(obj)), mod))
    return None


def public_names(obj):
    try:
        names = dir(obj)
    except Exception:
        return []
    return [n for n in names if isinstance(n, str) and not skipped(n)]


def main():
    roots = []
    whole = "--whole-modules" in sys.argv
    for mod_name, api in sorted(MODULES.items()):
        module = importlib.import_module(mod_name)
        if whole:
            # The old rule: every public name of an allowed module.
            api = [n for n in dir(module) if not skipped(n)]
        for n in api:
            roots.append(("%s.%s" % (mod_name, n), getattr(module, n)))
    for n in DATA["builtins"]:
        roots.append((n, getattr(builtins, n)))
    walked = 0
    findings, accepted = [], []
    seen_leaf = set()
    stack = [(p, o, 0) for p, o in reversed(roots)]
    while stack:
        path, obj, depth = stack.pop()
        walked += 1
        print(path)
        bad = classify(path, obj)
        if bad is not None:
            if path in REACHABLE_OK:
                accepted.append({"path": path, "reason": REACHABLE_OK[path]})
            else:
                findings.append({"path": path, "kind": bad[0], "what": bad[1]})
            continue
        if depth >= DEPTH or isinstance(obj, (str, bytes, int, float, complex, bool)):
            continue
        # An object seen at this depth or shallower has had its subtree walked already.
        key = (id(obj), depth)
        if key in seen_leaf:
            continue
        seen_leaf.add(key)
        for n in public_names(obj):
            try:
                child = getattr(obj, n)
            except Exception:
                continue
            stack.append(("%s.%s" % (path, n), child, depth + 1))
    print(json.dumps({"walked": walked, "roots": len(roots), "findings": findings,
                      "accepted": accepted}))


main()
