"""The quickstart through the default host (local processes) and the store
``repo.ocu.star`` configures (files under ``.ocuroot/store``)."""

from __future__ import annotations

from pathlib import Path

import ocuroot

from conftest import git

PKG = "quickstart/-/release.ocu.star"


def test_quickstart_with_the_default_host_and_store(quickstart_path: Path) -> None:
    ws = ocuroot.Workspace(quickstart_path)
    assert ws.name == "quickstart"
    assert ws.root == quickstart_path.resolve()
    assert len(ws.commit) == 40

    envs = ws.release_new("environments.ocu.star")
    assert isinstance(envs, ocuroot.NewReleaseEnvironments)
    assert [e.name for e in envs.environments] == ["staging", "production", "production2"]
    assert envs.environments[0].attributes == {"type": "staging"}
    assert [c.change for c in envs.outcome.applied] == ["create"] * 3
    assert envs.outcome.releases == ()

    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete", report
    assert not report.failed
    assert report.release == f"{PKG}/@r1"
    assert [w.path for w in report.work] == [
        "task/build",
        "deploy/staging",
        "deploy/production",
        "deploy/production2",
    ]
    assert all(w.state == "complete" and w.run == 1 for w in report.work)
    assert report.item("deploy/staging").phase_name == "staging"

    # The stand-in scripts really ran, in the repository.
    assert (quickstart_path / ".deployments" / "production2").read_text() == "myapp:1\n"
    assert (quickstart_path / ".registry").read_text() == "myapp:1\n"
    # The configured filesystem store holds the state.
    assert (quickstart_path / ".ocuroot" / "store").is_dir()
    assert ws.state_get(f"{PKG}/@/deploy/production#input/tag") == "myapp:1"
    logs = ws.state_get(f"{PKG}/@r1/task/build/1/logs")
    messages = [line["message"] for line in logs]
    assert "Building build 1..." in messages
    assert "(stand-in docker) pushed myapp:1" in messages

    # A second release at a new commit carries the build number over.
    git(quickstart_path, "commit", "-q", "--allow-empty", "-m", "second")
    second = ocuroot.Workspace(quickstart_path).release_new("release.ocu.star")
    assert isinstance(second, ocuroot.ReleaseReport)
    assert second.release == f"{PKG}/@r2"
    assert second.status == "complete"
    ws = ocuroot.Workspace(quickstart_path)
    assert ws.state_get(f"{PKG}/@r2/task/build#output") == {
        "build_number": 2,
        "tag": "myapp:2",
    }
    assert ws.state_match(f"{PKG}/@r2/deploy/*") == [
        f"{PKG}/@r2/deploy/production",
        f"{PKG}/@r2/deploy/production2",
        f"{PKG}/@r2/deploy/staging",
    ]
    assert ws.state_get(f"{PKG}/@/deploy/production#input/tag") == "myapp:2"
    assert ws.state_get(f"{PKG}/@r9") is None


def test_relative_refs_and_paths_resolve_against_the_workspace_path(
    quickstart_path: Path,
) -> None:
    ws = ocuroot.Workspace(str(quickstart_path))
    ws.release_new(quickstart_path / "environments.ocu.star")
    ws.release_new(Path("release.ocu.star"))
    assert ws.state_get("release.ocu.star/@r1/task/build#output/tag") == "myapp:1"
    assert ws.state_match("**/@r1/task/*") == [f"{PKG}/@r1/task/build"]
