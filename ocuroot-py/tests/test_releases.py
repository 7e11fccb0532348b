"""Releases that block, fail and are retried; lint; events; the typed
results and their dict forms."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import ocuroot

from conftest import Recorder, git, make_repo

APP = """ocuroot("0.3.0")

def build(version):
    host.shell("build " + version)
    return done(outputs={"image": "app:" + version})

task(build, name="build", inputs={"version": input(ref="t/-/lib.ocu.star/@/task/publish#output/version")})
"""

LIB = """ocuroot("0.3.0")

def publish():
    host.shell("publish")
    return done(outputs={"version": "1.2.3"})

task(publish, name="publish")
"""


def test_a_blocked_release_continues_once_its_input_exists(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {"repo.ocu.star": 'repo_alias("t")\n', "app.ocu.star": APP, "lib.ocu.star": LIB},
    )
    shell = Recorder()
    ws = ocuroot.Workspace(repo, shell=shell, store=ocuroot.MemoryStore())

    blocked = ws.release_new("app.ocu.star")
    assert isinstance(blocked, ocuroot.ReleaseReport)
    assert blocked.status == "blocked"
    assert not blocked.failed
    build = blocked.item("task/build")
    assert build.state == "blocked"
    assert build.run == 1
    assert build.waiting_for == ("t/-/lib.ocu.star/@/task/publish#output/version",)
    assert shell.commands == []

    # Still blocked: continuing changes nothing.
    assert ws.release_continue("app.ocu.star/@r1").status == "blocked"

    published = ws.release_new("lib.ocu.star")
    assert isinstance(published, ocuroot.ReleaseReport)
    assert published.status == "complete"

    done = ws.release_continue("app.ocu.star/@r1")
    assert done.status == "complete"
    assert done.release == "t/-/app.ocu.star/@r1"
    assert done.item("task/build").waiting_for == ()
    assert shell.commands == ["publish", "build 1.2.3"]
    assert ws.state_get("app.ocu.star/@r1/task/build#output/image") == "app:1.2.3"


FLAKY = """ocuroot("0.3.0")

def one():
    host.shell("step one")
    return done()

def two():
    host.shell("step two")
    return done(outputs={"ok": True})

def three():
    host.shell("step three")
    return done()

phase("first", tasks=[task(one, name="one"), task(two, name="two")])
phase("second", tasks=[task(three, name="three")])
"""


def test_a_failed_release_is_retried(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": FLAKY})
    broken = threading.Event()
    broken.set()

    def shell(command: str, sh: str, directory: str, env: dict[str, str]) -> ocuroot.ShellOutput:
        if command == "step two" and broken.is_set():
            return ocuroot.ShellOutput(exit_code=3, stderr="flaky network\n")
        return ocuroot.ShellOutput(exit_code=0, stdout=command + "\n")

    ws = ocuroot.Workspace(repo, shell=shell, store=ocuroot.MemoryStore())
    failed = ws.release_new("release.ocu.star")
    assert isinstance(failed, ocuroot.ReleaseReport)
    assert failed.status == "failed"
    assert [(w.path, w.state) for w in failed.work] == [
        ("task/one", "complete"),
        ("task/two", "failed"),
        ("task/three", "waiting"),
    ]
    error = failed.item("task/two").error
    assert error is not None and "step two: exit status 3" in error
    # The one-line form, beside the full rendering.
    summary = failed.item("task/two").summary
    assert summary is not None and "step two: exit status 3" in summary, summary
    assert "\n" not in summary and "Traceback" not in summary and "-->" not in summary
    log = ws.state_get("release.ocu.star/@r1/task/two/1/logs")
    assert [(line["stream"], line["message"]) for line in log] == [("stderr", "flaky network")]

    broken.clear()
    retried = ws.release_retry("release.ocu.star")
    assert retried.status == "complete"
    assert retried.item("task/two").run == 2
    assert retried.item("task/one").run == 1
    assert retried.item("task/three").state == "complete"
    assert ws.state_get("release.ocu.star/@r1/task/two/1/status/failed_retried") is not None
    assert ws.state_get("release.ocu.star/@r1/task/two#output") == {"ok": True}

    with pytest.raises(ocuroot.OcurootError, match="no failed work"):
        ws.release_retry("release.ocu.star/@r1")


def test_release_status_reads_a_release_without_running_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": FLAKY})
    shell = Recorder(lambda command: ocuroot.ShellOutput(exit_code=3 if command == "step two" else 0))
    store = ocuroot.MemoryStore()
    ws = ocuroot.Workspace(repo, shell=shell, store=store)
    failed = ws.release_new("release.ocu.star")
    assert isinstance(failed, ocuroot.ReleaseReport)
    assert failed.status == "failed"
    before = {key: store.get(key) for key in store}
    ran = list(shell.commands)

    status = ws.release_status("release.ocu.star/@r1")
    assert isinstance(status, ocuroot.ReleaseReport)
    assert status == failed
    assert [(w.path, w.state) for w in status.work] == [
        ("task/one", "complete"),
        ("task/two", "failed"),
        ("task/three", "waiting"),
    ]
    # The package alone is its latest release.
    assert ws.release_status("release.ocu.star") == failed
    assert shell.commands == ran
    assert {key: store.get(key) for key in store} == before

    # From another commit, where the package file is gone.
    (repo / "release.ocu.star").unlink()
    git(repo, "commit", "-q", "-a", "-m", "gone")
    elsewhere = ocuroot.Workspace(repo, shell=shell, store=store)
    assert elsewhere.commit != ws.commit
    assert elsewhere.release_status("//release.ocu.star") == failed
    assert {key: store.get(key) for key in store} == before

    with pytest.raises(ocuroot.NotFoundError, match="t/-/release.ocu.star/@r4"):
        elsewhere.release_status("//release.ocu.star/@r4")


def test_lint_shows_phases_work_and_inputs(quickstart: Path) -> None:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore())
    lint = ws.release_lint("release.ocu.star")
    assert lint.file == "release.ocu.star"
    assert lint.base == "quickstart/-/release.ocu.star/@r1"
    assert lint.environments is None
    assert lint.package is not None
    # No environments in state yet: those environments.ocu.star registers.
    assert [p.name for p in lint.package.phases] == ["", "staging", "production"]
    assert [[w.path for w in p.work] for p in lint.package.phases] == [
        ["task/build"],
        ["deploy/staging"],
        ["deploy/production", "deploy/production2"],
    ]
    build = lint.package.phases[0].work[0]
    assert build.kind == "task"
    assert build.inputs["prev_build_number"] == {
        "ref": "quickstart/-/release.ocu.star/@/task/build#output/build_number",
        "default": 0,
    }
    assert build.spec["fn"]["name"] == "build"
    staging = lint.package.phases[1].work[0]
    assert (staging.kind, staging.name) == ("deploy", "staging")
    assert staging.spec["up"]["name"] == "up"
    assert ocuroot.Lint.from_dict(lint.to_dict()) == lint
    assert lint.to_dict()["package"]["phases"][1]["tasks"][0]["deploy"]["environment"] == "staging"

    envs = ws.release_lint("environments.ocu.star")
    assert envs.package is None
    assert envs.environments is not None
    assert [e.name for e in envs.environments] == ["staging", "production", "production2"]
    # Linting wrote nothing.
    assert ws.state_match("**") == []


def test_an_empty_file_and_environments_for_an_existing_release(quickstart: Path) -> None:
    (quickstart / "nothing.ocu.star").write_text('ocuroot("0.3.0")\n')
    shell = Recorder()
    ws = ocuroot.Workspace(quickstart, shell=shell, store=ocuroot.MemoryStore())
    empty = ws.release_new("nothing.ocu.star")
    assert isinstance(empty, ocuroot.NewReleaseEmpty)
    assert empty.to_dict() == {"kind": "empty"}

    # The release runs with no environments: only the build.
    first = ws.release_new("release.ocu.star")
    assert isinstance(first, ocuroot.ReleaseReport)
    assert [w.path for w in first.work] == ["task/build"]
    # Registering environments leaves an op/check_envs on the latest
    # release, as the original does; deploying nothing yet.
    envs = ws.release_new("environments.ocu.star")
    assert isinstance(envs, ocuroot.NewReleaseEnvironments)
    assert not envs.failed
    assert envs.outcome.releases == ()
    op = "quickstart/-/release.ocu.star/@r1/op/check_envs"
    assert ws.state_match("**/op/check_envs") == [op]
    assert any(op in note for note in envs.outcome.deferred)
    assert not any(c.startswith("./deploy.sh") for c in shell.commands)
    # Following it runs the op (the deploys are added) and deploys.
    followed = ws.cascade()
    assert not followed.failed
    assert [o.ref for o in followed.ops] == [op]
    assert sorted(followed.ops[0].added) == [
        f"quickstart/-/release.ocu.star/@r1/deploy/{env}/1"
        for env in ("production", "production2", "staging")
    ]
    assert ws.state_match("**/op/check_envs") == []
    assert ocuroot.WorkOutcome.from_dict(followed.to_dict()) == followed
    assert len(followed.releases) == 1
    deployed = followed.releases[0]
    assert deployed.release == "quickstart/-/release.ocu.star/@r1"
    assert sorted(w.path for w in deployed.work if w.path.startswith("deploy/")) == [
        "deploy/production",
        "deploy/production2",
        "deploy/staging",
    ]
    assert "./deploy.sh myapp:1 staging" in shell.commands
    assert ocuroot.NewReleaseEnvironments.from_dict(envs.to_dict()) == envs
    assert envs.to_dict()["kind"] == "environments"


def test_events_reach_on_event_as_typed_objects(quickstart: Path) -> None:
    events: list[ocuroot.Event] = []
    lock = threading.Lock()

    def on_event(event: ocuroot.Event) -> None:
        with lock:
            events.append(event)

    ws = ocuroot.Workspace(
        quickstart, shell=Recorder(), store=ocuroot.MemoryStore(), parallel=2, events=on_event
    )
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)

    # The release's totals come first, before any run starts.
    assert events[0].event == "release_started"
    assert events[0].release == report.release
    assert (events[0].total, events[0].complete, events[0].failed) == (len(report.work), 0, 0)
    assert events[0].work is None
    assert events[0].to_dict() == {
        "event": "release_started",
        "release": report.release,
        "total": len(report.work),
        "complete": 0,
        "failed": 0,
    }
    assert ocuroot.Event.from_dict(events[0].to_dict()) == events[0]
    assert [e.event for e in events].count("release_started") == 1
    started = [e for e in events if e.event == "run_started"]
    finished = [e for e in events if e.event == "run_finished"]
    logs = [e for e in events if e.event == "log"]
    assert sorted(str(e.work) for e in started) == sorted(w.path for w in report.work)
    assert started[0].work == "task/build"
    assert started[0].release == report.release
    assert started[0].run == 1
    assert all(e.status == "complete" and e.duration_ms is not None for e in finished)
    assert finished[0].work == "task/build"
    assert logs[0].line is not None
    assert logs[0].line.message == "Building build 1..."
    assert logs[0].line.stream == "stdout"
    assert logs[0].to_dict() == {
        "event": "log",
        "work": "task/build",
        "line": {
            "timestamp": logs[0].line.timestamp,
            "stream": "stdout",
            "message": "Building build 1...",
        },
    }
    assert set(finished[0].to_dict()) == {
        "event",
        "release",
        "work",
        "run",
        "status",
        "duration_ms",
        "error",
    }


def test_an_exception_in_on_event_goes_to_the_unraisable_hook(
    quickstart: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr("sys.unraisablehook", seen.append)

    def on_event(event: ocuroot.Event) -> None:
        raise RuntimeError(f"cannot handle {event.event}")

    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore(), events=on_event)
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete"
    assert seen
    assert all(isinstance(u.exc_value, RuntimeError) for u in seen)
    assert str(seen[0].exc_value) == "cannot handle release_started"


def test_reports_convert_to_dicts_and_back(quickstart: Path) -> None:
    ws = ocuroot.Workspace(quickstart, shell=Recorder(), store=ocuroot.MemoryStore())
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    d = report.to_dict()
    assert d["kind"] == "release"
    assert d["status"] == "complete"
    assert d["work"][0]["path"] == "task/build"
    assert d["work"][0]["waiting_for"] == []
    assert ocuroot.ReleaseReport.from_dict(d) == report
    with pytest.raises(KeyError):
        report.item("task/nope")
    with pytest.raises(AttributeError):
        report.status = "failed"  # type: ignore[misc]
