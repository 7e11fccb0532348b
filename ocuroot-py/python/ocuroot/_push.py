"""What :meth:`Workspace.push` and :meth:`Workspace.push_intent` return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ._types import NewRelease, WorkOutcome, _Model, _new_release

__all__ = ["Pushed", "PushOutcome", "IntentPush"]


@dataclass(frozen=True)
class Pushed(_Model):
    """One package a push released (or, with ``dryrun``, would release)."""

    package: str
    """The package file, relative to the repository root."""
    reason: str
    """Why it is released (its file changed, a watched file changed...)."""
    release: Optional[NewRelease] = None
    """What releasing it did (``None`` with ``dryrun``)."""
    error: Optional[str] = None
    """Why releasing it failed, if it did."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pushed:
        release = d.get("release")
        return cls(
            package=d["package"],
            reason=d["reason"],
            release=None if release is None else _new_release(release),
            error=d.get("error"),
        )


@dataclass(frozen=True)
class PushOutcome(_Model):
    """What a push from the repository did."""

    commit: str
    """The commit pushed."""
    previous_commit: Optional[str]
    """The commit of the push before, if one was recorded."""
    packages: Tuple[Pushed, ...]
    cascade: WorkOutcome
    """What following the releases' changes did."""
    index: Optional[str] = None
    """The ref of the push record written (``None`` with ``dryrun``)."""
    dryrun: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PushOutcome:
        return cls(
            commit=d["commit"],
            previous_commit=d.get("previous_commit"),
            packages=tuple(Pushed.from_dict(p) for p in d.get("packages", ())),
            cascade=WorkOutcome.from_dict(d["cascade"]),
            index=d.get("index"),
            dryrun=d.get("dryrun", False),
        )

    @property
    def failed(self) -> bool:
        """Whether a package or the cascade failed."""
        return (
            self.cascade.failed
            or any(p.error is not None for p in self.packages)
            or any(p.release is not None and p.release.failed for p in self.packages)
        )


@dataclass(frozen=True)
class IntentPush(_Model):
    """What a push in a checkout of an intent branch did."""

    commit: str
    """The commit of the intent branch applied: its tip on the remote."""
    previous_commit: Optional[str]
    refs: Tuple[str, ...]
    """The intent refs applied."""
    outcome: WorkOutcome
    dryrun: bool = False
    checkout_commit: Optional[str] = None
    """The checkout's own commit, when it is not ``commit`` (behind the remote)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IntentPush:
        return cls(
            commit=d["commit"],
            checkout_commit=d.get("checkout_commit"),
            previous_commit=d.get("previous_commit"),
            refs=tuple(d.get("refs", ())),
            outcome=WorkOutcome.from_dict(d["outcome"]),
            dryrun=d.get("dryrun", False),
        )
