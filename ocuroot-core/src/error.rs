//! The crate's single error type.
//!
//! Every error a user can cause says what was wrong and where: a file position
//! for evaluation errors, the ref for state errors. [`ErrorKind`] is a small,
//! stable classification used by the bindings (C result codes, the Python
//! exception tree) and by callers that need to branch, for example on
//! [`Error::is_conflict`].

use std::fmt;

/// A position in a source file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// Path of the file as shown to the user (relative to the repository root when possible).
    pub file: String,
    /// Line, starting at 1.
    pub line: u32,
    /// Column, starting at 1.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What kind of failure an [`Error`] is. The bindings map each kind to
/// something stable: a fixed `OCUROOT_RESULT_*` code in the C ABI, an
/// `OcurootError` subclass in Python, and [`ErrorKind::as_str`] in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A ref or glob could not be parsed, or names something outside a store.
    InvalidRef,
    /// A document, release or file that was asked for does not exist.
    NotFound,
    /// An optimistic-concurrency check failed: someone else wrote first.
    Conflict,
    /// A Starlark file failed to parse or evaluate.
    Eval,
    /// A file evaluated but what it declares is not valid (duplicate names,
    /// inputs that do not match parameters, bad environment names...).
    Validation,
    /// A value given by the user (CLI argument, JSON, intent document) is invalid.
    InvalidInput,
    /// Reading or writing the filesystem failed.
    Io,
    /// A git operation failed.
    Git,
    /// The state store is unusable (corrupt document, incompatible format).
    Store,
    /// The host (shell runner, HTTP, callback) reported a failure.
    Host,
    /// The repository configuration is missing or wrong.
    Config,
    /// A bug: an invariant did not hold.
    Internal,
}

impl ErrorKind {
    /// A short lowercase name, used in JSON and log output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRef => "invalid_ref",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Eval => "eval",
            ErrorKind::Validation => "validation",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Io => "io",
            ErrorKind::Git => "git",
            ErrorKind::Store => "store",
            ErrorKind::Host => "host",
            ErrorKind::Config => "config",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The error type of `ocuroot-core`.
///
/// `Display` prints the full message, including the source location and the
/// Starlark call stack where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    stack: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            location: None,
            stack: None,
            source: None,
        }
    }

    /// Attach a source location (file:line:col).
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Attach `location` if there is one and the error has none yet.
    pub fn with_location_opt(self, location: Option<Location>) -> Self {
        match location {
            Some(l) if self.location.is_none() => self.with_location(l),
            _ => self,
        }
    }

    /// Attach a Starlark call stack (already formatted, one frame per line).
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        let s = stack.into();
        self.stack = if s.is_empty() { None } else { Some(s) };
        self
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Prefix the message with context, keeping kind, location and source.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Shorthand for [`ErrorKind::InvalidRef`].
    pub fn invalid_ref(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRef, message)
    }
    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Shorthand for [`ErrorKind::Validation`].
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Shorthand for [`ErrorKind::Store`].
    pub fn store(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Store, message)
    }
    /// Shorthand for [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// Shorthand for [`ErrorKind::Host`].
    pub fn host(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Host, message)
    }
    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// An I/O error on `path`, naming the operation that failed.
    pub fn io(op: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        let kind = if source.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self::new(kind, format!("{op} {}: {source}", path.display())).with_source(source)
    }

    /// A git error, with what was being done.
    pub fn git(op: &str, source: git2::Error) -> Self {
        Self::new(ErrorKind::Git, format!("{op}: {}", source.message())).with_source(source)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, without location or stack.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Where in a source file the error happened, if known.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
    /// The Starlark call stack, if the error came from evaluation.
    pub fn stack(&self) -> Option<&str> {
        self.stack.as_deref()
    }
    /// True for optimistic-concurrency failures; the caller may retry.
    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }
    /// True when something asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, format!("invalid JSON: {e}")).with_source(e)
    }
}
