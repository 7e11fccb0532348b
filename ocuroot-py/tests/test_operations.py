"""The operations the bindings share with Rust and the CLI: typed reads,
separate state and intent stores, push, and the former names."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import ocuroot
from conftest import Recorder, git

PKG = "quickstart/-/release.ocu.star"


def released(quickstart: Path, **kw: object) -> ocuroot.Workspace:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), **kw)  # type: ignore[arg-type]
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport) and report.status == "complete"
    return ws


def test_state_read_types_each_document(quickstart: Path) -> None:
    ws = released(quickstart, store=ocuroot.MemoryStore())
    build = ws.state_read(f"{PKG}/@/task/build")
    assert build is not None and build.kind == "work"
    assert build.ref == f"{PKG}/@r1/task/build"
    assert isinstance(build.document, ocuroot.WorkDoc)
    assert build.outputs == {"build_number": 1, "tag": "myapp:1"}
    assert build.document.run_type == "task"
    run = ws.state_read(build.document.run_ref)
    assert run is not None and isinstance(run.document, ocuroot.RunDoc)
    assert run.document.attempt == 1 and run.document.error is None
    assert run.document.to_dict()["type"] == "task"
    assert ocuroot.RunDoc.from_dict(run.document.to_dict()) == run.document
    release = ws.state_read(f"{PKG}/@r1")
    assert release is not None and isinstance(release.document, ocuroot.ReleaseDoc)
    assert release.document.commit == ws.commit
    env = ws.state_read("@/environment/staging")
    assert env is not None and env.document == ocuroot.Environment("staging", {"type": "staging"})
    ws.state_set("@/custom/flag", "on")
    ws.state_apply("@/custom/flag")
    custom = ws.state_read("@/custom/flag")
    assert custom is not None and (custom.kind, custom.document) == ("custom", "on")
    assert ws.state_read("@/custom/none") is None


def test_a_failed_run_reads_its_error_typed(tmp_path: Path) -> None:
    from conftest import make_repo

    repo = make_repo(
        tmp_path / "r",
        {
            "repo.ocu.star": 'ocuroot("0.3.0")\nrepo_alias("r")\n',
            "p.ocu.star": 'ocuroot("0.3.0")\n'
            "def b():\n    host.shell(\"exit 3\")\n    return done()\n"
            'task(b, name="b")\n',
        },
    )
    ws = ocuroot.Workspace(repo, store=ocuroot.MemoryStore())
    ws.release_new("p.ocu.star")
    read = ws.state_read("r/-/p.ocu.star/@r1/task/b/1")
    assert read is not None and isinstance(read.document, ocuroot.RunDoc)
    error = read.document.error
    assert error is not None and "exit" in error.summary and "\n" not in error.summary


def test_intent_store_keeps_intent_apart(quickstart: Path) -> None:
    state, intent = ocuroot.MemoryStore(), ocuroot.MemoryStore()
    ws = released(quickstart, store=state, intent_store=intent)
    assert "@/environment/staging" in state and "@/environment/staging" in intent
    assert not [k for k in state if k.startswith(("state/", "intent/"))]
    ws.state_set("@/custom/approval", "yes")
    assert "@/custom/approval" in intent and ws.state_diff()[0].ref == "@/custom/approval"


def test_push_releases_what_changed(quickstart: Path) -> None:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore())
    plan = ws.push(dryrun=True)
    assert isinstance(plan, ocuroot.PushOutcome) and plan.dryrun
    assert sorted(p.package for p in plan.packages) == ["environments.ocu.star", "release.ocu.star"]
    assert all(p.release is None for p in plan.packages)
    done = ws.push()
    assert not done.failed and done.index is not None
    assert {p.package for p in done.packages} == {"environments.ocu.star", "release.ocu.star"}
    again = ws.push()
    assert again.packages == () and again.previous_commit == ws.commit


def test_push_refuses_uncommitted_changes(quickstart: Path) -> None:
    (quickstart / "new.txt").write_text("x")
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore())
    with pytest.raises(ocuroot.OcurootError, match="untracked|uncommitted"):
        ws.push()
    git(quickstart, "add", ".")


def test_push_intent_outside_an_intent_checkout_is_refused(quickstart: Path) -> None:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore())
    with pytest.raises(ocuroot.OcurootError):
        ws.push_intent()


def test_former_names_still_work_and_warn(quickstart: Path) -> None:
    with pytest.warns(DeprecationWarning, match="ReleaseReport"):
        assert ocuroot.Report is ocuroot.ReleaseReport
    with pytest.warns(DeprecationWarning, match="WorkReport"):
        assert ocuroot.WorkItem is ocuroot.WorkReport
    with pytest.warns(DeprecationWarning, match="ShellOutput"):
        assert ocuroot.ShellResult is ocuroot.ShellOutput
    with pytest.warns(DeprecationWarning, match="NewReleaseEnvironments"):
        assert ocuroot.EnvironmentsReport is ocuroot.NewReleaseEnvironments
    with pytest.warns(DeprecationWarning, match="NewReleaseEmpty"):
        assert ocuroot.EmptyReport is ocuroot.NewReleaseEmpty
    with pytest.raises(AttributeError):
        ocuroot.NoSuchThing  # noqa: B018
    seen: list[ocuroot.Event] = []
    with pytest.warns(DeprecationWarning, match="events="):
        ws = ocuroot.Workspace(
            quickstart, shell=Recorder(), store=ocuroot.MemoryStore(), on_event=seen.append
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ws.release_new("environments.ocu.star")
    with pytest.warns(DeprecationWarning, match="release_lint"):
        assert ws.lint("release.ocu.star").package is not None
    with pytest.raises(TypeError, match="not both"), pytest.warns(DeprecationWarning):
        ocuroot.Workspace(quickstart, events=seen.append, on_event=seen.append)


def test_state_match_no_links_and_work_trigger_intent(quickstart: Path) -> None:
    ws = released(quickstart, store=ocuroot.MemoryStore())
    linked = ws.state_match(f"{PKG}/@/task/build")
    assert linked == [f"{PKG}/@/task/build"]
    assert ws.state_match_no_links(f"{PKG}/@/task/build") == []
    assert f"{PKG}/@r1/task/build" in ws.state_match_no_links(f"{PKG}/@r1/task/*")
    planned = ws.work_trigger_intent(dryrun=True)
    assert [t.status for t in planned] == ["planned"] and planned[0].repo == "quickstart"
