//! The settings a network remote is reached with: public
//! [`NetworkSettings`] (from the environment git users keep), and what the
//! subtransports of one remote work with.

use std::path::PathBuf;

/// How a git store reaches a network remote: the settings git users keep
/// in their environment, read by the workspace (`OCUROOT_GIT_TOKEN`,
/// `GIT_SSH_COMMAND`, ...; see [`NetworkSettings::from_env`]).
#[derive(Clone, Default)]
pub struct NetworkSettings {
    /// A shell command to run for ssh (`GIT_SSH_COMMAND`).
    pub ssh_command: Option<String>,
    /// A program to run for ssh (`GIT_SSH`).
    pub ssh_program: Option<String>,
    /// How that program takes options: `ssh`, `plink`, `putty`,
    /// `tortoiseplink` or `simple` (`GIT_SSH_VARIANT`); guessed from its
    /// name otherwise.
    pub ssh_variant: Option<String>,
    /// Do not share one ssh connection across a command's pushes
    /// (`OCUROOT_SSH_SHARE=0`).
    pub no_connection_sharing: bool,
    /// A token for https remotes whose URL carries no credentials
    /// (`OCUROOT_GIT_TOKEN`).
    pub token: Option<String>,
    /// The user name sent with the token (`OCUROOT_GIT_USERNAME`;
    /// `x-access-token` by default, which GitHub expects and GitLab and
    /// Gitea accept).
    pub token_user: Option<String>,
    /// The certificates (PEM) that https servers are checked against
    /// instead of the system's (`GIT_SSL_CAINFO`, `SSL_CERT_FILE`, or
    /// git's `http.sslCAInfo`).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for NetworkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field("ssh_command", &self.ssh_command)
            .field("ssh_program", &self.ssh_program)
            .field("ssh_variant", &self.ssh_variant)
            .field("no_connection_sharing", &self.no_connection_sharing)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("token_user", &self.token_user)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl NetworkSettings {
    /// The settings `env` gives: `GIT_SSH_COMMAND`, `GIT_SSH`,
    /// `GIT_SSH_VARIANT`, `OCUROOT_SSH_SHARE` (`0` turns connection
    /// sharing off), `OCUROOT_GIT_TOKEN`, `OCUROOT_GIT_USERNAME`, and the CA
    /// file from `GIT_SSL_CAINFO`, else `SSL_CERT_FILE`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> NetworkSettings {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        NetworkSettings {
            ssh_command: get("GIT_SSH_COMMAND"),
            ssh_program: get("GIT_SSH"),
            ssh_variant: get("GIT_SSH_VARIANT"),
            no_connection_sharing: get("OCUROOT_SSH_SHARE")
                .is_some_and(|v| matches!(v.trim(), "0" | "false" | "no" | "off")),
            token: get("OCUROOT_GIT_TOKEN"),
            token_user: get("OCUROOT_GIT_USERNAME"),
            ca_file: get("GIT_SSL_CAINFO")
                .or_else(|| get("SSL_CERT_FILE"))
                .map(PathBuf::from),
        }
    }
}

/// What the subtransports of one remote work with.
#[derive(Debug, Default)]
pub(super) struct Settings {
    pub ssh_command: Option<String>,
    pub ssh_program: Option<String>,
    pub ssh_variant: Option<String>,
    pub share_connections: bool,
    pub token: Option<String>,
    pub token_user: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// `OCUROOT_HOME`, where shared ssh connections keep their sockets.
    pub home: Option<PathBuf>,
}

impl Settings {
    pub fn new(network: &NetworkSettings, home: Option<PathBuf>) -> Settings {
        Settings {
            ssh_command: network.ssh_command.clone(),
            ssh_program: network.ssh_program.clone(),
            ssh_variant: network.ssh_variant.clone(),
            share_connections: !network.no_connection_sharing,
            token: network.token.clone(),
            token_user: network.token_user.clone(),
            ca_file: network.ca_file.clone(),
            home,
        }
    }
}
