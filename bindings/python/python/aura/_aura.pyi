"""Type stubs for the extension module ``aura._aura`` (re-exported by ``aura``)."""

from __future__ import annotations

from datetime import datetime
from os import PathLike
from typing import Any, Awaitable, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

from typing_extensions import final

__version__: str
__all__ = [
    "Runtime",
    "Object",
    "Message",
    "Method",
    "AuditEvent",
    "SearchHit",
    "Reply",
    "__version__",
    "set_log_level",
    "_log_selftest",
    "LOG_QUEUE_CAPACITY",
]

LOG_QUEUE_CAPACITY: int
"""How many log records wait for Python at most; more are dropped and counted."""

def set_log_level(level: Union[int, str, None] = None) -> None:
    """Sets the ``aura`` logger's level when given, then re-reads AURA's log filter.

    AURA's Rust events reach :mod:`logging` as ``aura.<target>`` (``aura.Orchestrator``,
    ``aura.Store``, …); events below the most verbose level of ``aura`` and every
    ``aura.*`` logger are dropped before they cost anything. That filter is read on
    ``import aura``, on every ``Runtime(...)`` and here: call this after making a logger
    more verbose through :mod:`logging` directly.
    """

def _log_selftest(count: int, threads: int = 1, level: str = "INFO") -> None:
    """Test hook: Rust threads emit ``count`` events each on ``aura.selftest`` while this holds the GIL."""

_JSON = Any
_ObjectRef = Union["Object", str]
_ModelCallable = Callable[[Dict[str, Any]], str]

@final
class Runtime:
    """AURA's object machine. Settings not passed come from the environment and ``.env``."""

    def __new__(
        cls,
        *,
        data_dir: Optional[Union[str, PathLike[str]]] = None,
        store_path: Optional[Union[str, PathLike[str]]] = None,
        sandbox: Optional[Literal["jail", "docker"]] = None,
        model: Union[Literal["local"], str, None, _ModelCallable] = ...,  # default "local"
        models: Optional[Mapping[str, str]] = None,
        cascade_mode: Optional[Literal["full", "single"]] = None,
        learn_samples: Optional[int] = None,
        learn_agreement: Optional[int] = None,
        root: Optional[str] = None,
        forge: Optional[Literal["default", "local"]] = ...,  # default "default"
    ) -> Runtime: ...
    @property
    def root(self) -> Object: ...
    @property
    def model_backend(self) -> Optional[str]: ...
    @property
    def model_backends(self) -> Dict[str, str]: ...
    @property
    def backends(self) -> Dict[str, str]: ...
    def create(
        self,
        name: str,
        *,
        parents: Optional[Sequence[_ObjectRef]] = None,
        slots: Optional[Mapping[str, _JSON]] = None,
    ) -> Object: ...
    def get(self, name_or_id: str) -> Object: ...
    def objects(self, *, offset: int = 0, limit: int = 100) -> List[Object]: ...
    def search_memory(self, query: str, *, limit: int = 10) -> List[SearchHit]: ...
    def audit(
        self,
        *,
        kind: Optional[str] = None,
        object: Optional[_ObjectRef] = None,
        after: Optional[str] = None,
        limit: int = 100,
    ) -> List[AuditEvent]: ...
    def forge(
        self,
        persona: str,
        *,
        label: Optional[str] = None,
        steps: Optional[int] = None,
        promote: bool = True,
    ) -> Dict[str, Any]: ...
    def facets(self) -> List[Dict[str, Any]]: ...
    def serving(self) -> Dict[str, Optional[str]]: ...
    def health(self) -> Dict[str, Any]: ...
    def promote_facet(self, name: str) -> Dict[str, Any]: ...
    def rollback_facet(self, persona: str) -> Optional[Dict[str, Any]]: ...

@final
class Object:
    """A persistent object; ``obj.name(*args)`` sends the message ``name``."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def slots(self) -> Dict[str, _JSON]: ...
    @property
    def parents(self) -> List[Object]: ...
    def set_parents(self, parents: Sequence[_ObjectRef]) -> None: ...
    def __getitem__(self, slot: str, /) -> _JSON: ...
    def __setitem__(self, slot: str, value: _JSON, /) -> None: ...
    def __contains__(self, slot: str, /) -> bool: ...
    def get(self, slot: str, default: _JSON = None) -> _JSON: ...
    def update(self, slots: Mapping[str, _JSON]) -> None: ...
    def send(self, selector: str, *args: _JSON) -> _JSON: ...
    def send_async(self, selector: str, *args: _JSON) -> Awaitable[_JSON]: ...
    def tell(self, message: str) -> Reply: ...
    def tell_async(self, message: str) -> Awaitable[Reply]: ...
    def define(self, selector: str, source: str, *, doc: str = ...) -> Method: ...
    def methods(self) -> List[Method]: ...
    def responds_to(self, selector: str) -> bool: ...
    def selectors(
        self, *, own: bool = False, offset: int = 0, limit: Optional[int] = None
    ) -> List[Tuple[str, str]]: ...
    def versions(self, selector: str) -> List[Method]: ...
    def rollback(self, selector: str, version: int) -> Method: ...
    def delete(self) -> None: ...
    def __getattr__(self, selector: str) -> Message: ...

@final
class Message:
    """A message bound to its receiver; calling it sends it."""

    def __call__(self, *args: _JSON) -> _JSON: ...

@final
class Method:
    object_id: str
    selector: str
    version: int
    source: str
    tests: str
    doc: str
    provenance: Dict[str, Any]
    calls: Optional[List[str]]
    created_at: datetime

@final
class AuditEvent:
    id: str
    at: datetime
    kind: str
    object_id: Optional[str]
    payload: Any

@final
class SearchHit:
    id: str
    kind: str
    text: str
    score: float
    meta: Any

@final
class Reply:
    text: str
    value: _JSON
    refused: bool
    plan: Dict[str, Any]
    evidence: List[str]
