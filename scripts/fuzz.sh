#!/usr/bin/env bash
# Builds cachegate's libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# (in build-fuzz/), replays every seed and regression input under tests/fuzz/corpus/, then fuzzes
# each target for a bounded time. Exits non-zero, naming the input, when a target crashes.
#
#   scripts/fuzz.sh                       # every target, 30 s each
#   scripts/fuzz.sh --seconds 300 resp_request
#
# New inputs the fuzzer finds go to build-fuzz/fuzz/corpus-<target>/, crashes to
# build-fuzz/fuzz/crashes/<target>/; a crash, once fixed, belongs in tests/fuzz/corpus/<target>/
# so that every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
build=build-fuzz
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(memcache_request resp_request reply_framer reply_merger config)
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACHEGATE_TESTS=OFF -DCACHEGATE_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target fuzz_targets

failed=0
for t in "${targets[@]}"; do
  binary="$build/fuzz/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  work="$build/fuzz/corpus-$t"
  crashes="$build/fuzz/crashes/$t"
  mkdir -p "$work" "$crashes"
  echo "fuzz: $t: replaying $(ls "$seeds" | wc -l) inputs, then fuzzing for ${seconds}s"
  if ! "$binary" -runs=0 "$seeds" >"$build/fuzz/$t.replay.log" 2>&1; then
    echo "fuzz: $t: a seed or regression input fails; see $build/fuzz/$t.replay.log" >&2
    failed=1
    continue
  fi
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$crashes/" "$work" "$seeds" >"$build/fuzz/$t.log" 2>&1; then
    echo "fuzz: $t: crashed; input in $crashes/, log in $build/fuzz/$t.log" >&2
    tail -n 30 "$build/fuzz/$t.log" >&2
    failed=1
    continue
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/fuzz/$t.log" |
    sed "s/^/fuzz: $t: /"
done
exit "$failed"
