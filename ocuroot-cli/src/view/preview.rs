//! `ocuroot preview <file>`: a package file's phases, work and inputs as a
//! web page, with the state view's server, frame and graph. The file is
//! evaluated as `release lint` evaluates it on every load (nothing runs,
//! nothing is written), and the page fetches itself again every two
//! seconds, so an edit to the file shows without a reload.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use maud::{Markup, html};
use ocuroot_core::model::{DependencyGraph, InputSpec, Package, Work};
use ocuroot_core::refs::{Ref, SubPathType};
use ocuroot_core::sdk::FileContents;
use ocuroot_core::workspace::{EnvironmentSource, Lint};
use ocuroot_core::{Error, Workspace};
use tiny_http::{Method, Response};

use super::layout::{badge, json, page};
use super::links::{Mode, REFRESH_SCRIPT, Site};
use super::plan::svg;
use super::server::{bind, error_page, header, host_of, page_response, status_of};

/// The package file `arg` names, refusing a release (`<file>/@r1`), as the
/// original does, and a file that does not exist.
pub(crate) fn package_file(ws: &Workspace, arg: &Path) -> Result<PathBuf, Error> {
    if arg.to_string_lossy().contains("/@") {
        return Err(Error::invalid_input(
            "a release should not be specified for a preview",
        ));
    }
    let file = ws.package_file(arg)?;
    if !file.is_file() {
        return Err(Error::not_found(format!(
            "package path does not exist: {}",
            arg.display()
        )));
    }
    Ok(file)
}

/// Serve the preview of `file` on 127.0.0.1 until the process is stopped;
/// `ready` gets the page's URL once the server listens.
pub(crate) fn serve_preview(
    ws: &Workspace,
    file: &Path,
    port: Option<u16>,
    ready: impl FnOnce(&str),
) -> Result<(), Error> {
    let file = package_file(ws, file)?;
    let server = bind("preview", IpAddr::V4(Ipv4Addr::LOCALHOST), port)?;
    let host = host_of("preview", &server)?;
    let site = Site {
        mode: Mode::Preview,
        allow_intent: false,
        token: String::new(),
    };
    ready(&format!("http://{host}/"));
    for request in server.incoming_requests() {
        let url = request.url().to_string();
        let path = url.split_once('?').map_or(url.as_str(), |(p, _)| p);
        let get = matches!(request.method(), Method::Get | Method::Head);
        let response = match path {
            _ if !get => error_page(&site, 405, "Only GET is served.")
                .with_header(header("Allow", "GET, HEAD")),
            REFRESH_SCRIPT => Response::from_string(super::layout::REFRESH_JS)
                .with_header(header("Content-Type", "text/javascript; charset=utf-8"))
                .with_header(header("Cache-Control", "no-store")),
            "/favicon.ico" => Response::from_string("").with_status_code(204),
            "/" => {
                for store in [ws.state().store(), ws.intent().store()] {
                    if let Err(e) = store.refresh() {
                        tracing::warn!("preview: could not refresh {}: {e}", store.describe());
                    }
                }
                match ws.release_lint(&file) {
                    Ok(lint) => page_response(200, preview(&site, ws, &lint)),
                    Err(e) => page_response(status_of(&e), failed(&site, ws, &file, &e)),
                }
            }
            _ => error_page(&site, 404, &format!("No page at {path}")),
        };
        if let Err(e) = request.respond(response) {
            tracing::debug!("preview: could not answer: {e}");
        }
    }
    Ok(())
}

/// The page when the file does not evaluate: the error, refreshed until
/// the file is fixed.
fn failed(site: &Site, ws: &Workspace, file: &Path, e: &Error) -> Markup {
    let name = ws
        .package_ref(file)
        .map(|r| r.filename)
        .unwrap_or_else(|_| file.display().to_string());
    let body = html! {
        h1 { (name) }
        div.sub { "Preview: the file does not evaluate. This page reloads when it is saved again." }
        pre.err #error { (crate::render::error(e)) }
    };
    page(site, &name, true, body)
}

/// What an input reads now, for the page: the value in state, or why there
/// is none.
fn now_in_state(ws: &Workspace, base: &Ref, r: &Ref) -> Markup {
    if r.package() == base.package() && r.release == base.release {
        return if r.subpath_type == Some(SubPathType::Custom) {
            html! { span.muted { "set for this release with " code { "ocuroot state set" } } }
        } else {
            html! { span.muted { "made by this release when it runs" } }
        };
    }
    match ws.state_get(&r.to_string()) {
        Ok(Some(v)) => html! { div.small.muted { "now in state" } (json(&v)) },
        Ok(None) => html! { span.muted { "not in state now" } },
        Err(e) => html! { pre.err.small { (e.to_string()) } },
    }
}

fn input_rows(ws: &Workspace, lint: &Lint, w: &Work) -> Markup {
    html! {
        @if w.inputs().is_empty() {
            span.muted { "no inputs" }
        } @else {
            table.inputs {
                tr { th { "input" } th { "from" } th { "now" } }
                @for (name, spec) in w.inputs() {
                    tr {
                        td { code { (name) } }
                        @match spec {
                            InputSpec::Ref { r#ref, default } => {
                                td {
                                    code { (crate::render::relative_display(r#ref, &lint.base)) }
                                    @match default {
                                        Some(d) => div.small.muted { "default " code { (d) } },
                                        None => div.small.muted { "required: the work waits for it" },
                                    }
                                }
                                td { (now_in_state(ws, &lint.base, r#ref)) }
                            }
                            InputSpec::Value(v) => {
                                td { "the value " code { (v) } }
                                td {}
                            }
                        }
                    }
                }
            }
        }
    }
}

fn phases(ws: &Workspace, lint: &Lint, package: &Package) -> Markup {
    html! {
        @for (i, phase) in package.phases.iter().enumerate() {
            h2 { "Phase " (i + 1) @if !phase.name.is_empty() { " “" (phase.name) "”" } }
            table.phase {
                tr { th { "work" } th { "kind" } th { "function" } th { "inputs" } }
                @for w in &phase.work {
                    @let path = w.path();
                    @let at = lint.loaded.declared().iter().find(|d| d.path == path).map(|d| d.location.to_string());
                    tr.work data-work=(path.to_string()) {
                        td {
                            code { (path.to_string()) }
                            @if let Some(at) = &at { div.small.muted { (at) } }
                        }
                        @match w {
                            Work::Task(t) => {
                                td { (badge("task")) }
                                td {
                                    code { (t.function.name) "()" }
                                    @if !t.annotation.is_empty() { div.small.muted { (t.annotation) } }
                                }
                            }
                            Work::Deploy(d) => {
                                td { (badge("deploy")) div.small { "to " code { (d.environment.as_str()) } } }
                                td {
                                    div { "up " code { (d.up.name) "()" } }
                                    div { "down " code { (d.down.name) "()" } }
                                }
                            }
                        }
                        td { (input_rows(ws, lint, w)) }
                    }
                }
            }
        }
    }
}

/// The package's work and what each item reads, as the plan page draws
/// the graph.
fn graph(base: &Ref, package: &Package) -> Markup {
    let mut graph = DependencyGraph::new();
    graph.add_package(base, package);
    svg(&graph, &BTreeSet::new())
}

/// The preview page: the phases with their work and inputs, what the work
/// depends on (drawn as the plan page draws it), and what evaluating the
/// file skipped or printed.
pub(crate) fn preview(site: &Site, ws: &Workspace, lint: &Lint) -> Markup {
    let body = html! {
        h1 { (lint.file) }
        div.sub {
            "Preview: the package as " code { "ocuroot release new" } " would release it now, as "
            code { (lint.base) } ". Nothing runs and nothing is written; this page reloads when the file changes."
        }
        @match &lint.environment_source {
            EnvironmentSource::State => {}
            EnvironmentSource::Files(files) => {
                div.note { "No environments in state yet: " code { "environments()" } " returned those registered by " (files.join(", ")) "." }
            }
            EnvironmentSource::None => {
                div.note { "No environments in state or in any environments file: " code { "environments()" } " returned none." }
            }
        }
        @match lint.loaded.contents() {
            FileContents::Empty => {
                p.muted #empty { "This file declares no release." }
            }
            FileContents::Environments(envs) => {
                h2 { "Environments it registers" }
                table #environments {
                    tr { th { "environment" } th { "attributes" } }
                    @for e in envs {
                        tr { td { code { (e.name.as_str()) } } td { (json(&serde_json::Value::Object(e.attributes.clone()))) } }
                    }
                }
            }
            FileContents::Release(package) => {
                (phases(ws, lint, package))
                h2 { "What the work reads" }
                p.small.muted { "Each arrow goes from what is read to the work reading it; phases run in order besides." }
                div style="overflow:auto; background:#fff; border:1px solid #e4e7ec" { (graph(&lint.base, package)) }
            }
        }
        @if !lint.skipped.is_empty() {
            h2 { "Not run while previewing" }
            p.small.muted { "Calls the file makes at the top level; they succeed doing nothing here." }
            ul #skipped { @for call in &lint.skipped { li { code { (call) } } } }
        }
        @if !lint.loaded.prints().is_empty() {
            h2 { "Printed while evaluating" }
            pre #printed { @for line in lint.loaded.prints() { (line.message) "\n" } }
        }
    };
    page(site, &lint.file, true, body)
}
