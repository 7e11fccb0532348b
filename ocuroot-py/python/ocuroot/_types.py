"""Typed results: frozen dataclasses built from the engine's JSON forms.

Every class has ``from_dict`` (from the JSON form) and ``to_dict`` (back to
plain ``dict``/``list`` values, ready for ``json.dumps``);
``X.from_dict(x.to_dict()) == x``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional, Tuple, Union, cast

__all__ = [
    "ShellOutput",
    "WorkReport",
    "ReleaseReport",
    "Environment",
    "IntentChange",
    "FoundDeploy",
    "WorkOutcome",
    "Todo",
    "GraphNode",
    "Plan",
    "Triggered",
    "NewReleaseEnvironments",
    "NewReleaseEmpty",
    "NewRelease",
    "PlannedWork",
    "Phase",
    "Package",
    "Lint",
    "LogLine",
    "Agent",
    "Event",
    "ReleaseStatus",
    "WorkState",
    "RunStatus",
    "TodoKind",
    "TriggerStatus",
]

ReleaseStatus = Literal["complete", "failed", "blocked", "paused", "running", "pending"]
"""The overall state of a release."""

WorkState = Literal["complete", "failed", "blocked", "paused", "running", "waiting", "pending"]
"""Where one work item of a release stands."""

RunStatus = Literal[
    "pending", "running", "paused", "complete", "failed", "failed_retried", "cancelled"
]
"""The status of one run."""

TodoKind = Literal["create", "update", "delete", "run", "op"]
"""What a piece of outstanding work is: intent to apply (``create``,
``update``, ``delete``), a run or redeploy (``run``), or a release to check
for environments added since it was created (``op``)."""

TriggerStatus = Literal["planned", "called", "no_trigger", "failed"]
"""What happened to a commit's trigger."""


def _json(value: Any) -> Any:
    """``value`` as plain JSON-compatible Python values."""
    if isinstance(value, _Model):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    return value


class _Model:
    """``to_dict`` for the dataclasses below: every field, recursively."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as plain ``dict``, ``list``, ``str``, numbers and ``None``."""
        fields = dataclasses.fields(cast(Any, self))
        return {f.name: _json(getattr(self, f.name)) for f in fields}


@dataclass(frozen=True)
class ShellOutput(_Model):
    """What a ``shell`` callback returns: the exit status and the output
    (``str``, or ``bytes`` decoded as UTF-8)."""

    exit_code: int
    stdout: Union[str, bytes] = ""
    stderr: Union[str, bytes] = ""


@dataclass(frozen=True)
class WorkReport(_Model):
    """One work item (a task or a deploy) in a :class:`ReleaseReport`."""

    path: str
    """``task/<name>`` or ``deploy/<environment>``."""
    phase: int
    """The index of its phase (0-based)."""
    phase_name: str
    """The phase's name (empty for work outside any phase)."""
    state: WorkState
    """Where it stands."""
    run: Optional[int] = None
    """The latest run's number."""
    run_ref: Optional[str] = None
    """The latest run's ref."""
    duration_ms: Optional[int] = None
    """How long the latest run took, if it finished."""
    error: Optional[str] = None
    """The failure message, if it failed (for an evaluation error,
    Starlark's rendering with the traceback and source snippet)."""
    waiting_for: Tuple[str, ...] = ()
    """The refs it waits for, if blocked or paused."""
    summary: Optional[str] = None
    """The failure in one line (``./deploy.sh prod: exit status 1``), if it failed."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkReport:
        return cls(
            path=d["path"],
            phase=d["phase"],
            phase_name=d["phase_name"],
            state=d["state"],
            run=d.get("run"),
            run_ref=d.get("run_ref"),
            duration_ms=d.get("duration_ms"),
            error=d.get("error"),
            waiting_for=tuple(d.get("waiting_for", ())),
            summary=d.get("summary"),
        )


@dataclass(frozen=True)
class ReleaseReport(_Model):
    """What ``release_new`` (for a release), ``release_continue`` and
    ``release_retry`` return: the release and where each work item stands."""

    kind: ClassVar[Literal["release"]] = "release"

    release: str
    """The release ref (``<repo>/-/<package>/@r<N>``)."""
    commit: str
    """The commit the release belongs to."""
    status: ReleaseStatus
    """The overall status."""
    work: Tuple[WorkReport, ...]
    """Every work item, in phase order."""

    @property
    def failed(self) -> bool:
        """Whether some work failed (the CLI exits 1)."""
        return self.status == "failed"

    def item(self, path: str) -> WorkReport:
        """The work item at ``path`` (``task/build``, ``deploy/staging``)."""
        for w in self.work:
            if w.path == path:
                return w
        raise KeyError(path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReleaseReport:
        return cls(
            release=d["release"],
            commit=d["commit"],
            status=d["status"],
            work=tuple(WorkReport.from_dict(w) for w in d["work"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **super().to_dict()}


@dataclass(frozen=True)
class Environment(_Model):
    """An environment: a name and free-form attributes."""

    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Environment:
        return cls(name=d["name"], attributes=dict(d.get("attributes", {})))


@dataclass(frozen=True)
class IntentChange(_Model):
    """One intent ref applied to state, and how."""

    ref: str
    change: Literal["create", "update", "delete"]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IntentChange:
        return cls(ref=d["ref"], change=d["change"])


@dataclass(frozen=True)
class FoundDeploy(_Model):
    """A deployment :meth:`Workspace.find_deploys` found."""

    ref: str
    """The deployment: ``<pkg>/@/deploy/<env>``."""
    release: str
    """The release deployed there, ``<pkg>/@r<N>``."""
    commit: str
    """The commit that release was made at."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoundDeploy:
        return cls(ref=d["ref"], release=d["release"], commit=d["commit"])


@dataclass(frozen=True)
class OpReport(_Model):
    """What running an ``op/check_envs`` did: the deploys it added to its
    release, as pending runs."""

    ref: str
    """The op (``<release>/op/check_envs``)."""
    added: Tuple[str, ...] = ()
    """The runs it added (``<release>/deploy/<env>/1``)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpReport:
        return cls(ref=d["ref"], added=tuple(d.get("added", ())))


@dataclass(frozen=True)
class WorkOutcome(_Model):
    """What applying intent or a cascade did: the intent applied, the ops
    run, the releases that ran, the work left for later and (cascades) the
    rounds done and the work given up."""

    applied: Tuple[IntentChange, ...] = ()
    ops: Tuple[OpReport, ...] = ()
    """The ``op/check_envs`` run (a new environment's deploys added)."""
    releases: Tuple[ReleaseReport, ...] = ()
    """The report of each release that ran (its latest, when it ran more
    than once)."""
    deferred: Tuple[str, ...] = ()
    """Work left for later, and why."""
    rounds: int = 0
    """Cascades: the rounds done."""
    stopped: Tuple[str, ...] = ()
    """Cascades: why work was given up (a redeploy that kept failing, too
    many rounds)."""
    triggered: Tuple[Triggered, ...] = ()
    """``work any``: the triggers called afterwards for commits that still
    have work."""

    @property
    def failed(self) -> bool:
        """Whether work was given up or any release that ran has failed work."""
        return bool(self.stopped) or any(r.failed for r in self.releases)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkOutcome:
        return cls(
            applied=tuple(IntentChange.from_dict(c) for c in d.get("applied", ())),
            ops=tuple(OpReport.from_dict(o) for o in d.get("ops", ())),
            releases=tuple(ReleaseReport.from_dict(r) for r in d.get("releases", ())),
            deferred=tuple(d.get("deferred", ())),
            rounds=d.get("rounds", 0),
            stopped=tuple(d.get("stopped", ())),
            triggered=tuple(Triggered.from_dict(t) for t in d.get("triggered", ())),
        )


@dataclass(frozen=True)
class Todo(_Model):
    """One piece of outstanding work, as ``work_cascade(dryrun=True)`` and
    ``plan()`` list it."""

    ref: str
    """The intent ref, run ref or deployment (``<release>/deploy/<env>``)."""
    work_type: TodoKind
    """What kind of work."""
    commit: Optional[str] = None
    """The commit it must be done at (runs and redeploys)."""
    reason: str = ""
    """Why: ``pending``, ``paused``, or the inputs that changed."""
    waits_for: Tuple[str, ...] = ()
    """What it waits for (plans only): refs that do not exist yet, earlier
    phases, a failure to retry. Empty when it can be done now."""

    @property
    def ready(self) -> bool:
        """Whether it can be done now (it waits for nothing)."""
        return not self.waits_for

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Todo:
        return cls(
            ref=d["ref"],
            work_type=d["work_type"],
            commit=d.get("commit"),
            reason=d.get("reason", ""),
            waits_for=tuple(d.get("waits_for", ())),
        )


@dataclass(frozen=True)
class GraphNode(_Model):
    """A node of a :class:`Plan`'s dependency graph (a package's task or
    deploy, an environment, custom state...) and the nodes it reads."""

    node: str
    depends_on: Tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GraphNode:
        return cls(node=d["node"], depends_on=tuple(d.get("depends_on", ())))


@dataclass(frozen=True)
class Plan(_Model):
    """What ``Workspace.plan()`` returns: the outstanding work everywhere in
    dependency order, and the dependency graph of the latest release of
    every package it was ordered by."""

    work: Tuple[Todo, ...]
    """Every item, dependencies first; ready ones wait for nothing."""
    graph: Tuple[GraphNode, ...]
    """Every node with what it depends on."""

    @property
    def ready(self) -> Tuple[Todo, ...]:
        """The work that can be done now."""
        return tuple(t for t in self.work if t.ready)

    def depends_on(self, node: str) -> Tuple[str, ...]:
        """What ``node`` depends on."""
        for n in self.graph:
            if n.node == node:
                return n.depends_on
        raise KeyError(node)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            work=tuple(Todo.from_dict(t) for t in d["work"]),
            graph=tuple(GraphNode.from_dict(n) for n in d["graph"]),
        )


@dataclass(frozen=True)
class Triggered(_Model):
    """One commit with outstanding work and what ``Workspace.work_trigger``
    did with its repository's ``trigger(commit)``."""

    repo: str
    """The repository."""
    commit: str
    """The commit."""
    status: TriggerStatus
    """``planned`` (dry run), ``called``, ``no_trigger`` (the repository's
    ``repo.ocu.star`` has none) or ``failed``."""
    log: Tuple[str, ...] = ()
    """What the trigger printed."""
    error: Optional[str] = None
    """Why it failed."""

    @property
    def failed(self) -> bool:
        """Whether evaluating the file or calling the trigger failed."""
        return self.status == "failed"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Triggered:
        return cls(
            repo=d["repo"],
            commit=d["commit"],
            status=d["status"],
            log=tuple(d.get("log", ())),
            error=d.get("error"),
        )


@dataclass(frozen=True)
class NewReleaseEnvironments(_Model):
    """What ``release_new`` returns for a file that registers environments:
    they were written to intent and applied to state."""

    kind: ClassVar[Literal["environments"]] = "environments"

    environments: Tuple[Environment, ...]
    """The environments the file registers."""
    outcome: WorkOutcome
    """What applying them did: a new environment leaves an
    ``op/check_envs`` on the latest release of each package, listed in
    ``deferred``."""

    @property
    def failed(self) -> bool:
        """Whether a release run by applying the environments failed."""
        return self.outcome.failed

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NewReleaseEnvironments:
        return cls(
            environments=tuple(Environment.from_dict(e) for e in d["environments"]),
            outcome=WorkOutcome.from_dict(d["outcome"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **super().to_dict()}


@dataclass(frozen=True)
class NewReleaseEmpty(_Model):
    """What ``release_new`` returns for a file that declares neither a
    release nor environments."""

    kind: ClassVar[Literal["empty"]] = "empty"

    @property
    def failed(self) -> bool:
        """Always ``False``: nothing ran."""
        return False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NewReleaseEmpty:
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


NewRelease = Union[ReleaseReport, NewReleaseEnvironments, NewReleaseEmpty]
"""What ``Workspace.release_new`` returns, told apart by ``isinstance`` or
``kind``."""


def _new_release(d: Mapping[str, Any]) -> NewRelease:
    kind = d["kind"]
    if kind == "release":
        return ReleaseReport.from_dict(d)
    if kind == "environments":
        return NewReleaseEnvironments.from_dict(d)
    if kind == "empty":
        return NewReleaseEmpty()
    raise ValueError(f"unknown release_new result kind {kind!r}")


@dataclass(frozen=True)
class PlannedWork(_Model):
    """A work item as a package file declares it (see :class:`Lint`)."""

    kind: Literal["task", "deploy"]
    name: str
    """The task's name, or the deploy's environment."""
    inputs: Mapping[str, Mapping[str, Any]]
    """Inputs by parameter name: ``{"ref": ..., "default": ...}`` (read from
    state, relative refs resolved) or ``{"value": ...}``."""
    spec: Mapping[str, Any]
    """The whole declaration: for a task ``name``, ``fn`` and ``inputs``;
    for a deploy ``environment``, ``up``, ``down`` and ``inputs``."""

    @property
    def path(self) -> str:
        """``task/<name>`` or ``deploy/<environment>``, as in reports."""
        return f"{self.kind}/{self.name}"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannedWork:
        if len(d) != 1 or next(iter(d)) not in ("task", "deploy"):
            raise ValueError(f"a work item is {{'task': ...}} or {{'deploy': ...}}, not {d!r}")
        kind: Literal["task", "deploy"] = "task" if "task" in d else "deploy"
        spec = d[kind]
        name = spec["name"] if kind == "task" else spec["environment"]
        return cls(kind=kind, name=name, inputs=dict(spec.get("inputs", {})), spec=dict(spec))

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: _json(self.spec)}


@dataclass(frozen=True)
class Phase(_Model):
    """A phase: work that may run in parallel, after the phases before it."""

    name: str
    work: Tuple[PlannedWork, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Phase:
        return cls(
            name=d.get("name", ""),
            work=tuple(PlannedWork.from_dict(w) for w in d.get("tasks", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tasks": _json(self.work)}


@dataclass(frozen=True)
class Package(_Model):
    """The release process a package file describes."""

    phases: Tuple[Phase, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Package:
        return cls(phases=tuple(Phase.from_dict(p) for p in d.get("phases", ())))


@dataclass(frozen=True)
class Lint(_Model):
    """What ``Workspace.lint`` returns: the evaluated file, touching no state."""

    file: str
    """The package file, relative to the repository root."""
    base: str
    """The ref relative refs were resolved against (the release
    ``release_new`` would create next)."""
    package: Optional[Package] = None
    """The release the file declares, if it does."""
    environments: Optional[Tuple[Environment, ...]] = None
    """The environments the file registers, if it does."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lint:
        package = d.get("package")
        environments = d.get("environments")
        return cls(
            file=d["file"],
            base=d["base"],
            package=None if package is None else Package.from_dict(package),
            environments=(
                None
                if environments is None
                else tuple(Environment.from_dict(e) for e in environments)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "base": self.base}
        if self.package is not None:
            d["package"] = self.package.to_dict()
        if self.environments is not None:
            d["environments"] = _json(self.environments)
        return d


@dataclass(frozen=True)
class LogLine(_Model):
    """A line of a run's log."""

    timestamp: int
    """Milliseconds since the Unix epoch."""
    stream: Literal["stdout", "stderr"]
    message: str
    """The text, with secrets masked."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogLine:
        return cls(timestamp=d["timestamp"], stream=d["stream"], message=d["message"])


@dataclass(frozen=True)
class Agent(_Model):
    """A process on a host that claims runs (the holder of a claim a
    ``run_taken_over`` :class:`Event` broke).

    Only ``host`` and ``pid`` are always known: claims recorded by older
    versions, and agents on systems without ``/proc``, lack the rest.
    """

    host: str
    """The host name."""
    pid: int
    """The process id, in the agent's own PID namespace."""
    boot: Optional[str] = None
    """The kernel's boot id (a pid means nothing across boots)."""
    pid_ns: Optional[int] = None
    """The inode of the agent's PID namespace."""
    started: Optional[int] = None
    """When the process started, in clock ticks after boot."""
    id: Optional[str] = None
    """A random id of the agent, unique across machines."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Agent:
        return cls(
            host=d["host"],
            pid=d["pid"],
            boot=d.get("boot"),
            pid_ns=d.get("pid_ns"),
            started=d.get("started"),
            id=d.get("id"),
        )

    def to_dict(self) -> dict[str, Any]:
        # The fields not known are left out, as the engine leaves them out.
        return {k: v for k, v in super().to_dict().items() if v is not None}


@dataclass(frozen=True)
class Event(_Model):
    """Live progress of a release, given to ``on_event``.

    ``event`` is ``"release_started"`` (with ``release``, ``total``,
    ``complete`` and ``failed``: a release's work items, and how many are
    complete or failed already; sent each time an operation starts running
    a release, before any of its runs starts), ``"run_started"`` (with
    ``release`` and ``run``), ``"log"`` (with ``line``),
    ``"run_finished"`` (with ``release``, ``run``, ``status``,
    ``duration_ms`` and ``error``) or ``"run_taken_over"`` (a run another
    agent had claimed was taken over: its lease expired, its agent's
    process is gone, or :meth:`Workspace.release_takeover` broke the claim;
    with ``release``, ``run``, ``new_run``, ``holder`` and ``reason``);
    ``work`` is set for every event but ``release_started``.
    """

    event: Literal["release_started", "run_started", "log", "run_finished", "run_taken_over"]
    work: Optional[str] = None
    """``task/<name>`` or ``deploy/<environment>``."""
    release: Optional[str] = None
    run: Optional[int] = None
    status: Optional[RunStatus] = None
    duration_ms: Optional[int] = None
    error: Optional[str] = None
    line: Optional[LogLine] = None
    total: Optional[int] = None
    """``release_started``: the release's work items."""
    complete: Optional[int] = None
    """``release_started``: how many are complete already."""
    failed: Optional[int] = None
    """``release_started``: how many have failed."""
    new_run: Optional[int] = None
    """``run_taken_over``: the run that replaces the one taken over
    (``run``), pending."""
    holder: Optional[Agent] = None
    """``run_taken_over``: the agent whose claim it was, if known."""
    reason: Optional[str] = None
    """``run_taken_over``: why it could be taken over."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        line = d.get("line")
        holder = d.get("holder")
        return cls(
            event=d["event"],
            work=d.get("work"),
            release=d.get("release"),
            run=d.get("run"),
            status=d.get("status"),
            duration_ms=d.get("duration_ms"),
            error=d.get("error"),
            line=None if line is None else LogLine.from_dict(line),
            total=d.get("total"),
            complete=d.get("complete"),
            failed=d.get("failed"),
            new_run=d.get("new_run"),
            holder=None if holder is None else Agent.from_dict(holder),
            reason=d.get("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        # Only the fields this kind of event has, as the engine sends them.
        d = super().to_dict()
        keep = {
            "release_started": ("event", "release", "total", "complete", "failed"),
            "run_started": ("event", "release", "work", "run"),
            "log": ("event", "work", "line"),
            "run_finished": ("event", "release", "work", "run", "status", "duration_ms", "error"),
            "run_taken_over": ("event", "release", "work", "run", "new_run", "holder", "reason"),
        }[self.event]
        return {k: d[k] for k in keep}
