#!/bin/sh
# Stands in for a real deploy: records which version runs where. While the
# file .fail-next-deploy exists, the next deploy removes it and fails, as a
# flaky deploy would.
set -eu
if [ -e .fail-next-deploy ]; then
  rm .fail-next-deploy
  echo "deploy of $1 to $2 failed: the target did not answer" >&2
  exit 1
fi
echo "$2 $1" >> deployed.log
echo "deployed $1 to $2"
