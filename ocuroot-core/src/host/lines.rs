//! [`LineSink`]: where a [`Host`](super::Host) puts a command's output as it
//! arrives.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{ShellOutput, Stream};

/// Receives a command's output, line by line, from any thread: what
/// [`Host::shell`](super::Host::shell) is given.
///
/// Each line goes to the engine at once (the run's log, and live to the
/// workspace's event sink) and is collected into a [`ShellOutput`], which
/// [`output`](LineSink::output) hands back at the end. The sink is `Sync`, so
/// a host may read standard output and standard error on two threads and
/// give both the same `&LineSink`; lines are taken one at a time, and
/// `combined_output` has them in the order they were given.
///
/// ```
/// use std::process::{Command, Stdio};
///
/// use ocuroot_core::host::{LineSink, Stream};
///
/// let mut log = Vec::new();
/// let lines = LineSink::new(|stream, line: &str| log.push((stream, line.to_string())));
/// let mut child = Command::new("sh")
///     .args(["-c", "echo out; echo err >&2"])
///     .stdout(Stdio::piped())
///     .stderr(Stdio::piped())
///     .spawn()?;
/// let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
/// // Both pipes at once, so neither fills up while the other is read.
/// std::thread::scope(|s| {
///     let err = s.spawn(|| lines.read(Stream::Stderr, stderr));
///     lines.read(Stream::Stdout, stdout)?;
///     err.join().expect("the stderr reader panicked")
/// })?;
/// let out = lines.output(child.wait()?.code().unwrap_or(-1));
/// assert_eq!((out.exit_code, out.stdout.as_str(), out.stderr.as_str()), (0, "out\n", "err\n"));
/// drop(lines);
/// assert!(log.contains(&(Stream::Stdout, "out".to_string())));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct LineSink<'a> {
    state: Mutex<State<'a>>,
}

/// The engine's callback for each line.
type OnLine<'a> = Box<dyn FnMut(Stream, &str) + Send + 'a>;

struct State<'a> {
    on_line: OnLine<'a>,
    output: ShellOutput,
}

impl<'a> LineSink<'a> {
    /// A sink calling `on_line` with each line, without its line terminator.
    /// `on_line` is called on whichever thread gives the line, one line at a
    /// time.
    pub fn new(on_line: impl FnMut(Stream, &str) + Send + 'a) -> LineSink<'a> {
        LineSink {
            state: Mutex::new(State {
                on_line: Box::new(on_line),
                output: ShellOutput::default(),
            }),
        }
    }

    /// One line of `stream`, as read: with its `\n` (or `\r\n`), except
    /// perhaps the last. `on_line` gets it without the terminator; the
    /// collected output keeps it as given.
    pub fn line(&self, stream: Stream, line: &str) {
        let mut state = self.lock();
        let text = line.strip_suffix('\n').unwrap_or(line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        (state.on_line)(stream, text);
        let out = &mut state.output;
        match stream {
            Stream::Stdout => out.stdout.push_str(line),
            Stream::Stderr => out.stderr.push_str(line),
        }
        out.combined_output.push_str(line);
    }

    /// Read `from` to its end, giving each line to [`line`](LineSink::line)
    /// as it arrives (invalid UTF-8 is replaced).
    pub fn read(&self, stream: Stream, from: impl Read) -> std::io::Result<()> {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf)? > 0 {
            self.line(stream, &String::from_utf8_lossy(&buf));
            buf.clear();
        }
        Ok(())
    }

    /// What was collected so far, with `exit_code`: what `Host::shell`
    /// returns. The sink is left empty.
    pub fn output(&self, exit_code: i32) -> ShellOutput {
        ShellOutput {
            exit_code,
            ..std::mem::take(&mut self.lock().output)
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<'a>> {
        // A panic in `on_line` leaves nothing half-updated that matters.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for LineSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineSink")
            .field("output", &self.lock().output)
            .finish_non_exhaustive()
    }
}
