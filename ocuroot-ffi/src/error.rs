//! Result codes, the error object and the panic boundary every exported
//! function runs in.

use std::any::Any;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use ocuroot_core::{Error, ErrorKind};

/// What a call did: `OCUROOT_RESULT_OK`, or why it failed. The numbers are
/// fixed and never reused: 1xx are bad arguments, 2xx the engine's error
/// kinds, 9xx internal failures.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum ocuroot_result {
    /// Success.
    Ok = 0,
    /// A pointer argument that may not be NULL was NULL.
    NullArgument = 100,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 101,
    /// An argument was out of range or used the wrong way (a parallelism of
    /// 0, an unknown stream, a reply setter of another kind of request).
    InvalidArgument = 102,
    /// A ref or glob could not be parsed.
    InvalidRef = 200,
    /// A release, document or file that was asked for does not exist.
    NotFound = 201,
    /// Someone else wrote first (optimistic concurrency). Also what a store
    /// commit callback returns when an expectation does not hold.
    Conflict = 202,
    /// A Starlark file failed to parse or evaluate; the error has the
    /// location and stack.
    Eval = 203,
    /// A file evaluated, but what it declares is not valid.
    Validation = 204,
    /// A value given by the caller (JSON, a release ref) is invalid.
    InvalidInput = 205,
    /// Reading or writing the filesystem failed.
    Io = 206,
    /// A git operation failed (no repository, no commit...).
    Git = 207,
    /// The state store is unusable, or a store callback failed.
    Store = 208,
    /// The host (a shell callback, HTTP) failed.
    Host = 209,
    /// The repository configuration is missing or wrong.
    Config = 210,
    /// `ocuroot_release_new` at a commit that has a release of the package
    /// already (pass `force` to make another).
    AlreadyReleased = 211,
    /// `ocuroot_release_retry` found no failed work (none failed, or
    /// another agent retried it first), or `ocuroot_release_takeover` no
    /// running run.
    NothingToRetry = 212,
    /// A bug in the library: an invariant did not hold.
    Internal = 900,
    /// The library panicked; the call did nothing more.
    Panic = 901,
}

impl ocuroot_result {
    /// The code of an engine error kind.
    fn of_kind(kind: ErrorKind) -> ocuroot_result {
        match kind {
            ErrorKind::InvalidRef => ocuroot_result::InvalidRef,
            ErrorKind::NotFound => ocuroot_result::NotFound,
            ErrorKind::Conflict => ocuroot_result::Conflict,
            ErrorKind::Eval => ocuroot_result::Eval,
            ErrorKind::Validation => ocuroot_result::Validation,
            ErrorKind::InvalidInput => ocuroot_result::InvalidInput,
            ErrorKind::Io => ocuroot_result::Io,
            ErrorKind::Git => ocuroot_result::Git,
            ErrorKind::Store => ocuroot_result::Store,
            ErrorKind::Host => ocuroot_result::Host,
            ErrorKind::Config => ocuroot_result::Config,
            ErrorKind::AlreadyReleased => ocuroot_result::AlreadyReleased,
            ErrorKind::NothingToRetry => ocuroot_result::NothingToRetry,
            _ => ocuroot_result::Internal,
        }
    }
}

/// Why a call failed, before it becomes an [`ocuroot_error`].
#[derive(Debug)]
pub(crate) struct Failure {
    code: ocuroot_result,
    kind: String,
    message: String,
    location: Option<ocuroot_core::Location>,
    stack: Option<String>,
}

impl Failure {
    fn plain(code: ocuroot_result, kind: &str, message: String) -> Failure {
        Failure {
            code,
            kind: kind.to_string(),
            message,
            location: None,
            stack: None,
        }
    }

    /// A NULL argument.
    pub(crate) fn null(name: &str) -> Failure {
        Failure::plain(
            ocuroot_result::NullArgument,
            "null_argument",
            format!("{name} is NULL"),
        )
    }

    /// A string argument that is not UTF-8.
    pub(crate) fn utf8(name: &str, e: std::str::Utf8Error) -> Failure {
        Failure::plain(
            ocuroot_result::InvalidUtf8,
            "invalid_utf8",
            format!("{name} is not valid UTF-8: {e}"),
        )
    }

    /// An argument out of range.
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::plain(
            ocuroot_result::InvalidArgument,
            "invalid_argument",
            message.into(),
        )
    }

    fn panic(payload: Box<dyn Any + Send>) -> Failure {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Failure::plain(
            ocuroot_result::Panic,
            "panic",
            format!("the Ocuroot library panicked (a bug): {what}"),
        )
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: ocuroot_result::of_kind(e.kind()),
            kind: e.kind().as_str().to_string(),
            message: e.to_string(),
            location: e.location().cloned(),
            stack: e.stack().map(str::to_string),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::from(Error::from(e))
    }
}

/// A failed call: its code, kind, message and, for evaluation errors, where
/// in which file and the Starlark stack. Free with `ocuroot_error_free`.
#[allow(non_camel_case_types)]
pub struct ocuroot_error {
    code: ocuroot_result,
    kind: CString,
    message: CString,
    file: Option<CString>,
    line: u32,
    column: u32,
    stack: Option<CString>,
}

/// `s` as a C string; a NUL inside (which C cannot show) becomes U+FFFD.
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

impl From<Failure> for ocuroot_error {
    fn from(f: Failure) -> ocuroot_error {
        let (file, line, column) = match f.location {
            Some(l) => (Some(c_string(&l.file)), l.line, l.column),
            None => (None, 0, 0),
        };
        ocuroot_error {
            code: f.code,
            kind: c_string(&f.kind),
            message: c_string(&f.message),
            file,
            line,
            column,
            stack: f.stack.as_deref().map(c_string),
        }
    }
}

/// Run the body of an exported function: a panic becomes
/// `OCUROOT_RESULT_PANIC`, a failure its code, and either is written to
/// `*error` when `error` is not NULL.
pub(crate) fn boundary(
    error: *mut *mut ocuroot_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> ocuroot_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return ocuroot_result::Ok,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::panic(payload),
    };
    let code = failure.code;
    if !error.is_null() {
        let object = Box::into_raw(Box::new(ocuroot_error::from(failure)));
        // SAFETY: the caller passes NULL or a pointer it lets us write.
        unsafe { *error = object };
    }
    code
}

/// Run the body of an exported function that cannot report an error (a
/// getter, a `_free`): a panic gives `fallback`.
pub(crate) fn quiet<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The result code of an error. `OCUROOT_RESULT_INVALID_ARGUMENT` for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_code(error: *const ocuroot_error) -> ocuroot_result {
    // SAFETY: NULL or an error this library made.
    match unsafe { error.as_ref() } {
        Some(e) => e.code,
        None => ocuroot_result::InvalidArgument,
    }
}

/// The error kind as a short lowercase name (`eval`, `conflict`,
/// `null_argument`...), owned by the error. NULL for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_kind(error: *const ocuroot_error) -> *const c_char {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }.map_or(ptr::null(), |e| e.kind.as_ptr())
}

/// The message, owned by the error: what went wrong and where. For an
/// evaluation error it is the full diagnostic, with `file:line:col` and the
/// Starlark stack. NULL for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_message(error: *const ocuroot_error) -> *const c_char {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }.map_or(ptr::null(), |e| e.message.as_ptr())
}

/// The file the error is about (relative to the repository root), owned by
/// the error; NULL when it has no location.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_file(error: *const ocuroot_error) -> *const c_char {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }
        .and_then(|e| e.file.as_ref())
        .map_or(ptr::null(), |f| f.as_ptr())
}

/// The line of the error's location, from 1; 0 when it has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_line(error: *const ocuroot_error) -> u32 {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }.map_or(0, |e| e.line)
}

/// The column of the error's location, from 1; 0 when it has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_column(error: *const ocuroot_error) -> u32 {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }.map_or(0, |e| e.column)
}

/// The Starlark call stack of an evaluation error, one frame per line,
/// owned by the error; NULL when there is none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_stack(error: *const ocuroot_error) -> *const c_char {
    // SAFETY: NULL or an error this library made.
    unsafe { error.as_ref() }
        .and_then(|e| e.stack.as_ref())
        .map_or(ptr::null(), |s| s.as_ptr())
}

/// Free an error. NULL does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_error_free(error: *mut ocuroot_error) {
    if !error.is_null() {
        // SAFETY: an error this library made, freed once.
        quiet((), || drop(unsafe { Box::from_raw(error) }));
    }
}

/// Read a string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: as the caller promised.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| Failure::utf8(name, e))
}

/// Borrow a handle argument.
///
/// # Safety
/// `p` is NULL or points to a live `T` that outlives `'a`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: as the caller promised.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Borrow a handle argument mutably.
///
/// # Safety
/// `p` is NULL or points to a live `T`, not aliased, that outlives `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: as the caller promised.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(name))
}

/// Check an out-parameter.
pub(crate) fn arg_out<T>(p: *mut T, name: &str) -> Result<*mut T, Failure> {
    if p.is_null() {
        Err(Failure::null(name))
    } else {
        Ok(p)
    }
}
