//! A private OpenSSH `sshd` on 127.0.0.1 for the tests, and the client
//! files (keys, known_hosts, an ssh configuration with a Host alias) to
//! reach it: see `servers.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ProcGroup, current_user, free_port, is_root, plain, run, write_file};

/// A private OpenSSH server on 127.0.0.1 that lets the current user in with
/// [`SshServer::key`], and the client files to reach it.
pub(crate) struct SshServer {
    pub(crate) port: u16,
    /// The login name (the current user).
    pub(crate) user: String,
    /// The directory of its files.
    pub(crate) dir: PathBuf,
    /// An authorised client key (private; `.pub` next to it).
    pub(crate) key: PathBuf,
    /// A client key the server does not accept.
    pub(crate) wrong_key: PathBuf,
    /// `[127.0.0.1]:<port> ssh-ed25519 AAAA...`: the server's host key.
    pub(crate) known_hosts: PathBuf,
    /// An empty known_hosts file.
    pub(crate) empty_known_hosts: PathBuf,
    /// An ssh client configuration with `Host ocuroot-test-alias` (this
    /// server, [`SshServer::key`]), so `ocuroot-test-alias:/abs/path.git`
    /// works as an scp-like URL.
    pub(crate) ssh_config: PathBuf,
    /// The same with [`SshServer::wrong_key`] for the alias.
    pub(crate) wrong_key_ssh_config: PathBuf,
    config: PathBuf,
    log: PathBuf,
    proc: Option<ProcGroup>,
}

/// The Host alias in [`SshServer::ssh_config`].
pub(crate) const SSH_ALIAS: &str = "ocuroot-test-alias";

impl SshServer {
    /// Its files go to `<dir>/sshd` (created).
    pub(crate) fn start(dir: &Path) -> SshServer {
        let dir = dir.join("sshd");
        fs::create_dir_all(&dir).unwrap();
        let d = plain(&dir);
        // sshd refuses to start without its privilege separation directory.
        if !Path::new("/run/sshd").is_dir() && is_root() {
            let _ = fs::create_dir_all("/run/sshd");
            let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));
        }
        let port = free_port();
        let user = current_user();
        let keygen = |name: &str| {
            let path = dir.join(name);
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(path.with_extension("pub"));
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&path));
            path
        };
        let host_key = keygen("host_key");
        let key = keygen("client_key");
        let wrong_key = keygen("wrong_key");
        let authorized = dir.join("authorized_keys");
        write_file(
            &authorized,
            &fs::read_to_string(key.with_extension("pub")).unwrap(),
            0o600,
        );
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        let known_hosts = dir.join("known_hosts");
        write_file(
            &known_hosts,
            &format!("[127.0.0.1]:{port} {kind} {blob}\n"),
            0o600,
        );
        let empty_known_hosts = dir.join("empty_known_hosts");
        write_file(&empty_known_hosts, "", 0o600);

        let log = dir.join("sshd.log");
        let config = dir.join("sshd_config");
        let mut text = format!(
            "ListenAddress 127.0.0.1:{port}\n\
             AddressFamily inet\n\
             HostKey {host_key}\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowUsers {user}\n\
             MaxStartups 100:30:200\n\
             MaxSessions 100\n\
             UseDNS no\n\
             PrintMotd no\n\
             X11Forwarding no\n\
             # Root's ~/.bashrc here runs a slow `pyenv init` for every\n\
             # command unless bash sees it is nested.\n\
             SetEnv SHLVL=1\n",
            host_key = plain(&host_key),
            authorized = plain(&authorized),
        );
        write_file(&config, &text, 0o600);
        // OpenSSH 9.8 and later penalise addresses that fail to log in
        // (the wrong-key tests would lock 127.0.0.1 out); older ones do not
        // know the option.
        let penalties = Command::new("/usr/sbin/sshd")
            .args(["-t", "-o", "PerSourcePenalties=no", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if penalties {
            text.push_str("PerSourcePenalties no\n");
            write_file(&config, &text, 0o600);
        }

        let client_config = |identity: &Path| {
            format!(
                "Host {SSH_ALIAS}\n\
                 \x20 HostName 127.0.0.1\n\
                 \x20 Port {port}\n\
                 \x20 User {user}\n\
                 \x20 IdentityFile {identity}\n\
                 \x20 UserKnownHostsFile {known}\n\
                 \x20 IdentitiesOnly yes\n\
                 Host *\n\
                 \x20 UserKnownHostsFile {known}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 StrictHostKeyChecking yes\n\
                 \x20 UpdateHostKeys no\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 BatchMode yes\n\
                 \x20 ControlMaster no\n\
                 \x20 LogLevel ERROR\n",
                identity = plain(identity),
                known = plain(&known_hosts),
            )
        };
        let ssh_config = dir.join("ssh_config");
        write_file(&ssh_config, &client_config(&key), 0o600);
        let wrong_key_ssh_config = dir.join("ssh_config_wrong_key");
        write_file(&wrong_key_ssh_config, &client_config(&wrong_key), 0o600);

        let mut server = SshServer {
            port,
            user,
            dir,
            key,
            wrong_key,
            known_hosts,
            empty_known_hosts,
            ssh_config,
            wrong_key_ssh_config,
            config,
            log,
            proc: None,
        };
        server.start_again();
        server
    }

    /// `ssh://<user>@127.0.0.1:<port><path>` for an absolute `path`.
    pub(crate) fn url(&self, path: &Path) -> String {
        assert!(path.is_absolute(), "{} is not absolute", path.display());
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// `ocuroot-test-alias:<path>`: an scp-like URL that needs
    /// [`SshServer::ssh_config`] (as in [`SshServer::git_ssh_command`]).
    pub(crate) fn alias_url(&self, path: &Path) -> String {
        assert!(path.is_absolute(), "{} is not absolute", path.display());
        format!("{SSH_ALIAS}:{}", path.display())
    }

    fn command(&self, config: &Path, known_hosts: &Path, key: &Path) -> String {
        format!(
            "ssh -F {} -o UserKnownHostsFile={} -i {} -o IdentitiesOnly=yes",
            plain(config),
            plain(known_hosts),
            plain(key)
        )
    }

    /// For `GIT_SSH_COMMAND`: ssh with this server's client configuration,
    /// known host and key.
    pub(crate) fn git_ssh_command(&self) -> String {
        self.command(&self.ssh_config, &self.known_hosts, &self.key)
    }

    /// As [`SshServer::git_ssh_command`], with an empty known_hosts file:
    /// the server's host key is unknown, so ssh refuses to connect.
    pub(crate) fn empty_known_hosts_command(&self) -> String {
        self.command(&self.ssh_config, &self.empty_known_hosts, &self.key)
    }

    /// As [`SshServer::git_ssh_command`], with a key the server does not
    /// accept (the alias too).
    pub(crate) fn wrong_key_command(&self) -> String {
        self.command(
            &self.wrong_key_ssh_config,
            &self.known_hosts,
            &self.wrong_key,
        )
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process groups of the running server (for leak checks).
    pub(crate) fn pgids(&self) -> Vec<u32> {
        self.proc.iter().map(ProcGroup::pgid).collect()
    }

    /// Kills the server and its sessions; the port is closed.
    pub(crate) fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts the server again on the same port.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        let mut proc = ProcGroup::spawn(
            "sshd",
            Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(&self.config)
                .arg("-E")
                .arg(&self.log),
            &self.log,
        );
        proc.wait_for_port(self.port);
        self.proc = Some(proc);
    }
}
