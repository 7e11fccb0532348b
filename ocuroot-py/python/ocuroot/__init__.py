"""Ocuroot for Python: drive releases of ``*.ocu.star`` package files with
your own shell runner and state store.

>>> import ocuroot
>>> ws = ocuroot.Workspace("path/to/repo", store=ocuroot.MemoryStore())  # doctest: +SKIP
>>> report = ws.release_new("release.ocu.star")                          # doctest: +SKIP
>>> report.status                                                        # doctest: +SKIP
'complete'

:class:`Workspace` is the entry point. Results are frozen dataclasses
(:class:`ReleaseReport`, :class:`NewReleaseEnvironments`, :class:`WorkOutcome`,
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
from ._docs import ReleaseDoc, RunDoc, RunError, RunType, StateDoc, StateDocKind, StateRead, WorkDoc
from ._ocuroot import __version__
from ._push import IntentPush, PushOutcome, Pushed
from ._store import ABSENT, Expect, MemoryStore, Op, Store
from ._types import (
    Agent,
    NewReleaseEmpty,
    Environment,
    NewReleaseEnvironments,
    Event,
    FoundDeploy,
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
    ReleaseReport,
    RunStatus,
    ShellOutput,
    Todo,
    TodoKind,
    Triggered,
    TriggerStatus,
    WorkReport,
    WorkOutcome,
    WorkState,
)
from ._workspace import EventCallback, ShellCallback, Workspace

__all__ = [
    "__version__",
    # The entry point and its callbacks.
    "Workspace",
    "ShellCallback",
    "ShellOutput",
    "EventCallback",
    "Event",
    "LogLine",
    "Agent",
    # Stores.
    "Store",
    "MemoryStore",
    "Op",
    "Expect",
    "ABSENT",
    # Results.
    "NewRelease",
    "ReleaseReport",
    "WorkReport",
    "NewReleaseEnvironments",
    "NewReleaseEmpty",
    "Environment",
    "IntentChange",
    "FoundDeploy",
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
    "PushOutcome",
    "Pushed",
    "IntentPush",
    # Typed state documents (state_read).
    "StateRead",
    "StateDoc",
    "StateDocKind",
    "ReleaseDoc",
    "RunDoc",
    "RunError",
    "RunType",
    "WorkDoc",
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


# The names of results before they took the Rust types' names (0.1): still
# importable, with a DeprecationWarning; they will be removed in 0.3.
_RENAMED = {
    "Report": "ReleaseReport",
    "WorkItem": "WorkReport",
    "ShellResult": "ShellOutput",
    "EnvironmentsReport": "NewReleaseEnvironments",
    "EmptyReport": "NewReleaseEmpty",
}


def __getattr__(name: str) -> object:
    new = _RENAMED.get(name)
    if new is None:
        raise AttributeError(f"module 'ocuroot' has no attribute {name!r}")
    import warnings

    warnings.warn(
        f"ocuroot.{name} is now ocuroot.{new}; the old name will be removed in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
