//! Executing one run: claim it, call its function chain, commit the outcome.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::lease::{Leases, lapsed, same_claim};
use super::live::LiveLogs;
use super::status::{RunRefs, current_ref, set_status, status_in};
use crate::model::{
    Event, LogLine, RunDoc, RunError, RunFunction, RunStatus, RunType, StatusMarker, WorkDoc,
    parse_doc,
};
use crate::refs::{KeyedRef, Ref, WorkPath};
use crate::sdk::{CallRequest, LoadedFile, Outcome};
use crate::store::Durability;
use crate::{Error, Result};

/// How a run ended, as its committed run document says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    /// The run number.
    pub run: u32,
    /// Its new status.
    pub status: RunStatus,
    /// From its start to its end, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The failure message, if it failed.
    pub error: Option<String>,
    /// The failure in one line, if it failed.
    pub summary: Option<String>,
}

/// Claim `runs` (each pending or paused -> running) in one transaction,
/// with a compare-and-swap, this agent's marker (and its lease) as their
/// running markers; from then on `leases` renews them. Returns each run's
/// document, or `None` where someone else got it first (or it is no longer
/// runnable).
///
/// The claims are committed with [`Durability::Shared`]: every agent sees
/// them before the work runs (a git store pushes them, together with the
/// outcomes this agent deferred), but if the machine crashes before the
/// outcome commits make them durable, the runs are pending again, which is
/// what they would be had the crash come just before the claim.
pub(crate) fn claim(
    ctx: &EngineContext,
    runs: &[Ref],
    leases: &Leases,
) -> Result<Vec<Option<RunDoc>>> {
    let marker = Leases::claim_marker(ctx);
    let refs = runs.iter().map(RunRefs::new).collect::<Result<Vec<_>>>()?;
    let won = ctx.state.update_with(Durability::Shared, |tx| {
        let mut won = Vec::with_capacity(refs.len());
        for refs in &refs {
            let run = &refs.run;
            let likely = [RunStatus::Pending, RunStatus::Paused];
            let Some(status) = status_in(tx, refs, &likely, &[run])? else {
                return Err(Error::store(format!("run {run} has no status marker")));
            };
            if !status.is_runnable() {
                won.push(None);
                continue;
            }
            let doc = tx.get(run)?.ok_or_else(|| {
                Error::store(format!("run {run} has a status but no document")).with_ref(run)
            })?;
            let mut doc: RunDoc = parse_doc(run, "run document", doc)?;
            doc.attempt += 1;
            doc.started_at = marker.since;
            doc.finished_at = None;
            set_status(tx, refs, status, RunStatus::Running, marker.clone())?;
            tx.set_doc(run, &doc)?;
            won.push(Some(doc));
        }
        Ok(won)
    })?;
    for (refs, doc) in refs.iter().zip(&won) {
        if doc.is_some() {
            leases.hold(
                &refs.run,
                refs.marker(RunStatus::Running)?.clone(),
                marker.clone(),
            );
        }
    }
    Ok(won)
}

/// Execute `run` of `work_path` in release `rel`, which this agent has
/// claimed ([`claim`]; `doc` is its document), renewing its lease with
/// `leases` while it runs. Its log lines go to `live` as they come (and to
/// the event sink, if there is one), and are committed to `<run>/logs`
/// with its outcome, which deletes the chunks `live` wrote of them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    work_path: &WorkPath,
    run: &Ref,
    run_no: u32,
    live: &Arc<LiveLogs>,
    leases: &Leases,
    doc: RunDoc,
) -> Result<Finished> {
    let refs = RunRefs::new(run)?;
    let mut doc = doc;
    // It starts now, which may be a while after the claim of its batch.
    doc.started_at = Some(ctx.timestamp());
    let executed = run_claimed(
        ctx, loaded, rel, work_path, &refs, run_no, live, leases, doc,
    );
    // Whatever happened, the claim is not renewed any more.
    leases.release(&refs.run);
    executed
}

/// Execute a run this agent has just claimed (see [`execute`]).
#[allow(clippy::too_many_arguments)]
fn run_claimed(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    work_path: &WorkPath,
    refs: &RunRefs,
    run_no: u32,
    live: &Arc<LiveLogs>,
    leases: &Leases,
    mut doc: RunDoc,
) -> Result<Finished> {
    let run = &refs.run;
    let started = Instant::now();
    ctx.emit(|| Event::RunStarted {
        release: rel.clone(),
        work: work_path.clone(),
        run: run_no,
    });
    let mut log: Vec<LogLine> = Vec::new();
    let live_run = live.start(&refs.run);
    let sink: crate::sdk::LogSink = {
        let (live, live_run) = (live.clone(), live_run.clone());
        let events = ctx.events.clone();
        let work = work_path.clone();
        Arc::new(move |line: &LogLine| {
            live.record(&live_run, line);
            if let Some(events) = &events {
                events(&Event::Log {
                    work: work.clone(),
                    line: line.clone(),
                })
            }
        })
    };
    let outcome = loop {
        let Some(current) = doc.functions.last_mut() else {
            break Err(Error::store(format!("run {run} has no function to call")));
        };
        let resolution = resolve_inputs(&ctx.state, &current.inputs)?;
        if !resolution.is_complete() {
            // A `next()` function whose inputs are still missing.
            break Ok(None);
        }
        current.resolved = Some(resolution.values.clone());
        let result = loaded.call(&CallRequest {
            function: current.function.clone(),
            inputs: resolution.values,
            work_dir: None,
            base: Some(rel.clone()),
            log_sink: Some(sink.clone()),
        });
        log.extend(result.log);
        match result.outcome {
            Ok(Outcome::Done {
                outputs,
                tags,
                watch,
            }) => break Ok(Some((Value::Object(outputs), tags, watch))),
            Ok(Outcome::Next {
                function, inputs, ..
            }) => {
                doc.functions.push(RunFunction {
                    function,
                    inputs,
                    resolved: None,
                });
            }
            Err(e) => break Err(e),
        }
    };
    let finished = ctx.timestamp();
    doc.finished_at = Some(finished);
    let (status, error) = match &outcome {
        Ok(Some(_)) => (RunStatus::Complete, None),
        Ok(None) => (RunStatus::Paused, None),
        Err(e) => (RunStatus::Failed, Some(e.clone_for_report())),
    };
    doc.error = error.clone();
    let work_doc = match &outcome {
        Ok(Some((outputs, _, watch))) => {
            doc.output = Some(outputs.clone());
            doc.watch = watch.clone();
            Some(WorkDoc {
                run_ref: (**run).clone(),
                run_type: doc.run_type,
                release: rel.clone(),
                input: doc
                    .functions
                    .first()
                    .and_then(|f| f.resolved.clone())
                    .unwrap_or_default(),
                output: outputs.clone(),
            })
        }
        _ => None,
    };
    let work_doc_ref = KeyedRef::new(work_path.in_release(rel))?;
    let link_ref = KeyedRef::new(current_ref(rel, work_path))?;
    let logs = refs.logs()?;
    // No live chunk is written after this; the commit deletes them.
    let chunks = live_run.finish()?;
    // The claim as last renewed; no renewal touches it after this.
    let claim = leases.release(run);
    // A lease run out by this agent's clock may have been taken over: then
    // the outcome must reach every agent now (a git store pushes it), so
    // that a takeover refuses it here rather than in a later push.
    let durability = if lapsed(ctx, claim.as_ref()) {
        Durability::Shared
    } else {
        // The scheduler syncs the store before it reports.
        Durability::Deferred
    };
    // Everything the commit reads, read in one go with the status.
    let mut also = vec![&logs, &work_doc_ref, &link_ref, refs.marker(status)?];
    also.extend(&chunks);
    let refused = ctx.state.update_with(durability, |tx| {
        let now = status_in(tx, refs, &[RunStatus::Running], &also)?;
        if now != Some(RunStatus::Running) {
            let cancelled = match now {
                Some(RunStatus::Cancelled) => {
                    let marker = refs.marker(RunStatus::Cancelled)?;
                    tx.get(marker)?
                        .and_then(|doc| serde_json::from_value::<StatusMarker>(doc).ok())
                }
                _ => None,
            };
            return Ok(Some(refusal(run, now, cancelled, status)));
        }
        let running = refs.marker(RunStatus::Running)?;
        let current: Option<StatusMarker> = tx
            .get(running)?
            .and_then(|doc| serde_json::from_value(doc).ok());
        if let (Some(current), Some(claim)) = (&current, &claim)
            && !same_claim(current, claim)
        {
            return Ok(Some(refusal(run, now, None, status)));
        }
        set_status(
            tx,
            refs,
            RunStatus::Running,
            status,
            StatusMarker {
                time: doc.finished_at,
                ..StatusMarker::default()
            },
        )?;
        tx.set_doc(&refs.run, &doc)?;
        if !log.is_empty() {
            let mut lines = match tx.get(&logs)? {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            for l in &log {
                lines.push(serde_json::to_value(l)?);
            }
            tx.set(&logs, Value::Array(lines))?;
        }
        for chunk in &chunks {
            tx.delete(chunk)?;
        }
        if let (Ok(Some((_, tags, _))), Some(work_doc)) = (&outcome, &work_doc) {
            tx.set_doc(&work_doc_ref, work_doc)?;
            if doc.run_type == RunType::Down {
                tx.unlink(&link_ref)?;
            } else {
                tx.link(&link_ref, &work_doc_ref)?;
            }
            for tag in tags {
                tx.link(&rel.package().with_release(tag.as_str()), rel)?;
            }
        }
        Ok(None)
    })?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    if work_doc.is_some() {
        ctx.journal.record(&work_doc_ref);
    }
    let summary = error.as_ref().map(|e| e.summary.clone());
    let error = error.map(|e| e.message);
    ctx.emit(|| Event::RunFinished {
        release: rel.clone(),
        work: work_path.clone(),
        run: run_no,
        status,
        duration_ms: started.elapsed().as_millis() as u64,
        error: error.clone(),
    });
    let duration_ms = match (&doc.started_at, &doc.finished_at) {
        (Some(s), Some(e)) => e.millis_since(*s),
        _ => None,
    };
    Ok(Finished {
        run: run_no,
        status,
        duration_ms,
        error,
        summary,
    })
}

/// Why this agent's outcome of `run` is not recorded: the run is no longer
/// its (`now` is its status; `cancelled`, its marker if it was taken over).
fn refusal(
    run: &KeyedRef,
    now: Option<RunStatus>,
    cancelled: Option<StatusMarker>,
    outcome: RunStatus,
) -> Error {
    let what = match cancelled.as_ref().and_then(|m| m.taken_over.as_ref()) {
        Some(t) => {
            let replaced = cancelled
                .as_ref()
                .and_then(|m| m.retried_by.as_ref())
                .map_or_else(String::new, |r| format!("; {r} replaces it"));
            format!(
                "was taken over by {} at {} ({}) while this agent ran it{replaced}",
                t.by, t.at, t.reason
            )
        }
        None => format!(
            "changed while this agent ran it (now {}, and not this agent's claim)",
            now.map_or("missing", |s| s.as_str())
        ),
    };
    Error::conflict(format!(
        "run {run} {what}: this agent's outcome ({outcome}) is not recorded. Its lease had run \
         out: was the agent suspended, or cut off from the store for longer than \
         OCUROOT_RUN_LEASE?"
    ))
    .with_ref(run)
}

/// When deployments start, record what is deployed in the intent store:
/// `<pkg>/@/deploy/<env>` = `{"release", "input"}` for `up`, removed for
/// `down` (SPEC §5), for each of `claimed` (work paths and the documents of
/// runs just claimed) that is a deployment about to call its first
/// function. Editing or deleting it is how users roll back or undeploy.
/// One transaction for all of them.
pub(crate) fn write_deploy_intents(
    ctx: &EngineContext,
    rel: &Ref,
    claimed: &[(&WorkPath, &RunDoc)],
) -> Result<()> {
    let mut writes = Vec::new();
    for (work_path, doc) in claimed {
        let ([first], false) = (doc.functions.as_slice(), doc.run_type == RunType::Task) else {
            continue;
        };
        let resolution = resolve_inputs(&ctx.state, &first.inputs)?;
        if resolution.is_complete() {
            writes.push((current_ref(rel, work_path), doc.run_type, resolution.values));
        }
    }
    if writes.is_empty() {
        return Ok(());
    }
    // Seen by every agent before the runs' outcomes can reach state: an
    // agent comparing intent with state reads intent after state, and must
    // never find state newer than the intent (see `intent::deploys`). When
    // intent publishes in order with state (one git branch holds both), the
    // intents share the push of the next commit, which the outcomes follow.
    let durability = if ctx.intent.publishes_before(&ctx.state) {
        Durability::Deferred
    } else {
        Durability::Shared
    };
    ctx.intent.update_with(durability, |tx| {
        for (intent_ref, run_type, input) in &writes {
            match run_type {
                RunType::Down => tx.delete(intent_ref)?,
                _ => tx.set(
                    intent_ref,
                    json!({"release": rel.to_string(), "input": input}),
                )?,
            }
        }
        Ok(())
    })
}

impl Error {
    /// The parts of an error worth keeping on a failed run.
    pub(crate) fn clone_for_report(&self) -> RunError {
        RunError {
            message: self.message().to_string(),
            summary: self.summary().to_string(),
            location: self.location().cloned(),
            stack: self.stack().map(str::to_string),
        }
    }
}
