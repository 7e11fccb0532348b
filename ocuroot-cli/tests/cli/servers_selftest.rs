//! The self-test of the private servers of `servers.rs`: a round trip
//! (clone, commit, push, clone again) over each, the refusals, outages,
//! the latency proxy, and no process left behind.

use super::*;

/// `git <args>` in `dir` with `env`; its output, or an error with
/// stderr.
fn git_in(dir: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env_remove("GIT_SSH")
        .env_remove("GIT_SSH_COMMAND")
        .env_remove("GIT_SSL_CAINFO")
        .env("GIT_AUTHOR_NAME", "A Person")
        .env("GIT_AUTHOR_EMAIL", "person@example.com")
        .env("GIT_COMMITTER_NAME", "A Person")
        .env("GIT_COMMITTER_EMAIL", "person@example.com")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run git");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Clones `url` into `work`, commits a file and pushes it to `main`;
/// the bare repository `bare` then has that commit on `main`.
fn round_trip(url: &str, env: &[(&str, &str)], work: &Path, bare: &Path) {
    git_in(None, env, &["clone", "-q", url, work.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("clone {url}: {e}"));
    fs::write(work.join("file.txt"), url).unwrap();
    git_in(Some(work), env, &["add", "file.txt"]).unwrap();
    git_in(Some(work), env, &["commit", "-q", "-m", "one"]).unwrap();
    git_in(
        Some(work),
        env,
        &["push", "-q", "origin", "HEAD:refs/heads/main"],
    )
    .unwrap_or_else(|e| panic!("push to {url}: {e}"));
    let local = git_in(Some(work), env, &["rev-parse", "HEAD"]).unwrap();
    let remote = git_in(
        None,
        &[],
        &[
            "--git-dir",
            bare.to_str().unwrap(),
            "rev-parse",
            "refs/heads/main",
        ],
    )
    .unwrap();
    assert_eq!(local, remote, "{url} received the commit");
    // And a fresh clone fetches it back.
    let again = work.with_extension("again");
    git_in(
        None,
        env,
        &["clone", "-q", "-b", "main", url, again.to_str().unwrap()],
    )
    .unwrap_or_else(|e| panic!("clone {url} again: {e}"));
    assert_eq!(
        fs::read_to_string(again.join("file.txt")).unwrap(),
        url,
        "{url}"
    );
}

/// `ps -eo pid,ppid,pgid,cmd` lines of server programs that mention
/// `needle`, or that belong to one of `pgids`.
fn leftovers(needle: &str, pgids: &BTreeSet<u32>) -> Vec<String> {
    let out = run(Command::new("ps").args(["-eo", "pid,ppid,pgid,stat,cmd"]));
    out.lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let pgid: u32 = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            let zombie = f.get(3).is_some_and(|s| s.starts_with('Z'));
            let server = ["sshd", "nginx", "fcgiwrap", "git-daemon", "git daemon"]
                .iter()
                .any(|p| line.contains(p));
            !zombie && ((server && line.contains(needle)) || pgids.contains(&pgid))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn servers_selftest() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut pgids = BTreeSet::new();

    // git daemon, and an outage.
    {
        let base = root.join("daemon");
        fs::create_dir_all(&base).unwrap();
        bare_repo(&base.join("d.git"));
        let mut daemon = GitDaemon::start(&base);
        pgids.extend(daemon.pgids());
        round_trip(
            &daemon.url("d.git"),
            &[],
            &root.join("work-daemon"),
            &base.join("d.git"),
        );
        daemon.stop();
        assert!(git_in(None, &[], &["ls-remote", &daemon.url("d.git")]).is_err());
        daemon.start_again();
        pgids.extend(daemon.pgids());
        let refs = git_in(None, &[], &["ls-remote", &daemon.url("d.git")]).unwrap();
        assert!(refs.contains("refs/heads/main"), "{refs}");
    }

    // sshd: ssh:// and the scp-like alias; unknown host key and a wrong
    // key refused; an outage.
    {
        let mut ssh = SshServer::start(root);
        pgids.extend(ssh.pgids());
        let repo = root.join("ssh-repos/s.git");
        bare_repo(&repo);
        let cmd = ssh.git_ssh_command();
        let env = [("GIT_SSH_COMMAND", cmd.as_str())];
        let started = Instant::now();
        round_trip(&ssh.url(&repo), &env, &root.join("work-ssh"), &repo);
        eprintln!("ssh round trip: {:?}", started.elapsed());
        let refs = git_in(None, &env, &["ls-remote", &ssh.alias_url(&repo)])
            .unwrap_or_else(|e| panic!("ls-remote over the alias: {e}\n{}", ssh.log()));
        assert!(refs.contains("refs/heads/main"), "{refs}");

        let empty = ssh.empty_known_hosts_command();
        let err = git_in(
            None,
            &[("GIT_SSH_COMMAND", empty.as_str())],
            &["ls-remote", &ssh.url(&repo)],
        )
        .expect_err("an unknown host key is refused");
        assert!(err.contains("Host key verification failed"), "{err}");
        assert_eq!(fs::read_to_string(&ssh.empty_known_hosts).unwrap(), "");

        let wrong = ssh.wrong_key_command();
        for url in [ssh.url(&repo), ssh.alias_url(&repo)] {
            let err = git_in(
                None,
                &[("GIT_SSH_COMMAND", wrong.as_str())],
                &["ls-remote", &url],
            )
            .expect_err("a key the server does not know is refused");
            assert!(err.contains("Permission denied"), "{url}: {err}");
        }

        ssh.stop();
        assert!(git_in(None, &env, &["ls-remote", &ssh.url(&repo)]).is_err());
        ssh.start_again();
        pgids.extend(ssh.pgids());
        git_in(None, &env, &["ls-remote", &ssh.url(&repo)]).unwrap();
    }

    // https: the token, a wrong token, no CA, through a slow proxy; an
    // outage.
    {
        let mut https = HttpsServer::start(root, "ci-bot", "s3cret-Token_1");
        pgids.extend(https.pgids());
        let repo = https.repos.join("h.git");
        bare_repo(&repo);
        let ca = https.ca_file.to_str().unwrap().to_string();
        let env = [("GIT_SSL_CAINFO", ca.as_str())];
        let started = Instant::now();
        round_trip(
            &https.url_with_token("h.git"),
            &env,
            &root.join("work-https"),
            &repo,
        );
        eprintln!("https round trip: {:?}", started.elapsed());

        let wrong = https.url_with_token("h.git").replace("s3cret", "wrong");
        let err = git_in(None, &env, &["ls-remote", &wrong]).expect_err("a wrong token");
        assert!(err.contains("Authentication failed"), "{err}");
        let err =
            git_in(None, &env, &["ls-remote", &https.url("h.git")]).expect_err("no credentials");
        assert!(
            err.contains("Authentication failed") || err.contains("could not read Username"),
            "{err}"
        );
        let err = git_in(
            None,
            &[("GIT_SSL_CAINFO", "/dev/null")],
            &["ls-remote", &https.url_with_token("h.git")],
        )
        .expect_err("an unknown CA");
        assert!(err.contains("SSL") || err.contains("certificate"), "{err}");

        let proxy = DelayProxy::start(https.port, Duration::from_millis(50));
        let via = https
            .url_with_token("h2.git")
            .replace(&format!(":{}/", https.port), &format!(":{}/", proxy.port));
        let repo2 = https.repos.join("h2.git");
        bare_repo(&repo2);
        let started = Instant::now();
        round_trip(&via, &env, &root.join("work-proxy"), &repo2);
        let slow = started.elapsed();
        eprintln!(
            "https round trip through the 50 ms proxy: {slow:?}, {} connections",
            proxy.connections()
        );
        assert!(proxy.connections() >= 1);
        assert!(slow >= Duration::from_millis(200), "{slow:?}");
        drop(proxy);

        https.stop();
        assert!(git_in(None, &env, &["ls-remote", &https.url_with_token("h.git")]).is_err());
        https.start_again();
        pgids.extend(https.pgids());
        git_in(None, &env, &["ls-remote", &https.url_with_token("h.git")]).unwrap();
    }

    let left = leftovers(root.to_str().unwrap(), &pgids);
    assert!(
        left.is_empty(),
        "processes left behind:\n{}",
        left.join("\n")
    );
}

#[test]
fn delay_proxy_forwards_both_ways_and_half_closes() {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                s.write_all(&all).unwrap();
            });
        }
    });
    let proxy = DelayProxy::start(port, Duration::from_millis(50));
    let started = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(proxy.connections(), 1);
}
