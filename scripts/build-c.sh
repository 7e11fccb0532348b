#!/usr/bin/env bash
# Build libocuroot (libocuroot.so and libocuroot.a) and write a pkg-config
# file for it next to the libraries.
#
# Usage: scripts/build-c.sh [--release]
# Prints the directory to add to PKG_CONFIG_PATH, e.g.:
#   export PKG_CONFIG_PATH="$(scripts/build-c.sh)"
#   cc app.c $(pkg-config --cflags --libs ocuroot) -Wl,-rpath,"$(pkg-config --variable=libdir ocuroot)"
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
profile=debug
args=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  args=(--release)
fi
cargo build --quiet --manifest-path "$top/Cargo.toml" -p ocuroot-ffi "${args[@]}"
target="${CARGO_TARGET_DIR:-$top/target}"
case "$target" in /*) ;; *) target="$top/$target" ;; esac
libdir="$target/$profile"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -n 1)"
mkdir -p "$libdir/pkgconfig"
sed -e "s|@PREFIX@|$top|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$top/include|" \
  -e "s|@VERSION@|$version|" "$top/ocuroot-ffi/ocuroot.pc.in" > "$libdir/pkgconfig/ocuroot.pc"
echo "$libdir/pkgconfig"
