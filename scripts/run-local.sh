#!/usr/bin/env bash
# Quick start: sets up the machine, builds cachegate, starts two local memcached servers and
# cachegate in front of them, sends a few requests through it, then keeps cachegate running in
# the foreground until Ctrl-C (everything it started is stopped on exit).
#
#   bash scripts/run-local.sh              # as above
#   bash scripts/run-local.sh --demo-only  # stop after showing the requests
#
# CACHEGATE_SKIP_SETUP=1 / CACHEGATE_SKIP_BUILD=1 skip those steps, CACHEGATE_BIN names the binary
# and CACHEGATE_RANDOM_PORTS=1 avoids the usual ports 21211, 21212 and 22122 (the test suite
# uses all four).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

demo_only=0
[[ "${1:-}" == "--demo-only" ]] && demo_only=1

[[ "${CACHEGATE_SKIP_SETUP:-0}" == 1 ]] || bash scripts/setup.sh
[[ "${CACHEGATE_SKIP_BUILD:-0}" == 1 ]] || bash scripts/build.sh --target cachegate

work=$(mktemp -d /tmp/cachegate-local-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/ports.sh
source "$root/scripts/ports.sh"
# A free loopback port: the preferred one when free, else a random one that nothing answers on.
pick_port() {
  local port=$1
  [[ "${CACHEGATE_RANDOM_PORTS:-0}" == 1 ]] && port=$(random_port)
  while port_in_use "$port"; do port=$(random_port); done
  echo "$port"
}
# Starts a process whose command line contains PORT (replaced by a free port), trying other
# ports if the chosen one was taken meanwhile; sets started_port.
start_on_free_port() {
  local preferred=$1
  shift
  for _ in 1 2 3 4 5; do
    local port
    port=$(pick_port "$preferred")
    "${@//PORT/$port}" >/dev/null &
    local pid=$!
    if wait_port "$port" "$pid"; then
      pids+=("$pid")
      started_port=$port
      return 0
    fi
    kill "$pid" 2>/dev/null || true
    preferred=$(random_port)
  done
  echo "could not start $1 on a free port" >&2
  return 1
}

user_args=()
[[ $(id -u) -eq 0 ]] && user_args=(-u nobody)  # memcached refuses to run as root without -u

start_on_free_port 21211 memcached -l 127.0.0.1 -p PORT -U 0 -m 64 "${user_args[@]}"
mc1=$started_port
start_on_free_port 21212 memcached -l 127.0.0.1 -p PORT -U 0 -m 64 "${user_args[@]}"
mc2=$started_port

write_config() {
  cat >"$work/cachegate.yaml" <<YAML
# Written by scripts/run-local.sh: two local memcached shards behind one cachegate listener.
workers: 2
listeners:
  - name: mc
    listen: 127.0.0.1:$1
    protocol: memcached
    pool: cache
pools:
  cache:
    protocol: memcached
    distribution: ketama
    hash: fnv1a_64
    timeout: 400
    servers:
      - 127.0.0.1:$mc1:1 cache-1
      - 127.0.0.1:$mc2:1 cache-2
YAML
}
# The config names the port, so it is rewritten for each attempt.
proxy=$(pick_port 22122)
for attempt in 1 2 3 4 5; do
  write_config "$proxy"
  "${CACHEGATE_BIN:-$root/build/cachegate}" -c "$work/cachegate.yaml" 2>"$work/cachegate.log" &
  pid=$!
  if wait_port "$proxy" "$pid"; then
    pids+=("$pid")
    break
  fi
  if [[ $attempt == 5 ]]; then
    cat "$work/cachegate.log" >&2
    exit 1
  fi
  proxy=$(pick_port "$(random_port)")
done

echo
echo "cachegate is listening on 127.0.0.1:$proxy, sharding over memcached on ports $mc1 and $mc2"
echo "config: $work/cachegate.yaml"
echo
echo "--- requests through cachegate ---"
exec 3<>"/dev/tcp/127.0.0.1/$proxy"
printf 'set greeting 0 0 5\r\nhello\r\nset fruit 0 0 5\r\napple\r\nset colour 0 0 4\r\nteal\r\nget greeting fruit colour missing\r\nversion\r\nquit\r\n' >&3
timeout 5 cat <&3 | tr -d '\r' | sed 's/^/  /'
exec 3<&-
echo "--- where the keys live (asking each memcached directly) ---"
for port in "$mc1" "$mc2"; do
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'get greeting fruit colour\r\nquit\r\n' >&3
  keys=$(timeout 5 cat <&3 | awk '/^VALUE/ {print $2}' | tr '\n' ' ')
  exec 3<&-
  echo "  memcached :$port holds: ${keys:-(none)}"
done
echo

echo "--- cachegate's log ---"
sed 's/^/  /' "$work/cachegate.log"
echo
if [[ $demo_only == 1 ]]; then exit 0; fi
echo "Try:  printf 'get greeting\\r\\n' | timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$proxy; cat >&3; cat <&3'"
echo "Press Ctrl-C to stop."
tail -n 0 -f "$work/cachegate.log" &
pids+=($!)
wait "${pids[2]}"
