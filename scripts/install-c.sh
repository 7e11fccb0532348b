#!/usr/bin/env bash
# Build libocuroot, the C library of Ocuroot, and install it under a prefix:
#
#   PREFIX/include/ocuroot.h
#   PREFIX/lib/libocuroot.so.X.Y.Z      the shared library, SONAME libocuroot.so.ABI
#   PREFIX/lib/libocuroot.so.ABI        -> libocuroot.so.X.Y.Z (what programs load)
#   PREFIX/lib/libocuroot.so            -> libocuroot.so.ABI   (what -locuroot finds)
#   PREFIX/lib/libocuroot.a             the static library
#   PREFIX/lib/pkgconfig/ocuroot.pc
#
# ABI is the part of the version a compatible release keeps, as Cargo's
# semver reads it: the major version, or 0.MINOR while the major is 0
# (0.1.0 gives libocuroot.so.0.1, as cargo-c names it).
#
# Usage: scripts/install-c.sh [--prefix DIR] [--debug] [--no-soname]
#   --prefix DIR   where to install (default: /usr/local)
#   --debug        install the debug build instead of the release build
#   --no-soname    do not set the SONAME (it needs patchelf); programs then
#                  record the unversioned libocuroot.so
# Environment: DESTDIR stages the install (files go to $DESTDIR$PREFIX, the
# paths inside ocuroot.pc stay $PREFIX); CARGO_TARGET_DIR as for cargo.
#
# Then:  cc app.c $(pkg-config --cflags --libs ocuroot)
#        cc app.c $(pkg-config --cflags ocuroot) -l:libocuroot.a ... (static, see README)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n 's/^# \{0,1\}//; /^Usage:/,/^Environment/p' "$0" | sed '$d' >&2; exit "${1:-2}"; }
prefix=/usr/local
profile=release
soname=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --debug) profile=debug; shift ;;
    --no-soname) soname=0; shift ;;
    -h | --help) usage 0 ;;
    *) echo "install-c.sh: unknown argument: $1" >&2; usage ;;
  esac
done
# ocuroot.pc holds absolute paths.
prefix="$(realpath -m -- "$prefix")"
destdir="${DESTDIR:-}"

if [ "$soname" = 1 ] && ! command -v patchelf > /dev/null; then
  echo "install-c.sh: patchelf is needed to give libocuroot.so its SONAME" \
    "(apt-get install patchelf), or pass --no-soname" >&2
  exit 1
fi

args=()
[ "$profile" = release ] && args=(--release)
cargo build --quiet --manifest-path "$top/Cargo.toml" -p ocuroot-ffi "${args[@]}"
target="${CARGO_TARGET_DIR:-$top/target}"
case "$target" in /*) ;; *) target="$top/$target" ;; esac
built="$target/$profile"

pkgid="$(cargo pkgid --quiet --manifest-path "$top/Cargo.toml" -p ocuroot-ffi)"
version="${pkgid##*[#@]}"
major="${version%%.*}"
if [ "$major" = 0 ]; then
  minor="${version#0.}"
  abi="0.${minor%%.*}"
else
  abi="$major"
fi

lib="$destdir$prefix/lib"
install -d "$destdir$prefix/include" "$lib/pkgconfig"
install -m 644 "$top/include/ocuroot.h" "$destdir$prefix/include/ocuroot.h"
install -m 644 "$built/libocuroot.a" "$lib/libocuroot.a"
if [ "$soname" = 1 ]; then
  # Copy, then name: the cdylib cargo builds has no SONAME (Cargo cannot set
  # one without also changing what the build tree's programs load).
  install -m 755 "$built/libocuroot.so" "$lib/libocuroot.so.$version.tmp"
  patchelf --set-soname "libocuroot.so.$abi" "$lib/libocuroot.so.$version.tmp"
  mv -f "$lib/libocuroot.so.$version.tmp" "$lib/libocuroot.so.$version"
  ln -sfn "libocuroot.so.$version" "$lib/libocuroot.so.$abi"
  ln -sfn "libocuroot.so.$abi" "$lib/libocuroot.so"
else
  rm -f "$lib/libocuroot.so"
  install -m 755 "$built/libocuroot.so" "$lib/libocuroot.so"
fi

# The same template scripts/build-c.sh fills in for a build tree; its
# Libs.private is what `cargo rustc -p ocuroot-ffi --release --
# --print native-static-libs` lists for the static library.
sed -e "s|@PREFIX@|$prefix|" -e 's|@LIBDIR@|${prefix}/lib|' \
  -e 's|@INCLUDEDIR@|${prefix}/include|' -e "s|@VERSION@|$version|" \
  "$top/ocuroot-ffi/ocuroot.pc.in" > "$lib/pkgconfig/ocuroot.pc"
chmod 644 "$lib/pkgconfig/ocuroot.pc"

echo "installed libocuroot $version ($profile build) under $destdir$prefix"
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && command -v ldconfig > /dev/null; then
  case "$prefix" in /usr | /usr/local) ldconfig ;; esac
fi
case "$prefix" in
  /usr | /usr/local) ;;
  *) echo "to use it: export PKG_CONFIG_PATH=$prefix/lib/pkgconfig and" \
    "LD_LIBRARY_PATH=$prefix/lib (or link with -Wl,-rpath,$prefix/lib)" ;;
esac
