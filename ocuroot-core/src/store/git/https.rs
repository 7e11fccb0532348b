//! The https leg of the network transports: git's smart HTTP protocol over
//! ureq and rustls, as a libgit2 smart subtransport.
//!
//! - **Credentials**: the URL's own (`https://user:token@host/...`), else
//!   the settings' token (`OCUROOT_GIT_TOKEN`), sent with the first
//!   request; else, when the server answers 401, git's credential helpers.
//!   They are never part of an error or a log line.
//! - **Certificates**: checked against the settings' CA file
//!   (`GIT_SSL_CAINFO`, `SSL_CERT_FILE`) or git's `http.sslCAInfo` when one
//!   is given, else the system's bundle, else Mozilla's roots.
//! - **Connections**: one ureq agent per CA choice for the whole process,
//!   so requests reuse kept-alive connections (a push is a `GET` and a
//!   `POST` on one connection, and the next push reuses it).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};

use super::settings::Settings;

/// The subtransport of one libgit2 transport.
pub(super) struct HttpsSubtransport {
    settings: Arc<Settings>,
}

impl HttpsSubtransport {
    pub fn new(settings: Arc<Settings>) -> HttpsSubtransport {
        HttpsSubtransport { settings }
    }
}

impl SmartSubtransport for HttpsSubtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let remote = Remote::parse(url).map_err(|e| net_error(&e))?;
        let (method, path, service) = match action {
            Service::UploadPackLs => (
                "GET",
                "/info/refs?service=git-upload-pack",
                "git-upload-pack",
            ),
            Service::UploadPack => ("POST", "/git-upload-pack", "git-upload-pack"),
            Service::ReceivePackLs => (
                "GET",
                "/info/refs?service=git-receive-pack",
                "git-receive-pack",
            ),
            Service::ReceivePack => ("POST", "/git-receive-pack", "git-receive-pack"),
        };
        let agent = agent(&self.settings).map_err(|e| net_error(&e))?;
        Ok(Box::new(HttpStream {
            agent,
            settings: self.settings.clone(),
            remote,
            method,
            path,
            service,
            body: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

fn net_error(message: &str) -> git2::Error {
    git2::Error::new(
        git2::ErrorCode::GenericError,
        git2::ErrorClass::Net,
        message,
    )
}

/// An https URL split into what is sent and what is shown.
struct Remote {
    /// The URL without credentials, query or trailing slash.
    base: String,
    /// `host[:port]`.
    host: String,
    /// The URL's own user and password (percent-decoded).
    credentials: Option<(String, String)>,
}

impl Remote {
    fn parse(url: &str) -> Result<Remote, String> {
        let shown = crate::repo::redact_url(url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{shown}: not an http URL"))?;
        let end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((user, host)) => {
                let (u, p) = match user.split_once(':') {
                    Some((u, p)) => (percent_decode(u), percent_decode(p)),
                    // `https://<token>@host`: the token as the user.
                    None => (percent_decode(user), String::new()),
                };
                (Some((u, p)), host)
            }
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(format!("{shown}: no host"));
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        Ok(Remote {
            base: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
            host: host.to_string(),
            credentials,
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The credentials git's helpers gave, by URL: asked once per process.
static HELPED: Mutex<Vec<(String, (String, String))>> = Mutex::new(Vec::new());

/// One ureq agent per CA file (`None`: the default roots), for the process.
static AGENTS: Mutex<Option<HashMap<Option<PathBuf>, ureq::Agent>>> = Mutex::new(None);

/// The CA file to check servers against: the settings', else git's
/// `http.sslCAInfo`.
fn ca_file(settings: &Settings) -> Option<PathBuf> {
    settings.ca_file.clone().or_else(|| {
        git2::Config::open_default()
            .ok()?
            .get_path("http.sslCAInfo")
            .ok()
    })
}

/// The system's CA bundle, where distributions keep it.
fn system_bundle() -> Option<PathBuf> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn read_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("read the CA certificates in {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "read the CA certificates in {}: {e}",
                    path.display()
                ));
            }
        }
    }
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn agent(settings: &Settings) -> Result<ureq::Agent, String> {
    let ca = ca_file(settings);
    let mut agents = AGENTS.lock().unwrap_or_else(PoisonError::into_inner);
    let agents = agents.get_or_insert_with(HashMap::new);
    if let Some(a) = agents.get(&ca) {
        return Ok(a.clone());
    }
    let roots = match ca.as_deref().map(Path::to_path_buf).or_else(system_bundle) {
        Some(path) => match read_certs(&path) {
            Ok(certs) => ureq::tls::RootCerts::Specific(Arc::new(certs)),
            // An explicit CA file must work; a system bundle may not be
            // there as expected.
            Err(e) if ca.is_some() => return Err(e),
            Err(_) => ureq::tls::RootCerts::WebPki,
        },
        None => ureq::tls::RootCerts::WebPki,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .max_redirects(5)
        .user_agent(concat!("git/2.0 (ocuroot/", env!("CARGO_PKG_VERSION"), ")"))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    agents.insert(ca, agent.clone());
    Ok(agent)
}

/// One request of the smart protocol: written to (a `POST`'s body), then
/// read from (the response).
struct HttpStream {
    agent: ureq::Agent,
    settings: Arc<Settings>,
    remote: Remote,
    method: &'static str,
    path: &'static str,
    service: &'static str,
    body: Vec<u8>,
    response: Option<ureq::BodyReader<'static>>,
}

/// Where credentials came from, for the message when they are refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    Url,
    Token,
    Helper,
}

impl HttpStream {
    fn credentials(&self) -> Option<((String, String), From)> {
        if let Some(c) = &self.remote.credentials {
            return Some((c.clone(), From::Url));
        }
        if let Some(token) = &self.settings.token {
            let user = self
                .settings
                .token_user
                .clone()
                .unwrap_or_else(|| "x-access-token".to_string());
            return Some(((user, token.clone()), From::Token));
        }
        let helped = HELPED.lock().unwrap_or_else(PoisonError::into_inner);
        helped
            .iter()
            .find(|(u, _)| *u == self.remote.base)
            .map(|(_, c)| (c.clone(), From::Helper))
    }

    /// Ask git's credential helpers for the remote's credentials.
    fn ask_helpers(&self) -> Option<(String, String)> {
        let config = git2::Config::open_default().ok()?;
        let found = git2::CredentialHelper::new(&self.remote.base)
            .config(&config)
            .execute()?;
        HELPED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.remote.base.clone(), found.clone()));
        Some(found)
    }

    fn send(&mut self) -> std::io::Result<()> {
        let url = format!("{}{}", self.remote.base, self.path);
        let mut credentials = self.credentials();
        let mut asked = false;
        loop {
            let mut request = ureq::http::Request::builder()
                .method(self.method)
                .uri(url.as_str())
                .header("Pragma", "no-cache");
            if self.method == "POST" {
                request = request
                    .header(
                        "Content-Type",
                        format!("application/x-{}-request", self.service),
                    )
                    .header("Accept", format!("application/x-{}-result", self.service));
            } else {
                request = request.header("Accept", "*/*");
            }
            if let Some(((user, pass), _)) = &credentials {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                request = request.header("Authorization", format!("Basic {basic}"));
            }
            let request = request
                .body(self.body.clone())
                .map_err(|e| std::io::Error::other(format!("{}: {e}", self.shown())))?;
            let response = self
                .agent
                .run(request)
                .map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            match status {
                200 => {
                    if self.method == "GET" {
                        let kind = response
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let expected = format!("application/x-{}-advertisement", self.service);
                        if kind != expected {
                            return Err(std::io::Error::other(format!(
                                "{} does not speak git's smart HTTP protocol (content type {kind:?})",
                                self.shown()
                            )));
                        }
                    }
                    self.response = Some(response.into_body().into_reader());
                    return Ok(());
                }
                401 if credentials.is_none() && !asked => {
                    asked = true;
                    match self.ask_helpers() {
                        Some(c) => credentials = Some((c, From::Helper)),
                        None => {
                            return Err(std::io::Error::other(format!(
                                "{} needs credentials (HTTP 401): put a token in \
                                 OCUROOT_GIT_TOKEN, or configure a git credential helper",
                                self.shown()
                            )));
                        }
                    }
                }
                401 | 403 => {
                    let from = match credentials.as_ref().map(|(_, f)| *f) {
                        Some(From::Url) => "the credentials in the store's URL",
                        Some(From::Token) => "the token in OCUROOT_GIT_TOKEN",
                        Some(From::Helper) => "the credentials git's credential helper gave",
                        None => "anonymous access",
                    };
                    return Err(std::io::Error::other(format!(
                        "{} refused {from} (HTTP {status})",
                        self.shown()
                    )));
                }
                404 => {
                    return Err(std::io::Error::other(format!(
                        "{}: no repository there (HTTP 404)",
                        self.shown()
                    )));
                }
                _ => {
                    return Err(std::io::Error::other(format!(
                        "{} answered HTTP {status} to {} {}",
                        self.shown(),
                        self.method,
                        self.path.split('?').next().unwrap_or_default()
                    )));
                }
            }
        }
    }

    fn shown(&self) -> &str {
        &self.remote.base
    }

    fn transport_error(&self, e: ureq::Error) -> std::io::Error {
        let text = e.to_string();
        let message = if text.contains("certificate") || text.contains("Certificate") {
            format!(
                "the TLS certificate of {} is not trusted ({text}): if the server uses a \
                 private CA, give its certificate with GIT_SSL_CAINFO, SSL_CERT_FILE or git \
                 config http.sslCAInfo",
                self.remote.host
            )
        } else {
            format!("cannot reach {}: {text}", self.remote.host)
        };
        std::io::Error::other(message)
    }
}

impl Read for HttpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.response.is_none() {
            self.send()?;
        }
        match self.response.as_mut() {
            Some(r) => r.read(buf),
            None => Ok(0),
        }
    }
}

impl Write for HttpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.body.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        // Read what is left of a response, so that its connection goes back
        // to the pool (libgit2 stops at the protocol's end).
        if let Some(mut r) = self.response.take() {
            let mut sink = [0u8; 8192];
            let mut left = 1 << 20;
            while let Ok(n) = r.read(&mut sink) {
                if n == 0 || left < n {
                    break;
                }
                left -= n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_from_their_credentials() {
        let r = Remote::parse("https://ci:t%40ken@127.0.0.1:8443/org/state.git/").unwrap();
        assert_eq!(r.base, "https://127.0.0.1:8443/org/state.git");
        assert_eq!(r.host, "127.0.0.1:8443");
        assert_eq!(r.credentials, Some(("ci".to_string(), "t@ken".to_string())));
        let r = Remote::parse("https://git.example.com/state.git").unwrap();
        assert_eq!(r.credentials, None);
    }
}
