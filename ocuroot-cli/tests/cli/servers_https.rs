//! nginx + fcgiwrap + `git http-backend` over TLS on 127.0.0.1 for the
//! tests, with a private CA and basic authentication: see `servers.rs`.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{ProcGroup, READY_TIMEOUT, free_port, is_root, log_tail, plain, run, write_file};

/// nginx (TLS, basic authentication) in front of fcgiwrap and
/// `git http-backend`, serving the bare repositories under
/// [`HttpsServer::repos`] at `https://127.0.0.1:<port>/<name>`.
pub(crate) struct HttpsServer {
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) token: String,
    /// The PEM of the private CA that signed the server's certificate
    /// (`GIT_SSL_CAINFO`, `SSL_CERT_FILE`).
    pub(crate) ca_file: PathBuf,
    /// Where the served bare repositories go (see [`bare_repo`]).
    pub(crate) repos: PathBuf,
    /// The directory of its other files.
    pub(crate) dir: PathBuf,
    nginx_conf: PathBuf,
    socket: PathBuf,
    nginx_log: PathBuf,
    fcgi_log: PathBuf,
    nginx: Option<ProcGroup>,
    fcgiwrap: Option<ProcGroup>,
}

impl HttpsServer {
    /// Its repositories go to `<dir>/repos`, its other files to
    /// `<dir>/https` (both created). `user` and `token` are used in URLs
    /// as they are: keep them URL-safe.
    pub(crate) fn start(dir: &Path, user: &str, token: &str) -> HttpsServer {
        assert!(
            !user.is_empty() && !user.contains([':', '@', '/', '\n']),
            "a plain user name: {user:?}"
        );
        let repos = dir.join("repos");
        let sdir = dir.join("https");
        fs::create_dir_all(&repos).unwrap();
        fs::create_dir_all(sdir.join("tmp")).unwrap();
        let s = plain(&sdir);
        let port = free_port();

        // A private CA and a certificate for 127.0.0.1 signed by it.
        let ca_key = sdir.join("ca.key");
        let ca_file = sdir.join("ca.pem");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        run(Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "30", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=ocuroot test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_file));
        let key = sdir.join("server.key");
        let csr = sdir.join("server.csr");
        let cert = sdir.join("server.pem");
        run(Command::new("openssl")
            .args(["req", "-new", "-nodes", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let ext = sdir.join("server.ext");
        write_file(
            &ext,
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1\n",
            0o644,
        );
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-sha256", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_file)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-CAserial")
            .arg(sdir.join("ca.srl"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));

        // The one user, with `token` as the password.
        let hash = run(Command::new("openssl").args(["passwd", "-apr1", token]));
        let htpasswd = sdir.join("htpasswd");
        write_file(&htpasswd, &format!("{user}:{}\n", hash.trim()), 0o644);

        let exec_path = run(Command::new("git").arg("--exec-path"));
        let backend = Path::new(exec_path.trim()).join("git-http-backend");
        assert!(backend.exists(), "no {}", backend.display());
        let socket = sdir.join("fcgiwrap.sock");
        let user_line = if is_root() {
            // Workers would run as `nobody`, which may not use fcgiwrap's
            // socket (fcgiwrap runs as the current user).
            "user root;"
        } else {
            ""
        };
        let nginx_conf = sdir.join("nginx.conf");
        write_file(
            &nginx_conf,
            &format!(
                "daemon off;\n\
                 master_process on;\n\
                 worker_processes 2;\n\
                 {user_line}\n\
                 pid {s}/nginx.pid;\n\
                 lock_file {s}/nginx.lock;\n\
                 error_log {s}/error.log notice;\n\
                 events {{ worker_connections 512; }}\n\
                 http {{\n\
                 \x20 access_log {s}/access.log;\n\
                 \x20 client_body_temp_path {s}/tmp/body;\n\
                 \x20 fastcgi_temp_path {s}/tmp/fastcgi;\n\
                 \x20 proxy_temp_path {s}/tmp/proxy;\n\
                 \x20 scgi_temp_path {s}/tmp/scgi;\n\
                 \x20 uwsgi_temp_path {s}/tmp/uwsgi;\n\
                 \x20 client_max_body_size 0;\n\
                 \x20 server {{\n\
                 \x20   listen 127.0.0.1:{port} ssl;\n\
                 \x20   server_name 127.0.0.1;\n\
                 \x20   ssl_certificate {cert};\n\
                 \x20   ssl_certificate_key {key};\n\
                 \x20   location / {{\n\
                 \x20     auth_basic \"ocuroot test\";\n\
                 \x20     auth_basic_user_file {htpasswd};\n\
                 \x20     fastcgi_pass unix:{socket};\n\
                 \x20     fastcgi_buffering off;\n\
                 \x20     fastcgi_request_buffering off;\n\
                 \x20     fastcgi_read_timeout 300s;\n\
                 \x20     fastcgi_param SCRIPT_FILENAME {backend};\n\
                 \x20     fastcgi_param GIT_PROJECT_ROOT {repos};\n\
                 \x20     fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
                 \x20     fastcgi_param PATH_INFO $uri;\n\
                 \x20     fastcgi_param REMOTE_USER $remote_user;\n\
                 \x20     fastcgi_param REMOTE_ADDR $remote_addr;\n\
                 \x20     fastcgi_param QUERY_STRING $query_string;\n\
                 \x20     fastcgi_param REQUEST_METHOD $request_method;\n\
                 \x20     fastcgi_param CONTENT_TYPE $content_type;\n\
                 \x20     fastcgi_param CONTENT_LENGTH $content_length;\n\
                 \x20     fastcgi_param REQUEST_URI $request_uri;\n\
                 \x20     fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
                 \x20     fastcgi_param SERVER_NAME $server_name;\n\
                 \x20     fastcgi_param SERVER_PORT $server_port;\n\
                 \x20     fastcgi_param HTTPS on;\n\
                 \x20     fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
                 \x20   }}\n\
                 \x20 }}\n\
                 }}\n",
                cert = plain(&cert),
                key = plain(&key),
                htpasswd = plain(&htpasswd),
                socket = plain(&socket),
                backend = plain(&backend),
                repos = plain(&repos),
            ),
            0o644,
        );

        let mut server = HttpsServer {
            port,
            user: user.to_string(),
            token: token.to_string(),
            ca_file,
            repos,
            nginx_log: sdir.join("nginx.out"),
            fcgi_log: sdir.join("fcgiwrap.log"),
            dir: sdir,
            nginx_conf,
            socket,
            nginx: None,
            fcgiwrap: None,
        };
        server.start_again();
        server
    }

    /// `https://127.0.0.1:<port>/<repo>`, without credentials.
    pub(crate) fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{repo}", self.port)
    }

    /// `https://<user>:<token>@127.0.0.1:<port>/<repo>`.
    pub(crate) fn url_with_token(&self, repo: &str) -> String {
        format!(
            "https://{}:{}@127.0.0.1:{}/{repo}",
            self.user, self.token, self.port
        )
    }

    /// nginx's error log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Process groups of the running server (for leak checks).
    pub(crate) fn pgids(&self) -> Vec<u32> {
        self.nginx
            .iter()
            .chain(self.fcgiwrap.iter())
            .map(ProcGroup::pgid)
            .collect()
    }

    /// Kills nginx and fcgiwrap (with its CGI processes); the port is
    /// closed.
    pub(crate) fn stop(&mut self) {
        self.nginx = None;
        self.fcgiwrap = None;
    }

    /// Starts the server again on the same port.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        // A socket left by a killed fcgiwrap would stop the new one binding.
        let _ = fs::remove_file(&self.socket);
        let mut fcgi = ProcGroup::spawn(
            "fcgiwrap",
            Command::new("/usr/sbin/fcgiwrap")
                .args(["-c", "4", "-s"])
                .arg(format!("unix:{}", plain(&self.socket))),
            &self.fcgi_log,
        );
        let socket = self.socket.clone();
        fcgi.wait_until(|| std::os::unix::net::UnixStream::connect(&socket).is_ok());
        self.fcgiwrap = Some(fcgi);
        let mut nginx = ProcGroup::spawn(
            "nginx",
            Command::new("/usr/sbin/nginx")
                .arg("-p")
                .arg(&self.dir)
                .arg("-c")
                .arg(&self.nginx_conf)
                .arg("-e")
                .arg(self.dir.join("error.log")),
            &self.nginx_log,
        );
        let error_log = self.dir.join("error.log");
        let port = self.port;
        let ready = || TcpStream::connect(("127.0.0.1", port)).is_ok();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                nginx.done = true;
                panic!(
                    "nginx exited ({status}) before it was ready\n{}\n{}",
                    log_tail(&self.nginx_log),
                    log_tail(&error_log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx not ready after {READY_TIMEOUT:?}\n{}\n{}",
                log_tail(&self.nginx_log),
                log_tail(&error_log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.nginx = Some(nginx);
    }
}
