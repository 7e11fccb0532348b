//! Approvals from the page (`--allow-intent` only): a release item waiting
//! for custom state gets a form that writes the intent and applies it, the
//! same operation as `ocuroot state set` + `ocuroot state apply`. Three
//! steps: the form, the diff of state against the value to write, then the
//! write. Every POST carries the server's token.

use maud::{Markup, html};
use ocuroot_core::model::MAX_VALUE_DEPTH;
use ocuroot_core::refs::{Ref, SubPathType};
use ocuroot_core::{Error, Workspace};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::layout::{json, page, reference};
use super::links::Site;

/// What an approval form sends back.
pub(crate) struct Approval {
    /// The release whose item waits.
    pub release: Ref,
    /// The custom state ref it waits for.
    pub input: Ref,
    /// The value to write (as typed).
    pub value: String,
    /// `json` or `string`.
    pub format: String,
}

impl Approval {
    /// The value to write: JSON, or the text as a JSON string.
    pub fn parsed(&self) -> Result<Value, Error> {
        if self.format == "string" {
            return Ok(Value::String(self.value.clone()));
        }
        let v: Value = serde_json::from_str(&self.value).map_err(|e| {
            Error::invalid_input(format!(
                "the value for {} is not JSON: {e} (choose \"string\" to store text)",
                self.input
            ))
        })?;
        ocuroot_core::model::check_json_depth(&v, &format!("the value for {}", self.input))
            .map_err(|e| e.context(format!("values may nest at most {MAX_VALUE_DEPTH} deep")))?;
        Ok(v)
    }
}

/// Check that `input` is custom state that the release waits for now.
pub(crate) fn check_waiting(ws: &Workspace, release: &Ref, input: &Ref) -> Result<(), Error> {
    if input.subpath_type != Some(SubPathType::Custom) {
        return Err(Error::invalid_input(format!(
            "{input} is not custom state: only custom state can be approved from the page"
        )));
    }
    let report = ws.release_status(&release.to_string())?;
    if report.work.iter().any(|w| w.waiting_for.contains(input)) {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "release {} does not wait for {input} (any more)",
            report.release
        )))
    }
}

fn hidden(site: &Site, a: &Approval) -> Markup {
    html! {
        input type="hidden" name="token" value=(site.token);
        input type="hidden" name="release" value=(a.release.to_string());
        input type="hidden" name="ref" value=(a.input.to_string());
    }
}

fn current(ws: &Workspace, input: &Ref) -> Result<(Option<Value>, Option<Value>), Error> {
    let state = ws.state_get(&input.to_string())?;
    let intent = ws.intent().get(input)?;
    Ok((state, intent))
}

/// Step 1: the form, with what state and intent hold now.
pub(crate) fn form(site: &Site, ws: &Workspace, a: &Approval) -> Result<Markup, Error> {
    check_waiting(ws, &a.release, &a.input)?;
    let (state, intent) = current(ws, &a.input)?;
    let body = html! {
        h1 { "Approve " code { (a.input) } }
        div.sub { "Release " a href=(site.release(&a.release)) { (a.release) } " waits for this custom state." }
        h2 { "Now" }
        table {
            tr { th { "state" } td { @match &state { Some(v) => (json(v)), None => span.muted { "absent" } } } }
            tr { th { "intent" } td { @match &intent { Some(v) => (json(v)), None => span.muted { "absent" } } } }
        }
        h2 { "Value to write" }
        form method="post" action="/approve/preview" {
            (hidden(site, a))
            textarea name="value" rows="4" { (a.value) }
            div {
                label { input type="radio" name="format" value="json" checked[a.format != "string"]; " JSON" }
                " "
                label { input type="radio" name="format" value="string" checked[a.format == "string"]; " text (stored as a JSON string)" }
            }
            p { button type="submit" { "Preview the change" } }
        }
    };
    Ok(page(site, "approve", false, body))
}

fn pretty(v: Option<&Value>) -> String {
    match v {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
        None => String::new(),
    }
}

/// Step 2: the diff of state against the value, and the button that writes.
pub(crate) fn preview(site: &Site, ws: &Workspace, a: &Approval) -> Result<Markup, Error> {
    check_waiting(ws, &a.release, &a.input)?;
    let value = a.parsed()?;
    let (state, _) = current(ws, &a.input)?;
    let old = pretty(state.as_ref());
    let new = pretty(Some(&value));
    let diff = TextDiff::from_lines(&old, &new);
    let body = html! {
        h1 { "Approve " code { (a.input) } }
        div.sub { "For release " a href=(site.release(&a.release)) { (a.release) } }
        h2 { "The change to state" }
        @if state.is_none() { p.small.muted { "The ref is absent from state: it will be created." } }
        pre.diff #diff {
            @for change in diff.iter_all_changes() {
                @match change.tag() {
                    ChangeTag::Delete => span.del { "- " (change.value()) },
                    ChangeTag::Insert => span.add { "+ " (change.value()) },
                    ChangeTag::Equal => span { "  " (change.value()) },
                }
            }
        }
        p.small.muted {
            "Writing it is " code { "ocuroot state set " (a.input) } " then "
            code { "ocuroot state apply " (a.input) } ". The release goes on at the next "
            code { "ocuroot release continue" } " or " code { "work continue" } "."
        }
        form method="post" action="/approve" {
            (hidden(site, a))
            input type="hidden" name="value" value=(a.value);
            input type="hidden" name="format" value=(a.format);
            button type="submit" #confirm { "Write and apply" }
            " " a href=(site.release(&a.release)) { "Cancel" }
        }
        p { "Ref: " (reference(site, &a.input.to_string())) }
    };
    Ok(page(site, "approve", false, body))
}

/// Step 3: write the intent and apply it.
pub(crate) fn apply(ws: &Workspace, a: &Approval) -> Result<(), Error> {
    check_waiting(ws, &a.release, &a.input)?;
    let value = a.parsed()?;
    let text = a.input.to_string();
    ws.state_set(&text, value)?;
    let outcome = ws.state_apply(&text)?;
    if outcome.failed() {
        return Err(Error::conflict(format!(
            "applying {text} failed: {}",
            outcome.stopped.join("; ")
        )));
    }
    Ok(())
}
