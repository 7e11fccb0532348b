//! `ocuroot`: the command line over `ocuroot-core`.
//!
//! Each subcommand is a few lines over [`ocuroot_core::Workspace`]; the
//! output formats are in [`render`].

mod render;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ocuroot_core::engine::NewRelease;
use ocuroot_core::engine::intent::WorkOutcome;
use ocuroot_core::{Error, WorkResult, Workspace};

/// Ocuroot: release orchestration from `*.ocu.star` files.
#[derive(Parser, Debug)]
#[command(name = "ocuroot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Work with releases of a package.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Read state; write, compare and apply intent.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Find and do outstanding work at the current commit.
    Work {
        #[command(subcommand)]
        command: WorkCommand,
    },
    /// List the outstanding work everywhere in dependency order, with why
    /// each item would run or what it waits for; or render the dependency
    /// graph.
    Plan {
        /// Output format: the work as text or JSON, or the graph as Mermaid
        /// or DOT.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Print the version.
    Version,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PlanFormat {
    /// Readable text.
    Text,
    /// JSON: `{"work": [...], "graph": [...]}`.
    Json,
    /// A Mermaid flowchart of the dependency graph.
    Mermaid,
    /// A Graphviz DOT digraph of the dependency graph.
    Dot,
}

#[derive(Subcommand, Debug)]
enum ReleaseCommand {
    /// Create a release of a package at the current commit and run it.
    New {
        /// The package file (`*.ocu.star`).
        file: PathBuf,
        /// Create the release even if the package has one at this commit.
        #[arg(short, long)]
        force: bool,
        /// Then redeploy every deployment that reads what the release
        /// changed, at its own commit, until nothing is left.
        #[arg(long)]
        cascade: bool,
        #[command(flatten)]
        cascade_args: CascadeArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a release further: `<package>/@r<N>` or `<package>/@<tag>`.
    Continue {
        /// The release.
        release: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Retry the failed work of a release, then run it further.
    Retry {
        /// `<package>` (its latest release at this commit) or `<package>/@r<N>`.
        release: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Evaluate a package file and print its phases and work, without touching state.
    #[command(alias = "check")]
    Lint {
        /// The package file (`*.ocu.star`).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// Print a document (or a `#fragment` of one) as JSON; exit 1 if absent.
    Get {
        /// The ref, absolute or relative to the current directory.
        r#ref: String,
    },
    /// Print the refs matching any of the globs, one per line, sorted.
    Match {
        /// Globs: `*` within a segment, `**` across segments, `?`, `[abc]`, `{a,b}`.
        #[arg(required = true)]
        globs: Vec<String>,
    },
    /// Write intent: custom state (`@/custom/<name>`,
    /// `<package>/@[<release or tag>]/custom/<name>`), an environment
    /// (`@/environment/<name>`) or a deploy intent
    /// (`<package>/@/deploy/<env>`). Apply it with `state apply`.
    Set {
        /// The intent ref, absolute or relative to the current directory.
        r#ref: String,
        /// The value.
        value: String,
        /// How to read the value: `string` stores it as a JSON string, `json`
        /// parses it.
        #[arg(short, long, value_enum, default_value_t = ValueFormat::String)]
        format: ValueFormat,
    },
    /// Delete intent (apply it to undo it in state).
    Delete {
        /// The intent ref.
        r#ref: String,
    },
    /// Make state match the intent at a ref, and run the work that creates.
    Apply {
        /// The intent ref.
        r#ref: String,
        /// Then redeploy every deployment that reads what changed, at its
        /// own commit, until nothing is left.
        #[arg(long)]
        cascade: bool,
        #[command(flatten)]
        cascade_args: CascadeArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the intent refs whose state differs, one per line (for
    /// `ocuroot state diff | xargs -n1 ocuroot state apply`).
    Diff,
    /// Write the state and intent stores' files from their logs, durably, so
    /// that tools reading the files directly (the original Ocuroot, a `git
    /// commit` of the store) see every change.
    Checkpoint,
}

#[derive(Subcommand, Debug)]
enum WorkCommand {
    /// Run the ready work of releases at the current commit, and redeploy
    /// deployments whose inputs changed.
    Continue {
        /// Print the work as JSON instead of doing it.
        #[arg(short, long)]
        dryrun: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Apply every intent difference, then do what `work continue` does.
    Any {
        /// Print the work as JSON instead of doing it.
        #[arg(short, long)]
        dryrun: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Do everything outstanding at every commit of every repository, each
    /// in a checkout of its commit (a git worktree, or a clone of another
    /// repository), repeating until nothing is left.
    Cascade {
        /// Print the work of the first round as JSON instead of doing it.
        #[arg(short, long)]
        dryrun: bool,
        #[command(flatten)]
        cascade_args: CascadeArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Call `repo.ocu.star`'s `trigger(commit)` for each commit with
    /// outstanding work (the hook that starts `ocuroot work continue` there).
    Trigger {
        /// List the commits instead of calling the triggers.
        #[arg(short, long)]
        dryrun: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options of the commands that cascade.
#[derive(clap::Args, Debug)]
struct CascadeArgs {
    /// Failures of one redeploy after which a cascade stops retrying it.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
}

/// How `state set` reads its value.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ValueFormat {
    /// A string, stored as a JSON string (`1` becomes `"1"`).
    String,
    /// A JSON document.
    Json,
}

/// Options of the commands that run work.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// How many work items may run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    parallel: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Do not print progress and logs to stderr.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Readable text.
    Text,
    /// JSON.
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OCUROOT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", render::error(&e));
            ExitCode::FAILURE
        }
    }
}

fn workspace() -> Result<Workspace, Error> {
    Workspace::open(".")
}

fn run_workspace(args: &RunArgs) -> Result<Workspace, Error> {
    cascade_workspace(args, None)
}

fn cascade_workspace(args: &RunArgs, cascade: Option<&CascadeArgs>) -> Result<Workspace, Error> {
    let mut builder = Workspace::builder(".");
    if let Some(c) = cascade {
        builder = builder.max_attempts(c.max_attempts);
    }
    if let Some(n) = args.parallel {
        builder = builder.parallel(n as usize);
    }
    if !args.quiet {
        builder = builder.events(render::progress_sink());
    }
    builder.open()
}

/// Print a report and turn its status into the exit code (1 when work failed).
fn finish(
    out: &mut std::io::StdoutLock,
    report: &ocuroot_core::model::ReleaseReport,
    json: bool,
) -> Result<ExitCode, Error> {
    let text = if json {
        render::json_pretty(&serde_json::to_value(report)?)?
    } else {
        render::report_text(report)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(if report.is_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Print what applying intent or doing work did; exit 1 when work failed.
fn print_outcome(
    out: &mut std::io::StdoutLock,
    outcome: &WorkOutcome,
    json: bool,
) -> Result<ExitCode, Error> {
    let text = if json {
        render::json_pretty(&serde_json::to_value(outcome)?)?
    } else {
        render::outcome_text(outcome)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(outcome_code(outcome))
}

/// `release new --cascade`: the release's own report, then what the
/// cascade did; exit 1 when either failed.
fn print_cascaded(
    out: &mut std::io::StdoutLock,
    released: NewRelease,
    followed: WorkOutcome,
    json: bool,
) -> Result<ExitCode, Error> {
    let failed = followed.failed()
        || match &released {
            NewRelease::Release(r) => r.is_failed(),
            NewRelease::Environments { outcome, .. } => outcome.failed(),
            NewRelease::Empty => false,
        };
    let text = if json {
        render::json_pretty(&serde_json::json!({
            "release": released,
            "cascade": followed,
        }))?
    } else {
        let mut text = match &released {
            NewRelease::Release(r) => render::report_text(r),
            NewRelease::Environments { outcome, .. } => render::outcome_text(outcome),
            NewRelease::Empty => "No release configured\n".to_string(),
        };
        text.push_str("\nCascade:\n");
        text.push_str(&render::outcome_text(&followed));
        text
    };
    let _ = out.write_all(text.as_bytes());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn outcome_code(outcome: &WorkOutcome) -> ExitCode {
    if outcome.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    let write = |out: &mut std::io::StdoutLock, text: &str| {
        // A closed pipe (`ocuroot state match | head`) is not an error.
        let _ = out.write_all(text.as_bytes());
    };
    match cli.command {
        Command::Version => {
            write(
                &mut out,
                &format!(
                    "Ocuroot version: {} (SDK {})\n",
                    env!("CARGO_PKG_VERSION"),
                    ocuroot_core::sdk::SDK_VERSION
                ),
            );
        }
        Command::Release { command } => match command {
            ReleaseCommand::New {
                file,
                force,
                cascade,
                cascade_args,
                run,
            } => {
                let ws = cascade_workspace(&run, Some(&cascade_args))?;
                let released = ws.release_new(&file, force)?;
                if cascade {
                    let followed = ws.cascade()?;
                    return print_cascaded(&mut out, released, followed, run.json);
                }
                match released {
                    NewRelease::Release(report) => return finish(&mut out, &report, run.json),
                    NewRelease::Environments {
                        environments,
                        outcome,
                    } => {
                        let names: Vec<&str> =
                            environments.iter().map(|e| e.name.as_str()).collect();
                        if run.json {
                            let value = serde_json::json!({
                                "environments": environments,
                                "outcome": outcome,
                            });
                            write(&mut out, &render::json_pretty(&value)?);
                        } else {
                            write(
                                &mut out,
                                &format!("Registered environments: {}\n", names.join(", ")),
                            );
                            write(&mut out, &render::outcome_text(&outcome));
                        }
                        return Ok(outcome_code(&outcome));
                    }
                    NewRelease::Empty => write(&mut out, "No release configured\n"),
                }
            }
            ReleaseCommand::Continue { release, run } => {
                let ws = run_workspace(&run)?;
                let report = ws.release_continue(&release)?;
                return finish(&mut out, &report, run.json);
            }
            ReleaseCommand::Retry { release, run } => {
                let ws = run_workspace(&run)?;
                let report = ws.release_retry(&release)?;
                return finish(&mut out, &report, run.json);
            }
            ReleaseCommand::Lint { file, format } => {
                let ws = workspace()?;
                let lint = ws.lint(&file)?;
                for line in lint.loaded.prints() {
                    eprintln!("{}", line.message);
                }
                let text = match format {
                    Format::Text => render::lint_text(&lint),
                    Format::Json => render::lint_json(&lint)?,
                };
                write(&mut out, &text);
            }
        },
        Command::State { command } => match command {
            StateCommand::Get { r#ref } => {
                let ws = workspace()?;
                match ws.state_get(&r#ref)? {
                    Some(doc) => write(&mut out, &render::json_pretty(&doc)?),
                    None => {
                        eprintln!("Error: ref not found: {}", ws.resolve_user_ref(&r#ref)?);
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            StateCommand::Match { globs } => {
                let ws = workspace()?;
                for r in ws.state_match(&globs)? {
                    write(&mut out, &format!("{r}\n"));
                }
            }
            StateCommand::Checkpoint => workspace()?.state_checkpoint()?,
            StateCommand::Set {
                r#ref,
                value,
                format,
            } => {
                let value = match format {
                    ValueFormat::String => serde_json::Value::String(value),
                    ValueFormat::Json => serde_json::from_str(&value).map_err(|e| {
                        Error::invalid_input(format!("state set {ref}: the value is not JSON: {e}"))
                    })?,
                };
                workspace()?.state_set(&r#ref, value)?;
            }
            StateCommand::Delete { r#ref } => {
                workspace()?.state_delete(&r#ref)?;
            }
            StateCommand::Apply {
                r#ref,
                cascade,
                cascade_args,
                run,
            } => {
                let ws = cascade_workspace(&run, Some(&cascade_args))?;
                let mut outcome = ws.state_apply(&r#ref)?;
                if cascade {
                    outcome.merge(ws.cascade()?);
                }
                return print_outcome(&mut out, &outcome, run.json);
            }
            StateCommand::Diff => {
                for change in workspace()?.state_diff()? {
                    write(&mut out, &format!("{}\n", change.r#ref));
                }
            }
        },
        Command::Plan { format } => {
            let plan = workspace()?.plan()?;
            let text = match format {
                PlanFormat::Text => render::plan_text(&plan),
                PlanFormat::Json => render::json_pretty(&plan.to_json())?,
                PlanFormat::Mermaid => plan.graph.to_mermaid(),
                PlanFormat::Dot => plan.graph.to_dot(),
            };
            write(&mut out, &text);
        }
        Command::Work { command } => {
            let (result, json) = match command {
                WorkCommand::Continue { dryrun, run } => {
                    (run_workspace(&run)?.work_continue(dryrun)?, run.json)
                }
                WorkCommand::Any { dryrun, run } => {
                    (run_workspace(&run)?.work_any(dryrun)?, run.json)
                }
                WorkCommand::Cascade {
                    dryrun,
                    cascade_args,
                    run,
                } => (
                    cascade_workspace(&run, Some(&cascade_args))?.work_cascade(dryrun)?,
                    run.json,
                ),
                WorkCommand::Trigger { dryrun, json } => {
                    let triggered = workspace()?.work_trigger(dryrun)?;
                    let text = if json {
                        render::json_pretty(&serde_json::to_value(&triggered)?)?
                    } else {
                        render::triggered_text(&triggered)
                    };
                    write(&mut out, &text);
                    let failed = triggered
                        .iter()
                        .any(|t| t.status == ocuroot_core::engine::trigger::TriggerStatus::Failed);
                    return Ok(if failed {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    });
                }
            };
            match result {
                WorkResult::Planned(todos) => {
                    write(
                        &mut out,
                        &render::json_pretty(&serde_json::to_value(&todos)?)?,
                    );
                }
                WorkResult::Done(outcome) => return print_outcome(&mut out, &outcome, json),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
