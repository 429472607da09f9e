#!/usr/bin/env bash
# Configures and builds cachegate into build/ (build/cachegate). Arguments are passed to the
# build tool, e.g. `bash scripts/build.sh --target cachegate`.
#
#   --sanitize   build into build-sanitize/ with AddressSanitizer and UndefinedBehaviorSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == --sanitize ]]; then
  dir=build-sanitize
  options+=(-DCACHEGATE_SANITIZE=ON)
  shift
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S . -B "$dir" "${generator[@]}" "${options[@]}" >/dev/null
fi
cmake --build "$dir" -j "${CACHEGATE_JOBS:-2}" "$@"
