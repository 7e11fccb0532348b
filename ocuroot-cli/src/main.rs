//! `ocuroot`: the command line over `ocuroot-core`.
//!
//! Each subcommand is a few lines over [`ocuroot_core::Workspace`]; the
//! output formats are in [`render`].

mod args;
mod log;
mod logfile;
mod mcp;
mod progress;
mod render;
mod repl;
mod view;

use std::io::{Read, Write};
use std::process::ExitCode;

use args::{
    CascadeArgs, Cli, Command, Format, PackageFlags, PlanFormat, ReleaseCommand, RunArgs,
    StateCommand, ValueFormat, WorkCommand, WorkLimit,
};
use clap::Parser;
use ocuroot_core::model::{NewRelease, TriggerStatus, WorkOutcome};
use ocuroot_core::{Error, WorkResult, Workspace};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let to_file = logfile::open(&args).is_some();
    init_diagnostics(to_file);
    tracing::debug!(
        version = env!("CARGO_PKG_VERSION"),
        cwd = %std::env::current_dir().unwrap_or_default().display(),
        "ocuroot started"
    );
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            progress::clear();
            let text = render::error(&e);
            logfile::line(&text);
            eprintln!("{text}");
            ExitCode::FAILURE
        }
    };
    let status = if code == ExitCode::SUCCESS { 0 } else { 1 };
    logfile::line(&format!("exit status {status}"));
    code
}

/// Diagnostics (`tracing`) to stderr at `OCUROOT_LOG` (default `warn`;
/// `debug` with `OCUROOT_DEBUG`), and to the log file at `debug` with
/// `OCUROOT_DEBUG`, else `OCUROOT_LOG` or `info`. Secrets masked in both.
fn init_diagnostics(to_file: bool) {
    // `OCUROOT_DEBUG`: the debug lines of our own crates, not of every
    // dependency's.
    const OUR_DEBUG: &str = "info,ocuroot=debug,ocuroot_core=debug";
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let debug = logfile::debug();
    let configured = || EnvFilter::try_from_env("OCUROOT_LOG").ok();
    let stderr_filter =
        configured().unwrap_or_else(|| EnvFilter::new(if debug { OUR_DEBUG } else { "warn" }));
    let file_filter = if debug {
        EnvFilter::new(OUR_DEBUG)
    } else {
        configured().unwrap_or_else(|| EnvFilter::new("info"))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(log::MaskedStderr::default)
        .with_filter(stderr_filter);
    let file = to_file.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(logfile::MaskedFile::default)
            .with_filter(file_filter)
    });
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
}

fn workspace() -> Result<Workspace, Error> {
    Workspace::open(".")
}

fn run_workspace(args: &RunArgs) -> Result<Workspace, Error> {
    cascade_workspace(args, None)
}

fn cascade_workspace(args: &RunArgs, cascade: Option<&CascadeArgs>) -> Result<Workspace, Error> {
    limited_workspace(args, cascade, &WorkLimit::default())
}

/// A workspace builder here, limited to the package or release a `work`
/// command was given.
fn limited_builder(limit: &WorkLimit) -> ocuroot_core::workspace::WorkspaceBuilder {
    let builder = Workspace::builder(".");
    match &limit.r#ref {
        Some(r) => builder.limit(r.clone()),
        None => builder,
    }
}

/// A workspace for a command that runs work, limited to the package or
/// release a `work` command was given.
fn limited_workspace(
    args: &RunArgs,
    cascade: Option<&CascadeArgs>,
    limit: &WorkLimit,
) -> Result<Workspace, Error> {
    let mut builder = limited_builder(limit);
    if let Some(c) = cascade {
        builder = builder.max_attempts(c.max_attempts);
    }
    if let Some(n) = args.parallel {
        builder = builder.parallel(n as usize);
    }
    if let Some(t) = args.timeout {
        builder = builder.limits(ocuroot_core::sdk::Limits {
            shell_timeout: Some(t),
            ..Default::default()
        });
    }
    // Runs' progress and logs go to the log file, and unless `-q` to stderr.
    let shown = (!args.quiet).then(|| progress::sink(args.json));
    builder = builder.events(std::sync::Arc::new(
        move |event: &ocuroot_core::model::Event| {
            if let Some(line) = render::event_line(event) {
                logfile::line(&line);
            }
            if let Some(shown) = &shown {
                shown(event);
            }
        },
    ));
    builder.open()
}

fn code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Write to stdout; a closed pipe (`ocuroot state match | head`) is not an
/// error.
fn write(text: &str) {
    progress::clear();
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Print what a command did, as JSON or as text led by the note on the
/// repository name (when it is the directory's: on stderr with JSON), and
/// exit 1 when it `failed`.
fn report(
    ws: &Workspace,
    json: bool,
    value: &impl serde::Serialize,
    text: impl FnOnce() -> String,
    failed: bool,
) -> Result<ExitCode, Error> {
    let note = ws.name_note();
    if json {
        if let Some(note) = &note {
            eprintln!("{note}");
        }
        write(&render::json_pretty(&serde_json::to_value(value)?)?);
    } else {
        let mut out = note.map(|n| n + "\n").unwrap_or_default();
        out.push_str(&text());
        write(&out);
    }
    Ok(code(failed))
}

fn report_outcome(ws: &Workspace, json: bool, outcome: &WorkOutcome) -> Result<ExitCode, Error> {
    report(
        ws,
        json,
        outcome,
        || render::outcome_text(outcome),
        outcome.failed(),
    )
}

fn report_release(
    ws: &Workspace,
    json: bool,
    report_: &ocuroot_core::model::ReleaseReport,
) -> Result<ExitCode, Error> {
    report(
        ws,
        json,
        report_,
        || render::report_text(report_),
        report_.is_failed(),
    )
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Version => write(&format!(
            "Ocuroot version: {} (SDK {})\n",
            env!("CARGO_PKG_VERSION"),
            ocuroot_core::sdk::SDK_VERSION
        )),
        Command::Release { package, command } => return release(command, &package),
        Command::State { package, command } => return state(command, &package),
        Command::Work { command } => return work(command),
        Command::Plan { format } => {
            let plan = workspace()?.plan()?;
            write(&match format {
                PlanFormat::Text => render::plan_text(&plan),
                PlanFormat::Json => render::json_pretty(&plan.to_json())?,
                PlanFormat::Mermaid => plan.graph.to_mermaid(),
                PlanFormat::Dot => plan.graph.to_dot(),
            });
        }
        Command::Push {
            dryrun,
            cascade_args,
            run,
        } => {
            let ws = cascade_workspace(&run, Some(&cascade_args))?;
            if ws.store_checkout().is_some() {
                let pushed = ws.push_intent(dryrun)?;
                return report(
                    &ws,
                    run.json,
                    &pushed,
                    || render::intent_push_text(&pushed),
                    pushed.outcome.failed(),
                );
            }
            let pushed = ws.push(dryrun)?;
            return report(
                &ws,
                run.json,
                &pushed,
                || render::push_text(&pushed),
                pushed.failed(),
            );
        }
        Command::Repl { file, command } => return repl::run(file, command),
        Command::FindDeploys { start, end } => {
            let found = workspace()?.find_deploys(&start, &end)?;
            write(
                &found
                    .iter()
                    .map(|d| format!("{}\n", d.r#ref))
                    .collect::<String>(),
            );
        }
        Command::Preview { file, port } => {
            let ws = workspace()?;
            view::serve_preview(&ws, &file, port, |url| {
                write(&format!(
                    "Serving the preview of {} at {url}\n",
                    file.display()
                ));
            })?;
        }
        Command::Mcp => return mcp::run(),
    }
    Ok(ExitCode::SUCCESS)
}

/// The release a `release` command works on: its argument, else
/// `--package` (with `--release`).
fn release_named(arg: Option<String>, flags: &PackageFlags) -> Result<Option<String>, Error> {
    Ok(match (arg, &flags.package, &flags.release) {
        (Some(arg), _, _) => Some(arg),
        (None, Some(package), Some(release)) => Some(format!("{package}/@{release}")),
        (None, Some(package), None) => Some(package.clone()),
        (None, None, Some(release)) => {
            return Err(Error::invalid_input(format!(
                "--release {release} names a release of no package: give --package too, or \
                 <package>/@{release} as the argument"
            )));
        }
        (None, None, None) => None,
    })
}

/// The package file a `release` command works on: its argument, else
/// `--package`.
fn package_named(
    file: Option<std::path::PathBuf>,
    flags: &PackageFlags,
    command: &str,
) -> Result<std::path::PathBuf, Error> {
    file.or_else(|| flags.package.as_ref().map(Into::into))
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "release {command} needs a package file: give it as the argument or with --package"
            ))
        })
}

fn release(command: ReleaseCommand, flags: &PackageFlags) -> Result<ExitCode, Error> {
    match command {
        ReleaseCommand::New {
            file,
            force,
            cascade,
            cascade_args,
            run,
        } => {
            let file = package_named(file, flags, "new")?;
            let ws = cascade_workspace(&run, Some(&cascade_args))?;
            let released = ws.release_new(&file, force)?;
            if cascade {
                let followed = ws.cascade()?;
                let failed = followed.failed() || released.failed();
                let value = serde_json::json!({"release": released, "cascade": followed});
                return report(
                    &ws,
                    run.json,
                    &value,
                    || {
                        let mut text = render::new_release_text(&released);
                        text.push_str("\nCascade:\n");
                        text.push_str(&render::outcome_text(&followed));
                        text
                    },
                    failed,
                );
            }
            let failed = released.failed();
            match &released {
                NewRelease::Release(r) => report_release(&ws, run.json, r),
                NewRelease::Environments {
                    environments,
                    outcome,
                } => report(
                    &ws,
                    run.json,
                    &serde_json::json!({"environments": environments, "outcome": outcome}),
                    || render::new_release_text(&released),
                    failed,
                ),
                NewRelease::Empty => {
                    write(&render::new_release_text(&released));
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        ReleaseCommand::Continue { release, run } => {
            // As the original: without a release, say so and succeed.
            let Some(release) = release_named(release, flags)? else {
                write("A release ID or tag must be specified\n");
                return Ok(ExitCode::SUCCESS);
            };
            let ws = run_workspace(&run)?;
            let r = ws.release_continue(&release)?;
            report_release(&ws, run.json, &r)
        }
        ReleaseCommand::Retry { release, run } => {
            let ws = run_workspace(&run)?;
            let release = match release_named(release, flags)? {
                Some(release) => release,
                // As the original: the release made last at this commit.
                None => match ws.latest_release_here()? {
                    Some(r) => r.to_string(),
                    None => {
                        write(&format!("No release found at commit {}\n", ws.commit()));
                        return Ok(ExitCode::SUCCESS);
                    }
                },
            };
            let r = ws.release_retry(&release)?;
            report_release(&ws, run.json, &r)
        }
        ReleaseCommand::Takeover { release, run } => {
            let release = release_named(release, flags)?.ok_or_else(|| {
                Error::invalid_input("release takeover needs a release: give it as the argument")
            })?;
            let ws = run_workspace(&run)?;
            let r = ws.release_takeover(&release)?;
            report_release(&ws, run.json, &r)
        }
        ReleaseCommand::Status { release, json } => {
            let release = release_named(release, flags)?.ok_or_else(|| {
                Error::invalid_input("release status needs a release: give it as the argument")
            })?;
            let ws = workspace()?;
            let r = ws.release_status(&release)?;
            report_release(&ws, json, &r)
        }
        ReleaseCommand::Lint { file, format } => {
            let file = package_named(file, flags, "lint")?;
            let ws = workspace()?;
            let lint = ws.release_lint(&file)?;
            for line in lint.loaded.prints() {
                eprintln!("{}", line.message);
            }
            write(&match format {
                Format::Text => render::lint_text(&lint),
                Format::Json => render::lint_json(&lint)?,
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A ref given to a `state` command: relative ones are read against
/// `--package` (and `--release`) when given, else against the working
/// directory.
fn state_ref(ws: &Workspace, text: String, flags: &PackageFlags) -> Result<String, Error> {
    let Some(base) = release_named(None, flags)? else {
        return Ok(text);
    };
    let r = ocuroot_core::refs::Ref::parse(&text)?;
    if !r.is_relative() {
        return Ok(text);
    }
    Ok(r.relative_to(&ws.release_arg(&base)?).to_string())
}

fn state(command: StateCommand, flags: &PackageFlags) -> Result<ExitCode, Error> {
    match command {
        StateCommand::Get { r#ref } => {
            let ws = workspace()?;
            let r#ref = state_ref(&ws, r#ref, flags)?;
            match ws.state_get(&r#ref)? {
                Some(doc) => write(&render::json_pretty(&doc)?),
                None => {
                    eprintln!("Error: ref not found: {}", ws.resolve_user_ref(&r#ref)?);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        StateCommand::Read { r#ref } => {
            let ws = workspace()?;
            let r#ref = state_ref(&ws, r#ref, flags)?;
            match ws.state_read(&r#ref)? {
                Some(read) => write(&render::json_pretty(&serde_json::to_value(&read)?)?),
                None => {
                    eprintln!("Error: ref not found: {}", ws.resolve_user_ref(&r#ref)?);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        StateCommand::Match {
            mut globs,
            no_links,
        } => {
            let ws = workspace()?;
            if globs.is_empty() {
                // Every ref (the original's empty glob matched none), or
                // every ref of the package or release the flags name.
                globs.push(match release_named(None, flags)? {
                    Some(base) => format!("{}/**", ws.release_arg(&base)?),
                    None => "**".to_string(),
                });
            }
            let refs = if no_links {
                ws.state_match_no_links(&globs)?
            } else {
                ws.state_match(&globs)?
            };
            write(&refs.iter().map(|r| format!("{r}\n")).collect::<String>());
        }
        StateCommand::Checkpoint => workspace()?.state_checkpoint()?,
        StateCommand::Gc { unused_for, json } => {
            let report = workspace()?.state_gc(unused_for)?;
            write(&if json {
                render::json_pretty(&serde_json::to_value(&report)?)?
            } else {
                render::gc_text(&report)
            });
        }
        StateCommand::View {
            port,
            bind,
            open,
            allow_intent,
            export,
        } => {
            let ws = workspace()?;
            match export {
                Some(dir) => {
                    let pages = view::export(&ws, &dir)?;
                    write(&format!(
                        "Wrote {pages} pages; open {}\n",
                        dir.join("index.html").display()
                    ));
                }
                None => view::serve(
                    &ws,
                    &view::ServeOptions {
                        bind,
                        port,
                        allow_intent,
                        open,
                    },
                    |url| {
                        let approvals = if allow_intent {
                            " (approvals allowed)"
                        } else {
                            ""
                        };
                        write(&format!(
                            "Serving the state of {} at {url}{approvals}\n",
                            ws.name()
                        ));
                    },
                )?,
            }
        }
        StateCommand::Set {
            r#ref,
            value,
            format,
        } => {
            let ws = workspace()?;
            let r#ref = state_ref(&ws, r#ref, flags)?;
            let value = if value == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    Error::invalid_input(format!("state set {ref}: cannot read stdin: {e}"))
                })?;
                // `echo value | ocuroot state set <ref> -`: the line, not its end.
                let line = text.strip_suffix('\n').unwrap_or(&text);
                line.strip_suffix('\r').unwrap_or(line).to_string()
            } else {
                value
            };
            let value = match format {
                ValueFormat::String => serde_json::Value::String(value),
                ValueFormat::Json => serde_json::from_str(&value).map_err(|e| {
                    if e.to_string().starts_with("recursion limit exceeded") {
                        Error::invalid_input(format!(
                            "state set {ref}: the value is nested more than {} deep ({e})",
                            ocuroot_core::model::MAX_VALUE_DEPTH
                        ))
                    } else {
                        Error::invalid_input(format!("state set {ref}: the value is not JSON: {e}"))
                    }
                })?,
                ValueFormat::Starlark => ws
                    .eval_expression(&value)
                    .map_err(|e| e.context(format!("state set {ref}")))?,
            };
            ws.state_set(&r#ref, value)?;
        }
        StateCommand::Delete { r#ref } => {
            let ws = workspace()?;
            let r#ref = state_ref(&ws, r#ref, flags)?;
            ws.state_delete(&r#ref)?;
        }
        StateCommand::Apply {
            r#ref,
            cascade,
            cascade_args,
            run,
        } => {
            let ws = cascade_workspace(&run, Some(&cascade_args))?;
            let r#ref = state_ref(&ws, r#ref, flags)?;
            let mut outcome = ws.state_apply(&r#ref)?;
            if cascade {
                outcome.merge(ws.cascade()?);
            }
            return report_outcome(&ws, run.json, &outcome);
        }
        StateCommand::Diff => {
            let changes = workspace()?.state_diff()?;
            write(
                &changes
                    .iter()
                    .map(|c| format!("{}\n", c.r#ref))
                    .collect::<String>(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn work(command: WorkCommand) -> Result<ExitCode, Error> {
    let (ws, result, json) = match command {
        WorkCommand::Continue { limit, dryrun, run } => {
            let ws = limited_workspace(&run, None, &limit)?;
            let result = ws.work_continue(dryrun)?;
            (ws, result, run.json)
        }
        WorkCommand::Ops { limit, dryrun, run } => {
            let ws = limited_workspace(&run, None, &limit)?;
            let result = ws.work_ops(dryrun)?;
            (ws, result, run.json)
        }
        WorkCommand::Any {
            limit,
            dryrun,
            comprehensive,
            run,
        } => {
            let ws = limited_workspace(&run, None, &limit)?;
            let result = if comprehensive {
                WorkResult::Done(ws.work_any_comprehensive()?)
            } else {
                ws.work_any(dryrun)?
            };
            (ws, result, run.json)
        }
        WorkCommand::Cascade {
            limit,
            dryrun,
            cascade_args,
            run,
        } => {
            let ws = limited_workspace(&run, Some(&cascade_args), &limit)?;
            let result = ws.work_cascade(dryrun)?;
            (ws, result, run.json)
        }
        WorkCommand::Trigger {
            limit,
            dryrun,
            intent,
            json,
        } => {
            let ws = limited_builder(&limit).open()?;
            let triggered = if intent {
                ws.work_trigger_intent(dryrun)?
            } else {
                ws.work_trigger(dryrun)?
            };
            write(&if json {
                render::json_pretty(&serde_json::to_value(&triggered)?)?
            } else {
                render::triggered_text(&triggered)
            });
            let failed = triggered.iter().any(|t| t.status == TriggerStatus::Failed);
            return Ok(code(failed));
        }
    };
    match result {
        WorkResult::Planned(todos) => {
            write(&render::json_pretty(&serde_json::to_value(&todos)?)?);
            Ok(ExitCode::SUCCESS)
        }
        WorkResult::Done(outcome) => report_outcome(&ws, json, &outcome),
    }
}
