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
    /// `release new` at a commit that has a release of the package already
    /// (the caller may force another).
    AlreadyReleased,
    /// `release retry` found no failed work (none failed, or another agent
    /// retried it first).
    NothingToRetry,
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
            ErrorKind::AlreadyReleased => "already_released",
            ErrorKind::NothingToRetry => "nothing_to_retry",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The error type of `ocuroot-core`.
///
/// `Display` prints `file:line:col: message` where the error has a location
/// its message does not already name (Starlark renders evaluation errors
/// with their place and traceback already), else the message.
/// [`Error::message`] is the message alone; the ref an error concerns is
/// [`Error::reference`].
///
/// It is one pointer wide (its parts are boxed), so `Result`s stay small.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<Inner>);

#[derive(Debug, thiserror::Error)]
#[error("{}", Shown(.location.as_ref(), .message))]
struct Inner {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    reference: Option<String>,
    summary: Option<String>,
    stack: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            location: None,
            reference: None,
            summary: None,
            stack: None,
            source: None,
        }))
    }

    /// Record the ref the error concerns (a document, a release, a run).
    /// The message is unchanged: it names the ref itself where it matters.
    pub fn with_ref(mut self, r: impl fmt::Display) -> Self {
        self.0.reference = Some(r.to_string());
        self
    }

    /// Attach a source location (file:line:col).
    pub fn with_location(mut self, location: Location) -> Self {
        self.0.location = Some(location);
        self
    }

    /// Attach `location` if there is one and the error has none yet.
    pub fn with_location_opt(self, location: Option<Location>) -> Self {
        match location {
            Some(l) if self.0.location.is_none() => self.with_location(l),
            _ => self,
        }
    }

    /// Attach the one-line summary of a message that is longer (Starlark's
    /// rendering of an evaluation error: traceback and source snippet).
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.0.summary = Some(summary.into());
        self
    }

    /// Attach a Starlark call stack (already formatted, one frame per line).
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        let s = stack.into();
        self.0.stack = if s.is_empty() { None } else { Some(s) };
        self
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// The same error with `f` applied to every text it carries: the
    /// message, the stack and each cause in its source chain (which is kept,
    /// as plain messages). Used to mask secrets out of an error.
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        let this = *self.0;
        let mut causes = Vec::new();
        let mut next = this
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(cause) = next {
            causes.push(f(&cause.to_string()));
            next = cause.source();
        }
        let source = causes.into_iter().rev().fold(None, |inner, message| {
            Some(Box::new(Cause {
                message,
                source: inner,
            }))
        });
        Error(Box::new(Inner {
            kind: this.kind,
            message: f(&this.message),
            location: this.location,
            reference: this.reference.as_deref().map(&f),
            summary: this.summary.as_deref().map(&f),
            stack: this.stack.as_deref().map(&f),
            source: source.map(|c| c as Box<dyn std::error::Error + Send + Sync>),
        }))
    }

    /// Prefix the message with context, keeping kind, location and source.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.0.message = format!("{context}: {}", self.0.message);
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
        self.0.kind
    }
    /// The message, without location or stack.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// Where in a source file the error happened, if known.
    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }
    /// What went wrong in one line (`./deploy.sh prod: exit status 1`): the summary
    /// Starlark errors carry, else the message's first line.
    pub fn summary(&self) -> &str {
        match &self.0.summary {
            Some(s) => s,
            None => self.0.message.lines().next().unwrap_or_default(),
        }
    }

    /// The ref the error concerns, if it concerns one.
    pub fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    /// The Starlark call stack, if the error came from evaluation.
    pub fn stack(&self) -> Option<&str> {
        self.0.stack.as_deref()
    }
    /// True for optimistic-concurrency failures; the caller may retry.
    pub fn is_conflict(&self) -> bool {
        self.0.kind == ErrorKind::Conflict
    }
    /// True when something asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.0.kind == ErrorKind::NotFound
    }
}

/// How an error displays: its location first, where the message does not
/// already name it.
struct Shown<'a>(Option<&'a Location>, &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) if !self.1.contains(&format!("{}:{}", l.file, l.line)) => {
                write!(f, "{l}: {}", self.1)
            }
            _ => f.write_str(self.1),
        }
    }
}

/// A cause in a rewritten source chain ([`Error::map_text`]).
#[derive(Debug)]
struct Cause {
    message: String,
    source: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, format!("invalid JSON: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32) -> Location {
        Location {
            file: "repo.ocu.star".into(),
            line,
            column: 1,
        }
    }

    #[test]
    fn display_puts_the_location_first_unless_the_message_names_it() {
        let e = Error::config("bad alias").with_location(at(3));
        assert_eq!(e.to_string(), "repo.ocu.star:3:1: bad alias");
        assert_eq!(e.message(), "bad alias");
        let rendered =
            Error::new(ErrorKind::Eval, "error: boom\n --> repo.ocu.star:3:1").with_location(at(3));
        assert_eq!(rendered.to_string(), rendered.message());
        assert_eq!(Error::store("x").to_string(), "x");
    }

    #[test]
    fn an_error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn an_error_carries_the_ref_it_concerns() {
        let e = Error::store("corrupt").with_ref("repo/-/a.ocu.star/@r1");
        assert_eq!(e.reference(), Some("repo/-/a.ocu.star/@r1"));
        assert_eq!(
            e.context("reading").reference(),
            Some("repo/-/a.ocu.star/@r1")
        );
    }

    #[test]
    fn map_text_rewrites_every_text_and_keeps_the_source_chain() {
        let io = std::io::Error::other("token hunter2 refused");
        let e = Error::host("calling with hunter2")
            .with_location(at(2))
            .with_stack("at f(hunter2)")
            .with_ref("@/custom/hunter2")
            .with_source(Error::io("open", std::path::Path::new("/x"), io));
        let masked = e.map_text(|t| t.replace("hunter2", "***"));
        assert_eq!(masked.message(), "calling with ***");
        assert_eq!(masked.stack(), Some("at f(***)"));
        assert_eq!(masked.reference(), Some("@/custom/***"));
        assert_eq!(masked.location(), Some(&at(2)));
        let mut chain = Vec::new();
        let mut next = std::error::Error::source(&masked);
        while let Some(cause) = next {
            chain.push(cause.to_string());
            next = cause.source();
        }
        assert_eq!(chain, ["open /x: token *** refused", "token *** refused"]);
    }
}
