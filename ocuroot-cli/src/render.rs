//! Text and JSON output of the commands.

use std::fmt::Write;

use std::io::Write as _;
use std::sync::Arc;

use ocuroot_core::model::{
    ChangeKind, Event, EventSink, IntentPush, NewRelease, Plan, PushOutcome, TriggerStatus,
    Triggered, WorkOutcome,
};
use ocuroot_core::model::{InputSpec, ReleaseReport, Work};
use ocuroot_core::refs::Ref;
use ocuroot_core::sdk::FileContents;
use ocuroot_core::workspace::{EnvironmentSource, Lint};
use ocuroot_core::{Error, ErrorKind};

/// An error for stderr: `Error: <error>` (an error with a location displays
/// it first: `Error: repo.ocu.star:3:1: ...`), as the original's CLI prints
/// every error. An evaluation error, which Starlark renders with a
/// traceback and the source line, gets its one-line summary on the
/// `Error:` line and the rendering below it.
pub fn error(e: &Error) -> String {
    let text = e.to_string();
    let rendered = e.kind() == ErrorKind::Eval
        && (text.starts_with("error:") || text.starts_with("Traceback"));
    if rendered {
        let summary = e.summary().trim_start_matches("error: ");
        return match e.location() {
            Some(at) => format!("Error: {at}: {summary}\n{text}"),
            None => format!("Error: {summary}\n{text}"),
        };
    }
    // The library's messages name no CLI flag; the CLI adds its own hints.
    let hint = match e.kind() {
        ErrorKind::AlreadyReleased => "\nYou can force a new release with the --force flag",
        _ => "",
    };
    format!("Error: {text}{hint}")
}

/// Pretty JSON with a trailing newline (2-space indent, as the original).
pub fn json_pretty(v: &serde_json::Value) -> Result<String, Error> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

/// `state gc`: each clone packed (objects, bytes before and after) and
/// each removed.
pub fn gc_text(report: &ocuroot_core::GcReport) -> String {
    let mut out = String::new();
    for p in &report.packed {
        out.push_str(&format!(
            "packed {}: {} objects, {} KiB -> {} KiB\n",
            p.clone.display(),
            p.objects,
            p.bytes_before.div_ceil(1024),
            p.bytes_after.div_ceil(1024)
        ));
    }
    for r in &report.removed {
        out.push_str(&format!("removed {}\n", r.display()));
    }
    if out.is_empty() {
        out = format!("nothing to do under {}\n", report.home.display());
    }
    out
}

/// `r` written relative to `base` where that is shorter: `./task/x` for the
/// same release, `./@/...` for the same package, `./-/<path>/...` for the
/// same repository.
pub fn relative_display(r: &Ref, base: &Ref) -> String {
    if r.global || r.repo != base.repo {
        return r.to_string();
    }
    let tail = |r: &Ref| {
        let mut s = String::new();
        if let Some(t) = r.subpath_type {
            s.push('/');
            s.push_str(t.as_str());
            if !r.subpath.is_empty() {
                s.push('/');
                s.push_str(&r.subpath);
            }
        }
        if !r.fragment.is_empty() {
            s.push('#');
            s.push_str(&r.fragment);
        }
        s
    };
    if r.filename == base.filename {
        match &r.release {
            Some(rel) if Some(rel) == base.release.as_ref() && r.subpath_type.is_some() => {
                return format!(".{}", tail(r));
            }
            Some(rel) => return format!("./@{rel}{}", tail(r)),
            None => {}
        }
    }
    let mut full = r.clone();
    full.repo = String::new();
    format!("./-/{full}")
}

fn input_line(name: &str, spec: &InputSpec, base: &Ref) -> String {
    match spec {
        InputSpec::Ref { r#ref, default } => {
            let mut s = format!("    input {name} <- {}", relative_display(r#ref, base));
            match default {
                Some(d) => {
                    let _ = write!(s, " (default {d})");
                }
                None => s.push_str(" (required)"),
            }
            s
        }
        InputSpec::Value(v) => format!("    input {name} = {v}"),
    }
}

/// The text of `release lint`.
pub fn lint_text(lint: &Lint) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Package {} (refs resolve against {})",
        lint.file, lint.base
    );
    match &lint.environment_source {
        EnvironmentSource::State => {}
        EnvironmentSource::Files(files) => {
            let _ = writeln!(
                s,
                "No environments in state yet; using those registered by {}",
                files.join(", ")
            );
        }
        EnvironmentSource::None => {
            let _ = writeln!(s, "No environments in state or in any environments file");
        }
    }
    match lint.loaded.contents() {
        FileContents::Empty => {
            let _ = writeln!(s, "No release configured");
        }
        FileContents::Environments(envs) => {
            let _ = writeln!(s, "Registers {} environments:", envs.len());
            for e in envs {
                let attrs = serde_json::Value::Object(e.attributes.clone());
                let _ = writeln!(s, "  {} {attrs}", e.name);
            }
        }
        FileContents::Release(package) => {
            let mut declared = lint.loaded.declared().iter();
            for (i, phase) in package.phases.iter().enumerate() {
                let tasks = phase
                    .work
                    .iter()
                    .filter(|w| matches!(w, Work::Task(_)))
                    .count();
                let deploys = phase.work.len() - tasks;
                let mut counts = Vec::new();
                if tasks > 0 {
                    counts.push(plural(tasks, "task"));
                }
                if deploys > 0 || tasks == 0 {
                    counts.push(plural(deploys, "deployment"));
                }
                let title = if phase.name.is_empty() {
                    format!("Phase {} (unnamed)", i + 1)
                } else {
                    format!("Phase {} {:?}", i + 1, phase.name)
                };
                let _ = writeln!(s, "{title}: {}", counts.join(", "));
                for w in &phase.work {
                    let at = declared
                        .next()
                        .map(|d| format!("  [{}]", d.location))
                        .unwrap_or_default();
                    match w {
                        Work::Task(t) => {
                            let _ = writeln!(
                                s,
                                "  Task {:?}: {}(){at}",
                                t.name.as_str(),
                                t.function.name
                            );
                        }
                        Work::Deploy(d) => {
                            let _ = writeln!(
                                s,
                                "  Deployment to {:?}: up {}(), down {}(){at}",
                                d.environment.as_str(),
                                d.up.name,
                                d.down.name
                            );
                        }
                    }
                    for (name, spec) in w.inputs() {
                        let _ = writeln!(s, "{}", input_line(name, spec, &lint.base));
                    }
                }
            }
        }
    }
    if !lint.skipped.is_empty() {
        let _ = writeln!(
            s,
            "Not run while linting ({}; they succeed doing nothing):",
            plural(lint.skipped.len(), "call")
        );
        for call in &lint.skipped {
            let _ = writeln!(s, "  {call}");
        }
    }
    let _ = writeln!(s, "Config file evaluated successfully");
    s
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The JSON of `release lint --format json`.
pub fn lint_json(lint: &Lint) -> Result<String, Error> {
    json_pretty(&lint.to_json())
}

fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// Live progress on stderr: each run's start, its log lines, its end
/// (nothing when a release starts: see [`event_line`]).
pub fn progress_sink() -> EventSink {
    Arc::new(|event: &Event| {
        let Some(line) = event_line(event) else {
            return;
        };
        // One write per line so lines from parallel runs do not interleave.
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("{line}\n").as_bytes());
    })
}

/// The progress line of an event (without a newline): runs starting and
/// finishing, and log lines. `None` for an event that prints nothing (a
/// release starting: its totals are for displays that keep count).
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::ReleaseStarted { .. } => return None,
        Event::RunStarted { work, run, .. } => format!("[start] {work} (run {run})"),
        Event::Log { work, line } => format!("  {work} | {}", line.message),
        Event::RunTakenOver {
            work,
            run,
            new_run,
            holder,
            reason,
            ..
        } => {
            let from = holder
                .as_ref()
                .map_or_else(|| "an unknown agent".to_string(), |h| h.to_string());
            format!(
                "[taken over] {work} (run {run}) from {from}: {reason}; run {new_run} replaces it"
            )
        }
        Event::RunFinished {
            work,
            status,
            duration_ms,
            error,
            ..
        } => {
            let mut l = format!("[{status}] {work} in {}", seconds(*duration_ms));
            if let Some(e) = error {
                let first = e
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or(e.lines().next().unwrap_or(""));
                let _ = write!(l, ": {first}");
            }
            l
        }
    })
}

/// The text of a release report.
pub fn report_text(report: &ReleaseReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Release {}: {}", report.release, report.status);
    let mut phase = usize::MAX;
    for w in &report.work {
        if w.phase != phase {
            phase = w.phase;
            if w.phase_name.is_empty() {
                let _ = writeln!(s, "  Phase {}", w.phase + 1);
            } else {
                let _ = writeln!(s, "  Phase {} {:?}", w.phase + 1, w.phase_name);
            }
        }
        let mut line = format!("    {:<9} {}", w.state.as_str(), w.path);
        if let Some(run) = w.run {
            let _ = write!(line, "  run {run}");
        }
        if let Some(ms) = w.duration_ms {
            let _ = write!(line, "  {}", seconds(ms));
        }
        let _ = writeln!(s, "{line}");
        if let Some(e) = &w.error {
            for l in e.lines() {
                let _ = writeln!(s, "        {l}");
            }
        }
        for r in &w.waiting_for {
            let _ = writeln!(s, "        waiting for {r}");
        }
    }
    s
}

/// What applying intent or a `work` command did: each intent applied, the
/// report of each release that ran, and the work left for later.
pub fn outcome_text(outcome: &WorkOutcome) -> String {
    let mut text = String::new();
    for change in &outcome.applied {
        let verb = match change.change {
            ChangeKind::Create => "created",
            ChangeKind::Update => "updated",
            ChangeKind::Delete => "deleted",
        };
        text.push_str(&format!("Applied {} ({verb})\n", change.r#ref));
    }
    for op in &outcome.ops {
        if op.added.is_empty() {
            text.push_str(&format!("Ran {}: no new deploys\n", op.r#ref));
        } else {
            text.push_str(&format!(
                "Ran {}: added {} (pending)\n",
                op.r#ref,
                op.added
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for report in &outcome.releases {
        text.push_str(&report_text(report));
    }
    for note in &outcome.deferred {
        text.push_str(&format!("Deferred: {note}\n"));
    }
    for note in &outcome.stopped {
        text.push_str(&format!("Stopped: {note}\n"));
    }
    if !outcome.triggered.is_empty() {
        text.push_str(&triggered_text(&outcome.triggered));
    }
    if text.is_empty() {
        text.push_str("Nothing to do\n");
    }
    text
}

/// What `release new` did: the release's report, the environments
/// registered and what applying them did, or that the file declares
/// nothing.
pub fn new_release_text(released: &NewRelease) -> String {
    match released {
        NewRelease::Release(r) => report_text(r),
        NewRelease::Environments {
            environments,
            outcome,
        } => {
            let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
            format!(
                "Registered environments: {}\n{}",
                names.join(", "),
                outcome_text(outcome)
            )
        }
        NewRelease::Empty => "No release configured\n".to_string(),
    }
}

/// `ocuroot push` in an intent checkout: the commit of the intent branch
/// applied (the remote's tip, which the checkout may be behind), the refs
/// and what applying them did.
pub fn intent_push_text(pushed: &IntentPush) -> String {
    let since = match &pushed.previous_commit {
        Some(c) => format!("changed since the push of {c}"),
        None => "(first push: the whole diff)".to_string(),
    };
    if pushed.refs.is_empty() {
        return format!("No intent to apply at {} {since}\n", pushed.commit);
    }
    let verb = if pushed.dryrun {
        "Would apply"
    } else {
        "Applying"
    };
    // The commit applied is the remote's; the checkout may be behind it.
    let at = match &pushed.checkout_commit {
        Some(checkout) => format!("{} (this checkout is at {checkout})", pushed.commit),
        None => pushed.commit.clone(),
    };
    let mut text = format!("{verb} the intent at {at} {since}:\n");
    for r in &pushed.refs {
        text.push_str(&format!("  {r}\n"));
    }
    if !pushed.dryrun {
        text.push('\n');
        text.push_str(&outcome_text(&pushed.outcome));
    }
    text
}

/// `ocuroot push` in a source repository: the packages, why each, what
/// releasing each did, then the cascade and the index.
pub fn push_text(pushed: &PushOutcome) -> String {
    let mut text = String::new();
    let since = match &pushed.previous_commit {
        Some(c) => format!("since the push of {c}"),
        None => "(first push)".to_string(),
    };
    if pushed.packages.is_empty() {
        text.push_str(&format!("Nothing to push at {} {since}\n", pushed.commit));
        return text;
    }
    let verb = if pushed.dryrun {
        "Would release"
    } else {
        "Releasing"
    };
    text.push_str(&format!("{verb} at {} {since}:\n", pushed.commit));
    for p in &pushed.packages {
        text.push_str(&format!("  {} ({})\n", p.package, p.reason));
    }
    for p in &pushed.packages {
        if let Some(released) = &p.release {
            text.push_str(&format!("\n{}:\n", p.package));
            text.push_str(&new_release_text(released));
        }
        if let Some(e) = &p.error {
            text.push_str(&format!("\n{}: could not be released: {e}\n", p.package));
        }
    }
    if !pushed.dryrun {
        text.push_str("\nCascade:\n");
        text.push_str(&outcome_text(&pushed.cascade));
        match &pushed.index {
            Some(index) => text.push_str(&format!("Recorded {index}\n")),
            None => text.push_str(
                "Not recorded: a package could not be released, so the next push includes it again\n",
            ),
        }
    }
    text
}

/// `ocuroot plan`: each item on a line (dependencies first), ready ones
/// with why, waiting ones with what for.
pub fn plan_text(plan: &Plan) -> String {
    if plan.work.is_empty() {
        return "Nothing to do\n".to_string();
    }
    let mut text = String::new();
    for todo in &plan.work {
        let kind = todo.work_type.as_str();
        let at = todo
            .commit
            .as_deref()
            .map(|c| format!(" @ {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        if todo.is_ready() {
            text.push_str(&format!(
                "ready    {kind:<6} {}{at}: {}\n",
                todo.r#ref, todo.reason
            ));
        } else {
            text.push_str(&format!(
                "waiting  {kind:<6} {}{at}: waits for {}\n",
                todo.r#ref,
                todo.waits_for.join(", ")
            ));
        }
    }
    text
}

/// `ocuroot work trigger`: a line per commit.
pub fn triggered_text(triggered: &[Triggered]) -> String {
    if triggered.is_empty() {
        return "No commits with outstanding work\n".to_string();
    }
    let mut text = String::new();
    for t in triggered {
        let what = match t.status {
            TriggerStatus::Planned => "would trigger".to_string(),
            TriggerStatus::Called => "triggered".to_string(),
            TriggerStatus::NoTrigger => "no trigger in repo.ocu.star".to_string(),
            TriggerStatus::Failed => format!(
                "trigger failed: {}",
                t.error.as_deref().unwrap_or("unknown error")
            ),
        };
        text.push_str(&format!("{} @ {}: {what}\n", t.repo, t.commit));
        for line in &t.log {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}
