//! libFuzzer target `package`: see `ocuroot_fuzz::check_package` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(|data: &[u8]| -> Corpus {
    if ocuroot_fuzz::check_package(data) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
