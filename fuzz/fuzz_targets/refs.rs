//! libFuzzer target `refs`: see `ocuroot_fuzz::check_ref` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(|data: &[u8]| -> Corpus {
    if ocuroot_fuzz::check_ref(data) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
