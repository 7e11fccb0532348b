"""Intent from Python: ``state_set`` / ``state_delete`` / ``state_diff`` /
``state_apply`` / ``state_checkpoint`` and the ``work_*`` calls, on the
operations the CLI's ``state`` and ``work`` commands run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import ocuroot

from conftest import Recorder, make_repo

ENVIRONMENTS = """ocuroot("0.3.0")

register_environment(environment("staging", {}))
"""

PROD = """ocuroot("0.3.0")

register_environment(environment("staging", {}))
register_environment(environment("prod", {}))
"""

# A deploy to every environment, gated on the release's custom state.
GATED = """ocuroot("0.3.0")

def up(environment, approval):
    host.shell("up {} {}".format(environment["name"], approval))
    return done(outputs={"approval": approval})

def down(environment, approval):
    host.shell("down " + environment["name"])
    return done()

phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={"approval": input(ref="./custom/approval")})
    for e in environments()
])
"""

PKG = "p/-/release.ocu.star"


def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "repo.ocu.star": 'repo_alias("p")\n',
            "environments.ocu.star": ENVIRONMENTS,
            "prod.ocu.star": PROD,
            "release.ocu.star": GATED,
        },
    )


def workspace(root: Path, shell: Recorder) -> ocuroot.Workspace:
    ws = ocuroot.Workspace(root, shell=shell, store=ocuroot.MemoryStore())
    ws.release_new("environments.ocu.star")
    return ws


def test_an_approval_through_state_set_and_state_apply_unblocks_the_deploy(tmp_path: Path) -> None:
    shell = Recorder()
    ws = workspace(repo(tmp_path), shell)
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport) and report.status == "blocked"
    assert ws.state_diff() == []

    approval = ws.state_set(f"{PKG}/@r1/custom/approval", "yes")
    assert approval == f"{PKG}/@r1/custom/approval"
    assert ws.state_diff() == [ocuroot.IntentChange(ref=approval, change="create")]

    outcome = ws.state_apply(approval)
    assert isinstance(outcome, ocuroot.WorkOutcome)
    assert outcome.applied == (ocuroot.IntentChange(ref=approval, change="create"),)
    assert outcome.releases == () and shell.commands == [], "applying custom state runs nothing"
    assert [t.ref for t in ws.work_continue(dryrun=True)] == [f"{PKG}/@r1/deploy/staging/1"]
    ran = ws.work_continue()
    assert isinstance(ran, ocuroot.WorkOutcome)
    assert [r.status for r in ran.releases] == ["complete"]
    assert shell.commands == ["up staging yes"]
    assert ws.state_get(f"{PKG}/@/deploy/staging#output/approval") == "yes"
    assert ws.state_diff() == []

    # Deleting the intent deletes the state, through a work_any.
    assert ws.state_delete(approval) == approval
    assert ws.state_diff() == [ocuroot.IntentChange(ref=approval, change="delete")]
    planned = ws.work_any(dryrun=True)
    assert [(t.ref, t.work_type) for t in planned] == [(approval, "delete")]
    done = ws.work_any()
    assert isinstance(done, ocuroot.WorkOutcome)
    assert done.applied == (ocuroot.IntentChange(ref=approval, change="delete"),)
    assert ws.state_get(approval) is None


def test_a_new_environment_is_deployed_by_work_ops_then_work_continue(tmp_path: Path) -> None:
    shell = Recorder()
    ws = workspace(repo(tmp_path), shell)
    ws.release_new("release.ocu.star")
    ws.state_apply(ws.state_set(f"{PKG}/@r1/custom/approval", {"by": "ops"}))
    ws.work_continue()
    assert shell.commands == ['up staging {"by": "ops"}']

    new = ws.release_new("prod.ocu.star")
    assert isinstance(new, ocuroot.NewReleaseEnvironments)
    assert [t.work_type for t in ws.work_ops(dryrun=True)] == ["op"]
    ops = ws.work_ops()
    assert isinstance(ops, ocuroot.WorkOutcome)
    assert [o.added for o in ops.ops] == [(f"{PKG}/@r1/deploy/prod/1",)]
    assert [t.ref for t in ws.work_continue(dryrun=True)] == [f"{PKG}/@r1/deploy/prod/1"]
    ran = ws.work_continue()
    assert isinstance(ran, ocuroot.WorkOutcome)
    assert [r.status for r in ran.releases] == ["complete"]
    assert len(shell.commands) == 2 and shell.commands[1].startswith("up prod ")
    assert ws.work_continue(dryrun=True) == []
    idle = ws.work_any_comprehensive()
    assert (idle.applied, idle.ops, idle.releases) == ((), (), ())


def test_state_checkpoint_writes_a_directory_store_back(tmp_path: Path) -> None:
    root = repo(tmp_path)
    ws = ocuroot.Workspace(root, shell=Recorder())
    ws.release_new("environments.ocu.star")
    ws.state_checkpoint()
    assert (root / ".ocuroot" / "store" / "state" / "refs" / "@" / "environment" / "staging" / "@object.json").is_file()


def test_bad_intent_is_refused(tmp_path: Path) -> None:
    ws = workspace(repo(tmp_path), Recorder())
    with pytest.raises(ocuroot.OcurootError, match="is not intent"):
        ws.state_set(f"{PKG}/@r1/task/x", 1)
    with pytest.raises(ocuroot.OcurootError, match="is not intent"):
        ws.state_apply(f"{PKG}/@r1/task/x")
    with pytest.raises(ValueError):
        ws.state_set(f"{PKG}/@/custom/x", math.nan)
    with pytest.raises(TypeError):
        ws.state_set(f"{PKG}/@/custom/x", object())
    assert ws.state_diff() == []


def test_a_limit_keeps_the_work_calls_to_one_package(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "other.ocu.star").write_text(GATED)
    store = ocuroot.MemoryStore()
    ws = ocuroot.Workspace(root, shell=Recorder(), store=store)
    ws.release_new("environments.ocu.star")
    for file in ("release.ocu.star", "other.ocu.star"):
        ws.release_new(file)
        ws.state_set(f"p/-/{file}/@r1/custom/approval", "yes")
    assert len(ws.work_any(dryrun=True)) == 2

    limited = ocuroot.Workspace(root, shell=Recorder(), store=store, limit="other.ocu.star")
    assert [t.ref for t in limited.work_any(dryrun=True)] == ["p/-/other.ocu.star/@r1/custom/approval"]
    with pytest.raises(ocuroot.NotFoundError, match="no such release"):
        ocuroot.Workspace(root, store=store, limit="other.ocu.star/@r7")


def test_find_deploys_names_the_deployments_of_releases_made_between_two_commits(
    tmp_path: Path,
) -> None:
    ws = workspace(repo(tmp_path), Recorder())
    ws.release_new("release.ocu.star")
    assert ws.find_deploys("HEAD", "HEAD") == []
    ws.state_apply(ws.state_set(f"{PKG}/@r1/custom/approval", "yes"))
    ws.work_continue()
    found = ws.find_deploys("HEAD", "HEAD")
    assert found == [
        ocuroot.FoundDeploy(ref=f"{PKG}/@/deploy/staging", release=f"{PKG}/@r1", commit=ws.commit)
    ]
    with pytest.raises(ocuroot.NotFoundError, match="failed to search for commit"):
        ws.find_deploys("0" * 40, "HEAD")
