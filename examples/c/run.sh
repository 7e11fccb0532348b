#!/usr/bin/env bash
# Build libocuroot and examples/c/quickstart.c (through pkg-config), copy
# the quickstart into a fresh git repository and run the release from C.
#
# Usage: examples/c/run.sh [WRAPPER...]   e.g. examples/c/run.sh valgrind -q
# Environment: QUICKSTART_CLEANUP=1 removes the repository afterwards.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

export PKG_CONFIG_PATH="$("$top/scripts/build-c.sh")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
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
