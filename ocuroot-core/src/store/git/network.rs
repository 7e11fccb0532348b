//! How the git store reaches remotes over the network: the ssh and https
//! subtransports plugged into libgit2 (so no OpenSSL or libssh2 is linked:
//! ssh is the user's own `ssh` program, https is rustls), and the settings
//! (credentials, ssh command, CA) each remote uses.
//!
//! libgit2's transports are registered process-wide, once; the settings of
//! a remote are looked up by its URL when libgit2 connects to it. A URL no
//! store registered (a repository cloned for a cascade, say) uses the
//! settings of the process environment.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once, PoisonError};

use super::https::HttpsSubtransport;
use super::settings::{NetworkSettings, Settings};
use super::ssh::SshSubtransport;
use crate::{Error, Result};

/// The settings of each remote a store opened, by URL.
static REMOTES: Mutex<Vec<(String, Arc<Settings>)>> = Mutex::new(Vec::new());

/// Use `settings` whenever libgit2 connects to `url`.
pub(super) fn configure(url: &str, settings: Settings) {
    register();
    let mut remotes = REMOTES.lock().unwrap_or_else(PoisonError::into_inner);
    remotes.retain(|(u, _)| u != url);
    remotes.push((url.to_string(), Arc::new(settings)));
}

/// The settings for `url`: the ones a store gave, or the process
/// environment's.
fn settings_for(url: &str) -> Arc<Settings> {
    let remotes = REMOTES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, s)) = remotes.iter().rev().find(|(u, _)| u == url) {
        return s.clone();
    }
    drop(remotes);
    let env = |name: &str| std::env::var(name).ok();
    let home = std::env::var_os("OCUROOT_HOME").map(PathBuf::from);
    Arc::new(Settings::new(&NetworkSettings::from_env(&env), home))
}

/// Register the ssh and https subtransports with libgit2, once.
pub(super) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["ssh", "ssh+git", "git+ssh"] {
            // Safety: registration happens once, before any transport of
            // this process is created (the `Once`), as git2 requires.
            let done = unsafe {
                git2::transport::register(scheme, |remote| {
                    let settings = settings_for(remote.url().unwrap_or_default());
                    git2::transport::Transport::smart(remote, false, SshSubtransport { settings })
                })
            };
            if let Err(e) = done {
                tracing::warn!(scheme, error = %e, "could not register the ssh transport");
            }
        }
        for scheme in ["https", "http"] {
            // Safety: as above.
            let done = unsafe {
                git2::transport::register(scheme, |remote| {
                    let settings = settings_for(remote.url().unwrap_or_default());
                    git2::transport::Transport::smart(
                        remote,
                        true,
                        HttpsSubtransport::new(settings),
                    )
                })
            };
            if let Err(e) = done {
                tracing::warn!(scheme, error = %e, "could not register the https transport");
            }
        }
    });
}

/// The message of a libgit2 error on the way to or from `url`: libgit2
/// may quote the URL it was given, and must never show its credentials.
pub(super) fn clean_message(url: &str, e: &git2::Error) -> String {
    e.message().replace(url, &crate::repo::redact_url(url))
}

/// A libgit2 error on the way to or from `url`, as the store reports it:
/// what was being done and the remote, without credentials.
pub(super) fn error(what: &str, url: &str, e: &git2::Error) -> Error {
    let shown = crate::repo::redact_url(url);
    Error::store(format!("{what} {shown}: {}", clean_message(url, e)))
}

/// `Err` of [`error`], for `map_err`.
pub(super) fn fail<T>(what: &str, url: &str, e: git2::Error) -> Result<T> {
    Err(error(what, url, &e))
}
