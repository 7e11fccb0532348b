//! Running a release until nothing more can run: phases in order, ready
//! work on a pool of worker threads.

use crossbeam_channel as channel;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::lease::{Leases, take_over_abandoned};
use super::live::{FLUSH_INTERVAL, LiveLogs};
use super::run::{Finished, claim, execute, write_deploy_intents};
use super::status::{Latest, load_run, load_statuses, run_ref};
use crate::model::{Event, InputSpec, ReleaseDoc, RunDoc, RunStatus};
use crate::refs::{Ref, WorkPath};
use crate::sdk::LoadedFile;
use crate::store::Store;
use crate::{Error, Result};

/// What the scheduler learned about work it could not start.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    /// Refs each blocked or paused work item waits for.
    pub missing: BTreeMap<WorkPath, Vec<Ref>>,
    /// The latest run of each work item when the scheduler stopped (read
    /// from the store after the last run finished).
    pub statuses: BTreeMap<WorkPath, Latest>,
    /// The runs this scheduler finished, by work item: what the report would
    /// otherwise read back from their run documents.
    pub finished: HashMap<WorkPath, Finished>,
}

struct Job {
    /// The phase and the position of the work item in it.
    phase: usize,
    index: usize,
    run: u32,
    /// Its run document, once this agent has claimed the run.
    doc: Option<RunDoc>,
}

/// How much ready work an agent claims in one transaction (one push to a
/// git store): the claims of a round share a commit with the outcomes
/// committed since the last one.
///
/// An agent that created the release (`release new`) claims all the ready
/// work of the open phase at once: nobody else has seen the release yet.
/// Any other session starts with a window of twice its parallelism (what it
/// can start now, and as much again to start next), so that agents starting
/// together share a phase; the window doubles after each round in which the
/// agent won every claim, until it meets another agent on the release (it
/// loses a claim, or finds a run running that is not its own): from then on
/// the window stays at twice its parallelism, and the agents share every
/// phase. Claims are made when a worker is free or about to be, never for
/// more than the window.
struct Window {
    parallel: usize,
    /// `None`: no limit.
    size: Option<usize>,
    /// Another agent works on the release.
    shared: bool,
}

impl Window {
    fn new(parallel: usize, fresh: bool) -> Window {
        Window {
            parallel,
            size: (!fresh).then_some(2 * parallel),
            shared: false,
        }
    }

    /// Another agent works on the release: claim no more than twice the
    /// parallelism from now on.
    fn share(&mut self) {
        self.shared = true;
        self.size = Some(2 * self.parallel);
    }

    /// How many of `ready` runs to claim with `inflight` claimed already.
    fn take(&self, ready: usize, inflight: usize) -> usize {
        if inflight >= self.parallel {
            return 0;
        }
        match self.size {
            None => ready,
            Some(size) => ready.min(size.saturating_sub(inflight).max(1)),
        }
    }

    /// A round of claims ended: `lost` of them went to other agents.
    fn claimed(&mut self, lost: usize) {
        if lost > 0 {
            self.share();
        } else if let Some(size) = self.size.as_mut().filter(|_| !self.shared) {
            *size = size.saturating_mul(2);
        }
    }
}

/// The first phase that is not complete, as far as one scheduling session
/// knows.
struct OpenPhase {
    /// Its position in the package.
    phase: usize,
    /// How many of its work items are not complete.
    incomplete: usize,
    /// Its items that may start: runnable and not in flight. Checked again
    /// after every change, as a run finishing may provide their inputs.
    candidates: Vec<usize>,
}

/// What one scheduling session knows about a release.
struct View<'a> {
    /// The work paths of each phase, in package order.
    paths: &'a [Vec<WorkPath>],
    /// The latest run of each work item.
    statuses: BTreeMap<WorkPath, Latest>,
    /// Work items handed to a worker and not back yet.
    inflight: HashSet<WorkPath>,
    /// The inputs of each run's current function.
    inputs: HashMap<(WorkPath, u32), BTreeMap<String, InputSpec>>,
    /// Phases before this one are complete.
    first_open: usize,
    /// The phase at `first_open`, once scanned.
    open: Option<OpenPhase>,
    /// What blocked and paused work waits for.
    waiting: Waiting,
    /// How many times the statuses were read from the store.
    loads: u32,
}

impl<'a> View<'a> {
    /// Load the statuses of `rel`, whose work paths are `paths`. With
    /// `fresh`, the release's runs were all just created from `doc` by this
    /// agent, so a first run still pending calls its work item's entry
    /// function with the inputs the package declares: they are known without
    /// reading the run document.
    fn load(
        ctx: &EngineContext,
        rel: &Ref,
        doc: &ReleaseDoc,
        paths: &'a [Vec<WorkPath>],
        fresh: bool,
    ) -> Result<View<'a>> {
        let mut statuses = load_statuses(&ctx.state, rel)?;
        if !fresh {
            take_over_abandoned(ctx, rel, &mut statuses, &HashSet::new())?;
        }
        let mut inputs = HashMap::new();
        if fresh {
            let work = doc.package.phases.iter().flat_map(|p| &p.work);
            for (w, path) in work.zip(paths.iter().flatten()) {
                let first_pending = Latest {
                    run: 1,
                    status: RunStatus::Pending,
                };
                if statuses.get(path) == Some(&first_pending) {
                    inputs.insert((path.clone(), 1), w.inputs().clone());
                }
            }
        }
        Ok(View {
            paths,
            statuses,
            inflight: HashSet::new(),
            inputs,
            first_open: 0,
            open: None,
            waiting: Waiting::default(),
            loads: 1,
        })
    }

    /// Forget what other agents may have changed: publish this agent's
    /// deferred batches and read theirs ([`Store::refresh`]), then reload,
    /// taking over runs whose claims have lapsed.
    /// Of two agents that each finish a run and look again, the one that
    /// publishes last sees the other's outcome, so no phase is left with
    /// nobody to start it.
    fn reload(&mut self, ctx: &EngineContext, rel: &Ref) -> Result<()> {
        ctx.state.store().refresh()?;
        self.statuses = load_statuses(&ctx.state, rel)?;
        self.loads += 1;
        take_over_abandoned(ctx, rel, &mut self.statuses, &self.inflight)?;
        self.first_open = 0;
        self.open = None;
        Ok(())
    }

    /// Whether a run of the release is running that this session did not
    /// start: another agent works on it.
    fn others_running(&self) -> bool {
        self.statuses
            .iter()
            .any(|(path, l)| l.status == RunStatus::Running && !self.inflight.contains(path))
    }

    /// Record how a run this session started ended.
    fn finished(&mut self, job: &Job, status: RunStatus) {
        let path = &self.paths[job.phase][job.index];
        let latest = Latest {
            run: job.run,
            status,
        };
        // A reload may have seen the outcome already.
        let before = self.statuses.insert(path.clone(), latest);
        let was_complete = before.is_some_and(|l| l.status == RunStatus::Complete);
        let Some(open) = self.open.as_mut().filter(|o| o.phase == job.phase) else {
            return;
        };
        match (was_complete, status == RunStatus::Complete) {
            (false, true) => open.incomplete -= 1,
            (true, false) => open.incomplete += 1,
            _ => {}
        }
        if status.is_runnable() && !open.candidates.contains(&job.index) {
            open.candidates.push(job.index);
        }
    }

    /// Scan phase `i`: what is not complete yet, and what may start.
    fn open_phase(&self, i: usize) -> OpenPhase {
        let mut open = OpenPhase {
            phase: i,
            incomplete: 0,
            candidates: Vec::new(),
        };
        for (index, path) in self.paths[i].iter().enumerate() {
            // No run at all: the release predates this work item.
            let latest = self.statuses.get(path);
            if latest.is_none_or(|l| l.status != RunStatus::Complete) {
                open.incomplete += 1;
            }
            if latest.is_some_and(|l| l.status.is_runnable()) && !self.inflight.contains(path) {
                open.candidates.push(index);
            }
        }
        open
    }
}

/// Where ready jobs run: on the scheduling thread, one at a time (parallel
/// 1: no hand-over between threads), or on the scheduling thread and a pool
/// of `parallel - 1` worker threads.
enum Pool {
    /// Jobs waiting to run on this thread, in order.
    Inline(VecDeque<Job>),
    /// Jobs go to a shared queue; the workers and, when no result is
    /// waiting, the scheduling thread take them from it.
    Workers {
        jobs: channel::Sender<Job>,
        queue: channel::Receiver<Job>,
        done: channel::Receiver<(Job, Result<Finished>)>,
    },
}

impl Pool {
    fn submit(&mut self, job: Job) -> Result<()> {
        match self {
            Pool::Inline(queue) => queue.push_back(job),
            Pool::Workers { jobs, .. } => jobs
                .send(job)
                .map_err(|_| Error::internal("worker pool stopped"))?,
        }
        Ok(())
    }

    /// The next finished job (one was submitted and is not back yet). With
    /// workers, a result already back comes first; otherwise this thread
    /// runs a queued job itself rather than wait (one hand-over between
    /// threads fewer per job it runs), and waits only when the queue is
    /// empty.
    fn next(&mut self, run: impl Fn(&Job) -> Result<Finished>) -> Result<(Job, Result<Finished>)> {
        match self {
            Pool::Inline(queue) => {
                let job = queue
                    .pop_front()
                    .ok_or_else(|| Error::internal("no job to run"))?;
                let result = run(&job);
                Ok((job, result))
            }
            Pool::Workers { queue, done, .. } => {
                if let Ok(finished) = done.try_recv() {
                    return Ok(finished);
                }
                if let Ok(job) = queue.try_recv() {
                    let result = run(&job);
                    return Ok((job, result));
                }
                done.recv()
                    .map_err(|_| Error::internal("worker pool stopped"))
            }
        }
    }
}

/// Execute one job. A panic in a run becomes an error: it must not leave
/// the scheduler waiting for a result that never comes.
fn run_job(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    paths: &[Vec<WorkPath>],
    live: &Arc<LiveLogs>,
    leases: &Leases,
    job: &Job,
) -> Result<Finished> {
    let path = &paths[job.phase][job.index];
    let Some(doc) = job.doc.clone() else {
        return Err(Error::internal(format!(
            "{path} was queued without its claim"
        )));
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(
            ctx,
            loaded,
            rel,
            path,
            &run_ref(rel, path, job.run),
            job.run,
            live,
            leases,
            doc,
        )
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::internal(format!("running {path} panicked: {what}")))
    })
}

/// Run `rel` until nothing more can run. Returns what blocked work waits for.
/// `fresh`: every run of the release was just created from `doc` by this
/// agent (`release new`).
///
/// The scheduling thread and the workers are evaluation threads (with the
/// large stack calls need), so each call runs on the thread that takes its
/// job instead of starting a thread of its own. One more thread, the
/// session's ticker, writes the lines of running runs to
/// `<run>/live_logs/<k>` every half second (see [`LiveLogs`]) and renews
/// the leases of the runs the session holds (see [`Leases`]).
pub(crate) fn run_until_blocked(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    doc: &ReleaseDoc,
    fresh: bool,
) -> Result<Waiting> {
    crate::sdk::with_eval_stack(|| schedule(ctx, loaded, rel, doc, fresh))
}

fn schedule(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    doc: &ReleaseDoc,
    fresh: bool,
) -> Result<Waiting> {
    let workers = ctx.parallel.max(1);
    let paths: &[Vec<WorkPath>] = &doc
        .package
        .phases
        .iter()
        .map(|p| p.work.iter().map(|w| w.path()).collect())
        .collect::<Vec<_>>();
    let mut view = View::load(ctx, rel, doc, paths, fresh)?;
    let mut window = Window::new(workers, fresh);
    let mut loads_seen = 0;
    ctx.emit(|| release_started(rel, &view));
    let mut first_error: Option<Error> = None;
    let live = Arc::new(LiveLogs::default());
    let leases = Leases::new(ctx.lease);
    let run = |job: &Job| run_job(ctx, loaded, rel, paths, &live, &leases, job);

    std::thread::scope(|scope| -> Result<()> {
        // The ticker stops when `stop` is dropped, as this closure returns
        // (every run has finished by then).
        let (stop, stopped) = channel::bounded::<()>(0);
        let (live, leases) = (&live, &leases);
        scope.spawn(move || tick_until(ctx, live, leases, &stopped));
        let mut pool = if workers == 1 {
            Pool::Inline(VecDeque::new())
        } else {
            let (job_tx, job_rx) = channel::unbounded::<Job>();
            let (done_tx, done_rx) = channel::unbounded::<(Job, Result<Finished>)>();
            // This thread is the last of the `workers`.
            for _ in 1..workers {
                let job_rx = job_rx.clone();
                let done_tx = done_tx.clone();
                crate::sdk::spawn_eval_thread(scope, move || {
                    for job in job_rx.iter() {
                        let result = run(&job);
                        if done_tx.send((job, result)).is_err() {
                            break;
                        }
                    }
                    Ok(())
                })?;
            }
            Pool::Workers {
                jobs: job_tx,
                queue: job_rx,
                done: done_rx,
            }
        };

        let mut reloaded = false;
        loop {
            // Ready work is looked for when a worker is free or about to
            // be (claims are never made further ahead than the window).
            if first_error.is_none() && view.inflight.len() < workers {
                let ready = ready_work(ctx, rel, &mut view)?;
                let (jobs, lost) = claim_ready(ctx, rel, &mut view, &mut window, ready, leases)?;
                for job in jobs {
                    view.inflight.insert(paths[job.phase][job.index].clone());
                    pool.submit(job)?;
                }
                if lost {
                    // Another agent took some: learn what else it did.
                    view.reload(ctx, rel)?;
                    continue;
                }
                // Statuses of other agents' runs change only on a reload.
                if view.loads != loads_seen {
                    loads_seen = view.loads;
                    if view.others_running() {
                        window.share();
                    }
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
            let (job, result) = pool.next(run)?;
            let path = &paths[job.phase][job.index];
            view.inflight.remove(path);
            // A paused run now waits on its next function's inputs.
            view.inputs.remove(&(path.clone(), job.run));
            reloaded = false;
            match result {
                Ok(finished) => {
                    view.finished(&job, finished.status);
                    view.waiting.finished.insert(path.clone(), finished);
                }
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        // Dropping the pool closes the job channel: the workers stop.
        drop(pool);
        drop(stop);
        Ok(())
    })?;
    // Runs commit their claims and outcomes deferred: make them durable
    // before anything is reported.
    ctx.state.store().sync()?;
    ctx.intent.store().sync()?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(Waiting {
            statuses: view.statuses,
            ..view.waiting
        }),
    }
}

/// The session's background thread, until `stop` is closed: every
/// [`FLUSH_INTERVAL`] it writes the new lines of running runs (see
/// [`LiveLogs`]), and whenever a third of the lease has passed it renews the
/// claims of the runs this session executes (see [`Leases`]).
fn tick_until(ctx: &EngineContext, live: &LiveLogs, leases: &Leases, stop: &channel::Receiver<()>) {
    let tick = FLUSH_INTERVAL.min(leases.tick());
    let mut flushed = Instant::now();
    while let Err(channel::RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
        leases.renew_if_due(ctx);
        if flushed.elapsed() + tick / 2 >= FLUSH_INTERVAL {
            live.flush(ctx);
            flushed = Instant::now();
        }
    }
}

/// [`Event::ReleaseStarted`]: how many work items the release has, and
/// how many are complete or failed as the session starts.
fn release_started(rel: &Ref, view: &View) -> Event {
    let (mut complete, mut failed) = (0, 0);
    let paths = view.paths.iter().flatten();
    for latest in paths.clone().filter_map(|p| view.statuses.get(p)) {
        match latest.status {
            RunStatus::Complete => complete += 1,
            RunStatus::Failed | RunStatus::FailedRetried | RunStatus::Cancelled => failed += 1,
            _ => {}
        }
    }
    Event::ReleaseStarted {
        release: rel.clone(),
        total: paths.count(),
        complete,
        failed,
    }
}

/// The work that can start now: in the first phase that is not complete,
/// each pending or paused item whose inputs resolve. Records what the others
/// wait for.
fn ready_work(ctx: &EngineContext, rel: &Ref, view: &mut View) -> Result<Vec<Job>> {
    let mut ready = Vec::new();
    view.waiting.missing.clear();
    // Phases before `first_open` are known complete (statuses only move
    // forward within one scheduling session), so skip them.
    while view.first_open < view.paths.len() {
        let i = view.first_open;
        let mut open = match view.open.take() {
            Some(open) if open.phase == i => open,
            _ => view.open_phase(i),
        };
        let mut still = Vec::with_capacity(open.candidates.len());
        for index in open.candidates.drain(..) {
            let path = &view.paths[i][index];
            let Some(latest) = view.statuses.get(path) else {
                continue;
            };
            let key = (path.clone(), latest.run);
            if !view.inputs.contains_key(&key) {
                let run = run_ref(rel, path, latest.run);
                let Some(run_doc) = load_run(&ctx.state, &run)? else {
                    // Not there (yet): look again next time.
                    still.push(index);
                    continue;
                };
                view.inputs.insert(key.clone(), run_doc.current_inputs());
            }
            let resolution = resolve_inputs(&ctx.state, &view.inputs[&key])?;
            if resolution.is_complete() {
                ready.push(Job {
                    phase: i,
                    index,
                    run: latest.run,
                    doc: None,
                });
            } else {
                view.waiting.missing.insert(key.0, resolution.missing);
                still.push(index);
            }
        }
        open.candidates = still;
        let complete = open.incomplete == 0;
        view.open = Some(open);
        if !complete {
            break;
        }
        view.first_open = i + 1;
    }
    Ok(ready)
}

/// Claim as much of `ready` as the window allows, in one transaction, and
/// write the deploy intent of the deployments among them (one more). The
/// rest stay candidates of the open phase. Returns the jobs won, and
/// whether any was lost to another agent.
fn claim_ready(
    ctx: &EngineContext,
    rel: &Ref,
    view: &mut View,
    window: &mut Window,
    mut ready: Vec<Job>,
    leases: &Leases,
) -> Result<(Vec<Job>, bool)> {
    let take = window.take(ready.len(), view.inflight.len());
    let later = ready.split_off(take.min(ready.len()));
    if let Some(open) = view.open.as_mut() {
        open.candidates.extend(
            later
                .iter()
                .filter(|j| j.phase == open.phase)
                .map(|j| j.index),
        );
    }
    if ready.is_empty() {
        return Ok((ready, false));
    }
    let runs: Vec<Ref> = ready
        .iter()
        .map(|j| run_ref(rel, &view.paths[j.phase][j.index], j.run))
        .collect();
    let docs = claim(ctx, &runs, leases)?;
    let mut won = Vec::with_capacity(ready.len());
    for (mut job, doc) in ready.into_iter().zip(docs) {
        if doc.is_some() {
            job.doc = doc;
            won.push(job);
        }
    }
    let lost = runs.len() - won.len();
    window.claimed(lost);
    let deploys: Vec<(&WorkPath, &RunDoc)> = won
        .iter()
        .filter_map(|j| Some((&view.paths[j.phase][j.index], j.doc.as_ref()?)))
        .collect();
    if let Err(e) = write_deploy_intents(ctx, rel, &deploys) {
        // The claims stand; their leases lapse and another agent (or a
        // `release continue`) takes them over.
        for job in &won {
            if let Ok(r) =
                crate::refs::KeyedRef::new(run_ref(rel, &view.paths[job.phase][job.index], job.run))
            {
                leases.release(&r);
            }
        }
        return Err(e);
    }
    Ok((won, lost > 0))
}
