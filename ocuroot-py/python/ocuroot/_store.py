"""The store protocol and ``MemoryStore``, its reference implementation."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Literal, Optional, Protocol, Tuple, Union

from ._errors import ConflictError
from ._ocuroot import Op

__all__ = ["ABSENT", "Expect", "MemoryStore", "Op", "Store"]

ABSENT: Literal["absent"] = "absent"
"""``Op.expect`` for "the key must not exist"."""

Expect = Union[None, Literal["absent"], int]
"""What an :class:`Op` expects of its key before the batch: ``None``
(anything), :data:`ABSENT` (must not exist) or a version (must exist with
exactly that version)."""


class Store(Protocol):
    """What ``Workspace(store=...)`` accepts: any object with these three
    methods. They may be called from several threads at once.

    Keys are ref strings such as ``state/myrepo/-/release.ocu.star/@r1``
    (already validated: no ``..``, empty segments, backslashes or control
    characters). Versions are opaque integers in ``0..2**64`` that change
    whenever a key's value changes; the engine only compares them.
    """

    def get(self, key: str) -> Optional[Tuple[bytes, int]]:
        """The value at ``key`` and its version, or ``None`` when absent."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix`` (a plain string prefix; empty
        means all), sorted.

        Until 0.2 this method was called ``list``, which shadows the builtin
        inside the class (so ``list[str]`` annotations there fail under mypy);
        a store with ``list`` instead still works, with a
        ``DeprecationWarning``, for a while."""
        ...

    def commit(self, ops: list[Op]) -> None:
        """Apply every op or none of them.

        Each op's ``expect`` is checked in order, against the store as left
        by the ops before it in the batch (so a put with ``expect="absent"``
        followed by a check of the same key sees the put). When one fails,
        write nothing and raise :class:`ocuroot.ConflictError`: the engine
        retries its transaction. Deleting an absent key is not an error.
        """
        ...


class MemoryStore:
    """A thread-safe, dict-backed :class:`Store`: the reference
    implementation of the protocol, and a store for tests and one-off runs
    that should leave nothing on disk.

    Versions count writes: every put gets a version never used before in
    this store. Besides the protocol, ``len(store)``, ``key in store``,
    iteration and :meth:`items` show what is stored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes, int]] = {}
        self._last_version = 0

    def get(self, key: str) -> Optional[Tuple[bytes, int]]:
        with self._lock:
            return self._data.get(key)

    def commit(self, ops: Sequence[Op]) -> None:
        with self._lock:
            # The version each key has as the next op sees it (None: absent),
            # and what the batch writes.
            seen: dict[str, Optional[int]] = {}
            writes: dict[str, Optional[tuple[bytes, int]]] = {}
            version = self._last_version
            for op in ops:
                now = seen[op.key] if op.key in seen else self._version(op.key)
                if not _met(op.expect, now):
                    raise ConflictError(
                        f"conflict on {op.key}: expected {_expected(op.expect)}, "
                        f"found {_found(now)}"
                    )
                if op.kind == "put":
                    if op.value is None:
                        raise ValueError(f"a put without a value: {op!r}")
                    version += 1
                    seen[op.key] = version
                    writes[op.key] = (op.value, version)
                elif op.kind == "delete":
                    seen[op.key] = None
                    writes[op.key] = None
            for key, entry in writes.items():
                if entry is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = entry
            self._last_version = version

    def items(self) -> list[tuple[str, bytes]]:
        """Every key and its value, sorted by key."""
        with self._lock:
            return sorted((k, v) for k, (v, _) in self._data.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys(""))

    def _version(self, key: str) -> Optional[int]:
        entry = self._data.get(key)
        return None if entry is None else entry[1]

    def keys(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._data if k.startswith(prefix))


def _met(expect: Expect, current: Optional[int]) -> bool:
    if expect is None:
        return True
    if expect == ABSENT:
        return current is None
    return current == expect


def _expected(expect: Expect) -> str:
    if expect is None:
        return "anything"
    if expect == ABSENT:
        return "no value"
    return f"version {expect}"


def _found(current: Optional[int]) -> str:
    return "nothing" if current is None else f"version {current}"
