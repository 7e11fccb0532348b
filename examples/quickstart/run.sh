#!/usr/bin/env bash
# Run the quickstart in a fresh git repository (a copy of this directory), so
# it can be run any number of times. Builds the ocuroot CLI first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

cargo build --quiet --manifest-path "$top/Cargo.toml" -p ocuroot-cli
ocuroot="$top/target/debug/ocuroot"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-quickstart.XXXXXX")"
if [ "${QUICKSTART_CLEANUP:-0}" = 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
"$top/scripts/quickstart-repo.sh" "$work"
cd "$work"

# The stand-in `docker` lives in ./bin.
export PATH="$work/bin:$PATH"

run() {
  echo "\$ ocuroot $*"
  "$ocuroot" "$@"
  echo
}

run release new environments.ocu.star
run release new release.ocu.star
# A second release at a new commit picks up the build number from the first.
git -c user.name=quickstart -c user.email=quickstart@example.invalid \
  commit --quiet --allow-empty -m "second commit"
run release new release.ocu.star
run state get 'quickstart/-/release.ocu.star/@/deploy/production#input/tag'
run state get 'quickstart/-/release.ocu.star/@r2/task/build#output/tag'
run state match 'quickstart/-/release.ocu.star/@r2/deploy/*'

echo
echo "The example repository is at $work"
