"""Runs left ``running`` by an agent that is gone: ``release_takeover``
breaks the claim whatever its lease says and runs the release on, with a
``run_taken_over`` event; the ``run_lease=`` option.

The agent "dies" by losing its store: the shell callback of its build makes
every commit fail, so the claim is written and the outcome never is, which
leaves the run ``running`` under a lease that has not expired.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import ocuroot

from conftest import make_repo

RELEASE = """ocuroot("0.3.0")

def build():
    host.shell("build")
    return done(outputs={"version": "1.0"})

def ship(version):
    host.shell("ship " + version)
    return done()

phase("build", tasks=[task(build, name="build")])
phase("ship", tasks=[task(ship, name="ship", inputs={"version": input(ref="./task/build#output/version")})])
"""

REL = "t/-/release.ocu.star/@r1"


class LosableStore(ocuroot.MemoryStore):
    """A :class:`MemoryStore` whose commits fail while it is ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def commit(self, ops: Sequence[ocuroot.Op]) -> None:
        if self.down:
            raise RuntimeError("the store is unreachable")
        super().commit(ops)


class Agent:
    """A shell and store shared by the workspaces of a test; the next
    ``build`` loses the store when ``crash_on_build`` is set."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.store = LosableStore()
        self.commands: list[str] = []
        self.events: list[ocuroot.Event] = []
        self.crash_on_build = False
        self._lock = threading.Lock()

    def shell(self, command: str, sh: str, directory: str, env: dict[str, str]) -> tuple[int, str, str]:
        with self._lock:
            self.commands.append(command)
            if command == "build" and self.crash_on_build:
                self.crash_on_build = False
                self.store.down = True
        return (0, "", "")

    def event(self, event: ocuroot.Event) -> None:
        with self._lock:
            self.events.append(event)

    def open(self, run_lease: float = 60) -> ocuroot.Workspace:
        return ocuroot.Workspace(
            self.repo,
            shell=self.shell,
            store=self.store,
            parallel=1,
            run_lease=run_lease,
            events=self.event,
        )

    def crash(self, ws: ocuroot.Workspace) -> None:
        """Release, losing the store in the build: its run stays running."""
        self.crash_on_build = True
        with pytest.raises(ocuroot.StoreError, match="the store is unreachable"):
            ws.release_new("release.ocu.star")
        self.store.down = False


def statuses(ws: ocuroot.Workspace, run: str) -> list[str]:
    return [r.rsplit("/", 1)[1] for r in ws.state_match(f"{run}/status/*")]


def test_takeover_breaks_a_claim_whatever_its_lease_and_runs_the_release_on(tmp_path: Path) -> None:
    agent = Agent(make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": RELEASE}))
    agent.crash(agent.open())

    ws = agent.open()
    build1 = f"{REL}/task/build/1"
    assert statuses(ws, build1) == ["running"]
    claim: dict[str, Any] = ws.state_get(f"{build1}/status/running")
    assert claim["agent"]["pid"] == os.getpid()
    assert isinstance(claim["expires"], str)

    # Its lease holds: a retry leaves the run alone and says what to do.
    with pytest.raises(ocuroot.NothingToRetryError, match="still running in other agents") as e:
        ws.release_retry("release.ocu.star")
    assert "release takeover" in str(e.value)

    # A takeover breaks it, and the release runs to the end.
    agent.events.clear()
    report = ws.release_takeover("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.release == REL
    assert report.status == "complete"
    assert [(w.path, w.run) for w in report.work] == [("task/build", 2), ("task/ship", 1)]
    assert agent.commands == ["build", "build", "ship 1.0"]

    # The old run is cancelled, with the takeover recorded on its marker.
    assert statuses(ws, build1) == ["cancelled"]
    assert statuses(ws, f"{REL}/task/build/2") == ["complete"]
    marker = ws.state_get(f"{build1}/status/cancelled")
    assert marker["retried_by"] == f"{REL}/task/build/2"
    taken = marker["taken_over"]
    assert taken["holder"] == claim["agent"]
    assert taken["by"]["pid"] == os.getpid()
    assert "a person broke the claim" in taken["reason"]

    # One event says so, typed.
    [event] = [e for e in agent.events if e.event == "run_taken_over"]
    assert (event.release, event.work, event.run, event.new_run) == (REL, "task/build", 1, 2)
    assert event.reason == taken["reason"]
    assert isinstance(event.holder, ocuroot.Agent)
    assert event.holder == ocuroot.Agent.from_dict(claim["agent"])
    assert event.holder.pid == os.getpid()
    assert event.to_dict() == {
        "event": "run_taken_over",
        "release": REL,
        "work": "task/build",
        "run": 1,
        "new_run": 2,
        "holder": claim["agent"],
        "reason": taken["reason"],
    }
    assert ocuroot.Event.from_dict(event.to_dict()) == event

    # Nothing is running any more: nothing to take over.
    with pytest.raises(ocuroot.NothingToRetryError, match="nothing to take over"):
        ws.release_takeover(REL)
    assert len(agent.commands) == 3


def test_a_short_lease_lets_a_retry_take_the_run_over(tmp_path: Path) -> None:
    agent = Agent(make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": RELEASE}))
    ws = agent.open(run_lease=0.3)
    agent.crash(ws)

    # Once the lease has run out, no takeover is needed.
    time.sleep(0.7)
    report = ws.release_retry("release.ocu.star")
    assert report.status == "complete"
    assert report.item("task/build").run == 2
    marker = ws.state_get(f"{REL}/task/build/1/status/cancelled")
    assert "lease expired" in marker["taken_over"]["reason"]
    [event] = [e for e in agent.events if e.event == "run_taken_over"]
    assert event.reason is not None and "lease expired" in event.reason


def test_run_lease_is_checked(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": RELEASE})
    for bad in (0, -1, 0.1, 0.299, 86400.5, 1e12, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"run_lease must be 0\.3 to 86400 seconds \(a day\)"):
            ocuroot.Workspace(repo, store=ocuroot.MemoryStore(), run_lease=bad)
    with pytest.raises(TypeError):
        ocuroot.Workspace(repo, store=ocuroot.MemoryStore(), run_lease="2m")  # type: ignore[arg-type]
    for good in (0.3, 1, 90.5, 86400):
        ocuroot.Workspace(repo, store=ocuroot.MemoryStore(), run_lease=good)


def test_takeover_of_a_release_that_does_not_exist(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"repo.ocu.star": 'repo_alias("t")\n', "release.ocu.star": RELEASE})
    ws = ocuroot.Workspace(repo, store=ocuroot.MemoryStore())
    with pytest.raises(ocuroot.NotFoundError):
        ws.release_takeover("release.ocu.star/@r1")


def test_the_taken_over_event_and_agent_convert_to_dicts_and_back() -> None:
    agent = {"host": "ci-7", "pid": 41}
    assert ocuroot.Agent.from_dict(agent).to_dict() == agent
    full = {"host": "ci-7", "pid": 41, "boot": "b", "pid_ns": 4026531836, "started": 99, "id": "x"}
    assert ocuroot.Agent.from_dict(full).to_dict() == full
    for holder in (None, agent):
        d = {
            "event": "run_taken_over",
            "release": REL,
            "work": "deploy/prod",
            "run": 3,
            "new_run": 4,
            "holder": holder,
            "reason": "its lease expired at 2026-01-01T00:00:00.000Z",
        }
        event = ocuroot.Event.from_dict(d)
        assert event.to_dict() == d
        assert ocuroot.Event.from_dict(event.to_dict()) == event
