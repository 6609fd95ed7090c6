#!/usr/bin/env bash
# Copies what the device machine lacks (it has no network and no GoogleTest) into .deps/, which
# .gitignore keeps out of git and the device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/src/googletest ]; then
  apt-get update -qq && apt-get install -y -qq googletest >/dev/null
fi
mkdir -p .deps
rm -rf .deps/googletest
cp -r /usr/src/googletest .deps/googletest
echo "prepared .deps/googletest"
