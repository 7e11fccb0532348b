#!/usr/bin/env bash
# The C ABI from C: the header compiles as C11 and C++, the quickstart
# release runs through C callbacks, and the quickstart, the agent example and
# the C test programs (ocuroot-ffi/tests/c) run clean under valgrind with the
# debug and the release library.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf -- '--> %s\n' "$*"; }

step "include/ocuroot.h compiles alone (C11 pedantic, C++)"
cc -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c include/ocuroot.h
if command -v c++ > /dev/null; then
  c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ include/ocuroot.h
fi

step "examples/c: the quickstart release through a C shell and a C store"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! QUICKSTART_CLEANUP=1 examples/c/run.sh > "$out" 2>&1; then
  cat "$out" >&2
  echo "examples/c/run.sh failed" >&2
  exit 1
fi
expect() {
  if ! grep -qxF -- "$1" "$out"; then
    cat "$out" >&2
    echo "expected the line: $1" >&2
    exit 1
  fi
}
expect "release complete"
for env in staging production production2; do
  expect "[c-shell] ./deploy.sh myapp:1 $env"
  expect "[c-shell] ./test.sh $env"
done
expect "[c-shell] docker build . -t myapp:1"
expect 'build tag: "myapp:1"'
grep -q '^report: {"kind":"release",.*"status":"complete","work":' "$out"
echo "the release completed; every command went through the C shell callback"

# The release build too: it is what users link, and what optimised code does
# is not always what the debug build does (scripts/valgrind.supp says what
# may be suppressed: nothing at present).
if command -v valgrind > /dev/null; then
  checked=(valgrind -q --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --suppressions="$PWD/scripts/valgrind.supp")
  export CFLAGS=
  checker="valgrind"
else
  checked=()
  export CFLAGS=-fsanitize=address ASAN_OPTIONS=detect_leaks=1:exitcode=99
  checker="AddressSanitizer (valgrind is not installed)"
fi
for profile in debug release; do
  if [ "$profile" = debug ]; then
    if [ "$checker" = valgrind ]; then
      step "examples/c under valgrind (memory errors and definite leaks fail)"
    else
      step "examples/c under $checker"
    fi
  else
    step "examples/c under $checker, release build of libocuroot"
  fi
  if ! OCUROOT_C_PROFILE=$profile QUICKSTART_CLEANUP=1 examples/c/run.sh "${checked[@]}" > "$out" 2>&1; then
    cat "$out" >&2
    echo "memory errors or leaks were reported ($profile build)" >&2
    exit 1
  fi
  expect "release complete"
  if [ "$profile" = debug ]; then
    echo "quickstart: no memory errors or leaks reported"
  else
    echo "quickstart: no memory errors or leaks reported (release build)"
  fi
  # The agent (examples/c/agent.c): a failure and a retry, approvals through
  # intent, typed reads and a rollback, every step checked by agent-run.sh.
  step "examples/c/agent.c under $checker, $profile build of libocuroot"
  if ! OCUROOT_C_PROFILE=$profile examples/c/agent-run.sh "${checked[@]}" > "$out" 2>&1; then
    cat "$out" >&2
    echo "examples/c/agent-run.sh failed: a step differs, or memory errors or leaks ($profile build)" >&2
    exit 1
  fi
  expect "agent-run: every step as expected"
  echo "agent: every step as expected, no memory errors or leaks reported ($profile build)"
  # A shell callback over posix_spawn (ocuroot-ffi/tests/c/shell_spawn.c):
  # the quickstart released twice with a retry, and host.shell with env=
  # given, empty and absent, its output streamed in pieces.
  step "ocuroot-ffi/tests/c/shell_spawn.c under $checker, $profile build of libocuroot"
  if ! OCUROOT_C_PROFILE=$profile ocuroot-ffi/tests/c/shell-spawn.sh "${checked[@]}" > "$out" 2>&1; then
    cat "$out" >&2
    echo "ocuroot-ffi/tests/c/shell-spawn.sh failed: a check differs, or memory errors or leaks ($profile build)" >&2
    exit 1
  fi
  expect "shell_spawn: every check passed"
  echo "shell_spawn: every check passed, no memory errors or leaks reported ($profile build)"
done
unset CFLAGS ASAN_OPTIONS

# What a C user does: install (scripts/install-c.sh into a scratch prefix),
# then build with nothing but pkg-config.
step "scripts/install-c.sh, then examples/c/quickstart.c built with pkg-config (shared and static)"
for tool in pkg-config patchelf; do
  command -v "$tool" > /dev/null || {
    echo "$tool is needed (apt-get install $tool; scripts/test-all.sh installs it)" >&2
    exit 1
  }
done
scratch="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-c-install.XXXXXX")"
trap 'rm -f "$out"; rm -rf "$scratch"' EXIT
installed() { # PREFIX ROOT: the files, the SONAME and its links, ocuroot.pc's prefix
  local prefix="$1" root="$2" f
  for f in include/ocuroot.h lib/libocuroot.a lib/libocuroot.so lib/pkgconfig/ocuroot.pc; do
    [ -e "$root/$f" ] || { echo "not installed: $root/$f" >&2; exit 1; }
  done
  grep -qxF "prefix=$prefix" "$root/lib/pkgconfig/ocuroot.pc" || {
    cat "$root/lib/pkgconfig/ocuroot.pc" >&2
    echo "ocuroot.pc should say prefix=$prefix" >&2
    exit 1
  }
  version="$(sed -n 's/^Version: //p' "$root/lib/pkgconfig/ocuroot.pc")"
  soname="$(readelf -d "$root/lib/libocuroot.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
  [ -n "$soname" ] && [ "$(readlink "$root/lib/$soname")" = "libocuroot.so.$version" ] &&
    [ "$(readlink "$root/lib/libocuroot.so")" = "$soname" ] || {
    ls -l "$root/lib" >&2
    echo "expected libocuroot.so -> SONAME ($soname) -> libocuroot.so.$version" >&2
    exit 1
  }
}
# DESTDIR stages the files; ocuroot.pc still names the prefix.
DESTDIR="$scratch/stage" scripts/install-c.sh --prefix /opt/ocuroot > "$out" 2>&1 || {
  cat "$out" >&2
  echo "scripts/install-c.sh (DESTDIR) failed" >&2
  exit 1
}
installed /opt/ocuroot "$scratch/stage/opt/ocuroot"
rm -rf "$scratch/stage"
prefix="$scratch/prefix"
scripts/install-c.sh --prefix "$prefix" > "$out" 2>&1 || {
  cat "$out" >&2
  echo "scripts/install-c.sh failed" >&2
  exit 1
}
installed "$prefix" "$prefix"
echo "installed: libocuroot.so -> $soname -> libocuroot.so.$version, libocuroot.a, ocuroot.h, ocuroot.pc (also with DESTDIR)"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
shared_flags="$(pkg-config --cflags --libs ocuroot)"
# pkg-config --static adds Libs.private; -l:libocuroot.a makes the linker
# take the archive, not the .so beside it (-static would also make libc static).
static_flags="$(pkg-config --static --cflags --libs ocuroot)"
static_flags="${static_flags/-locuroot/-l:libocuroot.a}"
echo "pkg-config --cflags --libs ocuroot: $shared_flags"
echo "pkg-config --static (archive):     $static_flags"
cc -std=c11 -Wall -Wextra -Werror -o "$scratch/quickstart-shared" examples/c/quickstart.c \
  $shared_flags -lpthread
cc -std=c11 -Wall -Wextra -Werror -o "$scratch/quickstart-static" examples/c/quickstart.c \
  $static_flags
readelf -d "$scratch/quickstart-shared" | grep -qF "Shared library: [$soname]" || {
  echo "quickstart-shared does not load $soname" >&2
  exit 1
}
if readelf -d "$scratch/quickstart-static" | grep -qF "libocuroot"; then
  echo "quickstart-static still loads libocuroot dynamically" >&2
  exit 1
fi
for kind in shared static; do
  repo="$scratch/repo-$kind"
  scripts/quickstart-repo.sh "$repo" > /dev/null 2>&1
  if ! PATH="$repo/bin:$PATH" LD_LIBRARY_PATH="$prefix/lib" "$scratch/quickstart-$kind" "$repo" > "$out" 2>&1; then
    cat "$out" >&2
    echo "the installed library, linked $kind: the quickstart failed" >&2
    exit 1
  fi
  expect "release complete"
  echo "linked $kind against the installed library: release complete"
done
