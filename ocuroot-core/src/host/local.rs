//! The local host: real processes, files, network and clock.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
#[cfg(not(target_os = "linux"))]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
#[cfg(not(target_os = "linux"))]
use std::sync::mpsc;

use super::{Host, HttpRequest, HttpResponse, LineSink, ShellOutput, ShellRequest, Stream};
use crate::{Error, Result};

/// Runs commands as real processes on this machine.
#[derive(Debug, Default)]
pub struct LocalHost {
    /// Shell names resolved through `PATH`, so each command is one exec
    /// rather than one per `PATH` entry.
    programs: Mutex<HashMap<(String, Option<String>), PathBuf>>,
}

impl LocalHost {
    /// A new local host.
    pub fn new() -> Self {
        LocalHost::default()
    }
}

impl Host for LocalHost {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> Result<ShellOutput> {
        let program = self.program(&req.shell, req.env.get("PATH"));
        let deadline = req.timeout.map(|t| std::time::Instant::now() + t);
        let mut command = Command::new(&program);
        command
            .arg("-c")
            .arg(&req.command)
            .current_dir(&req.dir)
            .envs(&req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so a timeout kills everything it started.
        #[cfg(unix)]
        if deadline.is_some() {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| {
            Error::host(format!(
                "cannot run {:?} with {} in {}: {e}",
                req.command,
                req.shell,
                req.dir.display()
            ))
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::internal("a command's output pipes were not set up"));
        };
        let timed_out = || {
            Error::host(format!(
                "{:?} timed out after {}: it and every process it started were killed",
                req.command,
                humantime::format_duration(req.timeout.unwrap_or_default())
            ))
        };
        let output = ChildOutput {
            stdout,
            stderr,
            deadline,
        };
        match output.read(&mut |stream, line| lines.line(stream, line)) {
            Ok(true) => {}
            Ok(false) => {
                kill_group(&mut child);
                return Err(timed_out());
            }
            Err(e) => {
                kill_group(&mut child);
                return Err(Error::host(format!(
                    "reading the output of {:?}: {e}",
                    req.command
                )));
            }
        }
        let status = match deadline {
            None => child.wait(),
            // The output is closed, but the command may still run.
            Some(deadline) => loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if std::time::Instant::now() >= deadline => {
                        kill_group(&mut child);
                        return Err(timed_out());
                    }
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    Err(e) => break Err(e),
                }
            },
        }
        .map_err(|e| Error::host(format!("waiting for {:?}: {e}", req.command)))?;
        Ok(lines.output(exit_code(status)))
    }
}

/// Kill `child` and, where it has its own process group (a command with a
/// timeout), everything it started; then reap it.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The time left until `deadline` (zero once it has passed).
fn left(deadline: std::time::Instant) -> std::time::Duration {
    deadline.saturating_duration_since(std::time::Instant::now())
}

/// A child's output pipes, and when to stop reading them.
struct ChildOutput {
    stdout: std::process::ChildStdout,
    stderr: std::process::ChildStderr,
    deadline: Option<std::time::Instant>,
}

impl ChildOutput {
    /// Read both pipes to their ends, handing each line (with its newline;
    /// a last line without one too) to `deliver` as it arrives. `Ok(false)`
    /// when the deadline passed first.
    ///
    /// On Linux both pipes are read from this thread, waiting on them with
    /// `poll`: no thread and no hand-over per command. Elsewhere they are
    /// read from two pooled threads.
    fn read(self, deliver: &mut dyn FnMut(Stream, &str)) -> std::io::Result<bool> {
        #[cfg(target_os = "linux")]
        return read_polling(self, deliver);
        #[cfg(not(target_os = "linux"))]
        return read_threaded(self, deliver);
    }
}

#[cfg(target_os = "linux")]
fn read_polling(out: ChildOutput, deliver: &mut dyn FnMut(Stream, &str)) -> std::io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, poll};

    let deadline = out.deadline;
    // Each pipe: its stream, the reader until it closes, a partial line.
    type Pipe = (Stream, Option<Box<dyn ReadFd>>, Vec<u8>);
    let mut pipes: [Pipe; 2] = [
        (Stream::Stdout, Some(Box::new(out.stdout)), Vec::new()),
        (Stream::Stderr, Some(Box::new(out.stderr)), Vec::new()),
    ];
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut ready = [false; 2];
        {
            let mut fds = Vec::with_capacity(2);
            let mut which = Vec::with_capacity(2);
            for (i, (_, pipe, _)) in pipes.iter().enumerate() {
                if let Some(pipe) = pipe {
                    fds.push(PollFd::from_borrowed_fd(pipe.fd(), PollFlags::IN));
                    which.push(i);
                }
            }
            if fds.is_empty() {
                return Ok(true);
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let left = left(d);
                    if left.is_zero() {
                        return Ok(false);
                    }
                    Some(rustix::event::Timespec::try_from(left).unwrap_or(
                        rustix::event::Timespec {
                            tv_sec: i64::MAX,
                            tv_nsec: 0,
                        },
                    ))
                }
            };
            match poll(&mut fds, wait.as_ref()) {
                Ok(0) if deadline.is_some() => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for (fd, i) in fds.iter().zip(which) {
                ready[i] = !fd.revents().is_empty();
            }
        }
        for (i, (stream, pipe, pending)) in pipes.iter_mut().enumerate() {
            let Some(reader) = pipe.as_mut().filter(|_| ready[i]) else {
                continue;
            };
            let n = match reader.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                if !pending.is_empty() {
                    deliver(*stream, &String::from_utf8_lossy(pending));
                    pending.clear();
                }
                *pipe = None;
                continue;
            }
            pending.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(at) = pending[start..].iter().position(|b| *b == b'\n') {
                let end = start + at + 1;
                deliver(*stream, &String::from_utf8_lossy(&pending[start..end]));
                start = end;
            }
            pending.drain(..start);
        }
    }
}

/// A pipe end that can be read and polled.
#[cfg(target_os = "linux")]
trait ReadFd: Read {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

#[cfg(target_os = "linux")]
impl<T: Read + std::os::fd::AsFd> ReadFd for T {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}

#[cfg(not(target_os = "linux"))]
fn read_threaded(out: ChildOutput, deliver: &mut dyn FnMut(Stream, &str)) -> std::io::Result<bool> {
    let deadline = out.deadline;
    let (tx, rx) = mpsc::channel::<(Stream, String)>();
    let pipes: [(Stream, Box<dyn Read + Send>); 2] = [
        (Stream::Stdout, Box::new(out.stdout)),
        (Stream::Stderr, Box::new(out.stderr)),
    ];
    for (stream, pipe) in pipes {
        let tx = tx.clone();
        // Each reader sends its lines, then drops its sender: the loop
        // below ends when both pipes are closed.
        reader_pool::run(Box::new(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx.send((stream, line)).is_err() {
                            break;
                        }
                    }
                }
            }
        }))?;
    }
    drop(tx);
    loop {
        let next = match deadline {
            None => rx.recv().ok(),
            Some(d) => match rx.recv_timeout(left(d)) {
                Ok(item) => Some(item),
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(false),
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        match next {
            Some((stream, line)) => deliver(stream, &line),
            None => return Ok(true),
        }
    }
}

impl LocalHost {
    /// `name` resolved against `PATH` (the request's, else the process's),
    /// remembered; a name with a `/` or one not found is used as is.
    fn program(&self, name: &str, path: Option<&String>) -> PathBuf {
        if name.contains('/') {
            return PathBuf::from(name);
        }
        let key = (name.to_string(), path.cloned());
        let mut cache = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&key) {
            return p.clone();
        }
        let search = path
            .map(std::ffi::OsString::from)
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let found = std::env::split_paths(&search)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p));
        match found {
            Some(p) => {
                cache.insert(key, p.clone());
                p
            }
            None => PathBuf::from(name),
        }
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(unix)]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[cfg(not(unix))]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

pub(super) fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Threads that read child processes' pipes, kept for reuse: for a short
/// command, starting two threads costs about as much as the command.
#[cfg(not(target_os = "linux"))]
mod reader_pool {
    use std::sync::{Mutex, PoisonError, mpsc};

    /// A job: read one pipe to its end.
    pub(super) type Job = Box<dyn FnOnce() + Send>;

    /// Idle threads beyond this many exit.
    const MAX_IDLE: usize = 16;

    /// The idle threads, each waiting on its own channel.
    static IDLE: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

    /// Run `job` on an idle reader thread, or on a new one.
    pub(super) fn run(job: Job) -> std::io::Result<()> {
        let mut job = job;
        loop {
            let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match idle {
                Some(worker) => match worker.send(job) {
                    Ok(()) => return Ok(()),
                    // That thread has exited: try the next.
                    Err(mpsc::SendError(back)) => job = back,
                },
                None => break,
            }
        }
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ocuroot-pipe".into())
            .spawn(move || {
                let mut job = job;
                loop {
                    job();
                    {
                        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
                        if idle.len() >= MAX_IDLE {
                            return;
                        }
                        idle.push(tx.clone());
                    }
                    match rx.recv() {
                        Ok(next) => job = next,
                        Err(_) => return,
                    }
                }
            })
            .map(drop)
    }
}

pub(super) fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

pub(super) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The largest file `read_file` reads (package files, and files read with
/// `host.read_file`): anything bigger is a mistake or an attack, and would be
/// held in memory whole.
pub const MAX_READ_BYTES: u64 = 16 << 20;

/// Read a UTF-8 regular file of at most [`MAX_READ_BYTES`]. A FIFO, device or
/// directory is refused before it is opened (reading a FIFO would wait for a
/// writer forever).
pub(super) fn read_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid_input(format!(
            "cannot read {}: it is not a regular file",
            path.display()
        )));
    }
    let too_large = || {
        Error::invalid_input(format!(
            "cannot read {}: it is larger than {} MiB",
            path.display(),
            MAX_READ_BYTES >> 20
        ))
    };
    if meta.len() > MAX_READ_BYTES {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut text = String::new();
    file.take(MAX_READ_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", path, e))?;
    if text.len() as u64 > MAX_READ_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

pub(super) fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io("write", path, e))
}

pub(super) fn read_dir(path: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io("read directory", path, e))? {
        let entry = entry.map_err(|e| Error::io("read directory", path, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

pub(super) fn is_dir(path: &Path) -> Result<bool> {
    std::fs::metadata(path)
        .map(|m| m.is_dir())
        .map_err(|e| Error::io("stat", path, e))
}

pub(super) fn http(req: &HttpRequest) -> Result<HttpResponse> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let fail = |e: ureq::Error| Error::host(format!("{} {}: {e}", req.method, req.url));
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(req.body.clone())
        .map_err(|e| Error::host(format!("{} {}: {e}", req.method, req.url)))?;
    let mut response = agent.run(request).map_err(fail)?;
    let status = response.status();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in response.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let body = if req.method == "HEAD" {
        String::new()
    } else {
        response.body_mut().read_to_string().map_err(fail)?
    };
    Ok(HttpResponse {
        status_code: status.as_u16(),
        status_text: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string(),
        headers,
        body,
    })
}
