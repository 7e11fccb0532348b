#!/usr/bin/env bash
# Build libocuroot and ocuroot-ffi/tests/c/shell_spawn.c, make a fresh git
# repository of examples/quickstart plus shell.ocu.star, and run the program
# there (under WRAPPER when given). Exits with the program's status: 0 only
# if every check it makes passed.
#
# Usage: ocuroot-ffi/tests/c/shell-spawn.sh [WRAPPER...]
#   e.g. ocuroot-ffi/tests/c/shell-spawn.sh valgrind -q --error-exitcode=99
#
# Environment:
#   OCUROOT_C_PROFILE=debug|release  which build of libocuroot (default debug)
#   CC, CFLAGS                       the C compiler and extra flags
#   SHELL_SPAWN_KEEP=1               keep the repository (its path is printed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../../.." && pwd)"

case "${OCUROOT_C_PROFILE:-debug}" in
  debug) build=() ;;
  release) build=(--release) ;;
  *) echo "shell-spawn: OCUROOT_C_PROFILE is debug or release, not ${OCUROOT_C_PROFILE}" >&2; exit 2 ;;
esac
export PKG_CONFIG_PATH="$("$top/scripts/build-c.sh" "${build[@]}")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir="$(pkg-config --variable=libdir ocuroot)"
exe="$libdir/tests/c-shell-spawn"
mkdir -p "$(dirname "$exe")"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
${CC:-cc} -std=c11 -Wall -Wextra -Werror -g ${CFLAGS:-} -o "$exe" "$here/shell_spawn.c" \
  $(pkg-config --cflags --libs ocuroot) -lpthread -Wl,-rpath,"$libdir"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-c-shell-spawn.XXXXXX")"
if [ "${SHELL_SPAWN_KEEP:-0}" = 1 ]; then
  echo "shell-spawn: repository in $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi
"$top/scripts/quickstart-repo.sh" "$work"
cp "$here/shell.ocu.star" "$work/"
git -C "$work" add shell.ocu.star
git -C "$work" -c user.name=quickstart -c user.email=quickstart@example.invalid \
  commit --quiet -m "shell.ocu.star"
# The stand-in `docker` lives in ./bin.
PATH="$work/bin:$PATH" "$@" "$exe" "$work"
