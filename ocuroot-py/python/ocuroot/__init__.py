"""Ocuroot for Python: drive releases of ``*.ocu.star`` package files with
your own shell runner and state store.

>>> import ocuroot
>>> ws = ocuroot.Workspace("path/to/repo", store=ocuroot.MemoryStore())  # doctest: +SKIP
>>> report = ws.release_new("release.ocu.star")                          # doctest: +SKIP
>>> report.status                                                        # doctest: +SKIP
'complete'

:class:`Workspace` is the entry point. Results are frozen dataclasses
(:class:`Report`, :class:`EnvironmentsReport`, :class:`WorkOutcome`,
:class:`Plan`, :class:`Lint`...) with ``to_dict()``; errors are
:class:`OcurootError` subclasses. The engine is the Rust library
``ocuroot-core``, reached through the private native module
``ocuroot._ocuroot``.
"""

from __future__ import annotations

from ._errors import (
    AlreadyReleasedError,
    ConfigError,
    ConflictError,
    EvalError,
    GitError,
    HostError,
    InternalError,
    InvalidInputError,
    InvalidRefError,
    NotFoundError,
    NothingToRetryError,
    OcurootError,
    OcurootIOError,
    StoreError,
    ValidationError,
)
from ._ocuroot import __version__
from ._store import ABSENT, Expect, MemoryStore, Op, Store
from ._types import (
    EmptyReport,
    Environment,
    EnvironmentsReport,
    Event,
    GraphNode,
    IntentChange,
    Lint,
    LogLine,
    NewRelease,
    OpReport,
    Package,
    Phase,
    Plan,
    PlannedWork,
    ReleaseStatus,
    Report,
    RunStatus,
    ShellResult,
    Todo,
    TodoKind,
    Triggered,
    TriggerStatus,
    WorkItem,
    WorkOutcome,
    WorkState,
)
from ._workspace import EventCallback, ShellCallback, Workspace

__all__ = [
    "__version__",
    # The entry point and its callbacks.
    "Workspace",
    "ShellCallback",
    "ShellResult",
    "EventCallback",
    "Event",
    "LogLine",
    # Stores.
    "Store",
    "MemoryStore",
    "Op",
    "Expect",
    "ABSENT",
    # Results.
    "NewRelease",
    "Report",
    "WorkItem",
    "EnvironmentsReport",
    "EmptyReport",
    "Environment",
    "IntentChange",
    "WorkOutcome",
    "OpReport",
    "Todo",
    "Plan",
    "GraphNode",
    "Triggered",
    "Lint",
    "Package",
    "Phase",
    "PlannedWork",
    "ReleaseStatus",
    "WorkState",
    "RunStatus",
    "TodoKind",
    "TriggerStatus",
    # Errors.
    "OcurootError",
    "InvalidRefError",
    "NotFoundError",
    "ConflictError",
    "EvalError",
    "ValidationError",
    "InvalidInputError",
    "OcurootIOError",
    "GitError",
    "StoreError",
    "HostError",
    "ConfigError",
    "AlreadyReleasedError",
    "NothingToRetryError",
    "InternalError",
]
