//! The run page (its function chain, outcome and log) and the ref browser
//! (any document, its link, intent and children; refs matching a glob).

use maud::{Markup, html};
use ocuroot_core::host::Stream;

use super::data::{RefView, RunView};
use super::layout::{badge, duration, json, page, reference};
use super::links::Site;

/// Milliseconds since the epoch as `HH:MM:SS.mmm` (UTC).
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// One run: status, function chain with inputs, outputs, error and log.
pub(crate) fn run(site: &Site, v: &RunView) -> Markup {
    let r = &v.run;
    let doc = r.doc.as_ref();
    let release = doc.map(|d| d.release.clone());
    let body = html! {
        h1 { (r.r#ref) }
        div.sub {
            (badge(&r.status))
            @if let Some(d) = doc { " " (d.run_type.as_str()) " run " (r.number) " · attempt " (d.attempt) }
            @if let Some(ms) = r.duration_ms() { " · took " (duration(ms)) }
            @if let Some(rel) = &release { " · release " a href=(site.release(rel)) { (rel) } }
        }
        @if let Some(d) = doc {
            table {
                @if let Some(t) = d.started_at { tr { th { "started" } td { (t.to_string()) } } }
                @if let Some(t) = d.finished_at { tr { th { "finished" } td { (t.to_string()) } } }
            }
            h2 { "Functions" }
            table {
                tr { th { "function" } th { "inputs" } }
                @for f in &d.functions {
                    tr {
                        td { code { (f.function.name) } div.small.muted { (f.function.pos()) } }
                        td {
                            @match &f.resolved {
                                Some(values) => (json(&serde_json::to_value(values).unwrap_or_default())),
                                None => (json(&serde_json::to_value(&f.inputs).unwrap_or_default())),
                            }
                        }
                    }
                }
            }
            @if let Some(out) = d.output.as_ref().filter(|o| !o.is_null()) {
                h2 { "Outputs" }
                (json(out))
            }
            @if let Some(e) = &d.error {
                h2 { "Error" }
                div { b { (e.one_line()) } @if let Some(at) = &e.location { span.muted { " at " (at) } } }
                pre.err { (e.message) }
                @if let Some(stack) = &e.stack {
                    div.small.muted { "Starlark stack" }
                    pre { (stack) }
                }
            }
        }
        h2 { "Log" @if v.live { " " span.small.muted { "(live)" } } }
        @if v.log.is_empty() {
            p.muted { "No output." }
        } @else {
            table.log {
                @for line in &v.log {
                    tr class=(if line.stream == Stream::Stderr { "stderr" } else { "stdout" }) {
                        td.muted { (clock(line.timestamp)) }
                        td { (line.message) }
                    }
                }
            }
        }
    };
    page(site, &r.r#ref.to_string(), v.live, body)
}

/// The ref browser: a document, where it links, its intent, its children.
pub(crate) fn reference_page(site: &Site, v: &RefView) -> Markup {
    let text = v.r#ref.to_string();
    let body = html! {
        h1 { (text) }
        @if let Some(target) = &v.link {
            p { "A link to " (reference(site, &target.to_string())) }
        }
        h2 { "State" }
        @match &v.document {
            Some(doc) => (json(doc)),
            None => p.muted { "No document at this ref." },
        }
        @if let Some(intent) = &v.intent {
            h2 { "Intent" @if v.document.as_ref() != Some(intent) { " " span.intent { "≠ state" } } }
            (json(intent))
        }
        @if !v.children.is_empty() {
            h2 { "Below" }
            ul { @for c in &v.children { li { (reference(site, c)) } } }
        }
    };
    page(site, &text, false, body)
}

/// Refs matching a glob, with the form to ask again.
pub(crate) fn matching(site: &Site, glob: &str, refs: &[String]) -> Markup {
    let body = html! {
        h1 { "Refs matching " code { (glob) } }
        form method="get" action="/match" {
            input type="text" name="glob" value=(glob) size="60";
            " " button type="submit" { "Match" }
            span.small.muted { " `*` within a segment, `**` across segments" }
        }
        p.muted { (refs.len()) " refs" }
        ul { @for r in refs { li { (reference(site, r)) } } }
    };
    page(site, "refs", false, body)
}
