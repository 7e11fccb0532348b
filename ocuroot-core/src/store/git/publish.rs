//! Publishing a branch's pending batches: compare-and-swap pushes, retried
//! on other agents' pushes, and what is kept when the remote cannot be
//! reached.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use git2::Oid;

use super::journal::Journal;
use super::transport::{Pushed, Transport};
use super::tree::Change;
use super::{GitBranch, Inner, Pending, tree, tree_of};
use crate::store::Superseded;
use crate::{Error, Result};

impl GitBranch {
    /// Push the pending commits; on a rejection fetch, re-apply them on the
    /// new tip and push again. With `last_is_current`, a conflict of the
    /// newest batch (the one being committed) is returned after the others
    /// are pushed. If the remote cannot be reached, the batches callers were
    /// told are recorded are kept for the next command
    /// ([`keep_unpushed`](Self::keep_unpushed)).
    pub(super) fn publish(&self, inner: &mut Inner, last_is_current: bool) -> Result<()> {
        let mut state = Publishing {
            outcome: Ok(()),
            lost: Vec::new(),
            superseded: None,
            last_is_current,
            current: last_is_current,
        };
        let mut last_reason = String::new();
        // Agents pushing to a remote on this machine take turns: under the
        // lock, only a writer other than ocuroot moves the branch, so the
        // batches are brought onto its tip first and the push goes through,
        // where racing would have most agents' pushes rejected.
        let lock = self.transport.lock()?;
        if lock.is_some()
            && !inner.pending.is_empty()
            && self.transport.tip(&self.branch)? != inner.tip
        {
            self.catch_up(inner, &mut state)?;
        }
        // Attempts count refusals only: a push rejected because another
        // agent pushed first is the fleet making progress, retried (with a
        // growing, randomised backoff) for as long as that goes on, up to
        // `CONTENTION_LIMIT`.
        let started = Instant::now();
        let (mut attempt, mut tries) = (0u32, 0u32);
        while attempt < self.options.push_attempts.max(1) {
            let Some(head) = inner.head().filter(|_| !inner.pending.is_empty()) else {
                return state.finish();
            };
            let pushed =
                self.transport
                    .push(&inner.repo, &inner.memory, &self.branch, head, inner.tip);
            match pushed {
                Ok(Pushed::Accepted) => {
                    self.pushes.fetch_add(1, Ordering::Relaxed);
                    inner.tip = Some(head);
                    inner.pending.clear();
                    inner.journal.clear();
                    drop(lock);
                    self.transport.tidy();
                    // A clone of a remote on this machine reads what was
                    // pushed in place; one of a network remote keeps it.
                    let kept = match self.transport {
                        Transport::Local(_) => inner.memory.forget(),
                        Transport::Network(_) => inner.memory.persist_if_full(&inner.repo),
                    };
                    if let Err(e) = kept {
                        // They stay in memory; the next write of them retries.
                        tracing::warn!(error = %e, "could not write the pushed objects into the clone");
                    }
                    return state.finish();
                }
                Ok(Pushed::Rejected(reason)) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(attempt, reason = %reason, "push rejected; fetching and re-applying");
                    last_reason = reason;
                }
                Err(e) => {
                    self.keep_unpushed(inner, state.current);
                    return Err(
                        e.context(format!("push to branch {} of {}", self.branch, self.shown))
                    );
                }
            }
            std::thread::sleep(backoff(tries));
            tries += 1;
            let before = inner.tip;
            self.catch_up(inner, &mut state)?;
            if inner.tip == before || started.elapsed() > CONTENTION_LIMIT {
                attempt += 1;
            }
        }
        inner.pending.clear();
        Err(Error::store(format!(
            "the push to branch {} of {} was rejected {} times (last: {last_reason}); nothing \
             was pushed",
            self.branch,
            self.shown,
            self.options.push_attempts.max(1)
        )))
    }

    /// Fetch the branch and apply every pending batch again, in order, on
    /// its new tip. A batch whose expectations no longer hold is dropped
    /// (the caller's own becomes the publish's outcome).
    fn catch_up(&self, inner: &mut Inner, state: &mut Publishing) -> Result<()> {
        if let Err(e) = self.fetch(inner) {
            self.keep_unpushed(inner, state.current);
            return Err(e);
        }
        let batches = std::mem::take(&mut inner.pending);
        let count = batches.len();
        for (i, mut batch) in batches.into_iter().enumerate() {
            let is_current = state.last_is_current && i + 1 == count;
            if state.superseded.is_some() {
                // Built on a founding batch that no longer applies: not
                // published (the caller's own fails with it).
                if is_current {
                    state.current = false;
                }
                continue;
            }
            let parent = inner.head();
            if batch.deferred.is_some() {
                // A deferred batch another agent has made too (a store's
                // marker, a record) is done, not a conflict.
                let changes = std::mem::take(&mut batch.changes);
                batch.changes = self.still_needed(inner, changes)?;
            }
            match self.make_commit(inner, parent, &batch.changes, &batch.message) {
                Ok(Some(commit)) => inner.pending.push(Pending { commit, ..batch }),
                Ok(None) => {}
                Err(e) if e.is_conflict() && batch.founding => {
                    let subject = batch.message.lines().next().unwrap_or_default().to_string();
                    state.superseded = Some(format!("{subject} ({})", e.message()));
                    if is_current {
                        state.current = false;
                    }
                }
                Err(e) if e.is_conflict() && is_current => {
                    state.current = false;
                    state.outcome = Err(e);
                }
                Err(e) if e.is_conflict() => {
                    let subject = batch.message.lines().next().unwrap_or_default().to_string();
                    state.lost.push(format!("{subject} ({})", e.message()));
                }
                Err(e) => {
                    inner.pending.clear();
                    return Err(e);
                }
            }
        }
        if state.superseded.is_some() {
            // The journal keeps only what may still be pushed.
            inner.journal.clear();
            for batch in inner.pending.iter().filter(|p| p.deferred.is_some()) {
                inner.journal.record(&batch.changes, &batch.message)?;
            }
        }
        Ok(())
    }

    /// The remote could not be reached: forget the pending batches here.
    /// The deferred ones, whose callers were told they are recorded, are in
    /// the journal, and the next command pushes them (see [`journal`](super::journal));
    /// the caller's own batch (`current`) fails with the error.
    pub(super) fn keep_unpushed(&self, inner: &mut Inner, current: bool) {
        let _ = current;
        inner.pending.clear();
    }

    /// Apply again, and push, the batches of processes that are gone (see
    /// [`journal`]). A change the remote already holds (the push went
    /// through, but its answer was lost) is skipped; a batch that no longer
    /// applies (its run was taken over meanwhile) is dropped, and said so.
    pub(super) fn resume_unpushed(&self, inner: &mut Inner) -> Result<()> {
        let orphans = inner.journal.orphans()?;
        if orphans.is_empty() {
            return Ok(());
        }
        let mut lost = Vec::new();
        for orphan in &orphans {
            for (changes, message) in &orphan.batches {
                let needed = self.still_needed(inner, changes.clone())?;
                let parent = inner.head();
                match self.make_commit(inner, parent, &needed, message) {
                    Ok(Some(commit)) => inner.pending.push(Pending {
                        changes: needed,
                        message: message.clone(),
                        commit,
                        deferred: None,
                        founding: false,
                    }),
                    Ok(None) => {}
                    Err(e) if e.is_conflict() => {
                        let subject = message.lines().next().unwrap_or_default().to_string();
                        lost.push(format!("{subject} ({})", e.message()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !inner.pending.is_empty() {
            self.publish(inner, false)?;
        }
        for orphan in orphans {
            Journal::forget(orphan);
        }
        if !lost.is_empty() {
            tracing::warn!(
                "batches a process that is gone had not pushed no longer apply, and were \
                 dropped: {}",
                lost.join("; ")
            );
        }
        Ok(())
    }
}

impl GitBranch {
    /// `changes` less those the head already holds: a value it has
    /// already, a file already gone. Checks stay.
    fn still_needed(&self, inner: &Inner, changes: Vec<Change>) -> Result<Vec<Change>> {
        let tree = tree_of(&inner.repo, inner.head())?;
        let mut needed = Vec::with_capacity(changes.len());
        for change in changes {
            let now = tree::blob_at(tree.as_ref(), &change.path)?;
            let done = match &change.action {
                tree::Action::Put(bytes) => {
                    now == Some(
                        Oid::hash_object(git2::ObjectType::Blob, bytes)
                            .map_err(|e| Error::git("hash a value", e))?,
                    )
                }
                tree::Action::Delete => now.is_none(),
                tree::Action::Check => false,
            };
            if !done {
                needed.push(change);
            }
        }
        Ok(needed)
    }
}

/// How a publish is going.
struct Publishing {
    /// The caller's batch's fate so far.
    outcome: Result<()>,
    /// Deferred batches dropped: their expectations no longer held.
    lost: Vec<String>,
    /// A founding batch that no longer applied (see
    /// [`Durability::Founding`](crate::store::Durability::Founding)),
    /// and so was dropped with every batch after it.
    superseded: Option<String>,
    /// Whether the caller's batch was the newest pending one.
    last_is_current: bool,
    /// Whether it still is (it has not been dropped).
    current: bool,
}

impl Publishing {
    /// The result: the caller's outcome, unless deferred batches were lost
    /// or a founding batch was superseded.
    fn finish(self) -> Result<()> {
        if let Some(why) = self.superseded {
            return Err(Error::store(format!(
                "{why}: another agent wrote first, so nothing committed after it was published"
            ))
            .with_source(Superseded(why)));
        }
        finish(self.outcome, self.lost)
    }
}

/// The result of a publish: `outcome`, unless deferred batches were lost.
fn finish(outcome: Result<()>, lost: Vec<String>) -> Result<()> {
    if lost.is_empty() {
        return outcome;
    }
    Err(Error::store(format!(
        "deferred batches no longer applied after another agent pushed, and were dropped: {}",
        lost.join("; ")
    )))
}

/// How long a push may keep losing to other agents' pushes before each
/// loss counts as a failed attempt.
const CONTENTION_LIMIT: Duration = Duration::from_secs(600);

/// Up to 10 ms * 2^attempt (capped at 1 s), randomised so agents spread out.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let max_micros = 10_000u64 << attempt.min(7);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let random = hasher.finish();
    Duration::from_micros((max_micros / 2 + random % (max_micros / 2 + 1)).min(1_000_000))
}
