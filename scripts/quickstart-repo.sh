#!/usr/bin/env bash
# Make DIR a fresh git repository holding the quickstart (examples/quickstart,
# without run.sh), committed: what the quickstart runs (CLI, C) start from.
#
# Usage: scripts/quickstart-repo.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
quick="$(cd "$(dirname "$0")/../examples/quickstart" && pwd)"
work="$1"
mkdir -p "$work"
cp -R "$quick/repo.ocu.star" "$quick/environments.ocu.star" "$quick/release.ocu.star" \
  "$quick"/*.sh "$quick/bin" "$quick/.gitignore" "$work/"
rm -f "$work/run.sh"
cd "$work"
git init --quiet
git add .
git -c user.name=quickstart -c user.email=quickstart@example.invalid commit --quiet -m quickstart
