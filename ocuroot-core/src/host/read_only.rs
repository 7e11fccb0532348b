//! A host for evaluating files only to see what they declare.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Host, HttpRequest, HttpResponse, ShellOutput, ShellRequest, Stream};
use crate::{Error, Result};

/// Wraps a host so that reads (files, the environment, the clock) go
/// through and commands, writes and requests are refused, with a message
/// saying when they were refused. Used to evaluate files only to see what
/// they declare.
pub struct ReadOnlyHost {
    inner: Arc<dyn Host>,
    when: &'static str,
}

impl ReadOnlyHost {
    /// `inner`, read-only; refusals say they happened `when` (`"while
    /// looking for environments (release lint)"`).
    pub fn new(inner: Arc<dyn Host>, when: &'static str) -> ReadOnlyHost {
        ReadOnlyHost { inner, when }
    }

    fn refuse(&self, what: &str) -> Error {
        Error::host(format!("{what} is not run {}", self.when))
    }
}

impl Host for ReadOnlyHost {
    fn shell(
        &self,
        _req: &ShellRequest,
        _on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ShellOutput> {
        Err(self.refuse("host.shell"))
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
    fn write_file(&self, _path: &Path, _contents: &str) -> Result<()> {
        Err(self.refuse("host.write_file"))
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<String>> {
        self.inner.read_dir(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.inner.is_dir(path)
    }
    fn http(&self, _req: &HttpRequest) -> Result<HttpResponse> {
        Err(self.refuse("http"))
    }
    fn now(&self) -> SystemTime {
        self.inner.now()
    }
}
