//! Batches this agent committed, and told their callers were recorded
//! ([`Durability::Deferred`](crate::store::Durability::Deferred) run
//! outcomes), that could not be pushed because the remote could not be
//! reached. They are kept in the clone (`refs/ocuroot/unpushed/<branch>`
//! names the last, `refs/ocuroot/unpushed-base/<branch>` the remote's
//! branch they were built on), and the next command that opens the branch
//! with the same `OCUROOT_HOME` applies them again on the remote's branch
//! and pushes them before it reads anything. So an outcome is never lost to
//! an outage, and its run never executed twice.

use git2::{Delta, Oid, Repository};

use super::tree::{Action, Change, version_of};
use crate::store::Expect;
use crate::{Error, Result};

fn names(branch: &str) -> (String, String) {
    (
        format!("refs/ocuroot/unpushed/{branch}"),
        format!("refs/ocuroot/unpushed-base/{branch}"),
    )
}

/// Keep the commits from `base` (exclusive; `None`: the branch's first)
/// to `head` for the next command.
pub(super) fn keep(repo: &Repository, branch: &str, base: Option<Oid>, head: Oid) -> Result<()> {
    let (head_ref, base_ref) = names(branch);
    let fail = |e: git2::Error| Error::git("keep the batches that could not be pushed", e);
    repo.reference(&head_ref, head, true, "ocuroot: not pushed")
        .map_err(fail)?;
    match base {
        Some(base) => {
            repo.reference(&base_ref, base, true, "ocuroot: not pushed")
                .map_err(fail)?;
        }
        None => {
            if let Ok(mut r) = repo.find_reference(&base_ref) {
                r.delete().map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// The batches kept by [`keep`], oldest first: each commit's changes (with
/// what it expected: the files as they were in its parent) and message.
pub(super) fn kept(repo: &Repository, branch: &str) -> Result<Vec<(Vec<Change>, String)>> {
    let (head_ref, base_ref) = names(branch);
    let Ok(head) = repo.refname_to_id(&head_ref) else {
        return Ok(Vec::new());
    };
    let base = repo.refname_to_id(&base_ref).ok();
    let fail = |e: git2::Error| Error::git("read the batches that could not be pushed", e);
    let mut batches = Vec::new();
    let mut at = Some(head);
    while let Some(oid) = at.filter(|o| Some(*o) != base) {
        let commit = repo.find_commit(oid).map_err(fail)?;
        let parent = commit.parent(0).ok();
        let before = parent
            .as_ref()
            .map(|p| p.tree())
            .transpose()
            .map_err(fail)?;
        let after = commit.tree().map_err(fail)?;
        let diff = repo
            .diff_tree_to_tree(before.as_ref(), Some(&after), None)
            .map_err(fail)?;
        let mut changes = Vec::new();
        for delta in diff.deltas() {
            let (old, new) = (delta.old_file(), delta.new_file());
            let Some(path) = new.path().or(old.path()).and_then(|p| p.to_str()) else {
                continue;
            };
            let action = match delta.status() {
                Delta::Deleted => Action::Delete,
                _ => {
                    let blob = repo.find_blob(new.id()).map_err(fail)?;
                    Action::Put(blob.content().to_vec())
                }
            };
            let expect = match delta.status() {
                Delta::Added => Expect::Absent,
                _ => Expect::Version(version_of(old.id())),
            };
            changes.push(Change {
                path: path.to_string(),
                label: path.to_string(),
                action,
                expect,
            });
        }
        batches.push((changes, commit.message().unwrap_or_default().to_string()));
        at = parent.map(|p| p.id());
    }
    batches.reverse();
    Ok(batches)
}

/// The kept batches are on the remote (or given up): forget them.
pub(super) fn forget(repo: &Repository, branch: &str) -> Result<()> {
    let (head_ref, base_ref) = names(branch);
    for name in [head_ref, base_ref] {
        if let Ok(mut r) = repo.find_reference(&name) {
            r.delete()
                .map_err(|e| Error::git("forget the batches that were not pushed", e))?;
        }
    }
    Ok(())
}
