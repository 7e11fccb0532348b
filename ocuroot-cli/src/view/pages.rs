//! The overview (packages × environments) and the release page.

use maud::{Markup, html};
use ocuroot_core::model::{ChangeKind, ReleaseStatus, RunType, WorkReport, WorkState};
use ocuroot_core::refs::SubPathType;

use super::data::{Cell, Overview, ReleaseView, RunInfo};
use super::layout::{badge, duration, json, page, reference, short};
use super::links::Site;

fn change(c: ChangeKind) -> &'static str {
    match c {
        ChangeKind::Create => "to create",
        ChangeKind::Update => "to update",
        ChangeKind::Delete => "to delete",
    }
}

fn intent_mark(c: Option<ChangeKind>) -> Markup {
    html! {
        @if let Some(c) = c {
            span.intent title="intent differs from state: `ocuroot state apply` makes them match" {
                "≠ intent (" (change(c)) ")"
            }
        }
    }
}

fn cell(site: &Site, c: Option<&Cell>) -> Markup {
    let Some(c) = c else {
        return html! { td.cell { span.muted { "—" } } };
    };
    html! {
        td.cell {
            @if let Some(d) = &c.deployed {
                a href=(site.release(&d.release)) { (short(&d.release)) }
                " "
                a href=(site.run(&d.run)) {
                    @if d.run_type == RunType::Down {
                        (badge("torn_down"))
                    } @else {
                        (badge("deployed"))
                    }
                }
                @if let Some(t) = &d.finished {
                    div.small.muted { (t) }
                }
            }
            @if let Some((rel, state)) = &c.pending {
                div {
                    a href=(site.release(rel)) { (short(rel)) }
                    " " (badge(state.as_str()))
                }
            }
            @if c.deployed.is_none() && c.pending.is_none() {
                span.muted { "not deployed" }
            }
            (intent_mark(c.intent))
        }
    }
}

/// The overview: counts, the matrix, the environments.
pub(crate) fn overview(site: &Site, o: &Overview) -> Markup {
    let mut envs: Vec<String> = o
        .environments
        .iter()
        .map(|e| e.name.as_str().to_string())
        .collect();
    for p in &o.packages {
        for env in p.cells.keys() {
            if !envs.contains(env) {
                envs.push(env.clone());
            }
        }
    }
    let body = html! {
        h1 { (o.repo) }
        div.sub { "Releases and deployments in the state store." }
        div.counts {
            div { b { (o.packages.len()) } "packages" }
            div { b { (o.environments.len()) } "environments" }
            @for status in [ReleaseStatus::Running, ReleaseStatus::Failed, ReleaseStatus::Blocked, ReleaseStatus::Paused, ReleaseStatus::Complete] {
                div { b { (o.count(status)) } "latest " (status.as_str()) }
            }
            div { b { (o.intent_changes) } "intent differences" }
        }
        h2 { "Deployments" }
        @if o.packages.is_empty() {
            p.muted { "No releases yet: run " code { "ocuroot release new <package>.ocu.star" } "." }
        } @else {
            table #matrix {
                tr {
                    th { "package" }
                    th { "latest release" }
                    @for env in &envs { th { (env) } }
                }
                @for p in &o.packages {
                    tr {
                        td { code { (p.package.filename) } div.small.muted { (p.releases.len()) @if p.releases.len() == 1 { " release" } @else { " releases" } } }
                        td {
                            @if let Some(r) = &p.latest {
                                a href=(site.release(&r.release)) { (short(&r.release)) }
                                " " (badge(r.status.as_str()))
                                div.small.muted { "commit " (r.commit.get(..8).unwrap_or(&r.commit)) }
                            }
                            @if let Some(e) = &p.error {
                                @if let Some(r) = p.releases.first() {
                                    a href=(site.release(r)) { (short(r)) } " "
                                }
                                (badge("unreadable"))
                                pre.err.small { (e) }
                            }
                        }
                        @for env in &envs { (cell(site, p.cells.get(env))) }
                    }
                }
            }
        }
        h2 { "Environments" }
        table #environments {
            tr { th { "environment" } th { "attributes" } }
            @for e in &o.environments {
                tr {
                    td { (reference(site, &format!("@/environment/{}", e.name.as_str()))) (intent_mark(o.environment_intent.get(e.name.as_str()).copied())) }
                    td {
                        @for (k, v) in &e.attributes {
                            code { (k) "=" (v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())) } " "
                        }
                    }
                }
            }
            @for (name, c) in &o.environment_intent {
                @if !o.environments.iter().any(|e| e.name.as_str() == name) {
                    tr { td { code { "@/environment/" (name) } (intent_mark(Some(*c))) } td.muted { "in intent only" } }
                }
            }
        }
    };
    page(site, &o.repo, o.live(), body)
}

fn values(label: &str, v: Option<&serde_json::Value>) -> Markup {
    html! {
        @if let Some(v) = v.filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty())) {
            div.small.muted { (label) }
            (json(v))
        }
    }
}

fn work_row(site: &Site, view: &ReleaseView, w: &WorkReport) -> Markup {
    let key = w.path.to_string();
    let runs: &[RunInfo] = view.runs.get(&key).map(Vec::as_slice).unwrap_or(&[]);
    let latest = runs.iter().find(|r| Some(r.number) == w.run);
    let outcome = view.outcomes.get(&key);
    let inputs = match outcome {
        Some(o) => Some(serde_json::to_value(&o.input).unwrap_or_default()),
        None => latest
            .and_then(|r| r.doc.as_ref())
            .and_then(|d| d.functions.last())
            .and_then(|f| f.resolved.as_ref())
            .map(|m| serde_json::to_value(m).unwrap_or_default()),
    };
    let output = outcome.map(|o| o.output.clone());
    let error = latest
        .and_then(|r| r.doc.as_ref())
        .and_then(|d| d.error.as_ref());
    let torn_down = w.state == WorkState::Complete
        && latest
            .and_then(|r| r.doc.as_ref())
            .is_some_and(|d| d.run_type == RunType::Down);
    html! {
        tr class={ "work work-" (w.state.as_str()) } data-work=(key) {
            td { code { (key) } }
            td { (badge(if torn_down { "torn_down" } else { w.state.as_str() })) }
            td {
                @if let Some(r) = latest {
                    a href=(site.run(&r.r#ref)) { "run " (r.number) }
                }
            }
            td { @if let Some(ms) = w.duration_ms { (duration(ms)) } }
            td {
                (values("inputs", inputs.as_ref()))
                (values("outputs", output.as_ref()))
                @if !w.waiting_for.is_empty() {
                    div.small.muted { "waits for" }
                    ul {
                        @for r in &w.waiting_for {
                            li {
                                (reference(site, &r.to_string()))
                                @if r.subpath_type == Some(SubPathType::Custom) {
                                    @if let Some(href) = site.approve(&view.report.release, r) {
                                        " " a.approve href=(href) { button type="button" { "Approve…" } }
                                    } @else {
                                        div.small.muted { "set it with " code { "ocuroot state set " (r) " <value>" } " then " code { "ocuroot state apply" } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(e) = error {
                    @if w.state == WorkState::Failed {
                        div.small { b { "failed: " } (e.one_line()) @if let Some(at) = &e.location { span.muted { " at " (at) } } }
                        pre.err { (e.message) }
                        @if let Some(stack) = &e.stack {
                            div.small.muted { "Starlark stack" }
                            pre { (stack) }
                        }
                    }
                }
                @let earlier: Vec<&RunInfo> = runs.iter().filter(|r| Some(r.number) != w.run).collect();
                @if !earlier.is_empty() {
                    div.small.muted { "earlier attempts" }
                    ul.small {
                        @for r in earlier {
                            li {
                                a href=(site.run(&r.r#ref)) { "run " (r.number) }
                                " " (badge(&r.status))
                                @if let Some(e) = r.doc.as_ref().and_then(|d| d.error.as_ref()) { " " span.muted { (e.one_line()) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A release: its phases and work, runs, inputs and outputs, what waits
/// for what, failures and earlier attempts.
pub(crate) fn release(site: &Site, view: &ReleaseView, notice: Option<Markup>) -> Markup {
    let r = &view.report;
    let mut phases: Vec<(usize, &str, Vec<&WorkReport>)> = Vec::new();
    for w in &r.work {
        match phases.last_mut() {
            Some((i, _, items)) if *i == w.phase => items.push(w),
            _ => phases.push((w.phase, &w.phase_name, vec![w])),
        }
    }
    let body = html! {
        h1 { (r.release) }
        div.sub {
            (badge(r.status.as_str()))
            " commit " code { (r.commit) }
            @if let Some(t) = view.doc.as_ref().and_then(|d| d.created_at) { " · created " (t.to_string()) }
            " · " (reference(site, &r.release.to_string()))
        }
        @if let Some(n) = notice { (n) }
        @for (i, name, items) in &phases {
            h2 { "Phase " (i + 1) @if !name.is_empty() { " “" (name) "”" } }
            table.phase {
                tr { th { "work" } th { "state" } th { "run" } th { "took" } th { "details" } }
                @for w in items { (work_row(site, view, w)) }
            }
        }
        @if !view.custom.is_empty() {
            h2 { "Custom state" }
            table {
                @for (cr, v) in &view.custom {
                    tr { td { (reference(site, &cr.to_string())) } td { (json(v)) } }
                }
            }
        }
    };
    page(site, &r.release.to_string(), view.live(), body)
}
