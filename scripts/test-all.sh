#!/usr/bin/env bash
# Every check and every test of the project. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests need that a minimal machine may lack, installed
# with apt-get when missing: script(1) (bsdutils) gives the repl's prompt
# test and the progress display's test a terminal; pkg-config and patchelf
# (the SONAME) for the C install test; Debian's Chromium (and its
# ChromeDriver) for the browser test of `state view`, which may not download
# a browser of its own; OpenSSH's server, nginx (nginx-light) and fcgiwrap
# for the git store's ssh and https tests, which run a private sshd and an
# nginx + fcgiwrap + `git http-backend` on 127.0.0.1, with keys and a
# private CA made by ssh-keygen and openssl (ocuroot-cli/tests/cli/servers.rs);
# jq for the original Ocuroot's end-to-end scripts.
missing=()
command -v script > /dev/null 2>&1 || missing+=(bsdutils)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver > /dev/null 2>&1 || missing+=(chromium-driver)
command -v pkg-config > /dev/null 2>&1 || missing+=(pkg-config)
command -v patchelf > /dev/null 2>&1 || missing+=(patchelf)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/fcgiwrap ] || missing+=(fcgiwrap)
command -v openssl > /dev/null 2>&1 || missing+=(openssl)
command -v jq > /dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y "${missing[@]}" || {
    $sudo apt-get update && $sudo apt-get install -y "${missing[@]}"
  }
fi

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "tests"
# The browser test of `state view` runs headless Chromium; here its absence
# is a failure, not a skip.
OCUROOT_REQUIRE_BROWSER=1 cargo test --workspace

# The library as crates.io would receive it: packaged from its manifest
# (metadata, README, license; no path-only dependencies) and built alone.
step "cargo publish --dry-run -p ocuroot-core"
cargo publish --dry-run --allow-dirty --quiet -p ocuroot-core

step "fuzz targets: build, and replay every corpus and reproducer (stable)"
OCUROOT_FUZZ_NO_PENDING=1 ./scripts/fuzz.sh replay

step "the original Ocuroot's end-to-end scripts (tests/original) against our binary"
./scripts/test-original.sh

step "quickstart example"
QUICKSTART_CLEANUP=1 ./examples/quickstart/run.sh >/dev/null
echo "examples/quickstart/run.sh ok"

step "dependencies example (cascade)"
EXAMPLE_CLEANUP=1 ./examples/dependencies/run.sh >/dev/null
echo "examples/dependencies/run.sh ok"

step "Rust agent example (a custom Store and Host)"
./examples/rust/run.sh >/dev/null
echo "examples/rust/run.sh ok"

step "C ABI (include/ocuroot.h is checked by the tests above)"
./scripts/test-c.sh

step "python"
./scripts/test-python.sh
