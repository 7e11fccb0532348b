"""The Workspace object itself: arguments, attributes, lifetime."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any, cast

import pytest

import ocuroot

from conftest import Recorder


def test_attributes_and_repr(quickstart: Path) -> None:
    ws = ocuroot.Workspace(quickstart / "bin", store=ocuroot.MemoryStore())
    assert ws.root == quickstart.resolve()
    assert ws.name == "quickstart"
    assert ws.commit == ws._native.commit
    assert repr(ws) == f"ocuroot.Workspace(root={str(quickstart.resolve())!r}, name='quickstart')"
    assert "quickstart" in repr(ws._native)


def test_arguments_are_checked(quickstart: Path) -> None:
    with pytest.raises(ValueError, match="parallel must be 1 or more, not -2"):
        ocuroot.Workspace(quickstart, parallel=-2)
    with pytest.raises(TypeError, match="events must be callable"):
        ocuroot.Workspace(quickstart, events=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        # shell is keyword-only
        cast(Any, ocuroot.Workspace)(quickstart, Recorder())
    ws = ocuroot.Workspace(quickstart, store=ocuroot.MemoryStore())
    with pytest.raises(TypeError, match="str globs"):
        ws.state_match("**", 3)  # type: ignore[arg-type]


class Agent:
    """Holds a workspace whose shell is one of its own methods: a cycle."""

    def __init__(self, repo: Path) -> None:
        self.commands: list[str] = []
        self.ws = ocuroot.Workspace(repo, shell=self.shell, store=ocuroot.MemoryStore())

    def shell(self, command: str, sh: str, directory: str, env: dict[str, str]) -> tuple[int, str, str]:
        self.commands.append(command)
        return (0, "", "")


def test_a_workspace_in_a_reference_cycle_is_collected(quickstart: Path) -> None:
    agent = Agent(quickstart)
    agent.ws.release_new("environments.ocu.star")
    report = agent.ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport) and report.status == "complete"
    assert agent.commands[0] == "docker build . -t myapp:1"
    ref = weakref.ref(agent)
    del agent, report
    gc.collect()
    assert ref() is None
