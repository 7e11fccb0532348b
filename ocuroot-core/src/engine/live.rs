//! Live logs: the lines of a run that is still running, written in chunks
//! to `<run>/live_logs/<k>` (k = 1, 2, ...; each a JSON array of log lines
//! as in `<run>/logs`) so that another process can follow it. The commit
//! that finishes the run writes `<run>/logs` and deletes the chunks. A run
//! whose agent dies keeps its chunks: they are its log up to the crash.
//!
//! Each scheduling session has one [`LiveLogs`]. A run's log sink hands it
//! every line ([`LiveLogs::record`]); the session's ticker calls
//! [`LiveLogs::flush`] every [`FLUSH_INTERVAL`], which writes each run's
//! lines not written yet as its next chunk. A failed flush is logged and
//! its lines kept for the next one: the run itself does not depend on its
//! live log. Each line is written once to a chunk and once to
//! `<run>/logs`: O(total log size). A run that prints nothing is never
//! looked at, so a session whose runs print nothing writes nothing.
//!
//! A flush holds the run's [`LiveRun`] lock across its commit, and
//! [`LiveRun::finish`] marks the run finished under that lock before the
//! finishing commit: no chunk is written after the commit that deletes
//! the chunks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::EngineContext;
use crate::Result;
use crate::model::LogLine;
use crate::refs::KeyedRef;
use crate::store::Durability;

/// How often the flusher writes the lines of running runs.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The runs of one scheduling session that have printed something and not
/// finished yet.
#[derive(Default)]
pub(crate) struct LiveLogs {
    runs: Mutex<Vec<Arc<LiveRun>>>,
}

/// The live log of one execution of a run.
pub(crate) struct LiveRun {
    /// The run (`<rel>/<work>/<n>`).
    run: KeyedRef,
    /// Lines not written to a chunk yet.
    pending: Mutex<Vec<LogLine>>,
    /// Held across a flush's commit.
    flushed: Mutex<Flushed>,
    /// In [`LiveLogs::runs`] already.
    registered: AtomicBool,
}

/// What was flushed of a run.
#[derive(Default)]
struct Flushed {
    /// Chunks written: `<run>/live_logs/1` to `<run>/live_logs/<chunks>`.
    chunks: u32,
    /// The run's finishing commit is coming: write nothing more.
    finished: bool,
}

/// A lock whose holder cannot have left the data half-changed by
/// panicking: every critical section here is a push, a take or a counter.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveLogs {
    /// The live log of an execution of `run`, which has printed nothing yet.
    pub(crate) fn start(&self, run: &KeyedRef) -> Arc<LiveRun> {
        Arc::new(LiveRun {
            run: run.clone(),
            pending: Mutex::new(Vec::new()),
            flushed: Mutex::new(Flushed::default()),
            registered: AtomicBool::new(false),
        })
    }

    /// Keep `line` of `run` for the next flush.
    pub(crate) fn record(&self, run: &Arc<LiveRun>, line: &LogLine) {
        lock(&run.pending).push(line.clone());
        if !run.registered.swap(true, Ordering::AcqRel) {
            lock(&self.runs).push(run.clone());
        }
    }

    /// Write each unfinished run's pending lines as its next chunk (one
    /// deferred transaction per run that has any).
    pub(crate) fn flush(&self, ctx: &EngineContext) {
        let runs: Vec<Arc<LiveRun>> = {
            let mut runs = lock(&self.runs);
            runs.retain(|r| !lock(&r.flushed).finished);
            runs.clone()
        };
        for run in runs {
            if let Err(e) = run.flush(ctx) {
                tracing::warn!(run = run.run.key(), error = %e, "could not write a live log chunk");
            }
        }
    }
}

impl LiveRun {
    /// `<run>/live_logs/<k>`.
    fn chunk(&self, k: u32) -> Result<KeyedRef> {
        self.run.join(&format!("live_logs/{k}"))
    }

    /// Write the pending lines as the next chunk, unless the run finished.
    fn flush(&self, ctx: &EngineContext) -> Result<()> {
        let mut flushed = lock(&self.flushed);
        if flushed.finished {
            return Ok(());
        }
        let mut lines = std::mem::take(&mut *lock(&self.pending));
        if lines.is_empty() {
            return Ok(());
        }
        let k = flushed.chunks + 1;
        let written = self.chunk(k).and_then(|chunk| {
            ctx.state
                .update_with(Durability::Deferred, |tx| tx.set_doc(&chunk, &lines))
        });
        match written {
            Ok(()) => flushed.chunks = k,
            Err(e) => {
                // Keep the lines, in order, for the next flush.
                let mut pending = lock(&self.pending);
                lines.append(&mut pending);
                *pending = lines;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The run is about to commit its outcome: no chunk is written after
    /// this. Returns the chunks written, for that commit to delete.
    pub(crate) fn finish(&self) -> Result<Vec<KeyedRef>> {
        let mut flushed = lock(&self.flushed);
        flushed.finished = true;
        (1..=flushed.chunks).map(|k| self.chunk(k)).collect()
    }
}
