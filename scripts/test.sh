#!/usr/bin/env bash
# Sets up a fresh machine (Debian packages), builds everything and runs the whole test suite:
# unit tests and integration tests against real memcached and nutcracker processes that the
# tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j "${CACHEGATE_JOBS:-2}" "$@"
