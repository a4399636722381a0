"""The exceptions AURA raises.

Every one is an :class:`AuraError`; where a built-in exception means the same thing the
class inherits it too (``NotFound`` is a ``LookupError``, ``DoesNotUnderstand`` an
``AttributeError``, ``InvalidRequest`` a ``ValueError``, ``Unavailable`` a
``ConnectionError``), so ordinary ``except`` clauses keep working. The details of each
failure are attributes of the exception.
"""

from __future__ import annotations

from typing import Any


class AuraError(Exception):
    """Something AURA could not do. ``str(e)`` says what went wrong; ``code`` is the
    same stable code the gateway's error bodies carry (``not_found``, ``refused``, …)."""

    code: str = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in details.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message


class NotFound(AuraError, LookupError):
    """No object, method or record has that id or name (``kind``, ``id``)."""


class InvalidRequest(AuraError, ValueError):
    """The request is malformed (a bad selector, a parent cycle, bad arguments)."""


class StoreConflict(AuraError):
    """A write lost a race (a stale revision) or a unique name is taken; nothing changed."""


class DoesNotUnderstand(AuraError, AttributeError):
    """No object on the delegation chain has the method, and none could be learned
    (``object``, ``selector``, ``chain``)."""


class GuardRejected(AuraError):
    """The guard refused a method's source (``selector``; ``violations``: a list of
    ``{"rule", "line", "col", "message"}`` dicts). Nothing was stored."""


class LearnRefused(AuraError):
    """The learn cycle gave up (``selector``, ``attempts``; ``failures``: one
    ``{"stage", "rules", "message"}`` dict per attempt). Only the audit trail changed."""


class MethodError(AuraError):
    """The method ran and raised (``selector``, ``exception_type``,
    ``exception_message``, ``guest_traceback``)."""


class SandboxError(AuraError):
    """The sandbox stopped the method at a limit (``selector``; ``reason``: ``timeout``,
    ``memory``, ``output_limit`` or ``killed``; ``detail``)."""


class Unavailable(AuraError, ConnectionError):
    """A backend (``port``: ``store``, ``sandbox``, ``model`` or ``forge``) cannot be reached."""


class ForgeError(AuraError):
    """A forge run or promotion did not go through (``reason``: ``cancelled``,
    ``not_promoted`` or ``failed``); nothing was registered or promoted."""


__all__ = [
    "AuraError",
    "DoesNotUnderstand",
    "ForgeError",
    "GuardRejected",
    "InvalidRequest",
    "LearnRefused",
    "MethodError",
    "NotFound",
    "SandboxError",
    "StoreConflict",
    "Unavailable",
]
