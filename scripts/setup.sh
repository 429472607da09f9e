#!/usr/bin/env bash
# Installs everything cachegate needs to build, test and benchmark, from Debian 12's archive.
# Idempotent: packages already present are skipped, so a second run costs a few dpkg queries.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev libyaml-cpp-dev libhiredis-dev libmemcached-dev catch2
  memcached redis-server redis-tools nutcracker libmemcached-tools openssl
  curl prometheus
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev yamllint
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian packages start system-wide memcached/redis/nutcracker/prometheus services (the
# prometheus package is here for its promtool, which checks /metrics in the tests); tests and the demo
# start their own on free ports, so the system ones are only noise. Stop them where a service
# manager exists; ignore failures (containers have none).
for svc in memcached redis-server nutcracker prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" 2>/dev/null || true
  fi
done
