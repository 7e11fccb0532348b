//! The ssh leg of the network transports: the user's own `ssh` program,
//! run the way git runs it, as a libgit2 smart subtransport.
//!
//! Which program: `GIT_SSH_COMMAND` (through `sh -c`, as git does), else
//! `GIT_SSH` (a program, no shell), else git's `core.sshCommand`, else
//! `ssh`. So `~/.ssh/config` (aliases, `Port`, `ProxyJump`,
//! `IdentityFile`), ssh-agent and `known_hosts` work as they do for git.
//! OpenSSH runs with `BatchMode=yes` (it never prompts: an unknown or changed
//! host key, or a key the server refuses, is an error), and shares one
//! connection per host across the pushes and fetches of a command and the
//! commands of the next half minute (`ControlMaster`, with its socket under
//! `$OCUROOT_HOME/ssh`), so a release pays one ssh handshake, not one per
//! push.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};

use super::settings::Settings;
use crate::host::Piped;

/// How long a shared ssh connection outlives its last use.
const CONTROL_PERSIST_SECS: u32 = 30;

/// Where an ssh URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshTarget {
    /// `user@`, if the URL names one.
    pub user: Option<String>,
    /// The host, or an alias of `~/.ssh/config`.
    pub host: String,
    /// The port, if the URL names one.
    pub port: Option<u16>,
    /// The repository's path on the host, as git passes it.
    pub path: String,
}

impl SshTarget {
    /// Parse `ssh://[user@]host[:port]/path` (also `git+ssh://`,
    /// `ssh+git://`) or the scp-like `[user@]host:path`.
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let (authority, path, with_port) = if let Some((scheme, rest)) = url.split_once("://") {
            if !matches!(scheme, "ssh" | "git+ssh" | "ssh+git") {
                return Err(format!("{url}: not an ssh URL"));
            }
            let slash = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(slash);
            // `ssh://host/~user/repo` names a path relative to a home.
            let path = match path.strip_prefix("/~") {
                Some(rest) => format!("~{rest}"),
                None => path.to_string(),
            };
            (authority, path, true)
        } else {
            let (authority, path) =
                crate::repo::scp_like(url).ok_or_else(|| format!("{url}: not an ssh URL"))?;
            (authority, path.to_string(), false)
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            (host.to_string(), after.strip_prefix(':'))
        } else if with_port {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        } else {
            (hostport.to_string(), None)
        };
        let port = match port.filter(|p| !p.is_empty()) {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{url}: {p:?} is not a port"))?,
            ),
            None => None,
        };
        // An option to ssh is not a host (git refuses these too).
        if host.is_empty()
            || host.starts_with('-')
            || user.as_deref().is_some_and(|u| u.starts_with('-'))
        {
            return Err(format!("{url}: {host:?} is not a usable ssh host"));
        }
        if path.is_empty() || path == "/" {
            return Err(format!("{url}: no repository path"));
        }
        Ok(SshTarget {
            user,
            host,
            port,
            path,
        })
    }

    /// `user@host`, or `host`.
    fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The program git would run for ssh, and how it takes options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Program {
    /// Run through `sh -c '<command> "$@"'` (`GIT_SSH_COMMAND`,
    /// `core.sshCommand`), or as a program (`GIT_SSH`, `ssh`).
    shell: bool,
    command: String,
    variant: Variant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// OpenSSH: `-p`, `-o`.
    OpenSsh,
    /// PuTTY's plink: `-P`, `-batch`.
    Plink,
    /// TortoisePlink: `-P`.
    TortoisePlink,
    /// A program that takes only `host command`.
    Simple,
}

impl Program {
    fn find(settings: &Settings) -> Program {
        let config = git2::Config::open_default().ok();
        let config_str = |name: &str| config.as_ref().and_then(|c| c.get_string(name).ok());
        let (shell, command) = if let Some(c) = settings.ssh_command.clone() {
            (true, c)
        } else if let Some(p) = settings.ssh_program.clone() {
            (false, p)
        } else if let Some(c) = config_str("core.sshCommand") {
            (true, c)
        } else {
            (false, "ssh".to_string())
        };
        let named = settings
            .ssh_variant
            .clone()
            .or_else(|| config_str("ssh.variant"));
        let variant = match named.as_deref() {
            Some("ssh") => Variant::OpenSsh,
            Some("plink") | Some("putty") => Variant::Plink,
            Some("tortoiseplink") => Variant::TortoisePlink,
            Some("simple") => Variant::Simple,
            _ => {
                let first = command.split_whitespace().next().unwrap_or_default();
                let base = first
                    .rsplit('/')
                    .next()
                    .unwrap_or(first)
                    .to_ascii_lowercase();
                let base = base.strip_suffix(".exe").unwrap_or(&base).to_string();
                match base.as_str() {
                    "plink" => Variant::Plink,
                    "tortoiseplink" => Variant::TortoisePlink,
                    _ => Variant::OpenSsh,
                }
            }
        };
        Program {
            shell,
            command,
            variant,
        }
    }

    /// The arguments before the destination.
    fn options(
        &self,
        target: &SshTarget,
        control: Option<&PathBuf>,
    ) -> Result<Vec<String>, String> {
        let mut args = Vec::new();
        match self.variant {
            Variant::OpenSsh => {
                args.extend(["-o".to_string(), "BatchMode=yes".to_string()]);
                if let Some(dir) = control {
                    args.extend([
                        "-o".to_string(),
                        "ControlMaster=auto".to_string(),
                        "-o".to_string(),
                        format!("ControlPath={}/%C", dir.display()),
                        "-o".to_string(),
                        format!("ControlPersist={CONTROL_PERSIST_SECS}"),
                    ]);
                }
                if let Some(p) = target.port {
                    args.extend(["-p".to_string(), p.to_string()]);
                }
            }
            Variant::Plink | Variant::TortoisePlink => {
                if self.variant == Variant::Plink {
                    args.push("-batch".to_string());
                }
                if let Some(p) = target.port {
                    args.extend(["-P".to_string(), p.to_string()]);
                }
            }
            Variant::Simple => {
                if target.port.is_some() {
                    return Err(format!(
                        "{:?} takes no port (ssh.variant simple): use an ~/.ssh/config alias \
                         or set GIT_SSH_VARIANT",
                        self.command
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// The ssh subtransport of one libgit2 transport.
pub(super) struct SshSubtransport {
    pub settings: Arc<Settings>,
}

impl SmartSubtransport for SshSubtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let service = match action {
            Service::UploadPackLs | Service::UploadPack => "git-upload-pack",
            Service::ReceivePackLs | Service::ReceivePack => "git-receive-pack",
        };
        let target = SshTarget::parse(url).map_err(|e| net_error(&e))?;
        let stream =
            SshStream::spawn(&self.settings, &target, service, url).map_err(|e| net_error(&e))?;
        Ok(Box::new(stream))
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

/// `'text'`, quoted for the remote shell as git quotes it.
fn sq_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The directory for shared connections' sockets, if its paths fit in a
/// socket address (`%C` expands to 40 characters).
fn control_dir(settings: &Settings) -> Option<PathBuf> {
    let dir = settings.home.as_ref()?.join("ssh");
    if dir.as_os_str().len() + 41 > 100 {
        tracing::debug!(dir = %dir.display(), "no ssh connection sharing: the socket path would be too long");
        return None;
    }
    std::fs::create_dir_all(&dir).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    Some(dir)
}

/// One `ssh` process running `git-upload-pack` or `git-receive-pack`.
struct SshStream {
    program: Piped,
    /// `[user@]host[:port]`, for messages.
    place: String,
}

impl SshStream {
    fn spawn(
        settings: &Settings,
        target: &SshTarget,
        service: &str,
        url: &str,
    ) -> Result<SshStream, String> {
        let program = Program::find(settings);
        let control = if program.variant == Variant::OpenSsh && settings.share_connections {
            control_dir(settings)
        } else {
            None
        };
        let mut args = program.options(target, control.as_ref())?;
        args.push(target.destination());
        args.push(format!("{service} {}", sq_quote(&target.path)));
        let piped = Piped::spawn(&program.command, program.shell, &args).map_err(|e| {
            format!(
                "cannot run the ssh program {:?} for {}: {e}",
                program.command,
                crate::repo::redact_url(url)
            )
        })?;
        let place = match target.port {
            Some(p) => format!("{}:{p}", target.destination()),
            None => target.destination(),
        };
        Ok(SshStream {
            program: piped,
            place,
        })
    }

    /// Why the ssh program ended early: its exit and what it said, with a
    /// hint for the usual causes.
    fn failure(&mut self) -> String {
        let (status, said) = self.program.ended(Duration::from_secs(5));
        let said = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .collect::<Vec<_>>()
            .join(" / ");
        let said = said.trim_end_matches('.');
        let host = self
            .place
            .rsplit_once('@')
            .map_or(self.place.as_str(), |(_, h)| h);
        let (name, port) = match host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
            _ => (host, None),
        };
        let hint = if said.contains("Host key verification failed")
            || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || said.contains("host key is known")
        {
            format!(
                ". The host key of {host} is not in known_hosts, or differs from the one \
                 there: check its fingerprint with the host's owner, then trust it with \
                 `ssh-keyscan{} {name} >> ~/.ssh/known_hosts`",
                port.map_or(String::new(), |p| format!(" -p {p}")),
            )
        } else if said.contains("Permission denied") {
            format!(
                ". {host} refused this agent's ssh keys (from ssh-agent, ~/.ssh/config \
                 IdentityFile, or GIT_SSH_COMMAND=\"ssh -i <key>\")"
            )
        } else {
            String::new()
        };
        let exit = match status.map(|s| s.code()) {
            Some(Some(c)) => format!("ssh exited with {c}"),
            Some(None) => "ssh was killed".to_string(),
            None => "ssh closed its output".to_string(),
        };
        match said.is_empty() {
            true => format!("ssh to {}: {exit}{hint}", self.place),
            false => format!("ssh to {}: {exit}: {said}{hint}", self.place),
        }
    }
}

impl Read for SshStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.program.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // libgit2 never reads past the end of a conversation: an end
            // here is the program failing.
            return Err(std::io::Error::other(self.failure()));
        }
        Ok(n)
    }
}

impl Write for SshStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.program.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(std::io::Error::other(self.failure()))
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.program.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls() {
        let t = SshTarget::parse("ssh://git@127.0.0.1:2222/srv/state.git").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port, t.path.as_str()),
            (Some("git"), "127.0.0.1", Some(2222), "/srv/state.git")
        );
        let t = SshTarget::parse("git@github.com:org/state.git").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("github.com", None, "org/state.git")
        );
        let t = SshTarget::parse("state-alias:org/state.git").unwrap();
        assert_eq!((t.user, t.host.as_str()), (None, "state-alias"));
        let t = SshTarget::parse("ssh://[::1]:22/~ci/state.git").unwrap();
        assert_eq!((t.host.as_str(), t.path.as_str()), ("::1", "~ci/state.git"));
        assert!(SshTarget::parse("ssh://-oProxyCommand=x/y").is_err());
        assert!(SshTarget::parse("ssh://host:99999/x").is_err());
        assert_eq!(sq_quote("it's"), r"'it'\''s'");
    }
}
