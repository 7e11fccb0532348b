#!/bin/sh
# Stand-in smoke test: the environment must have a deployment.
set -eu
env="$1"
test -s ".deployments/$env" || { echo "nothing deployed to $env" >&2; exit 1; }
echo "$env serves $(cat ".deployments/$env")"
