//! Diagnostics (`OCUROOT_LOG`) on stderr with every secret masked: a
//! `tracing` event, and a library's log record bridged into it (such as the
//! HTTP client's request line, URL included), may contain a value a package
//! registered with `secret()`.

use std::io::Write;

use ocuroot_core::sdk::Secrets;

/// One event's text, written to stderr with secrets masked when dropped
/// (`tracing` takes a writer for each event and drops it once written).
#[derive(Default)]
pub struct MaskedStderr(Vec<u8>);

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.0);
        let masked = Secrets::process().mask(&text);
        self.0.clear();
        std::io::stderr().write_all(masked.as_bytes())
    }
}

impl Drop for MaskedStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
