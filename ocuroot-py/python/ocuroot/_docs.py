"""Typed state documents: what :meth:`Workspace.state_read` returns.

Each class mirrors the Rust type of the same name in ``ocuroot_core::model``
and is built from the document as it is stored; ``to_dict()`` gives that
form back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Tuple, Union

from ._types import Environment, _Model

__all__ = [
    "ReleaseDoc",
    "RunError",
    "RunDoc",
    "WorkDoc",
    "StateDoc",
    "StateRead",
    "StateDocKind",
    "RunType",
]

RunType = Literal["task", "up", "down"]
"""What a run executes: a task, a deploy's ``up`` or its ``down``."""

StateDocKind = Literal["release", "run", "work", "environment", "custom", "other"]
"""Which document a ref names (see :class:`StateRead`)."""


@dataclass(frozen=True)
class ReleaseDoc(_Model):
    """A release, ``<pkg>/@r<N>``: the commit and the package as evaluated."""

    commit: str
    package: Mapping[str, Any]
    """The evaluated package (its phases and work), in its JSON form."""
    created_at: Optional[str] = None
    """When the release was created (RFC 3339)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReleaseDoc:
        return cls(commit=d["commit"], package=d["package"], created_at=d.get("created_at"))


@dataclass(frozen=True)
class RunError(_Model):
    """Why a run failed."""

    message: str
    """The whole message (secrets masked), with Starlark's rendering."""
    summary: str = ""
    """What went wrong, in one line (``./deploy.sh prod: exit status 1``)."""
    location: Optional[Mapping[str, Any]] = None
    """Where: ``{"file", "line", "column"}``, if known."""
    stack: Optional[str] = None
    """The Starlark call stack, one frame per line."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunError:
        return cls(
            message=d["message"],
            summary=d.get("summary", ""),
            location=d.get("location"),
            stack=d.get("stack"),
        )


@dataclass(frozen=True)
class RunDoc(_Model):
    """One run of a task or deploy, ``<rel>/task/<name>/<n>`` or
    ``<rel>/deploy/<env>/<n>``."""

    run_type: RunType
    """``task``, ``up`` or ``down`` (``type`` in the stored form)."""
    release: str
    functions: Tuple[Mapping[str, Any], ...]
    """The chain of functions (``fn``, ``inputs``, ``resolved``); the last is
    the one run or resumed."""
    output: Any = None
    """The outputs of ``done()``, once the run completed."""
    error: Optional[RunError] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    attempt: int = 0
    """How many times an agent started this run."""
    watch_files: Tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunDoc:
        error = d.get("error")
        return cls(
            run_type=d["type"],
            release=d["release"],
            functions=tuple(d.get("functions", ())),
            output=d.get("output"),
            error=None if error is None else RunError.from_dict(error),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            attempt=d.get("attempt", 0),
            watch_files=tuple(d.get("watch_files", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["type"] = d.pop("run_type")
        return d


@dataclass(frozen=True)
class WorkDoc(_Model):
    """The outcome of a task or deploy, ``<rel>/task/<name>`` or
    ``<rel>/deploy/<env>`` (what ``<pkg>/@/deploy/<env>`` links to): the run
    that produced it, its resolved inputs and its outputs."""

    run_ref: str
    run_type: RunType
    """``task``, ``up`` or ``down`` (``type`` in the stored form)."""
    release: str
    input: Mapping[str, Any] = field(default_factory=dict)
    output: Any = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkDoc:
        return cls(
            run_ref=d["run_ref"],
            run_type=d["type"],
            release=d["release"],
            input=dict(d.get("input", {})),
            output=d.get("output"),
        )

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["type"] = d.pop("run_type")
        return d


StateDoc = Union[ReleaseDoc, RunDoc, WorkDoc, Environment, Any]
"""A typed document: a :class:`ReleaseDoc`, :class:`RunDoc`,
:class:`WorkDoc` or :class:`Environment`, else (custom state, bookkeeping, a
``#fragment``) the plain JSON value."""

_KINDS: Mapping[str, Any] = {
    "release": ReleaseDoc,
    "run": RunDoc,
    "work": WorkDoc,
    "environment": Environment,
}


@dataclass(frozen=True)
class StateRead(_Model):
    """What :meth:`Workspace.state_read` returns: the ref read (links
    followed), which kind of document it names, and the document."""

    ref: str
    kind: StateDocKind
    document: StateDoc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StateRead:
        kind = d["kind"]
        parse = _KINDS.get(kind)
        document = d["document"] if parse is None else parse.from_dict(d["document"])
        return cls(ref=d["ref"], kind=kind, document=document)

    @property
    def outputs(self) -> Any:
        """The outputs of a work outcome or a finished run, else ``None``."""
        if isinstance(self.document, (WorkDoc, RunDoc)):
            return self.document.output
        return None


