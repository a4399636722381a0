# aura-guard red-team corpus. Each case starts with a header line
#   # === <case-id> | <expected rule id> | <technique>
# and runs to the next header. Every case must be rejected, with (at least) the
# expected rule. Cases are audited with the AnyMethod shape unless the id starts
# with "module-" (rules only).

# === imp-os | import-denied | plain import of os
import os
def m(self):
    return os.listdir("/")

# === imp-os-path | import-denied | dotted import of a dangerous package
import os.path
def m(self):
    return os.path.exists("/etc/passwd")

# === imp-from-os | import-denied | from-import of a function from os
from os import system
def m(self):
    system("id")

# === imp-sys | import-denied | sys exposes modules and frames
import sys
def m(self):
    return sys.modules

# === imp-subprocess | import-denied | process spawning
import subprocess
def m(self):
    return subprocess.run(["id"])

# === imp-socket | import-denied | network access
import socket
def m(self):
    return socket.socket()

# === imp-shutil | import-denied | file tree manipulation
import shutil
def m(self):
    shutil.rmtree("/")

# === imp-alias | import-denied | dangerous module hidden behind an allowed-looking alias
import os as math
def m(self):
    return math.getcwd()

# === imp-in-function | import-denied | import inside the method body
def m(self):
    import subprocess
    return subprocess.check_output("id")

# === imp-multi | import-denied | dangerous module second in a multi-import
import math, ctypes
def m(self):
    return ctypes.CDLL(None)

# === imp-pickle | import-denied | pickle runs code on load
import pickle
def m(self, data):
    return pickle.loads(data)

# === imp-marshal | import-denied | marshal builds code objects
import marshal
def m(self, data):
    return marshal.loads(data)

# === imp-dill | import-denied | dill serialises code
import dill
def m(self, data):
    return dill.loads(data)

# === imp-importlib | import-denied | importlib loads any module
import importlib
def m(self):
    return importlib.import_module("os")

# === imp-builtins | import-denied | builtins module holds eval and open
import builtins
def m(self):
    return builtins.open("/etc/passwd").read()

# === imp-gc | import-denied | gc.get_objects reaches every object
import gc
def m(self):
    return gc.get_objects()

# === imp-inspect | import-denied | inspect reaches frames
import inspect
def m(self):
    return inspect.currentframe()

# === imp-io | import-denied | io.open is open
from io import open as o
def m(self):
    return o("/etc/passwd").read()

# === imp-pathlib | import-denied | pathlib reads files
from pathlib import Path
def m(self):
    return Path("/etc/passwd").read_text()

# === imp-threading | import-denied | threads outlive the call
import threading
def m(self):
    threading.Thread(target=print).start()

# === imp-signal | import-denied | signal handlers
import signal
def m(self):
    signal.alarm(0)

# === imp-codecs | import-denied | codecs.open opens files
import codecs
def m(self):
    return codecs.open("/etc/passwd").read()

# === imp-runpy | import-denied | runpy runs modules
import runpy
def m(self):
    runpy.run_module("os")

# === imp-types | import-denied | types.FunctionType builds functions from code
import types
def m(self):
    return types.FunctionType

# === imp-relative | import-denied | relative import escapes the allowlist
from . import secrets
def m(self):
    return secrets

# === imp-star | import-star | star import hides what is bound
from math import *
def m(self):
    return pi

# === imp-private-module | import-denied | C accelerator module with no allowlist entry
import _io
def m(self):
    return _io.open("/etc/passwd")

# === imp-nfkc | import-denied | fullwidth letters normalise to os
import ｏｓ
def m(self):
    return ｏｓ.getcwd()

# === imp-private-name | private-attribute | private helper of an allowed module
from random import _os
def m(self):
    return _os.getcwd()

# === imp-reexported-sys | module-attribute | typing re-exports sys under a public name
from typing import sys
def m(self):
    return sys.modules

# === imp-dataclasses-inspect | module-attribute | dataclasses re-exports inspect
from dataclasses import inspect
def m(self):
    return inspect.currentframe()

# === imp-formatter | format-attribute | string.Formatter formats with run-time strings
from string import Formatter
def m(self, fmt):
    return Formatter().format(fmt, self)

# === imp-attrgetter | dynamic-attribute | operator.attrgetter with a computed name
from operator import attrgetter
def m(self, name):
    return attrgetter(name)(self)

# === imp-get-type-hints | name-denied | get_type_hints evaluates annotation strings
from typing import get_type_hints
def m(self, f):
    return get_type_hints(f)

# === imp-submodule-private | private-attribute | private submodule of an allowed package
import json._x
def m(self):
    return 1

# === bi-open-call | builtin-denied | open() reads host files
def m(self):
    return open("/etc/passwd").read()

# === bi-open-ref | builtin-denied | open taken by reference, called later
def m(self):
    f = open
    return f("/etc/passwd").read()

# === bi-eval | builtin-denied | eval of a string
def m(self, expr):
    return eval(expr)

# === bi-exec | builtin-denied | exec of a string
def m(self):
    exec("import os")

# === bi-compile | builtin-denied | compile builds code objects
def m(self):
    return compile("1", "<x>", "eval")

# === bi-import | builtin-denied | __import__ call
def m(self):
    return __import__("os").getcwd()

# === bi-globals | builtin-denied | globals() gives the module namespace and builtins
def m(self):
    return globals()["__builtins__"]

# === bi-vars | builtin-denied | vars() without args is locals()
def m(self):
    return vars()

# === bi-locals | builtin-denied | locals()
def m(self):
    return locals()

# === bi-breakpoint | builtin-denied | breakpoint() starts a debugger
def m(self):
    breakpoint()

# === bi-input | builtin-denied | input() blocks on stdin
def m(self):
    return input()

# === bi-help | builtin-denied | help() is interactive
def m(self):
    help(self)

# === bi-exit | builtin-denied | exit() stops the interpreter
def m(self):
    exit(0)

# === bi-quit | builtin-denied | quit() stops the interpreter
def m(self):
    quit()

# === bi-memoryview | builtin-denied | raw buffer access
def m(self, b):
    return memoryview(b)

# === bi-in-list | builtin-denied | denied builtin smuggled through a container
def m(self):
    return [open][0]("/etc/passwd")

# === bi-in-dict | builtin-denied | denied builtin as a dict value
def m(self):
    table = {"run": exec}
    table["run"]("import os")

# === bi-default-arg | builtin-denied | denied builtin as a default value
def m(self, f=eval):
    return f("1+1")

# === bi-keyword-arg | builtin-denied | denied builtin passed as a keyword argument
def m(self, xs):
    return sorted(xs, key=eval)

# === bi-lambda | builtin-denied | denied builtin inside a lambda body
def m(self):
    g = lambda s: exec(s)
    g("1")

# === bi-listcomp | builtin-denied | denied builtin inside a comprehension body
def m(self, xs):
    return [eval(x) for x in xs]

# === bi-genexp-if | builtin-denied | denied builtin inside a comprehension condition
def m(self, xs):
    return list(x for x in xs if eval(x))

# === bi-dictcomp | builtin-denied | denied builtin inside a dict comprehension key
def m(self, xs):
    return {eval(k): k for k in xs}

# === bi-with | builtin-denied | denied builtin in a with item
def m(self):
    with open("/etc/passwd") as f:
        return f.read()

# === bi-fstring | builtin-denied | denied builtin inside an f-string
def m(self):
    return f"{eval('1+1')}"

# === bi-fstring-spec | builtin-denied | denied builtin inside an f-string format spec
def m(self, x):
    return f"{x:{eval('5')}}"

# === bi-decorator | builtin-denied | denied builtin as a decorator
@eval
def m(self):
    return 1

# === bi-match-guard | builtin-denied | denied builtin in a match guard
def m(self, x):
    match x:
        case [a] if exec(a):
            return 1
    return 0

# === bi-annotation | builtin-denied | denied builtin in an annotation (evaluated at def time)
def m(self, x: eval("int")):
    return x

# === bi-string-annotation | builtin-denied | code inside a string annotation that typing evaluates
def m(self, x: "__import__('os').system('id')"):
    return x

# === bi-nfkc-exec | builtin-denied | fullwidth exec normalises to exec
def m(self):
    ｅｘｅｃ("import os")

# === bi-nfkc-eval-mixed | builtin-denied | mathematical letters normalise to eval
def m(self):
    return 𝐞val("1")

# === bi-rebind | builtin-denied | denied builtin name rebound
def m(self):
    open = print
    return open

# === bi-class-keyword | builtin-denied | denied builtin as a class keyword value
class Helper(metaclass=eval("type")):
    pass
def m(self):
    return Helper()

# === bi-except | builtin-denied | denied builtin in an except clause
def m(self):
    try:
        pass
    except eval("Exception"):
        pass

# === bi-walrus | builtin-denied | denied builtin assigned with a walrus
def m(self):
    if (f := open):
        return f("/etc/passwd")

# === bi-slice | builtin-denied | denied builtin in a slice bound
def m(self, xs):
    return xs[eval("1"):]

# === bi-type-param-default | builtin-denied | denied builtin as a type parameter bound
def m[T: eval("int")](self):
    return 1

# === dunder-class | private-attribute | classic subclass walk from a tuple
def m(self):
    return ().__class__.__bases__[0].__subclasses__()

# === dunder-globals | private-attribute | function globals give builtins
def m(self):
    return self.m.__globals__["__builtins__"]

# === dunder-dict | private-attribute | instance dict bypasses attribute rules
def m(self):
    return self.__dict__

# === dunder-on-allowed-module | private-attribute | loader of an allowed module
import math
def m(self):
    return math.__loader__

# === dunder-builtins-name | builtin-denied | __builtins__ as a plain name
def m(self):
    return __builtins__

# === dunder-class-cell | dunder-name | implicit __class__ cell in a method
def m(self):
    return __class__

# === dunder-in-comprehension | private-attribute | dunder attribute inside a comprehension
def m(self, xs):
    return [x.__class__ for x in xs]

# === dunder-in-default | private-attribute | dunder attribute inside a default value
def m(self, c=().__class__):
    return c

# === private-random-os | private-attribute | random re-exports os privately
import random
def m(self):
    return random._os.system("id")

# === private-self | private-attribute | private attribute on self
def m(self):
    return self._secret

# === private-nfkc | private-attribute | fullwidth letters inside a dunder name
def m(self):
    return ().__ｃｌａｓｓ__

# === frame-nfkc | frame-attribute | fullwidth gi_frame normalises to gi_frame
def m(self, g):
    return g.ｇｉ_ｆｒａｍｅ

# === private-del | private-attribute | deleting a dunder attribute
def m(self, f):
    del f.__code__

# === private-super-other | private-attribute | super() allows __init__ only
class A:
    def __init__(self):
        super().__init_subclass__()
def m(self):
    return A()

# === frame-gi | frame-attribute | generator frame walk to globals
def m(self):
    g = (x for x in [1])
    return g.gi_frame.f_back.f_globals

# === frame-cr | frame-attribute | coroutine frame
def m(self, c):
    return c.cr_frame

# === frame-ag | frame-attribute | async generator frame
def m(self, a):
    return a.ag_frame

# === frame-tb | frame-attribute | traceback frame from an exception
def m(self):
    try:
        1 / 0
    except ZeroDivisionError as e:
        return e.with_traceback(None).args, e.args[0].tb_frame

# === frame-f-builtins | frame-attribute | f_builtins of a frame
def m(self, f):
    return f.f_builtins["eval"]

# === frame-co | frame-attribute | code object constants
def m(self, f):
    return f.co_consts

# === frame-codetype | frame-attribute | CodeType via a module re-export
import copy
def m(self):
    return copy.types.CodeType

# === frame-gi-code | frame-attribute | generator code object
def m(self):
    g = (i for i in range(3))
    return g.gi_code

# === mod-typing-sys | module-attribute | typing.sys reaches sys without importing it
import typing
def m(self):
    return typing.sys.modules["os"]

# === mod-re-enum-sys | module-attribute | chained re-exports: re.enum.sys
import re
def m(self):
    return re.enum.sys

# === mod-dataclasses-builtins | module-attribute | dataclasses.builtins.eval
import dataclasses
def m(self):
    return dataclasses.builtins

# === mod-collections-os | module-attribute | any attribute named os
import collections
def m(self):
    return collections.os

# === dyn-getattr-var | dynamic-attribute | getattr with a computed name
def m(self, name):
    return getattr(self, name)

# === dyn-getattr-concat | dynamic-attribute | getattr with a concatenated name
def m(self):
    return getattr((), "__cla" + "ss__")

# === dyn-getattr-dunder | private-attribute | getattr with a literal dunder name
def m(self):
    return getattr((), "__class__")

# === dyn-getattr-frame | frame-attribute | getattr with a literal frame attribute
def m(self, g):
    return getattr(g, "gi_frame")

# === dyn-setattr | dynamic-attribute | setattr with a computed name
def m(self, k, v):
    setattr(self, k, v)

# === dyn-delattr-private | private-attribute | delattr of a private literal
def m(self):
    delattr(self, "_x")

# === dyn-hasattr-var | dynamic-attribute | hasattr probing with a computed name
def m(self, k):
    return hasattr(self, k)

# === dyn-getattr-ref | dynamic-attribute | getattr passed as a value
def m(self, names):
    return list(map(getattr, [self] * len(names), names))

# === dyn-getattr-star | dynamic-attribute | getattr with unpacked arguments
def m(self, args):
    return getattr(*args)

# === dyn-getattr-nfkc | dynamic-attribute | fullwidth getattr with a computed name
def m(self, n):
    return ｇｅｔａｔｔｒ(self, n)

# === dyn-methodcaller | dynamic-attribute | operator.methodcaller via attribute
import operator
def m(self, name):
    return operator.methodcaller(name)(self)

# === dyn-attrgetter-attr | dynamic-attribute | operator.attrgetter via attribute
import operator
def m(self):
    return operator.attrgetter("__class__")(self)

# === fmt-class | format-attribute | format field path to __class__
def m(self):
    return "{0.__class__}".format(self)

# === fmt-gi-frame | format-attribute | format field path to gi_frame
def m(self, g):
    return "{.gi_frame}".format(g)

# === fmt-index-then-attr | format-attribute | format field with index then dunder attribute
def m(self, xs):
    return "{0[0].__globals__}".format(xs)

# === fmt-nested-spec | format-attribute | attribute path in a nested format spec
def m(self, x):
    return "{0:{1.__doc__}}".format(x, x)

# === fmt-map | format-attribute | format_map with an attribute path
def m(self):
    return "{x.__class__}".format_map({"x": self})

# === fmt-nonliteral | format-attribute | format string chosen at run time
def m(self, fmt):
    return fmt.format(self)

# === fmt-str-format | format-attribute | str.format with the template as an argument
def m(self, fmt):
    return str.format(fmt, self)

# === fmt-concat | format-attribute | template built by concatenation
def m(self):
    return ("{0.__cl" + "ass__}").format(self)

# === fmt-map-nonliteral | format-attribute | format_map on a variable
def m(self, fmt):
    return fmt.format_map({"s": self})

# === fmt-implicit-concat | format-attribute | implicitly concatenated literal halves
def m(self):
    return ("{0.__cl" "ass__}").format(self)

# === match-class-dunder | private-attribute | class pattern binding a dunder attribute
def m(self, x):
    match x:
        case object(__class__=c):
            return c

# === match-class-frame | frame-attribute | class pattern binding gi_frame
def m(self, g):
    match g:
        case object(gi_frame=f):
            return f

# === match-value-dunder | private-attribute | value pattern with a dunder path
def m(self, x):
    match x:
        case self.__class__:
            return 1

# === shadow-getattr-param | shadowing | parameter named getattr
def m(self, getattr=None):
    return getattr(self, "x")

# === shadow-getattr-assign | shadowing | getattr rebound to something else
def m(self):
    getattr = print
    return getattr(self, "x")

# === shadow-super | shadowing | super rebound, making super().__init__ reach another object
def m(self):
    super = lambda: self
    return super().__init__

# === shadow-posonly | shadowing | positional-only parameter shadowing setattr
def m(self, setattr, /):
    return setattr(self, "x", 1)

# === shadow-import-alias | shadowing | import alias named getattr
from functools import reduce as getattr
def m(self):
    return getattr(self, "x")

# === shadow-def | shadowing | helper function named hasattr
def hasattr(obj, name):
    return True
def m(self):
    return hasattr(self, "x")

# === eval-forwardref | name-denied | typing.ForwardRef evaluates its string
import typing
def m(self):
    return typing.ForwardRef("__import__('os')")

# === eval-singledispatch | name-denied | singledispatch evaluates string annotations on register
import functools
@functools.singledispatch
def helper(x):
    return x
def m(self):
    return helper(1)

# === eval-get-type-hints-attr | name-denied | typing.get_type_hints via attribute
import typing
def m(self, f):
    return typing.get_type_hints(f)

# === node-global | node-denied | global statement
X = 1
def m(self):
    global X
    X = 2

# === node-async | node-denied | async def
async def m(self):
    return 1

# === node-await | node-denied | await inside an async helper
async def helper():
    return 1
def m(self):
    return helper

# === node-async-comp | node-denied | async comprehension
def m(self, xs):
    return [x async for x in xs]

# === node-tstring | node-denied | template string
def m(self, x):
    return t"{x}"

# === dunder-def-reduce | dunder-name | helper class defining __reduce__
class Evil:
    def __reduce__(self):
        return (print, ("x",))
def m(self):
    return Evil()

# === dunder-assign-builtins | builtin-denied | assigning __builtins__
__builtins__ = {}
def m(self):
    return 1

# === ann-unreadable | annotation | string annotation that looks like code but does not parse
def m(self, x: "__import__('os').system('id') +"):
    return x

# === ann-nested | builtin-denied | denied builtin in a nested string annotation
from typing import List
def m(self, x: List["eval('1')"]):
    return x

# === ann-return | private-attribute | dunder attribute in a return annotation string
def m(self) -> "self.__class__":
    return 1

# === shape-toplevel-call | shape | code runs at import time
import math
print(math.pi)
def m(self):
    return 1

# === shape-toplevel-loop | shape | loop at the top level
for i in range(10):
    pass
def m(self):
    return 1

# === shape-no-method | shape | no function taking self
def helper(x):
    return x

# === shape-toplevel-if | shape | conditional code at import time
if True:
    X = 1
def m(self):
    return 1

# === shape-toplevel-try | shape | try block at import time
try:
    X = 1
except Exception:
    X = 2
def m(self):
    return 1

# === shape-attr-assign | shape | top-level assignment to an attribute
import math
math.tau = 3
def m(self):
    return 1

# === limit-deep | limit | list nesting deep enough to exhaust a recursive checker
def m(self):
    return [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]

# === limit-unary | limit | a long chain of unary minus builds a deep tree without brackets
def m(self):
    return --------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------1

# === syntax-coding-utf7 | syntax | UTF-7 encoding cookie: CPython would decode hidden code
# -*- coding: utf-7 -*-
def m(self):
    return 1 #+AAo-import os

# === syntax-coding-second-line | syntax | encoding cookie on the second line
#!/usr/bin/env python
# vim: set fileencoding=unicode_escape :
def m(self):
    return "\x0aimport os"

# === syntax-broken | syntax | not Python
def m(self):
    return )(

# === exc-name-error-name | frame-attribute | NameError.name hands back the name the failing code looked up
def m(self):
    try:
        undefined_here
    except NameError as e:
        return e.name
