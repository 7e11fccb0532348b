//! libFuzzer target `fslog`: see `ocuroot_fuzz::check_fslog` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(|data: &[u8]| -> Corpus {
    if ocuroot_fuzz::check_fslog(data) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
