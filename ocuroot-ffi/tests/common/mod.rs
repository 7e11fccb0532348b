//! Helpers shared by the ABI test binaries: C strings in, library strings
//! and errors out (each freed once).

#![allow(dead_code)]

use std::ffi::{CStr, CString, c_char};

use ocuroot::*;

/// A C string.
pub fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Take a library string, free it, return its text.
pub fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    // SAFETY: a string the library returned.
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
    // SAFETY: freed once.
    unsafe { ocuroot_string_free(s) };
    text
}

/// An error's code and message; frees it.
pub fn take_error(e: *mut ocuroot_error) -> (ocuroot_result, String) {
    assert!(!e.is_null(), "an error object was expected");
    // SAFETY: an error the library returned.
    unsafe {
        let code = ocuroot_error_code(e);
        let message = CStr::from_ptr(ocuroot_error_message(e))
            .to_str()
            .unwrap()
            .to_string();
        ocuroot_error_free(e);
        (code, message)
    }
}

pub mod json_doc;
pub mod store;

/// `git <args>` in `dir` with a fixed author; panics on failure.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A git repository in a temp dir with `files`, committed.
pub fn committed_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    git(dir.path(), &["init", "--quiet"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "--quiet", "-m", "init"]);
    dir
}

/// Open the repository at `dir` with `options` (NULL for the defaults).
pub fn open_with(
    dir: &std::path::Path,
    options: *const ocuroot_workspace_options,
) -> *mut ocuroot_workspace {
    let path = c(dir.to_str().unwrap());
    let (mut ws, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), options, &mut ws, &mut err) };
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    ws
}

/// Call `f` with an out-parameter and an error: the text it gave, or
/// `None` when it gave NULL. Panics when the call fails.
pub fn call_maybe(
    f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> Option<String> {
    let (mut out, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
    let code = f(&mut out, &mut err);
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    (!out.is_null()).then(|| take(out))
}

/// As [`call_maybe`], for a call that gives JSON.
pub fn call_json(
    f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> serde_json::Value {
    let text = call_maybe(f).expect("the call gave NULL");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Call `f`, which must fail: its code and message.
pub fn call_err(
    f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> (ocuroot_result, String) {
    let (mut out, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
    let code = f(&mut out, &mut err);
    assert_ne!(code, ocuroot_result::Ok, "the call succeeded");
    assert!(out.is_null(), "a failed call wrote its out-parameter");
    let (again, message) = take_error(err);
    assert_eq!(code, again);
    (code, message)
}
