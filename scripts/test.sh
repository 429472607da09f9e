#!/usr/bin/env bash
# Sets up a fresh machine (Debian packages), builds everything and runs the whole test suite: the
# fuzz targets (replay and a short run), then the unit tests and the integration tests (against
# real memcached, redis-server and nutcracker processes that the tests start on free loopback
# ports) twice: with cachegate built with AddressSanitizer and UndefinedBehaviorSanitizer, then
# as shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# The fuzz targets (clang, ASan+UBSan): every seed and regression input replayed, then a short
# bounded run of each; longer runs: scripts/fuzz.sh --seconds N.
bash scripts/fuzz.sh --seconds "${CACHEGATE_FUZZ_SECONDS:-15}"

# The sanitized run: the unit tests built with AddressSanitizer and UndefinedBehaviorSanitizer,
# then the integration tests against the cachegate built so (the test code that drives it from
# outside is the plain build's: compiling it twice would cost more than it would find). Every
# report goes to a file, whichever process wrote it (a test, or a cachegate a test started, which
# may report only as it exits, e.g. a leak), and any report fails the run even when the test
# that caused it passed.
bash scripts/build.sh --sanitize --target cachegate unit_tests
reports=$PWD/build-sanitize/sanitizer-reports
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-sanitize --output-on-failure -j "${CACHEGATE_JOBS:-2}" -L unit "$@"
CACHEGATE_TEST_BINARY=$PWD/build-sanitize/cachegate CACHEGATE_TEST_SANITIZED=1 \
  ctest --test-dir build --output-on-failure -j "${CACHEGATE_JOBS:-2}" -L integration "$@"
unset ASAN_OPTIONS UBSAN_OPTIONS
if compgen -G "$reports/*" >/dev/null; then
  for report in "$reports"/*; do
    echo "== $report" >&2
    head -n 60 "$report" >&2
  done
  echo "sanitizer reports in $reports" >&2
  exit 1
fi

# As shipped: every unit and integration test once more, ending with CTest's summary.
cd build
ctest --output-on-failure -j "${CACHEGATE_JOBS:-2}" "$@"
