#!/usr/bin/env bash
# Sets up a fresh machine (Debian packages), builds everything and runs the whole test suite: the
# fuzz targets (replay and a short run), unit tests, and integration tests against real memcached,
# redis-server and nutcracker processes that the tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# The fuzz targets (clang, ASan+UBSan): every seed and regression input replayed, then a short
# bounded run of each; longer runs: scripts/fuzz.sh --seconds N.
bash scripts/fuzz.sh --seconds "${CACHEGATE_FUZZ_SECONDS:-15}"
cd build
ctest --output-on-failure -j "${CACHEGATE_JOBS:-2}" "$@"
