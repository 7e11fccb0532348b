"""A Python callable as the shell: every command goes through it, from the
threads the engine starts, and whatever it does wrong fails the run
with a message instead of crashing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import ocuroot

from conftest import Recorder, make_repo

PKG = "quickstart/-/release.ocu.star"


def test_the_shell_callback_receives_every_command(quickstart: Path) -> None:
    shell = Recorder()
    ws = ocuroot.Workspace(quickstart, shell=shell, store=ocuroot.MemoryStore(), parallel=2)
    ws.release_new("environments.ocu.star")
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete", report

    commands = shell.commands
    assert commands[:4] == [
        "docker build . -t myapp:1",
        "docker push myapp:1",
        "./deploy.sh myapp:1 staging",
        "./test.sh staging",
    ]
    assert sorted(commands[4:]) == [
        "./deploy.sh myapp:1 production",
        "./deploy.sh myapp:1 production2",
        "./test.sh production",
        "./test.sh production2",
    ]
    for command, sh, directory, env in shell.calls:
        assert sh == "sh", command
        assert Path(directory) == quickstart.resolve()
        assert env == {}
    # Nothing ran for real.
    assert not (quickstart / ".deployments").exists()

    # What the callback printed is in the run's log, after print() output.
    log = ws.state_get(f"{PKG}/@r1/task/build/1/logs")
    assert [(line["stream"], line["message"]) for line in log] == [
        ("stdout", "Building build 1..."),
        ("stdout", "ran: docker build . -t myapp:1"),
        ("stdout", "ran: docker push myapp:1"),
    ]


def test_shell_arguments_and_result_forms(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {
            "repo.ocu.star": 'repo_alias("t")\n',
            "sub/release.ocu.star": """
def work():
    a = host.shell("tuple", shell="bash", env={"GREETING": "hi"})
    b = host.shell("result", dir="..")
    c = host.shell("bytes")
    d = host.shell("none")
    return done(outputs={"a": a.stdout, "b": b.stdout, "err": b.stderr, "c": c.stdout,
                         "d": d.stdout, "combined": b.combined_output, "code": c.exit_code})

task(work, name="w")
""",
        },
    )
    calls: list[tuple[str, str, str, dict[str, str]]] = []

    def shell(command: str, sh: str, directory: str, env: dict[str, str]) -> object:
        calls.append((command, sh, directory, env))
        if command == "tuple":
            return (0, "one\n", "")
        if command == "result":
            return ocuroot.ShellOutput(0, stdout="out\n", stderr="warn\n")
        if command == "bytes":
            return ocuroot.ShellOutput(0, stdout="é".encode(), stderr=b"")
        return (0, None, None)

    ws = ocuroot.Workspace(repo / "sub", shell=shell, store=ocuroot.MemoryStore())  # type: ignore[arg-type]
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete", report
    sub = str((repo / "sub").resolve())
    assert [c[0] for c in calls] == ["tuple", "result", "bytes", "none"]
    assert calls[0] == ("tuple", "bash", sub, {"GREETING": "hi"})
    assert calls[1][1:] == ("sh", os.path.join(sub, ".."), {})
    assert calls[2] == ("bytes", "sh", sub, {})
    assert calls[3] == ("none", "sh", sub, {})
    assert ws.state_get("release.ocu.star/@r1/task/w#output") == {
        "a": "one\n",
        "b": "out\n",
        "err": "warn\n",
        "c": "é",
        "d": "",
        "combined": "out\nwarn\n",
        "code": 0,
    }
    log = ws.state_get("release.ocu.star/@r1/task/w/1/logs")
    assert [(line["stream"], line["message"]) for line in log] == [
        ("stdout", "one"),
        ("stdout", "out"),
        ("stderr", "warn"),
        ("stdout", "é"),
    ]


FAILING = {
    "repo.ocu.star": 'repo_alias("t")\n',
    "release.ocu.star": """
def ok():
    host.shell("echo ok")
    return done()

def bad():
    host.shell("explode")
    return done()

def later():
    host.shell("echo later")
    return done()

phase("one", tasks=[task(ok, name="ok"), task(bad, name="bad")])
phase("two", tasks=[task(later, name="later")])
""",
}


class Boom(Exception):
    pass


def test_an_exception_in_the_shell_callback_fails_the_run_with_its_message(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "r", FAILING)

    def shell(command: str, sh: str, directory: str, env: dict[str, str]) -> tuple[int, str, str]:
        if command == "explode":
            raise Boom("the deploy server is on fire")
        return (0, "", "")

    for parallel in (1, 2):
        ws = ocuroot.Workspace(repo, shell=shell, store=ocuroot.MemoryStore(), parallel=parallel)
        report = ws.release_new("release.ocu.star")
        assert isinstance(report, ocuroot.ReleaseReport)
        assert report.status == "failed"
        assert report.failed
        assert report.item("task/ok").state == "complete"
        bad = report.item("task/bad")
        assert bad.state == "failed"
        assert bad.error is not None
        assert "the shell callback raised Boom: the deploy server is on fire" in bad.error
        # The failure stopped the next phase, as a failing command would.
        assert report.item("task/later").state == "waiting"
        stored = ws.state_get("release.ocu.star/@r1/task/bad/1#error")
        assert "the deploy server is on fire" in stored["message"]
        assert stored["location"]["file"] == "release.ocu.star"
        assert stored["location"]["line"] == 7


@pytest.mark.parametrize(
    "returned, problem",
    [
        (0, "returned int (without `exit_code`)"),
        ((0, "out"), "returned a tuple of 2 items"),
        (("0", "", ""), "returned an exit code of type str"),
        ((True, "", ""), "returned an exit code of type bool"),
        ((0, 42, ""), "returned a stdout of type int"),
        (None, "returned NoneType (without `exit_code`)"),
    ],
)
def test_a_wrong_result_from_the_shell_callback_fails_the_run(
    tmp_path: Path, returned: object, problem: str
) -> None:
    repo = make_repo(tmp_path / "r", FAILING)

    def shell(command: str, sh: str, directory: str, env: dict[str, str]) -> object:
        return returned if command == "explode" else (0, "", "")

    ws = ocuroot.Workspace(repo, shell=shell, store=ocuroot.MemoryStore())  # type: ignore[arg-type]
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    error = report.item("task/bad").error
    assert error is not None
    assert f"the shell callback {problem}; expected an ocuroot.ShellOutput" in error


def test_callbacks_run_on_worker_threads_with_the_gil_released(tmp_path: Path) -> None:
    # Four tasks in one phase, each waiting at a barrier for all four: they
    # can only get through if four threads run the callback at once.
    repo = make_repo(
        tmp_path / "r",
        {
            "repo.ocu.star": 'repo_alias("t")\n',
            "release.ocu.star": """
def work():
    host.shell("wait")
    return done()

phase("all", tasks=[task(work, name="t{}".format(i)) for i in range(4)])
""",
        },
    )
    barrier = threading.Barrier(4, timeout=10)
    threads: set[int] = set()
    lock = threading.Lock()

    def shell(command: str, sh: str, directory: str, env: dict[str, str]) -> tuple[int, str, str]:
        with lock:
            threads.add(threading.get_ident())
        barrier.wait()
        return (0, "", "")

    store = ocuroot.MemoryStore()
    ws = ocuroot.Workspace(repo, shell=shell, store=store, parallel=4)
    report = ws.release_new("release.ocu.star")
    assert isinstance(report, ocuroot.ReleaseReport)
    assert report.status == "complete", report
    assert len(threads) == 4
    # Evaluations run on threads of their own (with a large stack), so the
    # shell callback is never called on the calling thread.
    assert threading.get_ident() not in threads


def test_shell_must_be_callable(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", FAILING)
    with pytest.raises(TypeError, match="shell must be callable"):
        ocuroot.Workspace(repo, shell="sh")  # type: ignore[arg-type]
