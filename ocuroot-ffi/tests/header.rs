//! `include/ocuroot.h` is what cbindgen makes of this crate now.
//! `OCUROOT_BLESS=1 cargo test -p ocuroot-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn the_committed_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let header = dir.join("../include/ocuroot.h");
    if std::env::var_os("OCUROOT_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&header, &generated).expect("write include/ocuroot.h");
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/ocuroot.h is stale: regenerate it with \
         OCUROOT_BLESS=1 cargo test -p ocuroot-ffi --test header"
    );
}
