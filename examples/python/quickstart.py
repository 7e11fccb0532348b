#!/usr/bin/env python3
"""Run the quickstart release from Python, with a shell callback that logs
every command and its output.

Like examples/quickstart/run.sh, it copies examples/quickstart into a fresh
git repository (under $TMPDIR), registers the environments, releases,
makes a second commit and releases again, then reads the results back. State
goes to the store repo.ocu.star configures (.ocuroot/store in the copy);
pass --memory to keep it in an ocuroot.MemoryStore instead.

    pip install <the ocuroot wheel>   # see the README's "Python" section
    python examples/python/quickstart.py [--memory] [--keep]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ocuroot

QUICKSTART = Path(__file__).resolve().parent.parent / "quickstart"
PKG = "quickstart/-/release.ocu.star"
GIT = ["git", "-c", "user.name=quickstart", "-c", "user.email=quickstart@example.invalid"]

log = logging.getLogger("quickstart")


def logging_shell(command: str, shell: str, dir: str, env: dict[str, str]) -> ocuroot.ShellOutput:
    """Run ``command`` as the default host would (``<shell> -c`` in ``dir``,
    with ``env`` on top of this process's environment), logging it and every
    line it prints."""
    log.info("$ %s    (in %s)", command, dir)
    proc = subprocess.run(
        [shell, "-c", command],
        cwd=dir,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        log.info("  | %s", line)
    for line in proc.stderr.splitlines():
        log.warning("  ! %s", line)
    if proc.returncode != 0:
        log.warning("  exit status %d", proc.returncode)
    return ocuroot.ShellOutput(proc.returncode, proc.stdout, proc.stderr)


def make_repository(work: Path) -> None:
    """Copy the quickstart into ``work`` and commit it."""
    for name in ["repo.ocu.star", "environments.ocu.star", "release.ocu.star", ".gitignore"]:
        shutil.copy2(QUICKSTART / name, work / name)
    for script in QUICKSTART.glob("*.sh"):
        if script.name != "run.sh":
            shutil.copy2(script, work / script.name)
    shutil.copytree(QUICKSTART / "bin", work / "bin")
    subprocess.run(["git", "init", "--quiet"], cwd=work, check=True)
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    subprocess.run([*GIT, "commit", "--quiet", "-m", "quickstart"], cwd=work, check=True)


def print_report(report: ocuroot.NewRelease) -> None:
    if isinstance(report, ocuroot.ReleaseReport):
        print(f"{report.release}: {report.status}")
        for item in report.work:
            detail = item.error or ", ".join(item.waiting_for) or f"{item.duration_ms} ms"
            print(f"  {item.path:<24} {item.state:<9} run {item.run}  {detail}")
    elif isinstance(report, ocuroot.NewReleaseEnvironments):
        names = ", ".join(e.name for e in report.environments)
        print(f"environments registered: {names}")
    else:
        print("nothing to release")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true", help="keep state in an ocuroot.MemoryStore")
    parser.add_argument("--keep", action="store_true", help="keep the example repository")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s", stream=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="ocuroot-quickstart-py."))
    try:
        make_repository(work)
        # The stand-in `docker` lives in ./bin.
        os.environ["PATH"] = f"{work / 'bin'}{os.pathsep}{os.environ['PATH']}"
        store = ocuroot.MemoryStore() if args.memory else None

        ws = ocuroot.Workspace(work, shell=logging_shell, store=store)
        print_report(ws.release_new("environments.ocu.star"))
        first = ws.release_new("release.ocu.star")
        print_report(first)

        # A second release at a new commit picks up the build number from the
        # first. The commit is read when a workspace opens, so open another.
        subprocess.run([*GIT, "commit", "--quiet", "--allow-empty", "-m", "second"], cwd=work, check=True)
        ws = ocuroot.Workspace(work, shell=logging_shell, store=store)
        second = ws.release_new("release.ocu.star")
        print_report(second)

        print("production runs", ws.state_get(f"{PKG}/@/deploy/production#input/tag"))
        print("r2 built", ws.state_get(f"{PKG}/@r2/task/build#output/tag"))
        for ref in ws.state_match(f"{PKG}/@r2/deploy/*"):
            print("deployed:", ref)
        if args.keep:
            print(f"The example repository is at {work}")
        return 1 if first.failed or second.failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
