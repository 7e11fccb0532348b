"""The exception tree, and errors with their locations."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import ocuroot
from ocuroot._errors import _BY_KIND, _from_native

from conftest import Recorder, make_repo

KINDS = {
    "invalid_ref": ocuroot.InvalidRefError,
    "not_found": ocuroot.NotFoundError,
    "conflict": ocuroot.ConflictError,
    "eval": ocuroot.EvalError,
    "validation": ocuroot.ValidationError,
    "invalid_input": ocuroot.InvalidInputError,
    "io": ocuroot.OcurootIOError,
    "git": ocuroot.GitError,
    "store": ocuroot.StoreError,
    "host": ocuroot.HostError,
    "config": ocuroot.ConfigError,
    "already_released": ocuroot.AlreadyReleasedError,
    "nothing_to_retry": ocuroot.NothingToRetryError,
    "internal": ocuroot.InternalError,
}


def test_one_class_per_kind_under_ocuroot_error() -> None:
    assert _BY_KIND == KINDS
    for kind, cls in KINDS.items():
        assert issubclass(cls, ocuroot.OcurootError)
        assert issubclass(cls, Exception)
        assert cls.kind == kind
        e = _from_native(kind, "boom")
        assert type(e) is cls
        assert (e.kind, e.message, str(e), e.file, e.line, e.column, e.stack) == (
            kind,
            "boom",
            "boom",
            None,
            None,
            None,
            None,
        )
    unknown = _from_native("brand_new", "?")
    assert type(unknown) is ocuroot.OcurootError
    assert unknown.kind == "brand_new"


def test_errors_pickle_with_their_attributes() -> None:
    e = _from_native("eval", "bad", file="a.star", line=3, column=7, stack="f (a.star:3:7)")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ocuroot.EvalError
    assert (back.message, back.file, back.line, back.column, back.stack) == (
        "bad",
        "a.star",
        3,
        7,
        "f (a.star:3:7)",
    )
    assert back.location == "a.star:3:7"


BROKEN = """ocuroot("0.3.0")

def helper(reason):
    fail("cannot build: " + reason)

def build():
    return done()

helper("no compiler")
task(build, name="build")
"""


def test_an_evaluation_error_carries_file_line_and_column(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "pkg/release.ocu.star": BROKEN})
    ws = ocuroot.Workspace(repo, shell=Recorder(), store=ocuroot.MemoryStore())
    for call in (lambda: ws.release_new("pkg/release.ocu.star"), lambda: ws.release_lint("pkg/release.ocu.star")):
        with pytest.raises(ocuroot.EvalError) as caught:
            call()
        e = caught.value
        assert e.kind == "eval"
        assert "cannot build: no compiler" in e.message
        assert (e.file, e.line, e.column) == ("pkg/release.ocu.star", 4, 5)
        assert e.location == "pkg/release.ocu.star:4:5"
        assert e.stack is not None and "helper" in e.stack
    # Nothing was created.
    assert ws.state_match("**") == []


def test_a_syntax_error_carries_its_location(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": "def build(:\n    pass\n"},
    )
    ws = ocuroot.Workspace(repo, shell=Recorder(), store=ocuroot.MemoryStore())
    with pytest.raises(ocuroot.EvalError) as caught:
        ws.release_lint("release.ocu.star")
    assert caught.value.file == "release.ocu.star"
    assert caught.value.line == 1


def one_task(tmp_path: Path) -> tuple[Path, ocuroot.Workspace]:
    """A repository with a one-task package, and a workspace on it."""
    repo = make_repo(
        tmp_path / "r",
        {
            "repo.ocu.star": 'repo_alias("t")\n',
            "release.ocu.star": "def build():\n    return done()\n\ntask(build, name='build')\n",
        },
    )
    return repo, ocuroot.Workspace(repo, shell=Recorder(), store=ocuroot.MemoryStore())


def test_errors_of_other_kinds(tmp_path: Path) -> None:
    repo, ws = one_task(tmp_path)
    with pytest.raises(ocuroot.NotFoundError) as not_found:
        ws.release_continue("release.ocu.star/@r7")
    assert not_found.value.file is None
    with pytest.raises(ocuroot.InvalidRefError):
        ws.state_get("a/../b")
    with pytest.raises(ocuroot.OcurootError) as refused:
        ws.release_new("release.ocu.star")
        ws.release_new("release.ocu.star")
    assert "@r1" in refused.value.message
    with pytest.raises(ocuroot.OcurootError):
        ws.release_new("missing.ocu.star")
    with pytest.raises(ocuroot.OcurootError):
        ocuroot.Workspace(tmp_path / "does-not-exist")
    with pytest.raises(ValueError, match="parallel must be 1 or more"):
        ocuroot.Workspace(repo, parallel=0)


def test_a_second_release_and_a_retry_of_nothing_have_classes_of_their_own(tmp_path: Path) -> None:
    _, ws = one_task(tmp_path)
    ws.release_new("release.ocu.star")
    with pytest.raises(ocuroot.AlreadyReleasedError) as again:
        ws.release_new("release.ocu.star")
    assert again.value.kind == "already_released"
    assert "There are already 1 releases" in again.value.message
    assert "--force" not in again.value.message
    # Code that caught InvalidInputError before still catches it.
    assert isinstance(again.value, ocuroot.InvalidInputError)
    forced = ws.release_new("release.ocu.star", force=True)
    assert isinstance(forced, ocuroot.ReleaseReport) and forced.release == "t/-/release.ocu.star/@r2"
    with pytest.raises(ocuroot.NothingToRetryError, match="no failed work to retry") as nothing:
        ws.release_retry("release.ocu.star/@r1")
    assert nothing.value.kind == "nothing_to_retry"
    assert isinstance(nothing.value, ocuroot.InvalidInputError)
