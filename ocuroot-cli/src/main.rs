//! `ocuroot`: the command line over `ocuroot-core`.
//!
//! Each subcommand is a few lines over [`ocuroot_core::Workspace`]; the
//! output formats are in [`render`].

mod render;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ocuroot_core::{Error, Workspace};

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
    /// Read the state store.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum ReleaseCommand {
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
        },
    }
    Ok(ExitCode::SUCCESS)
}
