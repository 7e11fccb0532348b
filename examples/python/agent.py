#!/usr/bin/env python3
"""A deploy tool in Python: state in SQLite, commands through subprocess.

It copies examples/agent into a fresh git repository and drives it through
the library: a release whose staging deploy fails once and is retried, an
approval written through intent, a typed read of a deploy's outputs, a
second release, and a rollback through a deploy intent. State and intent
live in two SQLite databases (``SqliteStore``, a complete store in ~50
lines), commands run through ``shell``.

    python examples/python/agent.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional, Sequence, Tuple

import ocuroot

AGENT = Path(__file__).resolve().parent.parent / "agent"
PKG = "agent/-/release.ocu.star"
GIT = ["git", "-c", "user.name=agent", "-c", "user.email=agent@example.invalid"]


class SqliteStore:
    """An :class:`ocuroot.Store` in one SQLite table: every batch is one
    SQLite transaction, so it is applied whole or not at all, and a
    version is a counter that grows with every write."""

    def __init__(self, path: Path) -> None:
        # The engine calls stores from its worker threads: one connection,
        # used under a lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, version INTEGER)"
        )

    def get(self, key: str) -> Optional[Tuple[bytes, int]]:
        with self._lock:
            row = self._db.execute("SELECT value, version FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix)
            ).fetchall()
        return [r[0] for r in rows]

    def commit(self, ops: Sequence[ocuroot.Op]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    row = self._db.execute("SELECT version FROM kv WHERE key = ?", (op.key,))
                    found = row.fetchone()
                    now = None if found is None else int(found[0])
                    if op.expect == "absent" and now is not None or (
                        isinstance(op.expect, int) and op.expect != now
                    ):
                        raise ocuroot.ConflictError(
                            f"conflict on {op.key}: expected {op.expect}, found {now}"
                        )
                    if op.kind == "put":
                        self._db.execute(
                            "INSERT OR REPLACE INTO kv VALUES (?, ?, "
                            "(SELECT coalesce(max(version), 0) + 1 FROM kv))",
                            (op.key, op.value),
                        )
                    elif op.kind == "delete":
                        self._db.execute("DELETE FROM kv WHERE key = ?", (op.key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def shell(command: str, shell: str, dir: str, env: dict[str, str]) -> ocuroot.ShellOutput:
    """Run ``command`` with ``<shell> -c`` in ``dir``, as the local host would."""
    proc = subprocess.run(
        [shell, "-c", command],
        cwd=dir,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    return ocuroot.ShellOutput(proc.returncode, proc.stdout, proc.stderr)


def item(report: ocuroot.ReleaseReport, path: str) -> ocuroot.WorkReport:
    return next(w for w in report.work if w.path == path)


def approve(ws: ocuroot.Workspace, release: str, by: str) -> ocuroot.ReleaseReport:
    """Approve ``release`` through intent, then run it on."""
    ref = ws.state_set(f"{release}/custom/approval", by)
    ws.state_apply(ref)
    return ws.release_continue(release)


def production(ws: ocuroot.Workspace) -> ocuroot.WorkDoc:
    """The production deploy's outcome, read typed."""
    read = ws.state_read(f"{PKG}/@/deploy/production")
    assert read is not None and isinstance(read.document, ocuroot.WorkDoc), read
    return read.document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the repository")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ocuroot-agent-"))
    shutil.copytree(AGENT, work, dirs_exist_ok=True)
    subprocess.run([*GIT, "init", "-q"], cwd=work, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=work, check=True)
    subprocess.run([*GIT, "commit", "-qm", "agent example"], cwd=work, check=True)
    stores = work / ".ocuroot"
    stores.mkdir()
    ws = ocuroot.Workspace(
        work,
        shell=shell,
        store=SqliteStore(stores / "state.db"),
        intent_store=SqliteStore(stores / "intent.db"),
    )

    ws.release_new("environments.ocu.star")
    print("environments registered")

    (work / ".fail-next-deploy").touch()
    first = ws.release_new("release.ocu.star")
    assert isinstance(first, ocuroot.ReleaseReport) and first.status == "failed", first
    print(f"staging failed: {item(first, 'deploy/staging').summary}")

    retried = ws.release_retry(first.release)
    prod = item(retried, "deploy/production")
    print(f"retried: staging {item(retried, 'deploy/staging').state}, "
          f"production {prod.state} on {', '.join(prod.waiting_for)}")

    done = approve(ws, first.release, "alice")
    print(f"approved: release {done.status}")
    print(f"production runs {production(ws).output['version']}")

    second = ws.release_new("release.ocu.star", force=True)
    assert isinstance(second, ocuroot.ReleaseReport), second
    approve(ws, second.release, "bob")
    print(f"second release: production runs {production(ws).output['version']}")

    # Roll back: a deploy intent naming the first release, with the inputs
    # its production deploy had.
    earlier = ws.state_read(f"{first.release}/deploy/production")
    assert earlier is not None and isinstance(earlier.document, ocuroot.WorkDoc)
    intent = ws.state_set(
        f"{PKG}/@/deploy/production",
        {"release": first.release, "input": dict(earlier.document.input)},
    )
    ws.state_apply(intent)
    now = production(ws)
    print(f"rolled back: production runs {now.output['version']} from {now.release}")

    print("deployed.log: " + " | ".join((work / "deployed.log").read_text().splitlines()))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
