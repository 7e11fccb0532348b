#!/bin/sh
# Stand-in undeployment.
set -eu
env="$1"
rm -f ".deployments/$env"
echo "removed the deployment from $env"
