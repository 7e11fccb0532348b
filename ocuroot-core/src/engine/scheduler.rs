//! Running a release until nothing more can run: phases in order, ready
//! work on a pool of worker threads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, mpsc};

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::run::{Executed, execute};
use super::status::{Latest, load_statuses, run_ref};
use crate::model::{InputSpec, ReleaseDoc, RunDoc, RunStatus};
use crate::refs::Ref;
use crate::sdk::LoadedFile;
use crate::{Error, Result};

/// What the scheduler learned about work it could not start.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    /// Refs each blocked or paused work item waits for.
    pub missing: BTreeMap<String, Vec<Ref>>,
    /// The latest run of each work item when the scheduler stopped (read
    /// from the store after the last run finished).
    pub statuses: BTreeMap<String, Latest>,
}

struct Job {
    path: String,
    run: u32,
}

/// What one scheduling session knows about a release.
struct View {
    /// The latest run of each work item.
    statuses: BTreeMap<String, Latest>,
    /// Work items handed to a worker and not back yet.
    inflight: HashSet<String>,
    /// The inputs of each run's current function.
    inputs: HashMap<(String, u32), BTreeMap<String, InputSpec>>,
    /// Phases before this one are complete.
    first_open: usize,
    /// What blocked and paused work waits for.
    waiting: Waiting,
}

impl View {
    fn load(ctx: &EngineContext, rel: &Ref) -> Result<View> {
        Ok(View {
            statuses: load_statuses(&ctx.state, rel)?,
            inflight: HashSet::new(),
            inputs: HashMap::new(),
            first_open: 0,
            waiting: Waiting::default(),
        })
    }

    /// Forget what other agents may have changed.
    fn reload(&mut self, ctx: &EngineContext, rel: &Ref) -> Result<()> {
        self.statuses = load_statuses(&ctx.state, rel)?;
        self.first_open = 0;
        Ok(())
    }
}

/// Run `rel` until nothing more can run. Returns what blocked work waits for.
pub(crate) fn run_until_blocked(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    doc: &ReleaseDoc,
) -> Result<Waiting> {
    let workers = ctx.parallel.max(1);
    let mut view = View::load(ctx, rel)?;
    let mut first_error: Option<Error> = None;

    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| -> Result<()> {
        let (done_tx, done_rx) = mpsc::channel::<(Job, Result<Executed>)>();
        for _ in 0..workers {
            let job_rx = &job_rx;
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let job = {
                        let rx = job_rx.lock().unwrap_or_else(|e| e.into_inner());
                        rx.recv()
                    };
                    let Ok(job) = job else { break };
                    // A panic in a run must not leave the scheduler waiting
                    // for a result that never comes.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_ref(rel, &job.path, job.run)
                            .and_then(|run| execute(ctx, loaded, rel, &job.path, &run, job.run))
                    }))
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Err(Error::internal(format!(
                            "running {} panicked: {what}",
                            job.path
                        )))
                    });
                    if done_tx.send((job, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);

        let mut reloaded = false;
        loop {
            if first_error.is_none() {
                let ready = ready_work(ctx, rel, doc, &mut view)?;
                for (path, run) in ready {
                    view.inflight.insert(path.clone());
                    job_tx
                        .send(Job { path, run })
                        .map_err(|_| Error::internal("worker pool stopped"))?;
                }
            }
            if view.inflight.is_empty() {
                if reloaded || first_error.is_some() {
                    break;
                }
                // Another agent may have moved things on: look once more.
                view.reload(ctx, rel)?;
                reloaded = true;
                continue;
            }
            let (job, result) = done_rx
                .recv()
                .map_err(|_| Error::internal("worker pool stopped"))?;
            view.inflight.remove(&job.path);
            // A paused run now waits on its next function's inputs.
            view.inputs.remove(&(job.path.clone(), job.run));
            reloaded = false;
            match result {
                Ok(Executed::Finished(status)) => {
                    view.statuses.insert(
                        job.path,
                        Latest {
                            run: job.run,
                            status,
                        },
                    );
                }
                Ok(Executed::Lost) => view.reload(ctx, rel)?,
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        drop(job_tx);
        Ok(())
    })?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(Waiting {
            statuses: view.statuses,
            ..view.waiting
        }),
    }
}

/// The work that can start now: in the first phase that is not complete,
/// each pending or paused item whose inputs resolve. Records what the others
/// wait for.
fn ready_work(
    ctx: &EngineContext,
    rel: &Ref,
    doc: &ReleaseDoc,
    view: &mut View,
) -> Result<Vec<(String, u32)>> {
    let View {
        statuses,
        inflight,
        inputs: inputs_cache,
        first_open,
        waiting,
    } = view;
    let mut ready = Vec::new();
    waiting.missing.clear();
    // Phases before `first_open` are known complete (statuses only move
    // forward within one scheduling session), so skip them.
    for (i, phase) in doc.package.phases.iter().enumerate().skip(*first_open) {
        let mut complete = true;
        for w in &phase.work {
            let path = w.path();
            let Some(latest) = statuses.get(&path) else {
                // No run at all (the release predates this work item).
                complete = false;
                continue;
            };
            if latest.status != RunStatus::Complete {
                complete = false;
            }
            if !latest.status.is_runnable() || inflight.contains(&path) {
                continue;
            }
            let key = (path.clone(), latest.run);
            if !inputs_cache.contains_key(&key) {
                let run = run_ref(rel, &path, latest.run)?;
                let run_doc: RunDoc = match ctx.state.get(&run)? {
                    Some(v) => serde_json::from_value(v)
                        .map_err(|e| Error::store(format!("{run}: invalid run document: {e}")))?,
                    None => continue,
                };
                let inputs = run_doc
                    .functions
                    .last()
                    .map(|f| f.inputs.clone())
                    .unwrap_or_default();
                inputs_cache.insert(key.clone(), inputs);
            }
            let resolution = resolve_inputs(&ctx.state, &inputs_cache[&key])?;
            if resolution.is_complete() {
                ready.push(key);
            } else {
                waiting.missing.insert(path, resolution.missing);
            }
        }
        if !complete {
            break;
        }
        *first_open = i + 1;
    }
    Ok(ready)
}
