"""The native half of ``ocuroot`` (private: use the ``ocuroot`` package).

Methods return the engine's JSON forms as plain Python values; the
``ocuroot`` package turns them into typed objects.
"""

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Literal, final

__all__ = ["Workspace", "Op", "__version__"]

__version__: str

@final
class Op:
    """One operation of a batch given to a store's ``commit``."""

    def __new__(
        cls,
        kind: Literal["put", "delete", "check"],
        key: str,
        *,
        value: bytes | bytearray | None = None,
        expect: Literal["absent"] | int | None = None,
    ) -> Op: ...
    @property
    def kind(self) -> Literal["put", "delete", "check"]:
        """``"put"``, ``"delete"`` or ``"check"``."""
    @property
    def key(self) -> str:
        """The key."""
    @property
    def value(self) -> bytes | None:
        """The bytes to write (puts), else ``None``."""
    @property
    def expect(self) -> Literal["absent"] | int | None:
        """``None`` (anything), ``"absent"``, or the version the key must have."""
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Workspace:
    """An opened repository (see ``ocuroot.Workspace``)."""

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        shell: Callable[[str, str, str, dict[str, str]], object] | None = None,
        store: object | None = None,
        parallel: int | None = None,
        max_attempts: int | None = None,
        on_event: Callable[[dict[str, Any]], object] | None = None,
    ) -> Workspace: ...
    @property
    def root(self) -> Path:
        """The repository root."""
    @property
    def name(self) -> str:
        """The repository name used in refs."""
    @property
    def commit(self) -> str:
        """The commit work is done at."""
    def release_new(self, file: str | PathLike[str], force: bool = False) -> dict[str, Any]: ...
    def release_continue(self, release: str) -> dict[str, Any]: ...
    def release_retry(self, release: str) -> dict[str, Any]: ...
    def state_get(self, ref: str) -> Any: ...
    def state_match(self, *globs: str) -> list[str]: ...
    def state_set(self, ref: str, value: str) -> str: ...
    def state_delete(self, ref: str) -> str: ...
    def state_apply(self, ref: str) -> dict[str, Any]: ...
    def state_diff(self) -> list[dict[str, Any]]: ...
    def state_checkpoint(self) -> None: ...
    def work_continue(self, dryrun: bool = False) -> list[dict[str, Any]] | dict[str, Any]: ...
    def work_ops(self, dryrun: bool = False) -> list[dict[str, Any]] | dict[str, Any]: ...
    def work_any(self, dryrun: bool = False) -> list[dict[str, Any]] | dict[str, Any]: ...
    def work_any_comprehensive(self) -> dict[str, Any]: ...
    def lint(self, file: str | PathLike[str]) -> dict[str, Any]: ...
    def work_cascade(self, dryrun: bool = False) -> list[dict[str, Any]] | dict[str, Any]: ...
    def cascade(self) -> dict[str, Any]: ...
    def plan(self, format: str = "json") -> dict[str, Any] | str: ...
    def work_trigger(self, dryrun: bool = False) -> list[dict[str, Any]]: ...
