//! The frame every page shares (navigation, style, the refresh script) and
//! small pieces the pages repeat: status badges, JSON, refs, durations.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use ocuroot_core::refs::Ref;

use super::links::{Mode, Site};

/// The style sheet, inline so an exported page is one self-contained file.
const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --ok:#137333; --bad:#b42318;
        --wait:#b54708; --run:#175cd3; --pause:#6941c6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:10px 24px; display:flex; gap:20px; align-items:center; }
header a { color:#d0d5dd; text-decoration:none; } header a:hover { color:#fff; }
header .brand { font-weight:700; color:#fff; margin-right:12px; }
main { padding:20px 24px 48px; max-width:1400px; }
h1 { font-size:20px; margin:0 0 6px; word-break:break-all; } h2 { font-size:16px; margin:28px 0 8px; }
.sub { color:var(--muted); margin-bottom:16px; }
table { border-collapse:collapse; background:#fff; border:1px solid var(--line); margin:8px 0 16px; }
th, td { border-bottom:1px solid var(--line); padding:7px 10px; text-align:left; vertical-align:top; }
th { background:#f2f4f7; font-weight:600; font-size:13px; }
td.cell { min-width:150px; }
code, pre { font:12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background:#fff; border:1px solid var(--line); padding:8px 10px; margin:4px 0; overflow:auto; max-height:420px; white-space:pre-wrap; word-break:break-word; }
pre.err { border-color:#fda29b; background:#fffbfa; }
a { color:#175cd3; }
.st { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#f2f4f7; color:var(--muted); }
.st-complete, .st-deployed { background:#e7f6ec; color:var(--ok); }
.st-failed, .st-failed_retried, .st-cancelled { background:#fef3f2; color:var(--bad); }
.st-blocked, .st-waiting { background:#fffaeb; color:var(--wait); }
.st-paused { background:#f4f3ff; color:var(--pause); }
.st-running, .st-pending { background:#eff8ff; color:var(--run); }
.st-torn_down { background:#f2f4f7; color:#344054; }
.intent { display:inline-block; margin-left:4px; font-size:12px; color:var(--wait); font-weight:600; }
.muted { color:var(--muted); } .small { font-size:12px; }
.counts { display:flex; gap:12px; flex-wrap:wrap; margin:10px 0 18px; }
.counts div { background:#fff; border:1px solid var(--line); padding:8px 14px; border-radius:6px; }
.counts b { font-size:18px; display:block; }
.log td { padding:1px 8px; border:0; font:12.5px/1.4 ui-monospace, monospace; white-space:pre-wrap; }
.log .stderr { color:var(--bad); }
.diff .del { background:#fef3f2; color:var(--bad); } .diff .add { background:#e7f6ec; color:var(--ok); }
form.inline { display:inline; } button { font:inherit; padding:3px 10px; cursor:pointer; }
textarea { width:100%; max-width:720px; font:13px ui-monospace, monospace; }
.note { background:#eff8ff; border:1px solid #b2ddff; padding:8px 12px; border-radius:6px; margin:10px 0; }
svg text { font:12px system-ui, sans-serif; }
"#;

/// Refreshes a live page: fetches it again every two seconds and replaces
/// `<main>` while the page says work is running (`data-live="1"`).
pub(crate) const REFRESH_JS: &str = r#"
(function () {
  function tick() {
    fetch(location.href, { cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html");
        var main = next.querySelector("main");
        if (main) { document.querySelector("main").replaceWith(main); }
        document.body.dataset.live = next.body.dataset.live;
        if (document.body.dataset.live === "1") { setTimeout(tick, 2000); }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  if (document.body.dataset.live === "1") { setTimeout(tick, 2000); }
})();
"#;

/// A whole page: `title`, navigation, `body`; `live` pages refresh
/// themselves when served.
pub(crate) fn page(site: &Site, title: &str, live: bool, body: Markup) -> Markup {
    let live = live && site.refreshes();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ocuroot" }
                style { (PreEscaped(CSS)) }
            }
            body data-live=(if live { "1" } else { "0" }) {
                header {
                    a.brand href=(site.overview()) { "ocuroot" }
                    @if site.mode == Mode::Preview {
                        a href=(site.overview()) { "Preview" }
                    } @else {
                        a href=(site.overview()) { "Overview" }
                        a href=(site.plan()) { "Plan and graph" }
                        @if let Some(refs) = site.matching("**") {
                            a href=(refs) { "Refs" }
                        }
                    }
                }
                main { (body) }
                @if site.refreshes() {
                    script src=(super::links::REFRESH_SCRIPT) {}
                }
            }
        }
    }
}

/// A status badge: `complete`, `failed`, `blocked`, ...
pub(crate) fn badge(status: &str) -> Markup {
    html! { span class={ "st st-" (status) } { (status.replace('_', " ")) } }
}

/// JSON, pretty, as text.
pub(crate) fn json(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre { (text) } }
}

/// A ref, linked to the ref browser when there is one.
pub(crate) fn reference(site: &Site, r: &str) -> Markup {
    html! {
        @match site.reference(r) {
            Some(href) => a href=(href) { code { (r) } },
            None => code { (r) },
        }
    }
}

/// A ref written short: `@r3` for a release, `deploy/prod/2` for a run.
pub(crate) fn short(r: &Ref) -> String {
    let mut s = String::new();
    if let Some(rel) = &r.release {
        s.push('@');
        s.push_str(rel);
    }
    if let Some(t) = r.subpath_type {
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(t.as_str());
        if !r.subpath.is_empty() {
            s.push('/');
            s.push_str(&r.subpath);
        }
    }
    s
}

/// `1.2 s`, `340 ms`, `2 min 5 s`.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// An error page's body.
pub(crate) fn error_body(message: &str) -> Markup {
    html! {
        h1 { "Error" }
        pre.err { (message) }
    }
}
