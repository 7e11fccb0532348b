"""The README's Python example and examples/python, run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import TOP, git

MARKER = "<!-- python-example: run by ocuroot-py/tests/test_examples.py -->"


def readme_example() -> str:
    readme = (TOP / "README.md").read_text()
    assert MARKER in readme, "the README's Python example lost its marker"
    after = readme[readme.index(MARKER) + len(MARKER) :]
    match = re.match(r"\s*```python\n(.*?)```", after, re.DOTALL)
    assert match, "no ```python block right after the marker"
    return match.group(1)


def run(args: list[str], cwd: Path, path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    # Warnings are errors here too.
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_python_example(quickstart: Path) -> None:
    code = readme_example()
    script = quickstart.parent / "readme_example.py"
    script.write_text(code)
    proc = run([str(script)], cwd=quickstart, path_prefix=quickstart / "bin")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "quickstart/-/release.ocu.star/@r1 complete"
    assert lines[1:5] == [
        "  task/build: complete, run 1",
        "  deploy/staging: complete, run 1",
        "  deploy/production: complete, run 1",
        "  deploy/production2: complete, run 1",
    ]
    assert lines[5] == "myapp:1"
    assert re.fullmatch(r"\d+ keys in memory", lines[6])
    # The logging shell saw every command, and they really ran.
    logged = proc.stderr.splitlines()
    assert logged[:2] == ["$ docker build . -t myapp:1", "$ docker push myapp:1"]
    assert "$ ./test.sh production2" in logged
    assert (quickstart / ".deployments" / "production").read_text() == "myapp:1\n"
    # The state was in memory only.
    assert not (quickstart / ".ocuroot").exists()


def test_examples_python_quickstart(tmp_path: Path) -> None:
    proc = run([str(TOP / "examples" / "python" / "quickstart.py")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "environments registered: staging, production, production2" in out
    assert "quickstart/-/release.ocu.star/@r1: complete" in out
    assert "quickstart/-/release.ocu.star/@r2: complete" in out
    assert "production runs myapp:2" in out
    assert "r2 built myapp:2" in out
    assert "deployed: quickstart/-/release.ocu.star/@r2/deploy/staging" in out
    # Every command went through the logging shell, with its output.
    assert "$ docker build . -t myapp:2" in proc.stderr
    assert "| production2 serves myapp:2" in proc.stderr


def test_the_agent_example(tmp_path: Path) -> None:
    """examples/python/agent.py: a failure and a retry, an approval through
    intent, typed reads, a second release and a rollback, with state and
    intent in two SQLite databases."""
    proc = run([str(TOP / "examples/python/agent.py")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "environments registered",
        "staging failed: ./deploy.sh 1.0.1 staging: exit status 1",
        "retried: staging complete, production blocked on "
        "agent/-/release.ocu.star/@r1/custom/approval",
        "approved: release complete",
    ], proc.stdout
    assert lines[4:7] == [
        "production runs 1.0.1",
        "second release: production runs 1.0.2",
        "rolled back: production runs 1.0.1 from agent/-/release.ocu.star/@r1",
    ], proc.stdout
    assert lines[7] == (
        "deployed.log: staging 1.0.1 | production 1.0.1 | staging 1.0.2 | production 1.0.2"
        " | production 1.0.1"
    ), proc.stdout


PACKAGE_MARKER = "<!-- package-example: run by ocuroot-py/tests/test_examples.py -->"


def package_readme_example() -> tuple[str, str]:
    """The example of ocuroot-py/README.md (the package's page) and the
    output it says the example prints."""
    readme = (TOP / "ocuroot-py" / "README.md").read_text()
    assert PACKAGE_MARKER in readme, "the package README's example lost its marker"
    after = readme[readme.index(PACKAGE_MARKER) + len(PACKAGE_MARKER) :]
    match = re.match(r"\s*```python\n(.*?)```\s*It prints:\s*```text\n(.*?)```", after, re.DOTALL)
    assert match, "no ```python block and its ```text output right after the marker"
    return match.group(1), match.group(2)


def test_the_package_readme_example(tmp_path: Path) -> None:
    """The example on the package's own page, run as written in a fresh
    copy of examples/agent, prints what the page says."""
    code, expected = package_readme_example()
    repo = tmp_path / "agent"
    shutil.copytree(TOP / "examples" / "agent", repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "agent example")
    script = tmp_path / "package_readme_example.py"
    script.write_text(code)
    proc = run([str(script)], cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == expected
    assert (repo / "deployed.log").read_text().split() == ["staging", "1.0.1", "production", "1.0.1"]
