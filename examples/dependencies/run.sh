#!/bin/sh
# Run the dependencies example in a scratch git repository: release the
# backend and the frontend, change both, release the backend again with
# --cascade, and show that the frontend was redeployed at its own commit.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ocuroot=${OCUROOT:-ocuroot}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -R "$here"/. "$dir"/
rm -f "$dir/run.sh"
cd "$dir"
git init -q
git -c user.name=example -c user.email=example@example.com add .
git -c user.name=example -c user.email=example@example.com commit -qm "first"
"$ocuroot" release new environments.ocu.star -q
"$ocuroot" release new backend/release.ocu.star -q
"$ocuroot" release new frontend/release.ocu.star -q
echo v2 > backend/api-version.txt
echo frontend-2 > frontend/bundle.txt
git -c user.name=example -c user.email=example@example.com commit -qam "second"
"$ocuroot" plan --format mermaid
"$ocuroot" release new backend/release.ocu.star --cascade -q
echo "frontend in staging:"
"$ocuroot" state get dependencies/-/frontend/release.ocu.star/@/deploy/staging#output
