"""Shared fixtures: real git repositories in temporary directories."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Callable, Optional, Union

import pytest

import ocuroot

# ocuroot-py/tests/conftest.py -> the repository root.
TOP = Path(__file__).resolve().parents[2]
QUICKSTART = TOP / "examples" / "quickstart"

GIT = [
    "git",
    "-c",
    "user.name=ocuroot-tests",
    "-c",
    "user.email=tests@example.invalid",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "commit.gpgsign=false",
]


def git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


def make_repo(path: Path, files: Mapping[str, str]) -> Path:
    """A git repository at ``path`` with ``files``, committed."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content)
    git(path, "init", "-q")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def copy_quickstart(dest: Path) -> Path:
    """``examples/quickstart`` in a fresh git repository, as run.sh makes it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(QUICKSTART):
        src = QUICKSTART / name
        if name in ("run.sh", ".ocuroot", ".deployments", ".registry"):
            continue
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", ".")
    git(dest, "commit", "-q", "-m", "quickstart")
    return dest


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    return copy_quickstart(tmp_path / "quickstart")


@pytest.fixture
def quickstart_path(quickstart: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The quickstart repository, with its stand-in ``docker`` on PATH."""
    monkeypatch.setenv("PATH", f"{quickstart / 'bin'}{os.pathsep}{os.environ['PATH']}")
    yield quickstart


class Recorder:
    """A shell callback that records every call and runs nothing; a command
    containing "fail" exits 1. Thread-safe."""

    def __init__(self, answer: Optional[Callable[[str], ocuroot.ShellOutput]] = None) -> None:
        self.calls: list[tuple[str, str, str, dict[str, str]]] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        self._answer = answer

    def __call__(
        self, command: str, shell: str, dir: str, env: dict[str, str]
    ) -> Union[ocuroot.ShellOutput, tuple[int, str, str]]:
        with self._lock:
            self.calls.append((command, shell, dir, env))
            self.threads.add(threading.get_ident())
        if self._answer is not None:
            return self._answer(command)
        return (1 if "fail" in command else 0, f"ran: {command}\n", "")

    @property
    def commands(self) -> list[str]:
        with self._lock:
            return [c[0] for c in self.calls]
