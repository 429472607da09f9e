#!/usr/bin/env bash
# Soak test: cachegate in front of memcached and redis-server shards under long mixed load, with
# every acknowledged write accounted for. Not part of scripts/test.sh; run it when asked.
#
#   bash scripts/soak.sh                          # 10 minutes
#   bash scripts/soak.sh --seconds 180 --tls      # 3 minutes, TLS listeners driven too
#   bash scripts/soak.sh --seconds 900 --chaos    # a server restarted every 30 s
#
# Sets up, on free loopback ports, N memcached servers (-M: a full cache answers an error rather
# than evicting) and M redis-servers (maxmemory-policy noeviction, no persistence), and cachegate
# with a memcached and a Redis listener on ketama pools of them (with --tls, a TLS listener of
# each protocol too). Then tests/tools/soak.cc (cachegate_soak) drives concurrent clients for
# --seconds and checks every read against what each client knows it wrote; at the end every key
# is read back through cachegate and from the servers directly (its own server must hold the
# last acknowledged value, no other server may hold it). With --chaos, one of two servers (the
# last memcached, the last redis-server) is killed and restarted empty every --chaos-every
# seconds: keys those two own may then be lost (the server lost them, and the driver counts
# them), every other key must still be exact. See tests/README.md ("Soak").
#
# Prints the driver's summary (requests, acknowledged writes, verified keys, errors by kind,
# cachegate's RSS and CPU) and exits non-zero on any wrong read, lost acknowledged write, key on
# the wrong server, reply that does not frame, hung request, or if cachegate dies.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=600
mc_servers=3
redis_servers=3
mc_clients=4
redis_clients=4
keys=200
value_max=16384
workers=2
seed=1
tls=0
chaos=0
chaos_every=30
build="build-soak"
do_build=1
cachegate_bin=""

usage() {
  cat <<EOF
usage: bash scripts/soak.sh [options]
  --seconds S          load time (default $seconds)
  --mc-servers N       memcached servers (default $mc_servers)
  --redis-servers N    redis-servers (default $redis_servers)
  --mc-clients N       memcached client threads (default $mc_clients)
  --redis-clients N    Redis client threads (default $redis_clients)
  --keys N             keys per client (default $keys)
  --value-max B        largest usual value (default $value_max; a few are 200 KiB)
  --workers N          cachegate workers (default $workers)
  --seed N             the driver's random seed (default $seed)
  --tls                also a TLS listener per protocol, one client each
  --chaos              restart a server (empty) every --chaos-every seconds
  --chaos-every S      default $chaos_every
  --build-dir DIR      CMake build directory (default $build)
  --no-build           use what is built there
  --cachegate PATH     this cachegate binary (default: BUILD/cachegate)
EOF
}

while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --mc-servers) mc_servers=$2; shift ;;
    --redis-servers) redis_servers=$2; shift ;;
    --mc-clients) mc_clients=$2; shift ;;
    --redis-clients) redis_clients=$2; shift ;;
    --keys) keys=$2; shift ;;
    --value-max) value_max=$2; shift ;;
    --workers) workers=$2; shift ;;
    --seed) seed=$2; shift ;;
    --tls) tls=1 ;;
    --chaos) chaos=1 ;;
    --chaos-every) chaos_every=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --no-build) do_build=0 ;;
    --cachegate) cachegate_bin=$(realpath -m "$2"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if ((mc_servers < 1 || redis_servers < 1)); then
  echo "soak.sh: at least one server of each kind" >&2
  exit 2
fi

if ((do_build)); then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target cachegate cachegate_soak
fi
[[ -n $cachegate_bin ]] || cachegate_bin="$root/$build/cachegate"
driver="$root/$build/cachegate_soak"

work=$(mktemp -d /tmp/cachegate-soak-XXXXXX)
keep_work=0
cleanup() {
  for f in "$work"/*.pid; do
    [[ -e $f ]] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if ((keep_work)); then
    echo "soak: logs and config kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/ports.sh
source "$root/scripts/ports.sh"

user_args=()
[[ $(id -u) -eq 0 ]] && user_args=(-u nobody)  # memcached refuses to run as root without -u

# A server's command line goes to NAME.cmd, so that the chaos helper can start it again on the
# same port; its pid to NAME.pid.
start_server() {  # name port command…
  local name=$1 port=$2
  shift 2
  printf '%q ' exec "$@" >"$work/$name.cmd"
  echo >>"$work/$name.cmd"
  bash "$work/$name.cmd" >>"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
  # Stopped by its pid file, perhaps by the chaos helper: not a job of this shell any more.
  disown
  wait_port "$port" "$(cat "$work/$name.pid")"
}

start_with_retries() {  # name command-with-PORT…; sets started_port
  local name=$1
  shift
  for _ in 1 2 3 4 5; do
    local port
    port=$(free_port)
    if start_server "$name" "$port" "${@//PORT/$port}"; then
      started_port=$port
      return 0
    fi
    kill "$(cat "$work/$name.pid")" 2>/dev/null || true
  done
  echo "soak: could not start $name" >&2
  return 1
}

mc_lines=()
mc_ports=()
for i in $(seq 1 "$mc_servers"); do
  start_with_retries "memcached-$i" memcached -l 127.0.0.1 -p PORT -U 0 -m 128 -M -t 2 \
    "${user_args[@]}"
  mc_ports+=("$started_port")
  mc_lines+=("      - 127.0.0.1:$started_port:1 mc-$i")
done
redis_lines=()
redis_ports=()
for i in $(seq 1 "$redis_servers"); do
  start_with_retries "redis-$i" redis-server --bind 127.0.0.1 --port PORT --save '' \
    --appendonly no --maxmemory 256mb --maxmemory-policy noeviction --dir "$work"
  redis_ports+=("$started_port")
  redis_lines+=("      - 127.0.0.1:$started_port:1 redis-$i")
done

tls_args=()
if ((tls)); then
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
  tls_args=(--tls-ca "$work/cert.pem")
fi

write_config() {  # mc-port redis-port mc-tls-port redis-tls-port
  {
    echo "# Written by scripts/soak.sh."
    echo "workers: $workers"
    echo "listeners:"
    echo "  - {name: mc, listen: 127.0.0.1:$1, protocol: memcached, pool: mc}"
    echo "  - {name: redis, listen: 127.0.0.1:$2, protocol: redis, pool: redis}"
    if ((tls)); then
      echo "  - name: mc-tls"
      echo "    listen: 127.0.0.1:$3"
      echo "    protocol: memcached"
      echo "    pool: mc"
      echo "    tls: {cert: $work/cert.pem, key: $work/key.pem}"
      echo "  - name: redis-tls"
      echo "    listen: 127.0.0.1:$4"
      echo "    protocol: redis"
      echo "    pool: redis"
      echo "    tls: {cert: $work/cert.pem, key: $work/key.pem}"
    fi
    echo "pools:"
    echo "  mc:"
    echo "    protocol: memcached"
    echo "    distribution: ketama"
    echo "    hash: fnv1a_64"
    echo "    timeout: 1000"
    echo "    servers:"
    printf '%s\n' "${mc_lines[@]}"
    echo "  redis:"
    echo "    protocol: redis"
    echo "    distribution: ketama"
    echo "    hash: fnv1a_64"
    echo "    timeout: 1000"
    echo "    servers:"
    printf '%s\n' "${redis_lines[@]}"
  } >"$work/cachegate.yaml"
}

cachegate_pid=""
for attempt in 1 2 3 4 5; do
  p1=$(free_port) p2=$(free_port) p3=$(free_port) p4=$(free_port)
  write_config "$p1" "$p2" "$p3" "$p4"
  "$cachegate_bin" -c "$work/cachegate.yaml" >"$work/cachegate.log" 2>&1 &
  cachegate_pid=$!
  if wait_port "$p1" "$cachegate_pid" && wait_port "$p2" "$cachegate_pid"; then
    echo "$cachegate_pid" >"$work/cachegate.pid"
    break
  fi
  kill "$cachegate_pid" 2>/dev/null || true
  wait "$cachegate_pid" 2>/dev/null || true
  if ((attempt == 5)); then
    keep_work=1
    echo "soak: cachegate did not start:" >&2
    cat "$work/cachegate.log" >&2
    exit 1
  fi
done

chaos_args=()
if ((chaos)); then
  # The victims: the last server of each pool, restarted in turn.
  victims=("memcached-$mc_servers:${mc_ports[-1]}" "redis-$redis_servers:${redis_ports[-1]}")
  cat >"$work/chaos.sh" <<EOF
#!/usr/bin/env bash
# Kills one victim server and starts it again, empty, on its port; the next call takes the next.
set -u
victims=(${victims[*]})
n=\$(cat "$work/chaos.next" 2>/dev/null || echo 0)
echo \$(((n + 1) % \${#victims[@]})) >"$work/chaos.next"
name=\${victims[\$n]%%:*}
port=\${victims[\$n]##*:}
kill -9 "\$(cat "$work/\$name.pid")" 2>/dev/null
while (exec 3<>"/dev/tcp/127.0.0.1/\$port") 2>/dev/null; do sleep 0.05; done
sleep 1
bash "$work/\$name.cmd" >>"$work/\$name.log" 2>&1 &
echo \$! >"$work/\$name.pid"
for _ in \$(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/\$port") 2>/dev/null && break
  sleep 0.05
done
echo "soak: restarted \$name (port \$port)" >&2
EOF
  chaos_args=(--chaos-command "bash $work/chaos.sh" --chaos-every "$chaos_every"
    --victim "127.0.0.1:${mc_ports[-1]}" --victim "127.0.0.1:${redis_ports[-1]}")
fi

echo "soak: cachegate (pid $cachegate_pid) on 127.0.0.1:$p1 (memcached) and :$p2 (Redis)$(
  ((tls)) && echo ", TLS on :$p3 and :$p4"), $mc_servers memcached, $redis_servers redis-server," \
  "${seconds}s of load$( ((chaos)) && echo ", a server restarted every ${chaos_every}s")"
status=0
"$driver" --config "$work/cachegate.yaml" --seconds "$seconds" --mc-clients "$mc_clients" \
  --redis-clients "$redis_clients" --keys "$keys" --value-max "$value_max" --seed "$seed" \
  --cachegate-pid "$cachegate_pid" "${tls_args[@]}" "${chaos_args[@]}" || status=$?

if ! kill -0 "$cachegate_pid" 2>/dev/null; then
  echo "soak: cachegate is no longer running" >&2
  status=1
fi
if ((status != 0)); then
  keep_work=1
  echo "soak: the last lines of cachegate's log:" >&2
  tail -n 20 "$work/cachegate.log" >&2
fi
exit "$status"
