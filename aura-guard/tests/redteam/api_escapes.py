# aura-guard red-team corpus, part 2: escapes through the API of allowed modules,
# written from reading CPython 3.11's standard library (Debian's /usr/bin/python3,
# the jail's interpreter). Same format as escapes.py:
#   # === <case-id> | <expected rule id> | <technique>
# Every case is live: with no guard and no runtime layer, `m(self)` returns normally
# (the escape worked) on that interpreter; aura-sandbox's tests check that, and that
# the runtime layer alone makes every case raise. The guard alone must reject each.

# === api-enum-bltns | module-api | enum imports builtins as `bltns`: the full builtins under a public name
import enum
def m(self):
    return enum.bltns.eval("6 * 7")

# === api-textwrap-re-chain | module-api | a chain of allowed modules' imports: textwrap.re.enum.bltns
import textwrap
def m(self):
    return textwrap.re.enum.bltns.compile("1", "<x>", "eval") is not None

# === api-fractions-re | module-api | fractions re-exports re, whose enum holds builtins
import fractions
def m(self):
    return fractions.re.enum.bltns.exec("x = 1") is None

# === api-typing-types | module-api | typing.types.new_class builds a class from a namespace callback
import typing
def m(self):
    return typing.types.new_class("X", (), {}, lambda ns: ns.update(run=len)).run is len

# === api-typing-warnings-reader | module-api | warnings.formatwarning reads any file's lines through linecache
import typing
def m(self):
    return typing.warnings.formatwarning("m", UserWarning, "/dev/null", 1)

# === api-json-codecs | module-attribute | json re-exports codecs, whose open() opens files
import json
def m(self):
    return json.codecs.open("/dev/null").read()

# === api-from-json-codecs | module-attribute | from-import of a re-exported module
from json import codecs
def m(self):
    return codecs.open("/dev/null").read()

# === api-from-re-enum | module-api | from-import of an allowed module's import, then its builtins
from re import enum
def m(self):
    return enum.bltns.eval("1")

# === api-module-alias-list | module-attribute | a module hidden in a container to lose its name
import enum
def m(self):
    return [enum][0].bltns.eval("1")

# === api-module-assign | module-attribute | a module assigned to a variable, then walked
import enum
def m(self):
    e = enum
    return e.bltns.eval("2")

# === api-getattr-module | module-api | getattr with a literal name on a module
import enum
def m(self):
    return getattr(enum, "bltns").eval("3")

# === api-format-module | module-attribute | a format field walks a module passed as an argument
import enum
def m(self):
    return "{0.bltns}".format(enum)

# === api-default-arg | module-api | a module attribute evaluated as a default value at definition time
import enum
def m(self, f=enum.bltns.eval):
    return f("4")

# === api-make-dataclass | module-api | dataclasses.make_dataclass takes a namespace that plants methods
import dataclasses
def m(self):
    return dataclasses.make_dataclass("X", [], namespace={"run": len}).run is len

# === api-enummeta | module-api | calling enum's metaclass directly builds a class
import enum
def m(self):
    class X(enum.Enum, metaclass=enum.EnumMeta):
        A = 1
    return X.A.value

# === api-enum-functional-dunder | dunder-name | Enum's functional API takes a names mapping with dunder keys
import enum
def m(self):
    E = enum.Enum("E", [("A", 1), ("__repr__", lambda s: "planted")])
    return repr(E.A)

# === api-type-three-dunder | name-denied | three-argument type() plants a dunder method from a dict
def m(self):
    return repr(type("X", (), {"__repr__": lambda s: "planted"})())

# === api-type-of-type | dunder-name | type(int) is type: a three-argument call on the result
def m(self):
    return repr(type(int)("X", (), {"__repr__": lambda s: "planted"})())

# === api-dataclasses-abc-meta | module-api | dataclasses.abc.ABCMeta is a metaclass: a class factory
import dataclasses
def m(self):
    return dataclasses.abc.ABCMeta("X", (), {"run": len}).run is len

# === api-typing-abcmeta | module-api | typing.ABCMeta, public but outside typing's __all__
import typing
def m(self):
    return typing.ABCMeta("X", (), {}) is not None

# === api-exception-obj | frame-attribute | AttributeError.obj hands back the module a lookup failed on
import enum
def m(self):
    try:
        enum.no_such_name
    except AttributeError as e:
        return e.obj.bltns.eval("5")

# === api-update-wrapper | module-api | functools.update_wrapper copies attributes named by strings
import functools
import json
def m(self):
    class Holder:
        pass
    h = Holder()
    functools.update_wrapper(h, json.dumps, assigned=("__globals__",), updated=())
    return True

# === api-wraps | module-api | functools.wraps is update_wrapper with the same string-named attributes
import functools
def m(self):
    return functools.wraps(len, assigned=("__self__",), updated=())(lambda: 0) is not None

# === api-statistics-random | module-api | statistics re-exports random, whose private os follows
import statistics
def m(self):
    return statistics.random.Random().random() >= 0

# === api-re-copyreg | module-api | re re-exports copyreg, the pickling registry
import re
def m(self):
    return re.copyreg.dispatch_table is not None

# === api-typing-io | module-attribute | typing.io, a pseudo-module outside typing's API
import typing
def m(self):
    return typing.io.TextIO is not None

# === api-hashlib-file-digest | module-api | hashlib.file_digest reads from a file object
import hashlib
def m(self):
    return hashlib.file_digest is not None

# === api-get-overloads | module-api | typing.get_overloads reads a process-wide registry of functions
import typing
def m(self):
    return typing.get_overloads(len) == []

# === api-import-submodule | module-api | a submodule that is not listed
import json.decoder
def m(self):
    return json.decoder.scanstring("a\"", 0)[0]

# === api-base64-binascii | module-api | base64 re-exports binascii
import base64
def m(self):
    return base64.binascii.hexlify(b"a").decode()

# === api-attribute-named-exec | builtin-denied | a denied builtin reached under its own name on a non-module object
import enum
def m(self):
    ns = enum.bltns
    return ns.exec("y = 1") is None

# --- Classes built at run time, exception attributes that hand back objects, and
# parameters named like guard names: three classes an outside corpus found (3 of its 89
# escapes were accepted), and the classes found next to them.

# === api-type-three-arg | name-denied | type() with three arguments: a class whose namespace keys are built at run time (a dunder no class statement may define)
def m(self):
    u = "_"
    C = type("C", (), {u + u + "getattr" + u + u: lambda s, n: "planted " + n})
    return C().anything

# === api-type-alias | name-denied | type bound to another name, then called with three arguments
def m(self):
    u = "_"
    t = type
    C = t("C", (), {u + u + "getattr" + u + u: lambda s, n: "planted " + n})
    return C().anything

# === api-type-of-class | name-denied | the type of a class is its metaclass, which builds classes too
def m(self):
    u = "_"
    C = type(int)("C", (), {u + u + "getattr" + u + u: lambda s, n: "planted " + n})
    return C().anything

# === api-metaclass-of-abc | name-denied | the type of an allowed ABC is ABCMeta, kept in a variable
import collections.abc
def m(self):
    u = "_"
    meta = type(collections.abc.Sequence)
    C = meta("C", (), {u + u + "getattr" + u + u: lambda s, n: "planted " + n})
    return C().anything

# === api-type-subclass | name-denied | a class statement deriving from type makes a metaclass
def m(self):
    u = "_"
    class Meta(type):
        pass
    C = Meta("C", (), {u + u + "getattr" + u + u: lambda s, n: "planted " + n})
    return C().anything

# === api-enum-functional | name-denied | Enum's functional API names class attributes with strings built at run time
import enum
def m(self):
    u = "_"
    E = enum.Enum("E", [(u + u + "getattr" + u + u, lambda s, n: "planted " + n), ("A", 1)])
    return E.A.anything

# === api-enum-subclass-functional | name-denied | the functional API called on a guest subclass of Enum, with a mapping
import enum
class Base(enum.Enum):
    pass
def m(self):
    u = "_"
    E = Base("E", {u + u + "getattr" + u + u: lambda s, n: "planted " + n, "A": 1})
    return E.A.anything

# === api-exception-obj-alias | frame-attribute | an AttributeError's obj, read through another name after the handler
def m(self):
    try:
        (1).nothing
    except AttributeError as e:
        caught = e
    return repr(caught.obj)

# === api-exit-exception-obj | frame-attribute | __exit__ is handed the exception that left the with block
class Catch:
    def __enter__(self):
        return self
    def __exit__(self, kind, exc, tb):
        self.got = exc.obj
        return True
def m(self):
    c = Catch()
    with c:
        (1).nothing
    return repr(c.got)

# === api-except-star-obj | frame-attribute | except* wraps the exception in a group whose members carry obj
def m(self):
    try:
        (1).nothing
    except* AttributeError as group:
        found = group.exceptions[0]
    return repr(found.obj)

# === api-getattr-obj | frame-attribute | obj through getattr with a literal name
def m(self):
    try:
        (1).nothing
    except AttributeError as e:
        return repr(getattr(e, "obj"))

# === api-private-param | shadowing | a positional-only parameter named like RestrictedPython's guard hook
def m(self, _getattr_=len, /):
    return _getattr_("abc")

# === api-private-lambda-param | shadowing | a lambda parameter with a private name
def m(self):
    return (lambda _x: _x)(1)
