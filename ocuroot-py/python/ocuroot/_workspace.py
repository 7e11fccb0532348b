"""``Workspace``: an opened repository, the entry point of the package."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Literal, Optional, Tuple, Union, overload

from . import _ocuroot
from ._docs import StateRead
from ._push import IntentPush, PushOutcome
from ._store import Store
from ._types import (
    Event,
    FoundDeploy,
    IntentChange,
    Lint,
    NewRelease,
    Plan,
    ReleaseReport,
    ShellOutput,
    Todo,
    Triggered,
    WorkOutcome,
    _new_release,
)

__all__ = ["Workspace", "ShellCallback", "EventCallback"]

ShellCallback = Callable[
    [str, str, str, Dict[str, str]],
    Union[ShellOutput, Tuple[int, Union[str, bytes], Union[str, bytes]]],
]
"""``shell(command, shell, dir, env)``: run ``command`` with ``<shell> -c`` in
the directory ``dir`` with the extra environment variables ``env`` (on top of
the process environment), and return its exit code and output as a
:class:`ShellOutput` or a tuple ``(exit_code, stdout, stderr)``."""

EventCallback = Callable[[Event], object]
"""``events(event)``: live progress of releases."""


class Workspace:
    """An opened repository: run releases and read state.

    ``Workspace(path)`` finds the repository containing ``path`` (the nearest
    directory with a ``repo.ocu.star``, else the git work tree), evaluates
    ``repo.ocu.star`` and opens the stores. Relative package files and refs
    are resolved against ``path``.

    Args:
        path: a directory (or file) inside the repository.
        shell: runs every ``host.shell(...)`` command instead of a local
            process (see :data:`ShellCallback`). An exception it raises fails
            the command, and so the run, with the exception's type and
            message; it never escapes the release.
        store: keeps all state and intent (under the ``state/`` and
            ``intent/`` key prefixes) instead of the store ``repo.ocu.star``
            configures (see :class:`Store`; :class:`MemoryStore` keeps
            everything in memory). With ``intent_store`` too, it keeps state
            only, keys without a prefix.
        intent_store: keeps intent in a store of its own, keys without a
            prefix (with ``store``: as ``Workspace::builder(..).stores(state,
            intent)`` in Rust and both store setters in C).
        parallel: how many work items may run at once (default: the number
            of CPUs).
        max_attempts: how many times a cascade (:meth:`cascade`,
            :meth:`work_cascade`) runs a failing redeploy before it gives it
            up and reports it in :attr:`WorkOutcome.stopped` (default 3).
        run_lease: how long, in seconds, a claim on a run holds without
            being renewed (0.3 to 86400, a day; default: the ``OCUROOT_RUN_LEASE``
            environment variable, else 120). While a release runs, the
            workspace renews the leases of the runs it executes every third
            of this; once a claim's lease has expired (its agent died or
            lost the store), any agent running the release takes the run
            over and runs it again. :meth:`release_takeover` breaks claims
            without waiting for their leases.
        events: receives each :class:`Event` as releases run. What it
            raises goes to ``sys.unraisablehook``; it cannot stop a release.
        limit: limits the work methods (``work_*``) to one package or one
            release of it: ``"<package>"`` or ``"<package>/@<release or
            tag>"``, as :meth:`release_retry` takes it. Work on other refs
            (other packages, global intent such as ``@/custom/...``) is not
            found, applied or triggered.
        on_event: the former name of ``events`` (deprecated; removed in 0.3).

    Callbacks are called from the thread that called a method and from the
    engine's worker threads (at most ``parallel`` at once), never after the
    method returns. The GIL is released while the engine works, so other
    Python threads keep running. A callback should not call back into the
    workspace that is running it.

    Errors are raised as :class:`OcurootError` subclasses.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        shell: Optional[ShellCallback] = None,
        store: Optional[Store] = None,
        intent_store: Optional[Store] = None,
        parallel: Optional[int] = None,
        max_attempts: Optional[int] = None,
        run_lease: Optional[float] = None,
        events: Optional[EventCallback] = None,
        on_event: Optional[EventCallback] = None,
        limit: Optional[str] = None,
    ) -> None:
        if on_event is not None:
            warnings.warn(
                "Workspace(on_event=...) is now Workspace(events=...); "
                "on_event will be removed in 0.3",
                DeprecationWarning,
                stacklevel=2,
            )
            if events is not None:
                raise TypeError("give events or on_event, not both")
            events = on_event
        sink = None if events is None else _typed_events(events)
        self._native = _ocuroot.Workspace(
            os.fspath(path),
            shell=shell,
            store=store,
            intent_store=intent_store,
            parallel=parallel,
            max_attempts=max_attempts,
            run_lease=run_lease,
            events=sink,
            limit=limit,
        )

    @property
    def root(self) -> Path:
        """The repository root."""
        return self._native.root

    @property
    def name(self) -> str:
        """The repository name used in refs (``repo_alias``, or from the
        ``origin`` remote)."""
        return self._native.name

    @property
    def commit(self) -> str:
        """The commit work is done at: ``HEAD`` when the workspace was
        opened, read once; after a checkout, open a new workspace to work at
        the new ``HEAD``."""
        return self._native.commit

    def release_new(self, file: Union[str, os.PathLike[str]], force: bool = False) -> NewRelease:
        """Create a release of the package file at the current commit and run
        it until nothing more can run.

        Returns a :class:`ReleaseReport` for a package that declares a release, an
        :class:`NewReleaseEnvironments` for a file that registers environments
        (written to intent and applied), or an :class:`NewReleaseEmpty`. Failed
        work is reported in the result, not raised. Refuses (raising
        :class:`OcurootError`) when the package already has a release at this
        commit, unless ``force``.
        """
        return _new_release(self._native.release_new(os.fspath(file), force))

    def release_continue(self, release: str) -> ReleaseReport:
        """Run a release further (``<package>/@r<N>`` or ``<package>/@<tag>``),
        for example once the input it was blocked on exists."""
        return ReleaseReport.from_dict(self._native.release_continue(release))

    def release_retry(self, release: str) -> ReleaseReport:
        """Retry the failed work of a release and run it on. Without
        ``/@r<N>``, the latest release of the package at this commit."""
        return ReleaseReport.from_dict(self._native.release_retry(release))

    def release_takeover(self, release: str) -> ReleaseReport:
        """Break every claim on the running runs of a release now, whatever
        their leases say, and run it on. For a caller who knows the agents
        holding them are gone (a cancelled pipeline, a lost machine): an
        agent still running one of them has its outcome refused. Each run
        taken over is marked ``cancelled`` (its status marker records who
        held it, who took it over, when and why), a new run replaces it, and
        an :class:`Event` ``run_taken_over`` is sent. Without ``/@r<N>``,
        the latest release of the package at this commit. A release with no
        running run raises :class:`NothingToRetryError`."""
        return ReleaseReport.from_dict(self._native.release_takeover(release))

    def release_status(self, release: str) -> ReleaseReport:
        """The report of a release as it stands in state, the one
        :meth:`release_continue` returns, for a release at any commit:
        nothing is evaluated, run or written. ``<package>/@r<N>``,
        ``<package>/@<tag>``, or ``<package>`` alone for its latest release.
        An unknown release raises :class:`NotFoundError`."""
        return ReleaseReport.from_dict(self._native.release_status(release))

    def refresh(self) -> None:
        """Read the stores afresh: publish what this workspace deferred and
        fetch what other agents have written since. A git store otherwise
        reads from its last fetch for up to ``OCUROOT_GIT_FETCH_INTERVAL``
        seconds (5 by default), so a document another agent wrote a moment
        ago may read as ``None``; after this returns, reads see every change
        any agent had pushed before the call."""
        self._native.refresh()

    def state_gc(self, unused_for: float | timedelta = timedelta(days=14)) -> dict[str, Any]:
        """Pack the clones of this repository's git stores under
        ``OCUROOT_HOME`` (one pack each), and remove the other clones there
        that no command has used for ``unused_for`` (seconds or a
        ``timedelta``; 0 removes every other clone). Returns ``{"home",
        "packed": [{"clone", "objects", "bytes_before", "bytes_after"}],
        "removed": [clone, ...]}``."""
        seconds = unused_for.total_seconds() if isinstance(unused_for, timedelta) else unused_for
        return self._native.state_gc(float(seconds))

    def state_get(self, ref: str) -> Any:
        """The document at ``ref`` (or its ``#fragment``) in the state store,
        following links, as JSON values; ``None`` when absent."""
        return self._native.state_get(ref)

    def state_read(self, ref: str) -> Optional[StateRead]:
        """The document at ``ref`` in the state store, typed by what the ref
        names (links followed): a :class:`ReleaseDoc` (``<pkg>/@r<N>``), a
        :class:`RunDoc` (``<rel>/task/<name>/<n>``), a :class:`WorkDoc` (a
        task's or deploy's outcome, ``<rel>/deploy/<env>``), an
        :class:`Environment`, else the JSON value (custom state, a
        ``#fragment``); ``None`` when absent."""
        read = self._native.state_read(ref)
        return None if read is None else StateRead.from_dict(read)

    def state_match(self, *globs: str) -> list[str]:
        """The refs in the state store matching any of the globs, sorted
        (``*`` within a segment, ``**`` across segments, ``?``, ``[abc]``,
        ``{a,b}``)."""
        return self._native.state_match(*globs)

    def state_match_no_links(self, *globs: str) -> list[str]:
        """:meth:`state_match` without links and the refs reached through
        one: each document once, at its own ref."""
        return self._native.state_match_no_links(*globs)

    def state_set(self, ref: str, value: Any) -> str:
        """Write ``value`` (anything :func:`json.dumps` takes) to the intent
        store at ``ref``: custom state (``@/custom/<name>``,
        ``<package>/@[<release or tag>]/custom/<name>``), an environment
        (``@/environment/<name>``) or a deploy intent
        (``<package>/@/deploy/<environment>``). Returns the absolute ref
        written; :meth:`state_apply` makes state match it."""
        return self._native.state_set(ref, json.dumps(value, allow_nan=False))

    def state_delete(self, ref: str) -> str:
        """Remove ``ref`` from the intent store (applying that undoes it in
        state). Returns the absolute ref."""
        return self._native.state_delete(ref)

    def state_apply(self, ref: str) -> WorkOutcome:
        """Make state match the intent at ``ref``, running the work that
        creates in releases at the current commit."""
        return WorkOutcome.from_dict(self._native.state_apply(ref))

    def state_diff(self) -> list[IntentChange]:
        """The intent refs whose state differs, and how."""
        return [IntentChange.from_dict(c) for c in self._native.state_diff()]

    def find_deploys(self, start: str, end: str) -> list[FoundDeploy]:
        """``find-deploys``: the deployments of this repository's packages
        whose release was made at one of the commits from ``start`` to
        ``end``, both included (either may be the older; any revision git
        takes names one), newest commit first, then by ref. A commit the
        repository lacks raises :class:`NotFoundError`; nothing is fetched."""
        return [FoundDeploy.from_dict(d) for d in self._native.find_deploys(start, end)]

    def state_checkpoint(self) -> None:
        """Bring the stores' files up to date for tools that read them
        directly (a directory store writes its log back)."""
        self._native.state_checkpoint()

    @overload
    def work_continue(self, dryrun: Literal[False] = False) -> WorkOutcome: ...
    @overload
    def work_continue(self, dryrun: Literal[True]) -> list[Todo]: ...
    @overload
    def work_continue(self, dryrun: bool) -> Union[WorkOutcome, list[Todo]]: ...

    def work_continue(self, dryrun: bool = False) -> Union[WorkOutcome, list[Todo]]:
        """Run the ready runs and redeploys of releases at the current
        commit. With ``dryrun``, changes nothing and returns the work."""
        return _work(self._native.work_continue(dryrun))

    @overload
    def work_ops(self, dryrun: Literal[False] = False) -> WorkOutcome: ...
    @overload
    def work_ops(self, dryrun: Literal[True]) -> list[Todo]: ...
    @overload
    def work_ops(self, dryrun: bool) -> Union[WorkOutcome, list[Todo]]: ...

    def work_ops(self, dryrun: bool = False) -> Union[WorkOutcome, list[Todo]]:
        """Run the ``check_envs`` ops new environments left on releases at
        the current commit (they add pending deploys). With ``dryrun``,
        changes nothing and returns the work."""
        return _work(self._native.work_ops(dryrun))

    @overload
    def work_any(self, dryrun: Literal[False] = False) -> WorkOutcome: ...
    @overload
    def work_any(self, dryrun: Literal[True]) -> list[Todo]: ...
    @overload
    def work_any(self, dryrun: bool) -> Union[WorkOutcome, list[Todo]]: ...

    def work_any(self, dryrun: bool = False) -> Union[WorkOutcome, list[Todo]]:
        """Apply intent that differs from state, then run ops, then ready
        runs and redeploys, at the current commit. With ``dryrun``, changes
        nothing and returns the work."""
        return _work(self._native.work_any(dryrun))

    def work_any_comprehensive(self) -> WorkOutcome:
        """:meth:`work_any` round after round until nothing is left."""
        return WorkOutcome.from_dict(self._native.work_any_comprehensive())

    def release_lint(self, file: Union[str, os.PathLike[str]]) -> Lint:
        """Evaluate a package file without touching state or running
        anything: its phases and work, or the environments it registers."""
        return Lint.from_dict(self._native.release_lint(os.fspath(file)))

    def lint(self, file: Union[str, os.PathLike[str]]) -> Lint:
        """Deprecated name of :meth:`release_lint` (removed in 0.3)."""
        warnings.warn(
            "Workspace.lint is now Workspace.release_lint; lint will be removed in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.release_lint(file)

    def push(self, dryrun: bool = False) -> PushOutcome:
        """Release the package files changed since the last push (every
        package file the first time), then follow what they changed as
        :meth:`cascade` does, and record the push. Refuses while the work
        tree has uncommitted or untracked changes. With ``dryrun``, only list
        the packages."""
        return PushOutcome.from_dict(self._native.push(dryrun))

    def push_intent(self, dryrun: bool = False) -> IntentPush:
        """``push`` in a checkout of an intent branch: apply the intent
        changed since the last such push (all of it the first time) and
        record the push."""
        return IntentPush.from_dict(self._native.push_intent(dryrun))

    @overload
    def work_cascade(self, dryrun: Literal[False] = False) -> WorkOutcome: ...
    @overload
    def work_cascade(self, dryrun: Literal[True]) -> list[Todo]: ...
    @overload
    def work_cascade(self, dryrun: bool) -> Union[WorkOutcome, list[Todo]]: ...

    def work_cascade(self, dryrun: bool = False) -> Union[WorkOutcome, list[Todo]]:
        """Do everything outstanding (intent, ready runs, redeploys of
        deployments whose inputs changed) at every commit, each in a checkout
        of its commit (a temporary git worktree for another commit of this
        repository), round after round until nothing is left.

        Returns the :class:`WorkOutcome`; failed work (``outcome.failed``) is
        reported, not raised. With ``dryrun``, changes nothing and returns
        the work the first round would do, in dependency order.
        """
        return _work(self._native.work_cascade(dryrun))

    def cascade(self) -> WorkOutcome:
        """Follow what this workspace changed since its last cascade (the
        releases :meth:`release_new` ran) to every deployment that reads it,
        each at its own commit, until nothing is left. Failed work is
        reported in the outcome, not raised."""
        return WorkOutcome.from_dict(self._native.cascade())

    @overload
    def plan(self, format: Literal["json"] = "json") -> Plan: ...
    @overload
    def plan(self, format: Literal["mermaid", "dot"]) -> str: ...
    @overload
    def plan(self, format: str) -> Union[Plan, str]: ...

    def plan(self, format: str = "json") -> Union[Plan, str]:
        """The outstanding work everywhere in dependency order, each item with
        why it would run or what it waits for, and the dependency graph of
        the latest release of every package; runs nothing.

        ``"json"`` gives a :class:`Plan`; ``"mermaid"`` and ``"dot"`` the
        graph as a Mermaid flowchart or a Graphviz digraph (``str``). Another
        format raises :class:`ValueError`; a dependency cycle an
        :class:`OcurootError` naming every node on it.
        """
        result = self._native.plan(format)
        if isinstance(result, str):
            return result
        return Plan.from_dict(result)

    def work_trigger(self, dryrun: bool = False) -> list[Triggered]:
        """Call ``repo.ocu.star``'s ``trigger(commit)`` for each commit with
        outstanding work, so that a CI system starts work there; with
        ``dryrun``, only list those commits. A failing trigger does not stop
        the others: its :class:`Triggered` says ``failed``."""
        return [Triggered.from_dict(t) for t in self._native.work_trigger(dryrun)]

    def work_trigger_intent(self, dryrun: bool = False) -> list[Triggered]:
        """Call the trigger of every repository state knows, at its latest
        recorded commit (with ``dryrun``, only list them): how a push to an
        intent branch reaches each repository's CI."""
        return [Triggered.from_dict(t) for t in self._native.work_trigger_intent(dryrun)]

    def __repr__(self) -> str:
        return f"ocuroot.Workspace(root={str(self.root)!r}, name={self.name!r})"


def _work(result: Any) -> Union[WorkOutcome, list[Todo]]:
    """A ``work`` result: the work planned (a list) or the outcome."""
    if isinstance(result, list):
        return [Todo.from_dict(t) for t in result]
    return WorkOutcome.from_dict(result)


def _typed_events(events: EventCallback) -> Callable[[Dict[str, Any]], object]:
    """The native module's event callback: ``events`` given :class:`Event`s."""
    if not callable(events):
        raise TypeError(f"events must be callable, not {type(events).__name__}")

    def sink(event: Mapping[str, Any]) -> object:
        return events(Event.from_dict(event))

    return sink
