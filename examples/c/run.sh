#!/usr/bin/env bash
# Build libocuroot and examples/c/quickstart.c (through pkg-config), copy
# the quickstart into a fresh git repository and run the release from C.
#
# Usage: examples/c/run.sh [WRAPPER...]   e.g. examples/c/run.sh valgrind -q
# Environment: QUICKSTART_CLEANUP=1 removes the repository afterwards;
# OCUROOT_C_PROFILE=release builds and links the release build of libocuroot
# (default: debug).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

case "${OCUROOT_C_PROFILE:-debug}" in
  debug) build=() ;;
  release) build=(--release) ;;
  *) echo "OCUROOT_C_PROFILE must be debug or release, not ${OCUROOT_C_PROFILE}" >&2; exit 2 ;;
esac
export PKG_CONFIG_PATH="$("$top/scripts/build-c.sh" "${build[@]}")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir="$(pkg-config --variable=libdir ocuroot)"
exe="$libdir/examples/c-quickstart"
mkdir -p "$(dirname "$exe")"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -g ${CFLAGS:-} -o "$exe" "$here/quickstart.c" \
  $(pkg-config --cflags --libs ocuroot) -lpthread -Wl,-rpath,"$libdir"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-c-quickstart.XXXXXX")"
if [ "${QUICKSTART_CLEANUP:-0}" = 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
"$top/scripts/quickstart-repo.sh" "$work"
# The stand-in `docker` lives in ./bin.
PATH="$work/bin:$PATH" "$@" "$exe" "$work"
