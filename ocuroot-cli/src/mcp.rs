//! `ocuroot mcp`: a Model Context Protocol server on stdin and stdout
//! (rmcp, the protocol's Rust SDK, does the JSON-RPC and the lifecycle).
//!
//! The original's tools (`preview`, `sdk`, `example_list`, `example_get`)
//! and read-only tools over the state of the repository the server runs in
//! (`state_get`, `state_match`, `release_status`, `plan`). Each call opens
//! the repository afresh, as each CLI command does, and runs the same
//! `Workspace` operation as the command of the same name, on tokio's
//! blocking pool. A failure is a tool error (`isError`) carrying the
//! message the CLI would print; nothing is written to stdout but the
//! protocol (logs go to stderr).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ocuroot_core::{Error, Workspace};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::render;

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The server: where it was started (state tools read that repository)
/// and its tools.
#[derive(Clone)]
struct Ocuroot {
    dir: PathBuf,
    tool_router: ToolRouter<Self>,
}

/// `preview`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct PreviewArgs {
    /// Full path to the package.ocu.star file to validate and preview
    /// (a relative path is relative to the server's working directory).
    package_file: String,
}

/// `sdk`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct SdkArgs {
    /// Version of the Ocuroot SDK to use. Use 'latest' for the latest version.
    version: String,
}

/// `example_get`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct ExampleArgs {
    /// Name of the example to get (one `example_list` gives).
    name: String,
}

/// `state_get`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct RefArgs {
    /// The ref: absolute (`<repo>/-/<package>/@r1/task/build#output`,
    /// `@/environment/staging`) or relative to the repository root
    /// (`release.ocu.star/@r1`).
    #[serde(rename = "ref")]
    r#ref: String,
}

/// `state_match`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct MatchArgs {
    /// A glob over refs: `*` within a segment, `**` across segments, `?`,
    /// `[abc]`, `{a,b}`.
    glob: String,
    /// Leave out links, and refs reached through a link.
    #[serde(default)]
    no_links: bool,
}

/// `release_status`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct StatusArgs {
    /// `<package>/@r<N>`, `<package>/@<tag>`, or `<package>` (its latest
    /// release); the package as a path from the repository root or a
    /// package ref (`//backend/package.ocu.star`).
    #[serde(rename = "ref")]
    r#ref: String,
    /// The report as JSON instead of text.
    #[serde(default)]
    json: bool,
}

/// How `plan` renders.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PlanFormat {
    /// The work as readable text.
    #[default]
    Text,
    /// The work and the graph as JSON.
    Json,
    /// The dependency graph as a Mermaid flowchart.
    Mermaid,
    /// The dependency graph as a Graphviz DOT digraph.
    Dot,
}

/// `plan`'s arguments.
#[derive(Deserialize, JsonSchema)]
struct PlanArgs {
    /// `text` (the default), `json`, `mermaid` or `dot`.
    #[serde(default)]
    format: PlanFormat,
}

/// Run `f` on the blocking pool (the core is synchronous): its text is the
/// tool's result, its error (or a panic) a tool error.
async fn blocking(
    f: impl FnOnce() -> Result<Vec<String>, Error> + Send + 'static,
) -> Result<CallToolResult, ErrorData> {
    let result = match tokio::task::spawn_blocking(f).await {
        Ok(Ok(texts)) => {
            CallToolResult::success(texts.into_iter().map(ContentBlock::text).collect())
        }
        Ok(Err(e)) => CallToolResult::error(vec![ContentBlock::text(render::error(&e))]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
            "Error: internal error: the tool stopped: {e}"
        ))]),
    };
    Ok(result)
}

/// The files of the example `name`, each under a `#### <path> ####` line.
fn example(name: &str) -> Result<String, Error> {
    let files: Vec<_> = EXAMPLE_FILES
        .iter()
        .filter(|(e, _, _)| *e == name)
        .collect();
    if !files.iter().any(|(_, path, _)| path.ends_with(".star")) {
        return Err(Error::not_found(format!(
            "no example named {name:?} (the examples: {})",
            examples().join(", ")
        )));
    }
    Ok(files
        .iter()
        .map(|(_, path, text)| format!("#### {path} ####\n{text}\n####\n\n"))
        .collect())
}

/// The examples with a package file.
fn examples() -> Vec<&'static str> {
    let mut names: Vec<&str> = EXAMPLE_FILES
        .iter()
        .filter(|(_, path, _)| path.ends_with(".star"))
        .map(|(e, _, _)| *e)
        .collect();
    names.dedup();
    names
}

/// The SDK's stub files for `version` (`latest`: this build's), each under
/// a `#### <file> ####` line, as the original returns them.
fn sdk(version: &str) -> Result<String, Error> {
    let ours = ocuroot_core::sdk::SDK_VERSION;
    if version != "latest" && version != ours {
        return Err(Error::not_found(format!(
            "version {version} not found (this build has the SDK {ours}; ask for {ours} or latest)"
        )));
    }
    Ok(ocuroot_core::sdk::stubs()
        .iter()
        .map(|(file, text)| format!("#### {file} ####\n{text}\n####\n\n"))
        .collect())
}

/// `release lint` of the file at `path`, as text then as JSON, in the
/// repository that holds it.
fn preview(dir: &Path, path: &str) -> Result<Vec<String>, Error> {
    let file = dir.join(path);
    let parent = file
        .parent()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::not_found(format!("package path does not exist: {path}")))?;
    if !file.is_file() {
        return Err(Error::not_found(format!(
            "package path does not exist: {path}"
        )));
    }
    let ws = Workspace::open(parent)?;
    let lint = ws.release_lint(&file)?;
    Ok(vec![render::lint_text(&lint), render::lint_json(&lint)?])
}

#[tool_router]
impl Ocuroot {
    fn new(dir: PathBuf) -> Ocuroot {
        Ocuroot {
            dir,
            tool_router: Self::tool_router(),
        }
    }

    /// The repository the server was started in.
    fn workspace(dir: &Path) -> Result<Workspace, Error> {
        Workspace::open(dir)
    }

    #[tool(
        description = "Validate and preview the configuration of a package file: its phases, \
                       tasks, deployments and inputs, as text and as JSON. The file is evaluated \
                       without running anything or writing state."
    )]
    async fn preview(
        &self,
        Parameters(args): Parameters<PreviewArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.dir.clone();
        blocking(move || preview(&dir, &args.package_file)).await
    }

    #[tool(
        description = "Get stubs for the Ocuroot SDK, which provides guidance on how the SDK can \
                       be used to write package.ocu.star files."
    )]
    async fn sdk(
        &self,
        Parameters(args): Parameters<SdkArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        blocking(move || sdk(&args.version).map(|t| vec![t])).await
    }

    #[tool(description = "List available examples")]
    async fn example_list(&self) -> Result<CallToolResult, ErrorData> {
        blocking(|| Ok(vec![examples().iter().map(|e| format!("{e}\n")).collect()])).await
    }

    #[tool(
        description = "Get an example: its package files (and README), each under a \
                          '#### <path> ####' line"
    )]
    async fn example_get(
        &self,
        Parameters(args): Parameters<ExampleArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        blocking(move || example(&args.name).map(|t| vec![t])).await
    }

    #[tool(
        description = "Read a document (or a #fragment of one) from the state store of the \
                       repository the server runs in, following links, as JSON (ocuroot state get)."
    )]
    async fn state_get(
        &self,
        Parameters(args): Parameters<RefArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.dir.clone();
        blocking(move || {
            let ws = Self::workspace(&dir)?;
            match ws.state_get(&args.r#ref)? {
                Some(doc) => Ok(vec![render::json_pretty(&doc)?]),
                None => Err(Error::not_found(format!(
                    "ref not found: {}",
                    ws.resolve_user_ref(&args.r#ref)?
                ))),
            }
        })
        .await
    }

    #[tool(
        description = "List the refs in the state store matching a glob, one per line, sorted \
                       (ocuroot state match)."
    )]
    async fn state_match(
        &self,
        Parameters(args): Parameters<MatchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.dir.clone();
        blocking(move || {
            let ws = Self::workspace(&dir)?;
            let globs = [args.glob.as_str()];
            let refs = if args.no_links {
                ws.state_match_no_links(&globs)?
            } else {
                ws.state_match(&globs)?
            };
            Ok(vec![if refs.is_empty() {
                format!("No ref matches {}.\n", args.glob)
            } else {
                refs.iter().map(|r| format!("{r}\n")).collect()
            }])
        })
        .await
    }

    #[tool(
        description = "The report of a release as it stands in state: each phase's work with its \
                       state, run, error or what it waits for (ocuroot release status). Nothing is \
                       evaluated, run or written."
    )]
    async fn release_status(
        &self,
        Parameters(args): Parameters<StatusArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.dir.clone();
        blocking(move || {
            let ws = Self::workspace(&dir)?;
            let report = ws.release_status(&args.r#ref)?;
            Ok(vec![if args.json {
                render::json_pretty(&serde_json::to_value(&report)?)?
            } else {
                render::report_text(&report)
            }])
        })
        .await
    }

    #[tool(
        description = "The outstanding work of every release in dependency order, with why each \
                       item would run or what it waits for; or the dependency graph (ocuroot plan)."
    )]
    async fn plan(
        &self,
        Parameters(args): Parameters<PlanArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.dir.clone();
        blocking(move || {
            let plan = Self::workspace(&dir)?.plan()?;
            Ok(vec![match args.format {
                PlanFormat::Text => render::plan_text(&plan),
                PlanFormat::Json => render::json_pretty(&plan.to_json())?,
                PlanFormat::Mermaid => plan.graph.to_mermaid(),
                PlanFormat::Dot => plan.graph.to_dot(),
            }])
        })
        .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Ocuroot {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ocuroot", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Ocuroot releases packages described by *.ocu.star files. Use sdk and the \
                 examples to write one, preview to check it, and the state tools to read the \
                 releases of the repository this server runs in.",
            )
    }
}

/// Serve until the client closes stdin.
pub(crate) fn run() -> Result<ExitCode, Error> {
    let dir = std::env::current_dir()
        .map_err(|e| Error::io("cannot read the working directory", Path::new("."), e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("mcp: cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let service = Ocuroot::new(dir)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::internal(format!("mcp: the session did not start: {e}")))?;
        service
            .waiting()
            .await
            .map_err(|e| Error::internal(format!("mcp: the session failed: {e}")))?;
        Ok(ExitCode::SUCCESS)
    })
}
