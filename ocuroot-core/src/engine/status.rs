//! Refs of runs and their status markers.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde_json::json;

use super::EngineContext;
use crate::model::{RunDoc, RunFunction, RunStatus, RunType, StatusMarker, parse_doc};
use crate::refs::{KeyedRef, Ref, SubPathType, WorkPath};
use crate::store::{RefStore, Transaction};
use crate::{Error, Result};

/// `<pkg>/@/task/<name>`: the link to the latest successful run's work doc.
pub(crate) fn current_ref(rel: &Ref, work: &WorkPath) -> Ref {
    work.in_release(&rel.package().with_release(""))
}

/// `<rel>/<work>/<n>`.
pub(crate) fn run_ref(rel: &Ref, work: &WorkPath, n: u32) -> Ref {
    rel.with_subpath(work.subpath_type(), &format!("{}/{n}", work.name()))
}

/// `<run>/status/<status>`.
pub(crate) fn status_ref(run: &Ref, status: RunStatus) -> Ref {
    run.with_subpath(
        run.subpath_type.unwrap_or(SubPathType::Task),
        &format!("{}/status/{}", run.subpath, status),
    )
}

/// The latest run of one work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Latest {
    pub run: u32,
    pub status: RunStatus,
}

/// The latest run (highest number) of every work item of a release that has
/// one, with its status.
pub(crate) fn load_statuses(state: &RefStore, rel: &Ref) -> Result<BTreeMap<WorkPath, Latest>> {
    latest_by_item(state, rel, &format!("{rel}/{{task,deploy}}/*/*/status/*"))
}

/// The latest run of each work item of `rel` among the status markers
/// `glob` lists (`<rel>/<kind>/<name>/<n>/status/<status>`).
fn latest_by_item(state: &RefStore, rel: &Ref, glob: &str) -> Result<BTreeMap<WorkPath, Latest>> {
    let prefix = format!("{rel}/");
    let mut out: BTreeMap<WorkPath, Latest> = BTreeMap::new();
    for r in state.match_globs(&[glob])? {
        let Some(rest) = r.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [kind, name, n, "status", status] = parts.as_slice() else {
            continue;
        };
        let (Ok(n), Ok(status)) = (n.parse::<u32>(), status.parse::<RunStatus>()) else {
            continue;
        };
        let path = match *kind {
            "task" => WorkPath::task(*name),
            _ => WorkPath::deploy(*name),
        };
        match out.get(&path) {
            Some(l) if l.run > n => {}
            _ => {
                out.insert(path, Latest { run: n, status });
            }
        }
    }
    Ok(out)
}

/// A run's ref and the refs derived from it (status markers, logs), each
/// with its store key computed once: a claim or an outcome uses them
/// several times.
pub(crate) struct RunRefs {
    /// `<rel>/<work>/<n>`.
    pub run: KeyedRef,
    /// `<run>/status/<status>`, by position in [`RunStatus::ALL`], made when
    /// first needed.
    markers: [OnceCell<KeyedRef>; RunStatus::ALL.len()],
}

impl RunRefs {
    /// The refs of `run`.
    pub fn new(run: &Ref) -> Result<RunRefs> {
        Ok(RunRefs {
            run: KeyedRef::new(run.clone())?,
            markers: Default::default(),
        })
    }

    /// `<run>/status/<status>` (as [`status_ref`]).
    pub fn marker(&self, status: RunStatus) -> Result<&KeyedRef> {
        let i = RunStatus::ALL
            .iter()
            .position(|s| *s == status)
            .expect("every status is in ALL");
        if let Some(marker) = self.markers[i].get() {
            return Ok(marker);
        }
        let marker = self.run.join(&format!("status/{status}"))?;
        Ok(self.markers[i].get_or_init(|| marker))
    }

    /// `<run>/logs`.
    pub fn logs(&self) -> Result<KeyedRef> {
        self.run.join("logs")
    }
}

/// The status of one run, read inside a transaction (so the commit fails if
/// it changes meanwhile).
///
/// Exactly one marker exists per run; the first one found in
/// [`RunStatus::ALL`] order is the answer. The markers up to the last of the
/// `likely` statuses, and `also`, are read in one snapshot: one store round
/// trip, and no window in which another agent's status change could be half
/// seen. Only when none of them exists are the remaining markers read (the
/// commit still checks everything read, so the answer is as consistent).
pub(crate) fn status_in(
    tx: &mut Transaction<'_>,
    run: &RunRefs,
    likely: &[RunStatus],
    also: &[&KeyedRef],
) -> Result<Option<RunStatus>> {
    let all = RunStatus::ALL;
    let split = all
        .iter()
        .rposition(|s| likely.contains(s))
        .map_or(all.len(), |i| i + 1);
    for (statuses, also) in [(&all[..split], also), (&all[split..], &[][..])] {
        if statuses.is_empty() {
            continue;
        }
        let mut refs = statuses
            .iter()
            .map(|s| run.marker(*s))
            .collect::<Result<Vec<&KeyedRef>>>()?;
        refs.extend_from_slice(also);
        tx.prefetch(&refs)?;
        for (s, marker) in statuses.iter().zip(&refs) {
            if tx.exists(marker)? {
                return Ok(Some(*s));
            }
        }
    }
    Ok(None)
}

/// Replace a run's status marker inside a transaction.
pub(crate) fn set_status(
    tx: &mut Transaction<'_>,
    run: &RunRefs,
    from: RunStatus,
    to: RunStatus,
    marker: StatusMarker,
) -> Result<()> {
    tx.delete(run.marker(from)?)?;
    tx.create(run.marker(to)?, serde_json::to_value(marker)?)
}

/// Replace run `old` (now `from`) with `next`, inside a transaction: `old`
/// becomes `to` with `marker` (whose `retried_by` is set to `next`), and
/// `next` is created pending, calling the first function of `old` with the
/// same stored inputs (resolved again when it runs). How `release retry`
/// replaces a failed run and a takeover a running one.
pub(crate) fn replace_run(
    tx: &mut Transaction<'_>,
    old: &RunRefs,
    (from, to): (RunStatus, RunStatus),
    marker: StatusMarker,
    next: &Ref,
) -> Result<()> {
    let run = &old.run;
    let old_doc: RunDoc = parse_doc(
        run,
        "run document",
        tx.get(run)?.ok_or_else(|| {
            Error::store(format!("run {run} has a status but no document")).with_ref(run)
        })?,
    )?;
    let mut first = old_doc
        .functions
        .first()
        .cloned()
        .ok_or_else(|| Error::store(format!("run {run} has no function")).with_ref(run))?;
    first.resolved = None;
    let marker = StatusMarker {
        retried_by: Some(next.clone()),
        ..marker
    };
    set_status(tx, old, from, to, marker)?;
    tx.create_doc(next, &RunDoc::new(old_doc.run_type, old_doc.release, first))?;
    tx.create(&status_ref(next, RunStatus::Pending), json!({}))
}

/// The run document at `run`, if there is one.
pub(crate) fn load_run(state: &RefStore, run: &Ref) -> Result<Option<crate::model::RunDoc>> {
    state
        .get(run)?
        .map(|doc| parse_doc(run, "run document", doc))
        .transpose()
}

/// The latest run of one work item of `rel`, if it has any: a listing of
/// that item's status markers alone.
pub(crate) fn latest_status(
    state: &RefStore,
    rel: &Ref,
    path: &WorkPath,
) -> Result<Option<Latest>> {
    let glob = format!("{}/*/status/*", path.in_release(rel));
    Ok(latest_by_item(state, rel, &glob)?.remove(path))
}

/// The latest run of `path` in `rel`, if it has any.
pub(crate) fn latest_run(
    ctx: &EngineContext,
    rel: &Ref,
    path: &WorkPath,
) -> Result<Option<(Latest, RunDoc)>> {
    let Some(latest) = latest_status(&ctx.state, rel, path)? else {
        return Ok(None);
    };
    let run = run_ref(rel, path, latest.run);
    let doc = load_run(&ctx.state, &run)?
        .ok_or_else(|| Error::store(format!("run {run} has a status but no document")))?;
    Ok(Some((latest, doc)))
}

impl Latest {
    /// Whether the run is still to finish: pending, running or paused.
    pub(crate) fn in_flight(self) -> bool {
        matches!(
            self.status,
            RunStatus::Pending | RunStatus::Running | RunStatus::Paused
        )
    }
}

/// A run to create after the one a decision was based on.
pub(crate) struct NewRun {
    /// What it runs.
    pub run_type: RunType,
    /// Its function and inputs.
    pub function: RunFunction,
    /// The latest run of the work item when the decision to create this
    /// one was made (`None`: it had none).
    pub after: Option<Latest>,
    /// With `after` failed and this its number, that run becomes
    /// `failed_retried` in the same transaction, as `release retry` does.
    pub replaces: Option<u32>,
}

/// Create the run after `new.after` of `path` in `rel` (pending), unless
/// that run is still to run with the same function and inputs. Returns
/// whether a run was created.
///
/// The decision to create it was made on state as it was when `after` was
/// the latest run: if another agent has created the next run since (the
/// same redeploy, found by two agents at once; or anything else), this
/// agent's decision is stale, and nothing is created: the other agent's
/// run answers the same change. So each run is created once, however many
/// agents act on one change at once.
pub(crate) fn new_run(
    ctx: &EngineContext,
    rel: &Ref,
    path: &WorkPath,
    new: NewRun,
) -> Result<bool> {
    let NewRun {
        run_type,
        function,
        after,
        replaces,
    } = new;
    if let Some(latest) = after.filter(|l| l.in_flight()) {
        let doc = load_run(&ctx.state, &run_ref(rel, path, latest.run))?;
        let first = doc.as_ref().and_then(|d| d.functions.first());
        if doc.as_ref().is_some_and(|d| d.run_type == run_type)
            && first.is_some_and(|f| f.function == function.function && f.inputs == function.inputs)
        {
            return Ok(false);
        }
    }
    let n = after.map_or(0, |l| l.run) + 1;
    let run = KeyedRef::new(run_ref(rel, path, n))?;
    let failed = match after {
        Some(l) if l.status == RunStatus::Failed && Some(l.run) == replaces => {
            Some(RunRefs::new(&run_ref(rel, path, l.run))?)
        }
        _ => None,
    };
    let doc = RunDoc::new(run_type, rel.clone(), function);
    let created = ctx.state.update(|tx| {
        if tx.exists(&run)? {
            return Ok(false);
        }
        if let Some(old) = &failed {
            if !tx.exists(old.marker(RunStatus::Failed)?)? {
                return Ok(false);
            }
            set_status(
                tx,
                old,
                RunStatus::Failed,
                RunStatus::FailedRetried,
                StatusMarker {
                    retried_by: Some((*run).clone()),
                    ..StatusMarker::default()
                },
            )?;
        }
        tx.create(&run, serde_json::to_value(&doc)?)?;
        tx.create(&run.join("status/pending")?, json!({}))?;
        Ok(true)
    })?;
    if created {
        ctx.journal.record(&run);
    } else {
        tracing::info!(run = %run, "another agent created this run first; moving on");
    }
    Ok(created)
}
