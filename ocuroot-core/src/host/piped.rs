//! A program this process converses with through its standard input and
//! output: the git store's ssh transport runs the user's `ssh` this way.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A running program with piped standard input and output; what it writes
/// to standard error is kept (the first 64 KiB) for messages. Dropping it
/// closes its input, gives it two seconds to exit, then kills it.
pub(crate) struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Piped {
    /// Start `program` with `args`; with `shell`, `program` is a shell
    /// command run as `sh -c '<program> "$@"'` (as git runs
    /// `GIT_SSH_COMMAND`).
    pub(crate) fn spawn(program: &str, shell: bool, args: &[String]) -> std::io::Result<Piped> {
        let mut command = if shell {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{program} \"$@\"")).arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("the program's pipes were not opened"));
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let stderr = stderr.clone();
            // Not joined: a process the program leaves behind (an ssh
            // connection master) may hold the pipe open.
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut all = stderr.lock().unwrap_or_else(PoisonError::into_inner);
                    if all.len() < 64 * 1024 {
                        all.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        Ok(Piped {
            child,
            stdin: Some(stdin),
            stdout,
            stderr,
        })
    }

    /// How the program ended (waiting up to `wait` for it), and what it
    /// wrote to standard error.
    pub(crate) fn ended(&mut self, wait: Duration) -> (Option<ExitStatus>, String) {
        let deadline = Instant::now() + wait;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break None,
            }
        };
        // Give the reader a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let said = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        (status, String::from_utf8_lossy(&said).into_owned())
    }
}

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stdout.read(buf)
    }
}

impl Write for Piped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write(buf),
            None => Err(std::io::Error::other("the program's input is closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
