#!/bin/sh
set -eu
echo "$1 -" >> deployed.log
echo "undeployed $1"
