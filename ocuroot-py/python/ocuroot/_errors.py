"""The exception tree: ``OcurootError`` and one subclass per kind of failure.

Every error the engine reports is raised as the subclass of its kind, and
this module's table is the only place kinds map to classes (the native
module calls :func:`_from_native`).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
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
    "InternalError",
]


class OcurootError(Exception):
    """Base class of every error raised by ocuroot.

    Attributes:
        kind: a short name of the kind of failure (``"eval"``,
            ``"conflict"``...), the same in the CLI's JSON and the C ABI.
        message: the full message (``str(error)``); for evaluation errors it
            includes the Starlark traceback and the source line.
        file, line, column: where in a source file the error happened (1-based
            line and column), or ``None``.
        stack: the Starlark call stack, one frame per line, or ``None``.
    """

    kind: str = "error"

    def __init__(
        self,
        message: str = "",
        *,
        kind: Optional[str] = None,
        file: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
        stack: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.stack = stack

    @property
    def location(self) -> Optional[str]:
        """``file:line:column``, or ``None`` when the error has no location."""
        if self.file is None:
            return None
        return f"{self.file}:{self.line}:{self.column}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword attributes through pickling (multiprocessing).
        return (
            _rebuild,
            (
                type(self),
                self.message,
                {
                    "kind": self.kind,
                    "file": self.file,
                    "line": self.line,
                    "column": self.column,
                    "stack": self.stack,
                },
            ),
        )


def _rebuild(cls: type[OcurootError], message: str, attrs: dict[str, Any]) -> OcurootError:
    return cls(message, **attrs)


class InvalidRefError(OcurootError):
    """A ref or glob could not be parsed, or names something outside a store."""

    kind = "invalid_ref"


class NotFoundError(OcurootError):
    """A document, release or file that was asked for does not exist."""

    kind = "not_found"


class ConflictError(OcurootError):
    """An optimistic-concurrency check failed: someone else wrote first.

    A store raises it from ``commit`` when an op's expectation does not hold;
    the engine then retries its transaction.
    """

    kind = "conflict"


class EvalError(OcurootError):
    """A Starlark file failed to parse or evaluate (see ``file``, ``line``,
    ``column`` and ``stack``)."""

    kind = "eval"


class ValidationError(OcurootError):
    """A file evaluated, but what it declares is not valid."""

    kind = "validation"


class InvalidInputError(OcurootError):
    """A value given by the caller is invalid."""

    kind = "invalid_input"


class AlreadyReleasedError(InvalidInputError):
    """``release_new`` at a commit that has a release of the package already
    (``force=True`` makes another). An :class:`InvalidInputError`, as it was
    before it had a class of its own."""

    kind = "already_released"


class NothingToRetryError(InvalidInputError):
    """``release_retry`` found no failed work (none failed, or another agent
    retried it first), or ``release_takeover`` no running run. An
    :class:`InvalidInputError`, as it was before it had a class of its own."""

    kind = "nothing_to_retry"


class OcurootIOError(OcurootError):
    """Reading or writing the filesystem failed."""

    kind = "io"


class GitError(OcurootError):
    """A git operation failed."""

    kind = "git"


class StoreError(OcurootError):
    """The state store failed or is unusable (including an exception raised
    by a Python store's method, whose message it carries)."""

    kind = "store"


class HostError(OcurootError):
    """The host (shell runner, HTTP, a callback) reported a failure."""

    kind = "host"


class ConfigError(OcurootError):
    """The repository configuration is missing or wrong."""

    kind = "config"


class InternalError(OcurootError):
    """A bug in ocuroot: an invariant did not hold."""

    kind = "internal"


_BY_KIND: dict[str, type[OcurootError]] = {
    cls.kind: cls
    for cls in (
        InvalidRefError,
        NotFoundError,
        ConflictError,
        EvalError,
        ValidationError,
        InvalidInputError,
        OcurootIOError,
        GitError,
        StoreError,
        HostError,
        ConfigError,
        AlreadyReleasedError,
        NothingToRetryError,
        InternalError,
    )
}


def _from_native(
    kind: str,
    message: str,
    *,
    file: Optional[str] = None,
    line: Optional[int] = None,
    column: Optional[int] = None,
    stack: Optional[str] = None,
) -> OcurootError:
    """The exception for an engine error of ``kind`` (called by the native
    module); an unknown kind gets the base class."""
    cls = _BY_KIND.get(kind, OcurootError)
    return cls(message, kind=kind, file=file, line=line, column=column, stack=stack)
