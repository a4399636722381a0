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
"""

from __future__ import annotations

from ._aura import (
    AuditEvent,
    Message,
    Method,
    Object,
    Reply,
    Runtime,
    SearchHit,
    __version__,
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
]
