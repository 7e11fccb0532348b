//! The HTTP side of `ocuroot state view`: one thread answering requests in
//! turn (a local page, read mostly), routes to pages, refusals.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use maud::Markup;
use ocuroot_core::{Error, ErrorKind, Workspace};
use tiny_http::{Header, Method, Request, Response, Server};

use super::approve::{self, Approval};
use super::links::{Mode, REFRESH_SCRIPT, Site, query_value};
use super::{data, detail, layout, pages, plan};

/// Why a read-only view refuses an approval.
const READ_ONLY: &str = "This view is read-only: start it with `ocuroot state view --allow-intent` to approve from the page.";

/// The largest form body accepted (an approval's value).
const MAX_BODY: u64 = 256 * 1024;

/// Where and how to serve.
pub(crate) struct ServeOptions {
    /// The address to bind (127.0.0.1 unless told).
    pub bind: IpAddr,
    /// A port, or the first free one from 3000 to 3100.
    pub port: Option<u16>,
    /// Offer approvals (writes intent).
    pub allow_intent: bool,
    /// Open the page in a browser.
    pub open: bool,
}

/// Listen on `addr` at `port`, or the first free port from 3000 to 3100;
/// `what` (`state view`, `preview`) names the command in errors.
pub(super) fn bind(what: &str, addr: IpAddr, port: Option<u16>) -> Result<Server, Error> {
    let ports: Vec<u16> = match port {
        Some(p) => vec![p],
        None => (3000..=3100).collect(),
    };
    let mut last = String::new();
    for p in ports {
        match Server::http(SocketAddr::new(addr, p)) {
            Ok(server) => return Ok(server),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::invalid_input(match port {
        Some(p) => format!("{what}: cannot listen on {addr}:{p}: {last}"),
        None => format!(
            "{what}: no free port from 3000 to 3100 on {addr} ({last}); choose one with --port"
        ),
    }))
}

/// The `host:port` a server listens on (as a `Host` header names it).
pub(super) fn host_of(what: &str, server: &Server) -> Result<String, Error> {
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::internal(format!("{what}: the server has no IP address")))?;
    Ok(match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
    })
}

/// A fresh token for forms, from the operating system's random source.
fn token() -> Result<String, Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(format!("state view: no random source: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serve until the process is stopped; `ready` gets the page's URL once
/// the server listens (the CLI prints it).
pub(crate) fn serve(
    ws: &Workspace,
    opts: &ServeOptions,
    ready: impl FnOnce(&str),
) -> Result<(), Error> {
    let server = bind("state view", opts.bind, opts.port)?;
    let host = host_of("state view", &server)?;
    let site = Site {
        mode: Mode::Serve,
        allow_intent: opts.allow_intent,
        token: token()?,
    };
    let url = format!("http://{host}/");
    ready(&url);
    if opts.open {
        open_browser(&url);
    }
    for request in server.incoming_requests() {
        let response = answer(ws, &site, &host, request);
        if let Err(e) = response {
            tracing::debug!("state view: could not answer: {e}");
        }
    }
    Ok(())
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("Could not open a browser ({opener}: {e}); open {url}");
    }
}

pub(super) fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

/// The headers of every page: no caching, no sniffing, no framing, scripts
/// only from this server.
pub(super) fn page_response(status: u16, body: Markup) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.into_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
             connect-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
}

pub(super) fn status_of(e: &Error) -> u16 {
    match e.kind() {
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::InvalidRef | ErrorKind::InvalidInput | ErrorKind::Validation => 400,
        _ => 500,
    }
}

pub(super) fn error_page(
    site: &Site,
    status: u16,
    message: &str,
) -> Response<std::io::Cursor<Vec<u8>>> {
    page_response(
        status,
        layout::page(site, "error", false, layout::error_body(message)),
    )
}

/// The query (or form) parameter `name`.
fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn required(pairs: &[(String, String)], name: &str) -> Result<String, Error> {
    param(pairs, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid_input(format!("the parameter {name:?} is missing")))
}

fn header_value<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Refuse a POST unless approvals are allowed, it comes from this server's
/// own page (Host and Origin), and it carries the token.
fn check_post(
    site: &Site,
    host: &str,
    request: &Request,
    form: &[(String, String)],
) -> Result<(), (u16, String)> {
    if !site.allow_intent {
        return Err((403, READ_ONLY.into()));
    }
    if header_value(request, "Host") != Some(host) {
        return Err((
            403,
            "Refused: the request was not made to this server's address.".into(),
        ));
    }
    if let Some(origin) = header_value(request, "Origin")
        && origin != format!("http://{host}")
    {
        return Err((
            403,
            format!("Refused: a request from another site ({origin})."),
        ));
    }
    if param(form, "token").as_deref() != Some(site.token.as_str()) {
        return Err((
            403,
            "Refused: the form's token is missing or from another server (reload the page).".into(),
        ));
    }
    Ok(())
}

fn approval(pairs: &[(String, String)], ws: &Workspace) -> Result<Approval, Error> {
    Ok(Approval {
        release: ws.resolve_user_ref(&required(pairs, "release")?)?,
        input: ws.resolve_user_ref(&required(pairs, "ref")?)?,
        value: param(pairs, "value").unwrap_or_else(|| "true".into()),
        format: param(pairs, "format").unwrap_or_else(|| "json".into()),
    })
}

fn answer(ws: &Workspace, site: &Site, host: &str, mut request: Request) -> std::io::Result<()> {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    // The original's paths: `/ref/<ref>` and `/match/<glob>`.
    let mut path = path;
    for (prefix, page, name) in [("/ref/", "/ref", "ref"), ("/match/", "/match", "glob")] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let value = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
            pairs.push((name.to_string(), value.into_owned()));
            path = page;
        }
    }
    let method = request.method().clone();
    // A shared store (git) is fetched at most every few seconds before
    // reads; a page shows what other agents did up to now.
    for store in [ws.state().store(), ws.intent().store()] {
        if let Err(e) = store.refresh() {
            tracing::warn!("state view: could not refresh {}: {e}", store.describe());
        }
    }
    if path == REFRESH_SCRIPT && method == Method::Get {
        let js = Response::from_string(super::layout::REFRESH_JS)
            .with_header(header("Content-Type", "text/javascript; charset=utf-8"))
            .with_header(header("Cache-Control", "no-store"));
        return request.respond(js);
    }
    if path == "/favicon.ico" {
        return request.respond(Response::empty(204));
    }
    let page: Result<Markup, Error> = match (&method, path) {
        (Method::Get | Method::Head, "/") => data::overview(ws).map(|o| pages::overview(site, &o)),
        (Method::Get | Method::Head, "/release") => required(&pairs, "ref").and_then(|r| {
            let view = data::release(ws, &r)?;
            let notice = param(&pairs, "approved").map(|a| {
                maud::html! { div.note #approved { "Wrote and applied " code { (a) } ". Run "
                    code { "ocuroot release continue " (view.report.release) } " (or let CI) to go on." } }
            });
            Ok(pages::release(site, &view, notice))
        }),
        (Method::Get | Method::Head, "/run") => {
            required(&pairs, "ref").and_then(|r| data::run(ws, &r).map(|v| detail::run(site, &v)))
        }
        (Method::Get | Method::Head, "/plan") => ws.plan().map(|p| plan::plan(site, &p)),
        (Method::Get | Method::Head, "/ref") => required(&pairs, "ref")
            .and_then(|r| data::reference(ws, &r).map(|v| detail::reference_page(site, &v))),
        (Method::Get | Method::Head, "/match") => {
            let glob = param(&pairs, "glob").filter(|g| !g.is_empty()).unwrap_or_else(|| "**".into());
            ws.state_match(&[glob.as_str()]).map(|refs| detail::matching(site, &glob, &refs))
        }
        (Method::Get | Method::Head, "/approve") => {
            if !site.allow_intent {
                return request.respond(error_page(
                    site,
                    403,
                    READ_ONLY,
                ));
            }
            approval(&pairs, ws).and_then(|a| approve::form(site, ws, &a))
        }
        (Method::Post, "/approve/preview" | "/approve") => {
            let mut body = String::new();
            if request.as_reader().take(MAX_BODY).read_to_string(&mut body).is_err() {
                return request.respond(error_page(site, 400, "The form is not UTF-8 text."));
            }
            let form: Vec<(String, String)> =
                form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            if let Err((status, message)) = check_post(site, host, &request, &form) {
                return request.respond(error_page(site, status, &message));
            }
            let a = match approval(&form, ws) {
                Ok(a) => a,
                Err(e) => return request.respond(error_page(site, status_of(&e), &e.to_string())),
            };
            if path == "/approve/preview" {
                approve::preview(site, ws, &a)
            } else {
                match approve::apply(ws, &a) {
                    Ok(()) => {
                        let to = format!(
                            "{}&approved={}",
                            site.release(&a.release),
                            query_value(&a.input.to_string())
                        );
                        return request.respond(
                            Response::empty(303).with_header(header("Location", &to)),
                        );
                    }
                    Err(e) => Err(e),
                }
            }
        }
        (Method::Get | Method::Head | Method::Post, _) => {
            return request.respond(error_page(site, 404, &format!("No page at {path}")));
        }
        _ => {
            return request.respond(
                error_page(site, 405, "Only GET (and POST for approvals) are served.")
                    .with_header(header("Allow", "GET, HEAD, POST")),
            );
        }
    };
    match page {
        Ok(markup) => request.respond(page_response(200, markup)),
        Err(e) => request.respond(error_page(site, status_of(&e), &crate::render::error(&e))),
    }
}
