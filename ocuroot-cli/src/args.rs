//! The command line: every command, argument and flag (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Ocuroot: release orchestration from `*.ocu.star` files.
#[derive(Parser, Debug)]
#[command(name = "ocuroot", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Work with releases of a package.
    Release {
        #[command(flatten)]
        package: PackageFlags,
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Read state; write, compare and apply intent.
    State {
        #[command(flatten)]
        package: PackageFlags,
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Find and do outstanding work at the current commit.
    Work {
        #[command(subcommand)]
        command: WorkCommand,
    },
    /// Release every package file changed since the last push (all of them
    /// the first time), then redeploy what reads what they changed, and
    /// record the push. Refuses with uncommitted or untracked changes. In a
    /// checkout of an intent branch: apply the intent changed since the last
    /// such push, and record it at @/push/intent_commit.
    Push {
        /// List the packages that would be released, and change nothing.
        #[arg(short = 'n', long)]
        dryrun: bool,
        #[command(flatten)]
        cascade_args: CascadeArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Evaluate a file, then Starlark typed at a prompt (or given with
    /// `-c`, or read from stdin) with the file's globals and every SDK
    /// global, printing each value.
    Repl {
        /// The file (a path or a package ref; default: `repo.ocu.star` at
        /// the root, if there is one).
        file: Option<PathBuf>,
        /// Evaluate this and exit (1 when it fails).
        #[arg(short = 'c', long = "command", value_name = "EXPR")]
        command: Option<String>,
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
    /// Print the deployments (`<repo>/-/**/@/deploy/*`) whose release was
    /// made at a commit from START to END, both included, newest first.
    FindDeploys {
        /// One end of the range (any revision: a hash, a branch, `HEAD~3`).
        start: String,
        /// The other end.
        end: String,
    },
    /// Serve a package file's phases, work and inputs as a web page,
    /// evaluated from the file on every load: nothing runs, nothing is
    /// written.
    Preview {
        /// The package file (`*.ocu.star`), as a path or a package ref.
        file: PathBuf,
        /// The port (0: any free one; default: the first free from 3000 to 3100).
        #[arg(short, long, value_name = "N")]
        port: Option<u16>,
    },
    /// Serve the Model Context Protocol on stdin and stdout: the package
    /// preview, the SDK, the examples, and read-only state tools.
    Mcp,
    /// Print the version.
    Version,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanFormat {
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
pub(crate) enum ReleaseCommand {
    /// Create a release of a package at the current commit and run it.
    New {
        /// The package file (`*.ocu.star`), as a path or a package ref
        /// (`//backend/package.ocu.star`, `./-/backend/package.ocu.star`);
        /// default: `--package`.
        file: Option<PathBuf>,
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
        /// The release; the package as a path or a package ref (default:
        /// `--package` and `--release`).
        release: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Retry the failed work of a release, and take over work whose
    /// agents' leases expired, then run it further.
    Retry {
        /// `<package>` (its latest release at this commit) or
        /// `<package>/@r<N>`; the package as a path or a package ref
        /// (default: `--package` and `--release`, else the release made last
        /// at this commit, of any package).
        release: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Take over the running work of a release now, whatever its leases
    /// say, then run it further. For when you know the agents running it
    /// are gone; an agent still running it has its outcome refused.
    Takeover {
        /// `<package>` (its latest release at this commit) or
        /// `<package>/@r<N>`; the package as a path or a package ref
        /// (default: `--package` and `--release`).
        release: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the report of a release as it stands in state, at any commit:
    /// nothing is evaluated, run or written. Exit 1 when the release failed.
    Status {
        /// `<package>/@r<N>`, `<package>/@<tag>`, or `<package>` (its latest
        /// release); the package as a path or a package ref (default:
        /// `--package` and `--release`).
        release: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a package file and print its phases and work, without touching state.
    #[command(alias = "check")]
    Lint {
        /// The package file (`*.ocu.star`), as a path or a package ref
        /// (default: `--package`).
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum StateCommand {
    /// Print a document (or a `#fragment` of one) as JSON; exit 1 if absent.
    Get {
        /// The ref, absolute or relative to the current directory.
        r#ref: String,
    },
    /// Print a document typed by what its ref names, links followed, as
    /// JSON `{"ref", "kind", "document"}` (`kind`: release, run, work,
    /// environment, custom or other); exit 1 if absent.
    Read {
        /// The ref, absolute or relative to the current directory.
        r#ref: String,
    },
    /// Print the refs matching any of the globs, one per line, sorted
    /// (without a glob: every ref, or those of `--package` / `--release`).
    Match {
        /// Globs: `*` within a segment, `**` across segments, `?`, `[abc]`, `{a,b}`.
        globs: Vec<String>,
        /// Leave out links, and refs reached through a link.
        #[arg(short = 'l', long)]
        no_links: bool,
    },
    /// Write intent: custom state (`@/custom/<name>`,
    /// `<package>/@[<release or tag>]/custom/<name>`), an environment
    /// (`@/environment/<name>`) or a deploy intent
    /// (`<package>/@/deploy/<env>`). Apply it with `state apply`.
    Set {
        /// The intent ref, absolute or relative to the current directory.
        r#ref: String,
        /// The value; `-` reads it from stdin.
        value: String,
        /// How to read the value: `string` stores it as a JSON string, `json`
        /// parses it, `starlark` evaluates it as an expression with the SDK
        /// globals.
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
    /// Serve the state as web pages on a local port (the overview of
    /// packages and environments, releases, runs and their logs, the plan
    /// and graph, any ref), or write them as static files with `--export`.
    View {
        /// The port (0: any free one; default: the first free from 3000 to
        /// 3100). No `-p`: that is `--package` under `state`, as in the
        /// original.
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// The address to listen on; other machines reach the page only if
        /// this is not a loopback address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Open the page in the default browser.
        #[arg(long)]
        open: bool,
        /// Let the page approve: an item waiting for custom state gets a
        /// form that writes the intent and applies it (`state set` + `state
        /// apply`), after showing the change.
        #[arg(long)]
        allow_intent: bool,
        /// Write the pages as static HTML files into DIR and exit, instead
        /// of serving them.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["port", "open", "allow_intent"])]
        export: Option<PathBuf>,
    },
    /// Write the state and intent stores' files from their logs, durably, so
    /// that tools reading the files directly (the original Ocuroot, a `git
    /// commit` of the store) see every change.
    Checkpoint,
    /// Pack the clones of this repository's git stores under OCUROOT_HOME
    /// (one pack each), and remove the other clones there that no command
    /// has used for a while (remotes no longer configured).
    Gc {
        /// Remove other clones unused for this long (`14d`, `12h`; `0s`
        /// removes every other clone).
        #[arg(long, value_name = "DURATION", default_value = "14d", value_parser = parse_age)]
        unused_for: std::time::Duration,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A duration such as `14d` or `12h`; zero allowed.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write a duration such as 14d, 12h or 0s)"))
}

#[derive(Subcommand, Debug)]
pub(crate) enum WorkCommand {
    /// Run the ready work of releases at the current commit, and redeploy
    /// deployments whose inputs changed.
    Continue {
        #[command(flatten)]
        limit: WorkLimit,
        /// Print the work as JSON instead of doing it.
        #[arg(short, long)]
        dryrun: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run the ops of releases at the current commit: `op/check_envs`, left
    /// by a new environment, adds the deploys the package file now makes
    /// (`work continue` runs them).
    Ops {
        #[command(flatten)]
        limit: WorkLimit,
        /// Print the ops as JSON instead of running them.
        #[arg(short, long)]
        dryrun: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Apply every intent difference, run the ops, then do what `work
    /// continue` does.
    Any {
        #[command(flatten)]
        limit: WorkLimit,
        /// Print the work as JSON instead of doing it.
        #[arg(short, long, conflicts_with = "comprehensive")]
        dryrun: bool,
        /// Repeat until nothing is left at this commit (or work fails).
        #[arg(long)]
        comprehensive: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Do everything outstanding at every commit of every repository, each
    /// in a checkout of its commit (a git worktree, or a clone of another
    /// repository), repeating until nothing is left.
    Cascade {
        #[command(flatten)]
        limit: WorkLimit,
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
        #[command(flatten)]
        limit: WorkLimit,
        /// List the commits instead of calling the triggers.
        #[arg(short, long)]
        dryrun: bool,
        /// Trigger every known repository at its latest recorded commit
        /// (after intent changed), not only commits with outstanding work.
        #[arg(short, long)]
        intent: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The original's persistent flags of `release` and `state`: the package
/// (and release) a command works on when no ref is given as its argument.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct PackageFlags {
    /// The package: a path or a package ref. A ref given as the argument
    /// wins; a relative ref given to a `state` command is read against it.
    #[arg(
        id = "package_flag",
        short = 'p',
        long = "package",
        global = true,
        value_name = "PACKAGE"
    )]
    pub(crate) package: Option<String>,
    /// The release of `--package`: `r<N>` or a tag.
    #[arg(
        id = "release_flag",
        short = 'r',
        long = "release",
        global = true,
        value_name = "RELEASE"
    )]
    pub(crate) release: Option<String>,
}

/// The package or release a `work` command is limited to.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct WorkLimit {
    /// Limit the work to this package (`<package>`) or release
    /// (`<package>/@<release or tag>`); the package as a path or a package
    /// ref. Global intent (`@/custom/...`, `@/environment/...`) is then
    /// left alone.
    #[arg(value_name = "REF")]
    pub(crate) r#ref: Option<String>,
}

/// Options of the commands that cascade.
#[derive(clap::Args, Debug)]
pub(crate) struct CascadeArgs {
    /// Failures of one redeploy after which a cascade stops retrying it.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_attempts: u32,
}

/// How `state set` reads its value.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueFormat {
    /// A string, stored as a JSON string (`1` becomes `"1"`).
    String,
    /// A JSON document.
    Json,
    /// A Starlark expression, evaluated with the SDK globals.
    Starlark,
}

/// Options of the commands that run work.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// How many work items may run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) parallel: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not print progress and logs to stderr.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// How long each command a work function runs with `host.shell` may
    /// take (`90s`, `10m`, `1h30m`) unless its call gives `timeout=`: then
    /// the command and everything it started are killed, and the run fails.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(crate) timeout: Option<std::time::Duration>,
}

/// A duration such as `90s`, `10m` or `1h30m`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write a duration such as 90s, 10m or 1h30m)"))?;
    if d.is_zero() {
        return Err("the timeout must be longer than zero".into());
    }
    Ok(d)
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Readable text.
    Text,
    /// JSON.
    Json,
}
