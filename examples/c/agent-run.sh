#!/usr/bin/env bash
# Build libocuroot and examples/c/agent.c, copy examples/agent into a fresh
# git repository, run the agent there (under WRAPPER when given), and check
# what it printed and what the stand-in deploy script recorded. Exits
# non-zero on any mismatch.
#
# Usage: examples/c/agent-run.sh [WRAPPER...]
#   e.g. examples/c/agent-run.sh valgrind -q --error-exitcode=99 --leak-check=full
#
# Environment:
#   OCUROOT_C_PROFILE=debug|release  which build of libocuroot (default debug;
#                                    release passes --release to scripts/build-c.sh)
#   OCUROOT_LIBDIR=DIR               use the libocuroot.so already in DIR
#                                    instead of building one
#   AGENT_KEEP=1                     keep the repository (its path is printed)
#
# The agent reads the library's JSON with jansson (Debian: libjansson-dev);
# when it is missing and this runs as root with apt-get, it is installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

# jansson, for the agent's JSON.
if ! echo '#include <jansson.h>' | ${CC:-cc} -E -x c - > /dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "agent-run: installing libjansson-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq libjansson-dev > /dev/null ||
      { apt-get update -qq > /dev/null && apt-get install -y -qq libjansson-dev > /dev/null; }
  else
    echo "agent-run: jansson.h not found: install libjansson-dev (or your system's jansson)" >&2
    exit 1
  fi
fi

# The library.
if [ -n "${OCUROOT_LIBDIR:-}" ]; then
  libdir="$(cd "$OCUROOT_LIBDIR" && pwd)"
  lib_flags=(-I"$top/include" -L"$libdir" -locuroot)
else
  case "${OCUROOT_C_PROFILE:-debug}" in
    debug) build_args=() ;;
    release) build_args=(--release) ;;
    *) echo "agent-run: OCUROOT_C_PROFILE is debug or release, not ${OCUROOT_C_PROFILE}" >&2; exit 2 ;;
  esac
  pc_dir="$("$top/scripts/build-c.sh" "${build_args[@]}")"
  export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  libdir="$(pkg-config --variable=libdir ocuroot)"
  read -r -a lib_flags <<< "$(pkg-config --cflags --libs ocuroot)"
fi
[ -e "$libdir/libocuroot.so" ] || { echo "agent-run: no libocuroot.so in $libdir" >&2; exit 1; }

exe="$libdir/examples/c-agent"
mkdir -p "$(dirname "$exe")"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
${CC:-cc} -std=c11 -Wall -Wextra -Werror -g ${CFLAGS:-} -o "$exe" "$here/agent.c" \
  "${lib_flags[@]}" -ljansson -lpthread -Wl,-rpath,"$libdir"

# A fresh repository with the agent example, committed.
work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-c-agent.XXXXXX")"
out="$work.out"
trap 'rm -f "$out"; [ "${AGENT_KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
[ "${AGENT_KEEP:-0}" != 1 ] || echo "agent-run: repository in $work" >&2
cp -R "$top/examples/agent/." "$work/"
git -C "$work" init -q
git -C "$work" add -A
git -C "$work" -c user.name="Ocuroot example" -c user.email=example@ocuroot.invalid \
  commit -q -m "the agent example"

status=0
"$@" "$exe" "$work" > "$out" 2>&1 || status=$?
cat "$out"
if [ "$status" != 0 ]; then
  echo "agent-run: the agent exited $status" >&2
  exit "$status"
fi

fail() {
  echo "agent-run: $*" >&2
  exit 1
}

# The agent's step lines: not the commands it ran (indented, "  $ ..."),
# nor what a WRAPPER such as valgrind printed ("==PID== ...").
pkg=agent/-/release.ocu.star
expected="environments: staging production
release $pkg/@r1: failed, staging failed: ./deploy.sh 1.0.1 staging: exit status 1
retry: blocked, staging complete, production blocked on $pkg/@r1/custom/approval
approve $pkg/@r1: complete
read: production runs 1.0.1 from $pkg/@r1 (work)
release $pkg/@r2: blocked, production blocked on $pkg/@r2/custom/approval
approve $pkg/@r2: complete
read: production runs 1.0.2 from $pkg/@r2 (work)
rollback: applied 1, 1 release(s) ran
after rollback: production runs 1.0.1 from $pkg/@r1 (work)
done"
steps="$(grep -Ev '^(  \$ |==[0-9]+==)' "$out" || true)"
if [ "$steps" != "$expected" ]; then
  diff <(echo "$expected") <(echo "$steps") >&2 || true
  fail "the agent's steps differ from the expected ones (expected <, printed >)"
fi

# Every command went through the C shell callback.
for command in "./build.sh 1.0.1" "./build.sh 1.0.2" "./deploy.sh 1.0.1 staging" \
  "./deploy.sh 1.0.1 production" "./deploy.sh 1.0.2 staging" "./deploy.sh 1.0.2 production"; do
  grep -qxF -- "  \$ $command" "$out" || fail "the shell callback did not run: $command"
done

# What was deployed where, in order (the first staging deploy failed before
# writing).
deployed="staging 1.0.1
production 1.0.1
staging 1.0.2
production 1.0.2
production 1.0.1"
if [ "$(cat "$work/deployed.log")" != "$deployed" ]; then
  diff <(echo "$deployed") "$work/deployed.log" >&2 || true
  fail "deployed.log differs (expected <, recorded >)"
fi
[ ! -e "$work/.fail-next-deploy" ] || fail ".fail-next-deploy is still there"
echo "agent-run: every step as expected"
