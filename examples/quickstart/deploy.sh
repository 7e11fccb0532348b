#!/bin/sh
# Stand-in deployment: records which image runs in which environment.
set -eu
tag="$1"
env="$2"
mkdir -p .deployments
echo "$tag" > ".deployments/$env"
echo "deployed $tag to $env"
