#!/usr/bin/env bash
# The C ABI from C: the header compiles as C11 and C++, the example runs the
# quickstart release through C callbacks, and runs clean under valgrind.
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

if command -v valgrind > /dev/null; then
  step "examples/c under valgrind (memory errors and definite leaks fail)"
  checked=(valgrind -q --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect)
  export CFLAGS=
else
  step "examples/c under AddressSanitizer (valgrind is not installed)"
  checked=()
  export CFLAGS=-fsanitize=address ASAN_OPTIONS=detect_leaks=1:exitcode=99
fi
if ! QUICKSTART_CLEANUP=1 examples/c/run.sh "${checked[@]}" > "$out" 2>&1; then
  cat "$out" >&2
  echo "memory errors or leaks were reported" >&2
  exit 1
fi
expect "release complete"
echo "no memory errors or leaks reported"
