"""A Workspace opened without a store callback uses the store
``repo.ocu.star`` configures: here ``store.git(...)`` on a bare repository."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

import ocuroot

from conftest import make_repo

PKG = "pygit/-/release.ocu.star"

RELEASE = """ocuroot("0.3.0")

def build():
    return done(outputs={"ok": True})

task(build, name="build")
"""


def remote_git(remote: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(remote), *args], check=True, capture_output=True, text=True
    )
    return out.stdout


def test_a_configured_git_store_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    monkeypatch.setenv("OCUROOT_HOME", str(tmp_path / "home"))
    repo = make_repo(
        tmp_path / "repo",
        {
            "repo.ocu.star": f'ocuroot("0.3.0")\nrepo_alias("pygit")\n'
            f'store.set(store.git("{remote}", branch="ocuroot"))\n',
            "release.ocu.star": RELEASE,
        },
    )
    ws = ocuroot.Workspace(repo)
    ws.release_new("release.ocu.star")
    assert ws.state_get(f"{PKG}/@r1/task/build#output/ok") is True
    files = remote_git(remote, "ls-tree", "-r", "--name-only", "ocuroot").splitlines()
    assert "state/.ocuroot-store" in files
    assert f"state/refs/{PKG}/@r1/@object.json" in files
    authors = set(remote_git(remote, "log", "--format=%an <%ae>", "ocuroot").splitlines())
    assert authors == {"Ocuroot <contact@ocuroot.com>"}
    # Another workspace, with its own clone, reads the same state.
    monkeypatch.setenv("OCUROOT_HOME", str(tmp_path / "home2"))
    assert ocuroot.Workspace(repo).state_get(f"{PKG}/@r1/task/build#output/ok") is True


def test_refresh_reads_what_another_agent_just_pushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo = make_repo(
        tmp_path / "repo",
        {
            "repo.ocu.star": f'ocuroot("0.3.0")\nrepo_alias("pygit")\n'
            f'store.set(store.git("{remote}", branch="ocuroot"))\n',
            "release.ocu.star": RELEASE,
        },
    )
    # An hour between fetches: without refresh(), the reader would not
    # fetch again during this test.
    monkeypatch.setenv("OCUROOT_GIT_FETCH_INTERVAL", "3600")
    monkeypatch.setenv("OCUROOT_HOME", str(tmp_path / "reader"))
    reader = ocuroot.Workspace(repo)
    assert reader.state_get(f"{PKG}/@r1/task/build#output/ok") is None
    monkeypatch.setenv("OCUROOT_HOME", str(tmp_path / "writer"))
    ocuroot.Workspace(repo).release_new("release.ocu.star")
    assert reader.state_get(f"{PKG}/@r1/task/build#output/ok") is None
    reader.refresh()
    assert reader.state_get(f"{PKG}/@r1/task/build#output/ok") is True


def test_state_gc_packs_the_clone_and_removes_unused_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    home = tmp_path / "home"
    monkeypatch.setenv("OCUROOT_HOME", str(home))
    repo = make_repo(
        tmp_path / "repo",
        {
            "repo.ocu.star": f'ocuroot("0.3.0")\nrepo_alias("pygit")\n'
            f'store.set(store.git("{remote}", branch="ocuroot"))\n',
            "release.ocu.star": RELEASE,
        },
    )
    other = home / "stores" / "old.example.com" / "state.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    ocuroot.Workspace(repo).release_new("release.ocu.star")
    ws = ocuroot.Workspace(repo)
    report = ws.state_gc(unused_for=timedelta(days=1))
    assert [Path(p["clone"]).name for p in report["packed"]] == ["store.git"]
    # A clone of a path reads the remote's objects in place, and keeps
    # none of its own once they are pushed.
    clone = Path(report["packed"][0]["clone"])
    alternates = (clone / "objects" / "info" / "alternates").read_text().split()
    assert alternates == [str((remote / "objects").resolve())]
    assert report["packed"][0]["objects"] == 0
    assert report["removed"] == [], "a clone made a moment ago is kept"
    assert other.exists()
    report = ws.state_gc(0)
    assert [Path(r) for r in report["removed"]] == [other]
    assert not other.exists()
    assert ws.state_get(f"{PKG}/@r1/task/build#output/ok") is True
    with pytest.raises(ValueError):
        ws.state_gc(-1)
