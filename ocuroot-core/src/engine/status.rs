//! Refs of runs and their status markers.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::model::RunStatus;
use crate::refs::{KeyedRef, Ref, SubPathType};
use crate::store::{RefStore, Transaction};
use crate::{Error, Result};

/// `task/<name>` or `deploy/<env>` split into its ref type and name.
pub(crate) fn split_path(work_path: &str) -> Result<(SubPathType, &str)> {
    let (kind, name) = work_path
        .split_once('/')
        .ok_or_else(|| Error::internal(format!("bad work path {work_path:?}")))?;
    let t = match kind {
        "task" => SubPathType::Task,
        "deploy" => SubPathType::Deploy,
        _ => return Err(Error::internal(format!("bad work path {work_path:?}"))),
    };
    Ok((t, name))
}

/// `<rel>/task/<name>` or `<rel>/deploy/<env>`.
pub(crate) fn work_ref(rel: &Ref, work_path: &str) -> Result<Ref> {
    let (t, name) = split_path(work_path)?;
    Ok(rel.with_subpath(t, name))
}

/// `<pkg>/@/task/<name>`: the link to the latest successful run's work doc.
pub(crate) fn current_ref(rel: &Ref, work_path: &str) -> Result<Ref> {
    let (t, name) = split_path(work_path)?;
    Ok(rel.package().with_release("").with_subpath(t, name))
}

/// `<rel>/<work>/<n>`.
pub(crate) fn run_ref(rel: &Ref, work_path: &str, n: u32) -> Result<Ref> {
    let (t, name) = split_path(work_path)?;
    Ok(rel.with_subpath(t, &format!("{name}/{n}")))
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
pub(crate) fn load_statuses(state: &RefStore, rel: &Ref) -> Result<BTreeMap<String, Latest>> {
    let prefix = format!("{rel}/");
    let glob = format!("{rel}/{{task,deploy}}/*/*/status/*");
    let mut out: BTreeMap<String, Latest> = BTreeMap::new();
    for r in state.match_globs(&[glob.as_str()])? {
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
        let path = format!("{kind}/{name}");
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
    marker: serde_json::Value,
) -> Result<()> {
    tx.delete(run.marker(from)?)?;
    tx.create(run.marker(to)?, marker)
}

/// The run document at `run`, if there is one.
pub(crate) fn load_run(state: &RefStore, run: &Ref) -> Result<Option<crate::model::RunDoc>> {
    state
        .get(run)?
        .map(|doc| {
            serde_json::from_value(doc)
                .map_err(|e| Error::store(format!("{run}: invalid run document: {e}")))
        })
        .transpose()
}
