"""Cascades in a real git repository: a frontend deployed at commit 1 reads
the backend's output; releasing the backend at commit 2 and cascading
redeploys the frontend at commit 1, in a git worktree, so it sees commit 1's
files. Also ``plan``, ``work_cascade``, ``work_trigger`` and
``max_attempts``."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Optional

import pytest

import ocuroot

from conftest import git

REPO = """repo_alias("p")

def on_commit(commit):
    print("trigger " + commit)

trigger(on_commit)
"""

ENVIRONMENTS = """ocuroot("0.3.0")

register_environment(environment("staging", {}))
"""

# Deployed to staging; outputs what backend.txt says at its commit.
BACKEND = """ocuroot("0.3.0")

def up(environment):
    value = host.shell("cat backend.txt").stdout.strip()
    return done(outputs={"value": value})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environment("staging", {}))
"""

# Deployed to staging with the backend's output: records it and the
# frontend.txt of the checkout it runs in; refuses a backend that is "bad".
FRONTEND = """ocuroot("0.3.0")

def up(environment, backend):
    saw = host.read_file("frontend.txt").strip()
    host.shell("record frontend {} {}".format(backend, saw))
    if backend == "bad":
        fail("the backend is bad")
    return done(outputs={"backend": backend, "saw": saw})

def down(environment, backend):
    return done()

deploy(up=up, down=down, environment=environment("staging", {}),
       inputs={"backend": input(ref="./-/backend.ocu.star/@/deploy/staging#output/value")})
"""

FRONTEND_RELEASE = "p/-/frontend.ocu.star/@r1"
FRONTEND_REF = f"{FRONTEND_RELEASE}/deploy/staging"


class Shell:
    """Runs commands with ``sh -c``; ``record ...`` is not run but recorded,
    with the directory it was asked to run in. Thread-safe."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(
        self, command: str, shell: str, dir: str, env: dict[str, str]
    ) -> ocuroot.ShellOutput:
        if command.startswith("record "):
            with self._lock:
                self.records.append((command[len("record ") :], dir))
            return ocuroot.ShellOutput(0)
        proc = subprocess.run(
            [shell, "-c", command],
            cwd=dir,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        return ocuroot.ShellOutput(proc.returncode, proc.stdout, proc.stderr)

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return [line for line, _ in self.records]


class Scenario:
    """The repository, its commits, one store and one shell for every
    workspace opened on it."""

    def __init__(self, path: Path) -> None:
        self.repo = path
        self.commits: list[str] = []
        self.store = ocuroot.MemoryStore()
        self.shell = Shell()
        path.mkdir(parents=True)
        for name, text in {
            "repo.ocu.star": REPO,
            "environments.ocu.star": ENVIRONMENTS,
            "backend.ocu.star": BACKEND,
            "frontend.ocu.star": FRONTEND,
        }.items():
            (path / name).write_text(text)
        git(path, "init", "-q")

    def commit(self, backend: str, frontend: str) -> str:
        (self.repo / "backend.txt").write_text(backend + "\n")
        (self.repo / "frontend.txt").write_text(frontend + "\n")
        git(self.repo, "add", ".")
        git(self.repo, "commit", "-q", "-m", backend)
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=self.repo, check=True, capture_output=True, text=True
        ).stdout.strip()
        self.commits.append(sha)
        return sha

    def open(self, max_attempts: Optional[int] = None) -> ocuroot.Workspace:
        return ocuroot.Workspace(
            self.repo, shell=self.shell, store=self.store, parallel=2, max_attempts=max_attempts
        )


def released_at_commit_1(
    tmp_path: Path, max_attempts: Optional[int] = None
) -> tuple[Scenario, ocuroot.Workspace]:
    """Environments, backend and frontend released at commit 1 (``b1``,
    ``f1``), then commit 2 (``b2``, ``f2``) made and a workspace opened there."""
    s = Scenario(tmp_path / "repo")
    s.commit("b1", "f1")
    ws = s.open(max_attempts)
    ws.release_new("environments.ocu.star")
    for file in ("backend.ocu.star", "frontend.ocu.star"):
        report = ws.release_new(file)
        assert isinstance(report, ocuroot.ReleaseReport) and report.status == "complete", report
    assert s.shell.lines == ["frontend b1 f1"]
    s.commit("b2", "f2")
    return s, s.open(max_attempts)


def test_cascade_redeploys_the_frontend_at_its_own_commit(tmp_path: Path) -> None:
    s, ws = released_at_commit_1(tmp_path)
    assert ws.commit == s.commits[1]
    backend = ws.release_new("backend.ocu.star")
    assert isinstance(backend, ocuroot.ReleaseReport) and backend.status == "complete"

    # What is outstanding: the frontend's redeploy, at commit 1.
    planned = ws.work_cascade(dryrun=True)
    assert planned == [
        ocuroot.Todo(
            ref=FRONTEND_REF,
            work_type="run",
            commit=s.commits[0],
            reason=planned[0].reason,
        )
    ]
    assert planned[0].ready and "backend" in planned[0].reason
    assert ws.work_trigger(dryrun=True) == [
        ocuroot.Triggered(repo="p", commit=s.commits[0], status="planned")
    ]
    assert s.shell.lines == ["frontend b1 f1"]

    outcome = ws.cascade()
    assert isinstance(outcome, ocuroot.WorkOutcome)
    assert not outcome.failed and outcome.stopped == ()
    assert outcome.rounds >= 1
    [frontend] = outcome.releases
    assert frontend.release == FRONTEND_RELEASE
    assert frontend.commit == s.commits[0]
    assert frontend.status == "complete"
    # Redeployed with the new backend value, in a checkout of commit 1
    # (a worktree: not the repository, which is at commit 2).
    assert s.shell.lines == ["frontend b1 f1", "frontend b2 f1"]
    redeploy_dir = Path(s.shell.records[1][1])
    assert redeploy_dir != s.repo.resolve()
    assert not redeploy_dir.exists(), "the worktree is removed afterwards"
    assert ws.state_get("p/-/frontend.ocu.star/@/deploy/staging#output") == {
        "backend": "b2",
        "saw": "f1",
    }

    # Nothing is left.
    assert ws.cascade().releases == ()
    assert ws.work_cascade(dryrun=True) == []
    assert ws.work_trigger(dryrun=True) == []
    assert len(s.shell.lines) == 2


def test_work_cascade_does_everything_outstanding(tmp_path: Path) -> None:
    s, ws = released_at_commit_1(tmp_path)
    ws.release_new("backend.ocu.star")

    # Another workspace (another agent) finds the work and does it.
    outcome = s.open().work_cascade()
    assert isinstance(outcome, ocuroot.WorkOutcome)
    assert not outcome.failed
    assert outcome.rounds >= 1
    assert any(
        r.release == FRONTEND_RELEASE and r.status == "complete" for r in outcome.releases
    ), outcome
    assert s.shell.lines == ["frontend b1 f1", "frontend b2 f1"]
    assert ocuroot.WorkOutcome.from_dict(outcome.to_dict()) == outcome
    assert s.open().work_cascade(True) == []


def test_work_trigger_calls_the_trigger_of_each_commit_with_work(tmp_path: Path) -> None:
    s, ws = released_at_commit_1(tmp_path)
    ws.release_new("backend.ocu.star")
    [called] = ws.work_trigger()
    assert called == ocuroot.Triggered(
        repo="p",
        commit=s.commits[0],
        status="called",
        log=(f"trigger {s.commits[0]}",),
    )
    assert not called.failed
    assert called.to_dict() == {
        "repo": "p",
        "commit": s.commits[0],
        "status": "called",
        "log": [f"trigger {s.commits[0]}"],
        "error": None,
    }
    assert ocuroot.Triggered.from_dict(called.to_dict()) == called
    # The trigger only says where work is: nothing was redeployed.
    assert s.shell.lines == ["frontend b1 f1"]


def test_plan_as_json_mermaid_and_dot(tmp_path: Path) -> None:
    s, ws = released_at_commit_1(tmp_path)
    ws.release_new("backend.ocu.star")

    plan = ws.plan()
    assert isinstance(plan, ocuroot.Plan)
    assert plan == ws.plan("json")
    [todo] = plan.work
    assert todo.ref == FRONTEND_REF and todo.commit == s.commits[0]
    assert plan.ready == (todo,)
    backend_node = "p/-/backend.ocu.star deploy staging"
    frontend_node = "p/-/frontend.ocu.star deploy staging"
    assert plan.depends_on(frontend_node) == (backend_node, "environment staging")
    assert plan.depends_on(backend_node) == ("environment staging",)
    with pytest.raises(KeyError):
        plan.depends_on("nothing")
    assert ocuroot.Plan.from_dict(plan.to_dict()) == plan
    assert plan.to_dict()["graph"][0] == {
        "node": backend_node,
        "depends_on": ["environment staging"],
    }

    mermaid = ws.plan("mermaid")
    assert isinstance(mermaid, str)
    assert mermaid.startswith("flowchart LR\n")
    assert f'["{frontend_node}"]' in mermaid and "-->" in mermaid
    dot = ws.plan("dot")
    assert isinstance(dot, str)
    assert dot.startswith("digraph ocuroot {\n")
    assert f'[label="{frontend_node}"]' in dot and "->" in dot

    with pytest.raises(ValueError, match="unknown plan format 'svg'"):
        ws.plan("svg")

    # Once the cascade ran, nothing is outstanding; the graph stays.
    ws.cascade()
    after = ws.plan()
    assert after.work == () and after.graph == plan.graph


def test_a_redeploy_that_keeps_failing_is_given_up_after_max_attempts(tmp_path: Path) -> None:
    s, ws = released_at_commit_1(tmp_path, max_attempts=2)
    (s.repo / "backend.txt").write_text("bad\n")
    ws.release_new("backend.ocu.star")

    outcome = ws.cascade()
    assert outcome.failed
    [stopped] = outcome.stopped
    assert FRONTEND_REF in stopped and "the backend is bad" in stopped
    # Two attempts instead of the default three.
    assert s.shell.lines == ["frontend b1 f1", "frontend bad f1", "frontend bad f1"]


def test_max_attempts_is_checked(tmp_path: Path) -> None:
    s = Scenario(tmp_path / "repo")
    s.commit("b1", "f1")
    for bad in (0, -1, 2**32):
        with pytest.raises(ValueError, match=f"max_attempts must be 1 or more, not {bad}"):
            s.open(max_attempts=bad)
    # Nothing released yet: nothing to do, an empty plan.
    ws = s.open(max_attempts=1)
    assert ws.work_cascade(dryrun=True) == []
    assert ws.plan() == ocuroot.Plan(work=(), graph=())
    assert ws.cascade() == ocuroot.WorkOutcome()
