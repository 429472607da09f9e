#!/usr/bin/env bash
# Configures and builds cachegate into build/ (build/cachegate). Arguments are passed to the
# build tool, e.g. `bash scripts/build.sh --target cachegate`.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build -j "${CACHEGATE_JOBS:-2}" "$@"
