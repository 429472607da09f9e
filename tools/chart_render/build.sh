#!/usr/bin/env bash
# Builds chart_render into the path given as $1, offline, from Debian's Go
# packages only:
#   apt-get install -y golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
# (sprig pulls in semver, mergo and gopkg.in/yaml.v2, which are also used).
# GOPATH mode against /usr/share/gocode is what lets the build work without a
# module proxy or a go.sum: Debian installs library sources there.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 OUTPUT_BINARY" >&2
  exit 2
fi
out=$1

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' not found; install it with: apt-get install -y golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev" >&2
  exit 1
fi

gocode=/usr/share/gocode
for pkg in github.com/Masterminds/sprig github.com/Masterminds/semver gopkg.in/yaml.v2 gopkg.in/yaml.v3; do
  if [[ ! -d "$gocode/src/$pkg" ]]; then
    echo "build.sh: $gocode/src/$pkg is missing; install: apt-get install -y golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev" >&2
    exit 1
  fi
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Resolve the output path before changing directory, so a relative $1 means
# relative to the caller.
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac

# A private build cache: nothing is written to the caller's home, and
# concurrent builds do not share state.
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

cd "$here/../.."
GO111MODULE=off GOPATH="$gocode" GOCACHE="$cache" GOFLAGS= \
  go build -o "$out" ./tools/chart_render
