//! C callbacks as the core's seams: a shell callback is a [`Host`], three
//! store callbacks are a [`Store`], an event callback is an event sink.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::model::{Event, EventSink};
use ocuroot_core::store::{Entry, Expect, Op, Store, Version, validate_key, validate_prefix};
use ocuroot_core::{Error, Result};

use crate::error::{Failure, arg_mut, arg_str, boundary, c_string, ocuroot_error, ocuroot_result};

/// Called once with the callback's `userdata` when the library no longer
/// needs it.
#[allow(non_camel_case_types)]
pub type ocuroot_finalize_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// `userdata` and its finalizer, run when the last reference goes.
struct Userdata {
    ptr: *mut c_void,
    finalize: ocuroot_finalize_fn,
}

// SAFETY: the header requires callbacks (and so their userdata) to be
// usable from any thread; the library calls them from worker threads.
unsafe impl Send for Userdata {}
// SAFETY: as above.
unsafe impl Sync for Userdata {}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(finalize) = self.finalize {
            // SAFETY: the finalizer the caller registered with this userdata,
            // called exactly once.
            unsafe { finalize(self.ptr) };
        }
    }
}

/// The callback answered `code` (not OK): the message it set, or one that
/// says which callback and code.
fn callback_failed(what: &str, code: u32, message: Option<String>) -> String {
    match message {
        Some(m) => m,
        None => format!("the {what} callback failed (returned {code})"),
    }
}

// ----- shell --------------------------------------------------------------

/// `OCUROOT_STREAM_STDOUT`: standard output, for
/// `ocuroot_shell_output_write`.
pub const OCUROOT_STREAM_STDOUT: u32 = 1;
/// `OCUROOT_STREAM_STDERR`: standard error, for
/// `ocuroot_shell_output_write`.
pub const OCUROOT_STREAM_STDERR: u32 = 2;

/// A command for the shell callback to run: `<shell> -c <command>` in `dir`,
/// with `env` on top of the process environment.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ocuroot_shell_request {
    /// The command text.
    pub command: *const c_char,
    /// The shell program (`sh` unless the work function chose another).
    pub shell: *const c_char,
    /// The absolute working directory.
    pub dir: *const c_char,
    /// `env_len` variables, each `NAME=value`.
    pub env: *const *const c_char,
    /// How many entries `env` has.
    pub env_len: usize,
}

/// Runs a command. Fill `output` with `ocuroot_shell_output_write` (as the
/// output arrives, or all at the end) and `ocuroot_shell_output_set_exit_code`,
/// then return `OCUROOT_RESULT_OK`: a non-zero exit code is not a failure of
/// the callback. Return anything else when the command could not be run at
/// all (after `ocuroot_shell_output_set_error`): the work function's
/// `host.shell` then fails, and with it the run, with that message. Called
/// from several threads at once when parallel > 1.
#[allow(non_camel_case_types)]
pub type ocuroot_shell_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        request: *const ocuroot_shell_request,
        output: *mut ocuroot_shell_output,
    ) -> u32,
>;

/// Where a shell callback writes what its command did. Valid only during
/// the callback, and used by one thread at a time (the callback may hand
/// it to a thread that reads the command's output, but not to two at once).
#[allow(non_camel_case_types)]
pub struct ocuroot_shell_output<'a> {
    out: ShellOutput,
    /// A partial last line of each stream.
    pending: [Vec<u8>; 2],
    on_line: &'a mut dyn FnMut(Stream, &str),
    error: Option<String>,
}

impl ocuroot_shell_output<'_> {
    /// One complete line (with its newline, or the last one without).
    fn deliver(&mut self, stream: Stream, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        (self.on_line)(stream, text);
        match stream {
            Stream::Stdout => self.out.stdout.push_str(&line),
            Stream::Stderr => self.out.stderr.push_str(&line),
        }
        self.out.combined_output.push_str(&line);
    }

    fn write(&mut self, stream: Stream, mut data: &[u8]) {
        let i = stream_index(stream);
        while let Some(n) = data.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.pending[i]);
            line.extend_from_slice(&data[..=n]);
            self.deliver(stream, &line);
            data = &data[n + 1..];
        }
        self.pending[i].extend_from_slice(data);
    }

    /// Deliver the partial last lines.
    fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream_index(stream)]);
            if !rest.is_empty() {
                self.deliver(stream, &rest);
            }
        }
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// Append `len` bytes of `stream` (`OCUROOT_STREAM_STDOUT` or
/// `OCUROOT_STREAM_STDERR`) to a command's output. Complete lines reach the
/// run's log (and the event callback) at once; invalid UTF-8 is replaced.
/// `data` may be NULL when `len` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_shell_output_write(
    output: *mut ocuroot_shell_output,
    stream: u32,
    data: *const c_char,
    len: usize,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the output handed to the callback that calls this.
        let output = unsafe { arg_mut(output, "output") }?;
        let stream = match stream {
            OCUROOT_STREAM_STDOUT => Stream::Stdout,
            OCUROOT_STREAM_STDERR => Stream::Stderr,
            other => return Err(Failure::invalid(format!("unknown stream {other}"))),
        };
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(Failure::null("data"));
        } else {
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
        };
        output.write(stream, bytes);
        Ok(())
    })
}

/// Set the command's exit code (0 unless set; a command killed by a signal
/// reports 128 + the signal).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_shell_output_set_exit_code(
    output: *mut ocuroot_shell_output,
    exit_code: i32,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the output handed to the callback that calls this.
        unsafe { arg_mut(output, "output") }?.out.exit_code = exit_code;
        Ok(())
    })
}

/// Say why the command could not be run, before returning a code other
/// than `OCUROOT_RESULT_OK` from the shell callback. The run fails with
/// this message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_shell_output_set_error(
    output: *mut ocuroot_shell_output,
    message: *const c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the output handed to the callback that calls this.
        let output = unsafe { arg_mut(output, "output") }?;
        // SAFETY: a NUL-terminated string from the caller.
        let message = unsafe { arg_str(message, "message") }?;
        output.error = Some(message.to_string());
        Ok(())
    })
}

/// A shell callback as a [`Host`]: every other host function (environment,
/// files, HTTP, clock) stays the local one.
pub(crate) struct CHost {
    shell: unsafe extern "C" fn(
        *mut c_void,
        *const ocuroot_shell_request,
        *mut ocuroot_shell_output,
    ) -> u32,
    data: Userdata,
}

impl CHost {
    /// `None` when `shell` is NULL.
    pub(crate) fn new(
        shell: ocuroot_shell_fn,
        userdata: *mut c_void,
        finalize: ocuroot_finalize_fn,
    ) -> Option<CHost> {
        Some(CHost {
            shell: shell?,
            data: Userdata {
                ptr: userdata,
                finalize,
            },
        })
    }
}

fn no_nul(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::host(format!("the command's {what} contains a NUL byte")))
}

impl Host for CHost {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> Result<ShellOutput> {
        let command = no_nul("text", &req.command)?;
        let shell = no_nul("shell", &req.shell)?;
        let dir = no_nul("directory", &req.dir.to_string_lossy())?;
        let env = req
            .env
            .iter()
            .map(|(k, v)| no_nul("environment", &format!("{k}={v}")))
            .collect::<Result<Vec<_>>>()?;
        let env_ptrs: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
        let request = ocuroot_shell_request {
            command: command.as_ptr(),
            shell: shell.as_ptr(),
            dir: dir.as_ptr(),
            env: env_ptrs.as_ptr(),
            env_len: env_ptrs.len(),
        };
        let mut output = ocuroot_shell_output {
            out: ShellOutput::default(),
            pending: [Vec::new(), Vec::new()],
            on_line: &mut |stream, text| lines.line(stream, text),
            error: None,
        };
        // SAFETY: the callback the caller registered, with its userdata;
        // every pointer lives until it returns.
        let code = unsafe { (self.shell)(self.data.ptr, &request, &mut output) };
        output.flush();
        if code != ocuroot_result::Ok as u32 {
            let message = callback_failed("shell", code, output.error.take());
            return Err(Error::host(format!(
                "cannot run {:?}: {message}",
                req.command
            )));
        }
        Ok(output.out)
    }
}

// ----- store --------------------------------------------------------------

/// `OCUROOT_OP_PUT`: write `value` at `key`.
pub const OCUROOT_OP_PUT: u32 = 1;
/// `OCUROOT_OP_DELETE`: remove `key` (removing an absent key is fine).
pub const OCUROOT_OP_DELETE: u32 = 2;
/// `OCUROOT_OP_CHECK`: write nothing, but fail the batch unless `key`
/// meets the expectation.
pub const OCUROOT_OP_CHECK: u32 = 3;

/// `OCUROOT_EXPECT_ANY`: no expectation.
pub const OCUROOT_EXPECT_ANY: u32 = 0;
/// `OCUROOT_EXPECT_ABSENT`: the key must not exist.
pub const OCUROOT_EXPECT_ABSENT: u32 = 1;
/// `OCUROOT_EXPECT_VERSION`: the key must exist with exactly `version`.
pub const OCUROOT_EXPECT_VERSION: u32 = 2;

/// One operation of an atomic batch handed to the store's commit callback.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ocuroot_store_op {
    /// `OCUROOT_OP_PUT`, `OCUROOT_OP_DELETE` or `OCUROOT_OP_CHECK`.
    pub kind: u32,
    /// The key (a ref without fragment, such as `repo/-/pkg/@r1/task/build`).
    pub key: *const c_char,
    /// The new value, for a put (bytes, not NUL-terminated); NULL otherwise.
    pub value: *const u8,
    /// How many bytes `value` has.
    pub value_len: usize,
    /// `OCUROOT_EXPECT_ANY`, `OCUROOT_EXPECT_ABSENT` or
    /// `OCUROOT_EXPECT_VERSION`.
    pub expect: u32,
    /// The version the key must have, with `OCUROOT_EXPECT_VERSION`.
    pub version: u64,
}

/// Where a store callback puts its answer. Valid only during the callback.
#[allow(non_camel_case_types)]
pub struct ocuroot_store_reply {
    kind: ReplyKind,
    value: Option<(Vec<u8>, u64)>,
    keys: Vec<String>,
    error: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReplyKind {
    Get,
    List,
    Commit,
}

impl ocuroot_store_reply {
    fn new(kind: ReplyKind) -> Self {
        ocuroot_store_reply {
            kind,
            value: None,
            keys: Vec::new(),
            error: None,
        }
    }

    fn expect(&self, kind: ReplyKind, setter: &str) -> Result<(), Failure> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(Failure::invalid(format!(
                "{setter} answers a {kind:?} callback, not a {:?} one",
                self.kind
            )))
        }
    }
}

/// Reads `key`: call `ocuroot_store_reply_set_value` if it exists (leave the
/// reply empty if not) and return `OCUROOT_RESULT_OK`; anything else is a
/// failure (say why with `ocuroot_store_reply_set_error`).
#[allow(non_camel_case_types)]
pub type ocuroot_store_get_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        key: *const c_char,
        reply: *mut ocuroot_store_reply,
    ) -> u32,
>;

/// Lists the keys starting with `prefix` (a plain string prefix; empty for
/// all): call `ocuroot_store_reply_add_key` for each, in any order, and
/// return `OCUROOT_RESULT_OK`.
#[allow(non_camel_case_types)]
pub type ocuroot_store_list_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        prefix: *const c_char,
        reply: *mut ocuroot_store_reply,
    ) -> u32,
>;

/// Applies `ops_len` operations atomically, or none of them. Each
/// expectation is checked in order against the store as left by the
/// operations before it in the batch. Return `OCUROOT_RESULT_OK` when all
/// were applied, `OCUROOT_RESULT_CONFLICT` when an expectation did not hold
/// (nothing written: the engine reads again and retries), anything else on
/// failure. The version of a written value must differ from every version
/// that key had before.
#[allow(non_camel_case_types)]
pub type ocuroot_store_commit_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        ops: *const ocuroot_store_op,
        ops_len: usize,
        reply: *mut ocuroot_store_reply,
    ) -> u32,
>;

/// A store implemented by the caller: a key/value map with versions.
/// `get`, `list` and `commit` are required; `finalize` may be NULL. The
/// engine builds refs, documents and transactions on top. State and intent
/// share it: their keys start with `state/` and `intent/`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct ocuroot_store_callbacks {
    /// Passed to every callback.
    pub userdata: *mut c_void,
    /// Read one key.
    pub get: ocuroot_store_get_fn,
    /// List keys by prefix.
    pub list: ocuroot_store_list_fn,
    /// Apply a batch.
    pub commit: ocuroot_store_commit_fn,
    /// Called once with `userdata` when the store is no longer used.
    pub finalize: ocuroot_finalize_fn,
}

/// Answer a get callback: the key exists with these `len` bytes (`data` may
/// be NULL when `len` is 0) and this version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_store_reply_set_value(
    reply: *mut ocuroot_store_reply,
    data: *const u8,
    len: usize,
    version: u64,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the reply handed to the callback that calls this.
        let reply = unsafe { arg_mut(reply, "reply") }?;
        reply.expect(ReplyKind::Get, "ocuroot_store_reply_set_value")?;
        let bytes = if len == 0 {
            Vec::new()
        } else if data.is_null() {
            return Err(Failure::null("data"));
        } else {
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
        };
        reply.value = Some((bytes, version));
        Ok(())
    })
}

/// Answer a list callback: one more key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_store_reply_add_key(
    reply: *mut ocuroot_store_reply,
    key: *const c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the reply handed to the callback that calls this.
        let reply = unsafe { arg_mut(reply, "reply") }?;
        reply.expect(ReplyKind::List, "ocuroot_store_reply_add_key")?;
        // SAFETY: a NUL-terminated string from the caller.
        let key = unsafe { arg_str(key, "key") }?;
        reply.keys.push(key.to_string());
        Ok(())
    })
}

/// Say why a store callback failed (or, for a conflict, which key), before
/// returning a code other than `OCUROOT_RESULT_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_store_reply_set_error(
    reply: *mut ocuroot_store_reply,
    message: *const c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: the reply handed to the callback that calls this.
        let reply = unsafe { arg_mut(reply, "reply") }?;
        // SAFETY: a NUL-terminated string from the caller.
        let message = unsafe { arg_str(message, "message") }?;
        reply.error = Some(message.to_string());
        Ok(())
    })
}

type GetFn = unsafe extern "C" fn(*mut c_void, *const c_char, *mut ocuroot_store_reply) -> u32;
type CommitFn = unsafe extern "C" fn(
    *mut c_void,
    *const ocuroot_store_op,
    usize,
    *mut ocuroot_store_reply,
) -> u32;

/// Store callbacks as a [`Store`].
pub(crate) struct CStore {
    get: GetFn,
    list: GetFn,
    commit: CommitFn,
    data: Userdata,
}

impl CStore {
    /// The store, or the name of the missing callback. Takes ownership of
    /// the userdata only on success.
    pub(crate) fn new(callbacks: &ocuroot_store_callbacks) -> Result<CStore, &'static str> {
        let get = callbacks.get.ok_or("get")?;
        let list = callbacks.list.ok_or("list")?;
        let commit = callbacks.commit.ok_or("commit")?;
        Ok(CStore {
            get,
            list,
            commit,
            data: Userdata {
                ptr: callbacks.userdata,
                finalize: callbacks.finalize,
            },
        })
    }

    /// The error for a callback that did not answer OK.
    fn failed(&self, what: &str, subject: &str, code: u32, reply: ocuroot_store_reply) -> Error {
        let message = callback_failed(&format!("store {what}"), code, reply.error);
        if code == ocuroot_result::Conflict as u32 {
            Error::conflict(format!("{subject}: {message}"))
        } else {
            Error::store(format!("store {what} of {subject}: {message}"))
        }
    }
}

impl Store for CStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        let c_key = c_string(key);
        let mut reply = ocuroot_store_reply::new(ReplyKind::Get);
        // SAFETY: the registered callback and userdata; the key and reply
        // live until it returns.
        let code = unsafe { (self.get)(self.data.ptr, c_key.as_ptr(), &mut reply) };
        if code != ocuroot_result::Ok as u32 {
            return Err(self.failed("get", key, code, reply));
        }
        Ok(reply.value.map(|(value, version)| Entry {
            value,
            version: Version(version),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let c_prefix = c_string(prefix);
        let mut reply = ocuroot_store_reply::new(ReplyKind::List);
        // SAFETY: as in `get`.
        let code = unsafe { (self.list)(self.data.ptr, c_prefix.as_ptr(), &mut reply) };
        if code != ocuroot_result::Ok as u32 {
            let subject = format!("prefix {prefix:?}");
            return Err(self.failed("list", &subject, code, reply));
        }
        let mut keys = reply.keys;
        for key in &keys {
            if !key.starts_with(prefix) {
                return Err(Error::store(format!(
                    "the store list callback returned {key:?} for prefix {prefix:?}"
                )));
            }
            validate_key(key).map_err(|e| {
                Error::store(format!(
                    "the store list callback returned an invalid key: {}",
                    e.message()
                ))
            })?;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        let keys: Vec<CString> = ops
            .iter()
            .map(|op| {
                validate_key(op.key())?;
                Ok(c_string(op.key()))
            })
            .collect::<Result<_>>()?;
        let c_ops: Vec<ocuroot_store_op> = ops
            .iter()
            .zip(&keys)
            .map(|(op, key)| {
                let (expect, version) = match op.expect() {
                    Expect::Any => (OCUROOT_EXPECT_ANY, 0),
                    Expect::Absent => (OCUROOT_EXPECT_ABSENT, 0),
                    Expect::Version(v) => (OCUROOT_EXPECT_VERSION, v.0),
                };
                let (kind, value): (u32, &[u8]) = match op {
                    Op::Put { value, .. } => (OCUROOT_OP_PUT, value),
                    Op::Delete { .. } => (OCUROOT_OP_DELETE, &[]),
                    Op::Check { .. } => (OCUROOT_OP_CHECK, &[]),
                };
                ocuroot_store_op {
                    kind,
                    key: key.as_ptr(),
                    value: if kind == OCUROOT_OP_PUT {
                        value.as_ptr()
                    } else {
                        std::ptr::null()
                    },
                    value_len: value.len(),
                    expect,
                    version,
                }
            })
            .collect();
        let mut reply = ocuroot_store_reply::new(ReplyKind::Commit);
        // SAFETY: as in `get`; the ops, their keys and values live until it
        // returns.
        let code = unsafe { (self.commit)(self.data.ptr, c_ops.as_ptr(), c_ops.len(), &mut reply) };
        if code != ocuroot_result::Ok as u32 {
            let subject = match ops {
                [op] => op.key().to_string(),
                _ => format!("a batch of {} operations", ops.len()),
            };
            return Err(self.failed("commit", &subject, code, reply));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "C store callbacks".to_string()
    }
}

// ----- events -------------------------------------------------------------

/// Receives each event of a running release as a JSON object tagged by
/// `event`: `release_started` (before a release's runs start: its `total`
/// work items, how many are `complete` and `failed`), `run_started`, `log`
/// (a line of a run's log) or `run_finished`.
/// The string lives only during the call. Called from several threads at
/// once when parallel > 1.
#[allow(non_camel_case_types)]
pub type ocuroot_event_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event_json: *const c_char)>;

/// An event callback as an [`EventSink`].
pub(crate) fn event_sink(
    on_event: unsafe extern "C" fn(*mut c_void, *const c_char),
    data: *mut c_void,
    finalize: ocuroot_finalize_fn,
) -> EventSink {
    let data = Arc::new(Userdata {
        ptr: data,
        finalize,
    });
    Arc::new(move |event: &Event| {
        let Ok(json) = serde_json::to_string(event) else {
            return;
        };
        let json = c_string(&json);
        // SAFETY: the registered callback and userdata; the string lives
        // until it returns.
        unsafe { on_event(data.ptr, json.as_ptr()) };
    })
}
