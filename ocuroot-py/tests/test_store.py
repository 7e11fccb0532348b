"""Python stores: the MemoryStore reference implementation of the protocol,
a Workspace keeping everything in one, and what happens when a store
misbehaves."""

from __future__ import annotations

import builtins
import json
import threading
from pathlib import Path
from typing import Optional

import pytest

import ocuroot
from ocuroot import ABSENT, Op

from conftest import Recorder, make_repo

PKG = "quickstart/-/release.ocu.star"


# The protocol, on MemoryStore.


def test_put_get_and_versions() -> None:
    store = ocuroot.MemoryStore()
    assert store.get("a/b") is None
    store.commit([Op("put", "a/b", value=b"1", expect=ABSENT)])
    value, v1 = store.get("a/b") or (b"", -1)
    assert value == b"1"
    store.commit([Op("put", "a/b", value=b"2", expect=v1)])
    value, v2 = store.get("a/b") or (b"", -1)
    assert value == b"2"
    assert v2 != v1
    # Writing the same bytes again is still a new version.
    store.commit([Op("put", "a/b", value=b"2")])
    assert (store.get("a/b") or (b"", v2))[1] != v2


def test_a_failed_expectation_writes_nothing() -> None:
    store = ocuroot.MemoryStore()
    store.commit([Op("put", "k/1", value=b"x", expect=ABSENT)])
    before = store.items()
    with pytest.raises(ocuroot.ConflictError, match="conflict on k/1: expected no value"):
        store.commit(
            [
                Op("put", "k/2", value=b"y", expect=ABSENT),
                Op("put", "k/1", value=b"z", expect=ABSENT),
            ]
        )
    _, version = store.get("k/1") or (b"", 0)
    with pytest.raises(ocuroot.ConflictError, match=f"expected version 999, found version {version}"):
        store.commit([Op("check", "k/1", expect=999)])
    # The check sees the delete before it.
    with pytest.raises(ocuroot.ConflictError, match=f"expected version {version}, found nothing"):
        store.commit([Op("delete", "k/1"), Op("check", "k/1", expect=version)])
    with pytest.raises(ocuroot.ConflictError, match="found nothing"):
        store.commit([Op("check", "k/3", expect=1)])
    assert store.items() == before


def test_expectations_see_earlier_ops_of_the_batch() -> None:
    store = ocuroot.MemoryStore()
    store.commit(
        [
            Op("put", "k/1", value=b"a", expect=ABSENT),
            Op("put", "k/1", value=b"b", expect=None),
            Op("delete", "k/2", expect=ABSENT),
            Op("put", "k/2", value=b"c", expect=ABSENT),
        ]
    )
    assert store.items() == [("k/1", b"b"), ("k/2", b"c")]
    _, version = store.get("k/1") or (b"", 0)
    store.commit([Op("delete", "k/1", expect=version), Op("check", "k/1", expect=ABSENT)])
    assert "k/1" not in store
    # Deleting an absent key is fine.
    store.commit([Op("delete", "k/1")])
    assert store.keys("") == ["k/2"]


def test_list_by_plain_string_prefix_sorted() -> None:
    store = ocuroot.MemoryStore()
    store.commit([Op("put", k, value=b"") for k in ["b/2", "a/1", "b/10", "bc/1", "b/1"]])
    assert store.keys("b/") == ["b/1", "b/10", "b/2"]
    assert store.keys("b") == ["b/1", "b/10", "b/2", "bc/1"]
    assert store.keys("") == ["a/1", "b/1", "b/10", "b/2", "bc/1"]
    assert list(store) == store.keys("")
    assert len(store) == 5


def test_memory_store_is_thread_safe() -> None:
    store = ocuroot.MemoryStore()
    store.commit([Op("put", "n", value=b"0")])

    def increment() -> None:
        for _ in range(200):
            while True:
                value, version = store.get("n") or (b"", 0)
                try:
                    store.commit([Op("put", "n", value=str(int(value) + 1).encode(), expect=version)])
                    break
                except ocuroot.ConflictError:
                    continue

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("n") is not None
    assert (store.get("n") or (b"", 0))[0] == b"800"


def test_op_objects() -> None:
    op = Op("put", "a/b", value=b"v", expect=ABSENT)
    assert (op.kind, op.key, op.value, op.expect) == ("put", "a/b", b"v", "absent")
    assert op == Op("put", "a/b", value=bytearray(b"v"), expect="absent")
    assert len({op, Op("put", "a/b", value=b"v", expect="absent"), Op("check", "a/b", expect=7)}) == 2
    assert repr(Op("check", "x", expect=7)) == "Op(kind='check', key='x', value=None, expect=7)"
    with pytest.raises(ValueError, match="kind must be"):
        Op("write", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a put needs a value"):
        Op("put", "a")
    with pytest.raises(ValueError, match="only a put may have one"):
        Op("delete", "a", value=b"x")
    with pytest.raises(TypeError, match="expect must be"):
        Op("check", "a", expect=-1)
    with pytest.raises(TypeError, match="expect must be"):
        Op("check", "a", expect="present")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be bytes"):
        Op("put", "a", value="text")  # type: ignore[arg-type]


# A Workspace on a Python store.


def test_a_dict_backed_store_holds_all_state_and_nothing_goes_to_disk(quickstart: Path) -> None:
    store = ocuroot.MemoryStore()
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=store)
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete"

    keys = store.keys("")
    assert keys, "the store is empty"
    assert all(k.startswith(("state/", "intent/")) for k in keys), keys
    assert "intent/@/environment/staging" in store
    assert "state/@/environment/production2" in store
    assert f"state/{PKG}/@r1/task/build/1/status/complete" in store
    # Values are JSON documents.
    for _, value in store.items():
        json.loads(value)
    # Nothing was written under the repository.
    assert not (quickstart / ".ocuroot").exists()
    assert ws.state_get(f"{PKG}/@/task/build#output/tag") == "myapp:1"

    # A second workspace on the same store sees the same state.
    again = ocuroot.Workspace(quickstart, shell=Recorder(), store=store)
    assert again.state_match(f"{PKG}/@r1/deploy/*") == [
        f"{PKG}/@r1/deploy/production",
        f"{PKG}/@r1/deploy/production2",
        f"{PKG}/@r1/deploy/staging",
    ]


class ConflictOnce(ocuroot.MemoryStore):
    """Raises ConflictError on the first ``commit`` (as if another agent
    wrote first), then behaves."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def commit(self, ops: list[Op]) -> None:  # type: ignore[override]
        if self.conflicts == 0:
            self.conflicts += 1
            raise ocuroot.ConflictError("someone else wrote first")
        super().commit(ops)


def test_a_conflict_raised_by_the_store_is_retried(quickstart: Path) -> None:
    store = ConflictOnce()
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=store)
    envs = ws.release_new("environments.ocu.star")
    assert isinstance(envs, ocuroot.NewReleaseEnvironments)
    assert store.conflicts == 1
    assert len(envs.environments) == 3
    assert "state/@/environment/staging" in store


class Broken(ocuroot.MemoryStore):
    def __init__(self, method: str, error: Optional[Exception] = None, result: object = None):
        super().__init__()
        self.method = method
        self.error = error
        self.result = result
        self.armed = False

    def _maybe(self, method: str) -> bool:
        if self.armed and method == self.method:
            if self.error is not None:
                raise self.error
            return True
        return False

    def get(self, key: str) -> Optional[tuple[bytes, int]]:
        if self._maybe("get"):
            return self.result  # type: ignore[return-value]
        return super().get(key)

    def commit(self, ops: list[Op]) -> None:  # type: ignore[override]
        self._maybe("commit")
        super().commit(ops)


@pytest.mark.parametrize(
    "store, message",
    [
        (Broken("get", RuntimeError("disk on fire")), "raised RuntimeError: disk on fire"),
        (Broken("commit", OSError(28, "No space left")), "raised OSError: [Errno 28] No space left"),
        (Broken("get", result=b"raw"), "returned bytes; expected None or a tuple"),
        (Broken("get", result=("x", 1)), "returned a value of type str; expected bytes"),
        (Broken("get", result=(b"x", -1)), "returned a version of type int (-1)"),
    ],
)
def test_a_failing_store_raises_store_error_with_the_python_message(
    quickstart: Path, store: Broken, message: str
) -> None:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=store)
    ws.release_new("environments.ocu.star")
    store.armed = True
    with pytest.raises(ocuroot.StoreError) as caught:
        ws.release_new("release.ocu.star")
    assert caught.value.kind == "store"
    assert message in str(caught.value)
    assert caught.value.message == str(caught.value)


def test_list_results_are_checked(quickstart: Path) -> None:
    class BadList(ocuroot.MemoryStore):
        def keys(self, prefix: str = "") -> list[str]:
            return ["elsewhere/x"]

    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=BadList())
    with pytest.raises(ocuroot.StoreError, match="does not start with the prefix"):
        ws.state_match("**")


def test_a_store_needs_the_three_methods(quickstart: Path) -> None:
    class NoCommit:
        def get(self, key: str) -> None:
            return None

        def keys(self, prefix: str) -> list[str]:
            return []

    with pytest.raises(TypeError, match="NoCommit has no callable `commit`"):
        ocuroot.Workspace(quickstart, store=NoCommit())  # type: ignore[arg-type]


class DictStore:
    """A store written the documented way, with ``list[str]`` annotations
    inside the class (checked by mypy --strict with the tests)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, int]] = {}
        self.version = 0

    def get(self, key: str) -> Optional[tuple[bytes, int]]:
        return self.data.get(key)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.data if k.startswith(prefix))

    def commit(self, ops: list[ocuroot.Op]) -> None:
        for op in ops:
            current = self.data.get(op.key)
            if op.expect == ocuroot.ABSENT and current is not None:
                raise ocuroot.ConflictError(f"{op.key} exists")
            if isinstance(op.expect, int) and (current is None or current[1] != op.expect):
                raise ocuroot.ConflictError(f"{op.key} changed")
        for op in ops:
            if op.kind == "put":
                assert op.value is not None
                self.version += 1
                self.data[op.key] = (op.value, self.version)
            elif op.kind == "delete":
                self.data.pop(op.key, None)


def test_a_store_written_the_documented_way_runs_a_release(quickstart: Path) -> None:
    store: ocuroot.Store = DictStore()
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=store)
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport) and report.status == "complete"
    assert ws.state_match("**/@r1")


def test_a_store_with_the_old_list_method_still_works_with_a_warning(quickstart: Path) -> None:
    class OldStore:
        def __init__(self) -> None:
            self.inner = DictStore()

        def get(self, key: str) -> Optional[tuple[bytes, int]]:
            return self.inner.get(key)

        # Inside the class, ``list`` is this method: the reason for the rename.
        def list(self, prefix: str) -> builtins.list[str]:
            return self.inner.keys(prefix)

        def commit(self, ops: builtins.list[ocuroot.Op]) -> None:
            self.inner.commit(ops)

    with pytest.warns(DeprecationWarning, match="the store method `list` is now `keys`"):
        ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=OldStore())  # type: ignore[arg-type]
    ws.release_new("environments.ocu.star")
    assert ws.state_match("@/environment/*")
