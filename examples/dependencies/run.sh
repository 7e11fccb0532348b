#!/usr/bin/env bash
# Run the dependencies example in a fresh git repository (a copy of this
# directory): release the backend and the frontend, change both in a second
# commit, release the backend again with --cascade, and check that the
# frontend was redeployed with the new backend URL at its own, first commit.
# Builds the ocuroot CLI first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

cargo build --quiet --manifest-path "$top/Cargo.toml" -p ocuroot-cli
ocuroot="$top/target/debug/ocuroot"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-dependencies.XXXXXX")"
if [ "${EXAMPLE_CLEANUP:-0}" = 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
cp -R "$here"/. "$work"/
rm -rf "$work/run.sh" "$work/.ocuroot"
printf '.ocuroot/\n' > "$work/.gitignore"
cd "$work"
git() { command git -c user.name=example -c user.email=example@example.invalid "$@"; }
git init --quiet
git add .
git commit --quiet -m "first"

run() {
  echo "\$ ocuroot $*"
  "$ocuroot" "$@"
  echo
}

run release new environments.ocu.star -q
run release new backend/release.ocu.star -q
run release new frontend/release.ocu.star -q
echo v2 > backend/api-version.txt
echo frontend-2 > frontend/bundle.txt
git commit --quiet -am "second"
run plan --format mermaid
run release new backend/release.ocu.star --cascade -q
run plan

frontend="$("$ocuroot" state get 'dependencies/-/frontend/release.ocu.star/@/deploy/staging#output')"
echo "$frontend"
case "$frontend" in
  *'"bundle": "frontend-1"'*'"backend_url": "https://api.staging.example.com/v2"'*) ;;
  *) echo "the frontend was not redeployed at its first commit with the new backend" >&2; exit 1 ;;
esac
echo
echo "The example repository is at $work"
