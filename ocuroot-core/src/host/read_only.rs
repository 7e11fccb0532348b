//! A host for evaluating files only to see what they declare.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{Host, HttpRequest, HttpResponse, LineSink, ShellOutput, ShellRequest};
use crate::{Error, Result};

/// Wraps a host so that reads (files, the environment, the clock) go
/// through and commands, writes and requests are not made. Used to evaluate
/// files only to see what they declare.
///
/// Made with [`new`](Self::new), each such call fails, with a message saying
/// when it was refused. Made with [`skipping`](Self::skipping), each
/// succeeds without doing anything (a command prints nothing and exits 0, a
/// request answers 200 with an empty body, a write writes nothing) and is
/// recorded in [`skipped`](Self::skipped), so `release lint` can evaluate
/// a file that runs commands at its top level, and say what it did not run.
pub struct ReadOnlyHost {
    inner: Arc<dyn Host>,
    when: &'static str,
    skipped: Option<Mutex<Vec<String>>>,
}

impl ReadOnlyHost {
    /// `inner`, read-only; refusals say they happened `when` (`"while
    /// looking for environments (release lint)"`).
    pub fn new(inner: Arc<dyn Host>, when: &'static str) -> ReadOnlyHost {
        ReadOnlyHost {
            inner,
            when,
            skipped: None,
        }
    }

    /// `inner`, read-only, skipping (and recording) commands, writes and
    /// requests instead of refusing them.
    pub fn skipping(inner: Arc<dyn Host>) -> ReadOnlyHost {
        ReadOnlyHost {
            inner,
            when: "",
            skipped: Some(Mutex::new(Vec::new())),
        }
    }

    /// The calls skipped so far (`host.shell("make")`, `http GET <url>`,
    /// `host.write_file("out.txt")`), in order, as given: mask secrets
    /// before showing them.
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Refuse `what`, or record it as skipped: `Ok(())` when skipping.
    fn refuse(&self, what: String) -> Result<()> {
        match &self.skipped {
            Some(list) => {
                list.lock().unwrap_or_else(|e| e.into_inner()).push(what);
                Ok(())
            }
            None => Err(Error::host(format!("{what} is not run {}", self.when))),
        }
    }
}

impl Host for ReadOnlyHost {
    fn shell(&self, req: &ShellRequest, _lines: &LineSink<'_>) -> Result<ShellOutput> {
        self.refuse(format!("host.shell({:?})", req.command))?;
        Ok(ShellOutput::default())
    }
    fn env(&self) -> BTreeMap<String, String> {
        self.inner.env()
    }
    fn os(&self) -> String {
        self.inner.os()
    }
    fn arch(&self) -> String {
        self.inner.arch()
    }
    fn read_file(&self, path: &Path) -> Result<String> {
        self.inner.read_file(path)
    }
    fn write_file(&self, path: &Path, _contents: &str) -> Result<()> {
        self.refuse(format!("host.write_file({:?})", path.display().to_string()))
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<String>> {
        self.inner.read_dir(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.inner.is_dir(path)
    }
    fn http(&self, req: &HttpRequest) -> Result<HttpResponse> {
        self.refuse(format!("http {} {}", req.method, req.url))?;
        Ok(HttpResponse {
            status_code: 200,
            status_text: "OK".into(),
            headers: BTreeMap::new(),
            body: String::new(),
        })
    }
    fn now(&self) -> SystemTime {
        self.inner.now()
    }
}
