#!/usr/bin/env bash
# The original Ocuroot's own end-to-end scripts (tests/original: every
# script its `make e2e` runs but `ci`, and `repl`) against our binary, as
# `make e2e` runs them: NO_INSTALL=1, with `ocuroot` first on PATH through
# tests/bin, in a git checkout. Each script exits non-zero on the first
# assertion that fails; its output is shown then.
#
# OCUROOT_BIN picks the binary (default: target/debug/ocuroot, built here).
# Arguments pick scripts by name (default: all of them).
set -euo pipefail
cd "$(dirname "$0")/.."
top="$PWD"

if [ -z "${OCUROOT_BIN:-}" ]; then
  cargo build --quiet -p ocuroot-cli
  OCUROOT_BIN="$top/target/debug/ocuroot"
fi
for tool in git jq; do
  command -v "$tool" > /dev/null || { echo "test-original.sh needs $tool" >&2; exit 1; }
done

scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
  scripts=(minimal dependencies errors versioning gitstate gitstate_shared secrets
    environments retries validation customstate cascade sdk_version push repl)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The scripts commit (their own repositories, and this checkout): give git
# an identity and a default branch of its own, whatever the machine's
# configuration says.
cat > "$work/gitconfig" <<CONFIG
[user]
	name = ocuroot e2e
	email = e2e@ocuroot.invalid
[init]
	defaultBranch = main
CONFIG
export GIT_CONFIG_GLOBAL="$work/gitconfig" GIT_CONFIG_NOSYSTEM=1
checkout="$work/ocuroot"
mkdir -p "$checkout"
cp -R tests/original "$checkout/tests"
mkdir -p "$checkout/tests/bin"
ln -s "$OCUROOT_BIN" "$checkout/tests/bin/ocuroot"
git -C "$checkout" init -q
git -C "$checkout" add -A
git -C "$checkout" commit -q -m "the original's tests"
git -C "$checkout" remote add origin https://github.com/ocuroot/ocuroot.git

failed=()
start=$SECONDS
for name in "${scripts[@]}"; do
  log="$work/$name.log"
  t0=$SECONDS
  if (cd "$checkout" && NO_INSTALL=1 timeout 600 "./tests/$name/test.sh") > "$log" 2>&1 < /dev/null; then
    printf 'ok      %-16s %3ss\n' "$name" "$((SECONDS - t0))"
  else
    rc=$?
    printf 'FAILED  %-16s %3ss (exit %s)\n' "$name" "$((SECONDS - t0))" "$rc"
    tail -n 40 "$log" | sed 's/^/    /'
    failed+=("$name")
  fi
done
echo "${#scripts[@]} scripts, $(( ${#scripts[@]} - ${#failed[@]} )) passed, in $((SECONDS - start))s"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
