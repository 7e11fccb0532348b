#!/usr/bin/env bash
# Runs the Rust agent example (examples/rust: a custom Store and Host driving
# examples/agent) and checks every step's line and the deploys it made.
# Exits non-zero, naming what is missing, when a step did not happen.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(cargo run -q -p ocuroot-example-agent -- --keep)
printf '%s\n' "$out"
kept=$(printf '%s\n' "$out" | sed -n 's/^kept //p')
trap '[ -n "$kept" ] && rm -rf "$kept"' EXIT

r1="agent/-/release.ocu.star/@r1"
status=0
expect() {
  if ! printf '%s\n' "$out" | grep -qxF -- "$1"; then
    echo "examples/rust/run.sh: missing line: $1" >&2
    status=1
  fi
}
expect "environments registered"
expect "staging failed: ./deploy.sh 1.0.1 staging: exit status 1"
expect "retried: staging complete, production blocked on $r1/custom/approval"
expect "approved: release complete"
expect "production runs 1.0.1"
expect "second release: production runs 1.0.2"
expect "rolled back: production runs 1.0.1 from $r1"

# deploy.sh's record: each version to staging, then production, then the
# rollback's redeploy of 1.0.1 (and no undeploy).
want=$'staging 1.0.1\nproduction 1.0.1\nstaging 1.0.2\nproduction 1.0.2\nproduction 1.0.1'
if [ -z "$kept" ] || [ "$(cat "$kept/deployed.log")" != "$want" ]; then
  echo "examples/rust/run.sh: deployed.log is not as expected:" >&2
  cat "$kept/deployed.log" >&2 2>/dev/null || echo "(missing)" >&2
  status=1
fi
exit $status
