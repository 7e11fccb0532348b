//! Executing one run: claim it, call its function chain, commit the outcome.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::EngineContext;
use super::inputs::resolve_inputs;
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

/// What happened to a run this agent tried to execute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Executed {
    /// Another agent claimed it first (or it is no longer runnable).
    Lost,
    /// It finished.
    Finished(Finished),
}

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

/// Claim `run` (pending or paused -> running) with a compare-and-swap. Returns
/// the run document, or `None` when someone else got it.
///
/// The claim is committed with [`Durability::Shared`]: every agent sees it
/// before the work runs (a git store pushes it), but if the machine crashes
/// before the outcome commit makes it durable, the run is pending again,
/// which is what it would be had the crash come just before the claim.
fn claim(ctx: &EngineContext, refs: &RunRefs) -> Result<Option<(RunDoc, RunStatus)>> {
    let run = &refs.run;
    ctx.state.update_with(Durability::Shared, |tx| {
        let likely = [RunStatus::Pending, RunStatus::Paused];
        let Some(status) = status_in(tx, refs, &likely, &[run])? else {
            return Err(Error::store(format!("run {run} has no status marker")));
        };
        if !status.is_runnable() {
            return Ok(None);
        }
        let doc = tx.get(run)?.ok_or_else(|| {
            Error::store(format!("run {run} has a status but no document")).with_ref(run)
        })?;
        let mut doc: RunDoc = parse_doc(run, "run document", doc)?;
        doc.attempt += 1;
        doc.started_at = Some(ctx.timestamp());
        doc.finished_at = None;
        set_status(
            tx,
            refs,
            status,
            RunStatus::Running,
            StatusMarker {
                agent: Some(ctx.host.agent()),
                since: Some(ctx.timestamp()),
                ..StatusMarker::default()
            },
        )?;
        tx.set_doc(run, &doc)?;
        Ok(Some((doc, status)))
    })
}

/// Execute one run of `work_path` in release `rel`. Its log lines go to
/// `live` as they come (and to the event sink, if there is one), and are
/// committed to `<run>/logs` with its outcome, which deletes the chunks
/// `live` wrote of them.
pub(crate) fn execute(
    ctx: &EngineContext,
    loaded: &LoadedFile,
    rel: &Ref,
    work_path: &WorkPath,
    run: &Ref,
    run_no: u32,
    live: &Arc<LiveLogs>,
) -> Result<Executed> {
    let refs = RunRefs::new(run)?;
    let Some((mut doc, _)) = claim(ctx, &refs)? else {
        return Ok(Executed::Lost);
    };
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
        let first_call = doc.functions.len() == 1;
        let Some(current) = doc.functions.last_mut() else {
            break Err(Error::store(format!("run {run} has no function to call")));
        };
        let resolution = resolve_inputs(&ctx.state, &current.inputs)?;
        if !resolution.is_complete() {
            // A `next()` function whose inputs are still missing.
            break Ok(None);
        }
        current.resolved = Some(resolution.values.clone());
        if first_call {
            write_deploy_intent(ctx, rel, work_path, doc.run_type, &resolution.values)?;
        }
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
                run_ref: run.clone(),
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
    // Everything the commit reads, read in one go with the status.
    let mut also = vec![&logs, &work_doc_ref, &link_ref, refs.marker(status)?];
    also.extend(&chunks);
    // Deferred: the scheduler syncs the store before it reports.
    let committed = ctx.state.update_with(Durability::Deferred, |tx| {
        match status_in(tx, &refs, &[RunStatus::Running], &also)? {
            Some(RunStatus::Running) => {}
            other => {
                return Err(Error::conflict(format!(
                    "run {run} changed while it ran (now {})",
                    other.map(|s| s.as_str()).unwrap_or("missing")
                )));
            }
        }
        set_status(
            tx,
            &refs,
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
        Ok(())
    });
    committed?;
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
    Ok(Executed::Finished(Finished {
        run: run_no,
        status,
        duration_ms,
        error,
        summary,
    }))
}

/// When a deployment starts, record what is deployed in the intent store:
/// `<pkg>/@/deploy/<env>` = `{"release", "input"}` for `up`, removed for
/// `down` (SPEC §5). Editing or deleting it is how users roll back or
/// undeploy.
fn write_deploy_intent(
    ctx: &EngineContext,
    rel: &Ref,
    work_path: &WorkPath,
    run_type: RunType,
    input: &std::collections::BTreeMap<String, Value>,
) -> Result<()> {
    if run_type == RunType::Task {
        return Ok(());
    }
    let intent_ref = current_ref(rel, work_path);
    ctx.intent
        .update_with(Durability::Deferred, |tx| match run_type {
            RunType::Down => tx.delete(&intent_ref),
            _ => tx.set(
                &intent_ref,
                json!({"release": rel.to_string(), "input": input}),
            ),
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
