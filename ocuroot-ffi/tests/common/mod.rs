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
