"""AURA: self-extending, persistent prototype objects.

>>> import aura
>>> rt = aura.Runtime(store_path=":memory:", model=None)
>>> calc = rt.create("calc", slots={"base": 10})
>>> _ = calc.define("add", "def add(self, a, b):\\n    return a + b + self.base\\n")
>>> calc.add(1, 2)
13

``Runtime`` opens the object machine (SQLite store, namespace jail and the local model
by default; settings not passed come from the environment and ``.env``). Every blocking
call releases the GIL; ``Object.send_async`` and ``Object.tell_async`` are awaitable.

AURA's Rust log events reach :mod:`logging` under ``aura.<component>`` (``aura.Orchestrator``,
``aura.Store``, ``aura.LocalModel``, …); configure them as any other logger, and call
``aura.set_log_level()`` after making one more verbose (see ``set_log_level``).
"""

from __future__ import annotations

import logging as _logging

from ._aura import (
    AuditEvent,
    Message,
    Method,
    Object,
    Reply,
    Runtime,
    SearchHit,
    __version__,
    set_log_level,
)
from .errors import (
    AuraError,
    DoesNotUnderstand,
    ForgeError,
    GuardRejected,
    InvalidRequest,
    LearnRefused,
    MethodError,
    NotFound,
    SandboxError,
    StoreConflict,
    Unavailable,
)

# A library's loggers print nothing until the application configures logging.
_logging.getLogger("aura").addHandler(_logging.NullHandler())

__all__ = [
    "AuditEvent",
    "AuraError",
    "DoesNotUnderstand",
    "ForgeError",
    "GuardRejected",
    "InvalidRequest",
    "LearnRefused",
    "Message",
    "Method",
    "MethodError",
    "NotFound",
    "Object",
    "Reply",
    "Runtime",
    "SandboxError",
    "SearchHit",
    "StoreConflict",
    "Unavailable",
    "__version__",
    "set_log_level",
]
