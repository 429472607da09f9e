#!/usr/bin/env bash
# What an idle client connection costs in memory: cachegate in front of one memcached, with a
# plain and a TLS listener, gets N connections (default 10,000) that each make one request and
# then stay open and silent; its RSS is read before and after, and the difference divided by N.
# Plain first, then TLS (the handshake completes first), each against a cachegate of its own
# (memory freed by one run would otherwise be reused by the next), then twemproxy (nutcracker)
# plain over the same memcached for comparison, if it is installed. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir="$ROOT/build"
do_build=1
cachegate_bin=""
connections=10000
workers=2
settle=2
targets="cachegate,cachegate-tls,twemproxy"

usage() {
  cat <<EOF
usage: bash bench/idle_connections.sh [options]
  --build-dir DIR     CMake build directory (default: build)
  --no-build          use the binaries already in the build directory
  --cachegate PATH    cachegate binary (default: BUILD/cachegate)
  --connections N     idle connections per target (default $connections)
  --workers W         cachegate's workers (default $workers)
  --settle S          seconds to wait before reading RSS (default $settle)
  --targets LIST      comma-separated: cachegate,cachegate-tls,twemproxy (default all)
EOF
}

while (($#)); do
  case "$1" in
    --build-dir) build_dir=$(realpath -m "$2"); shift ;;
    --no-build) do_build=0 ;;
    --cachegate) cachegate_bin=$(realpath -m "$2"); shift ;;
    --connections) connections=$2; shift ;;
    --workers) workers=$2; shift ;;
    --settle) settle=$2; shift ;;
    --targets) targets=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "idle_connections.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ -n $cachegate_bin ]] || cachegate_bin="$build_dir/cachegate"
want() { [[ ",$targets," == *",$1,"* ]]; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cachegate-idle.XXXXXX")
pids=()
holder_fd=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $holder_fd ]]; then exec {holder_fd}>&-; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((status != 0)); then
    for log in "$work"/*.log; do
      [[ -s $log ]] && { echo "--- $log" >&2; tail -20 "$log" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -------------------------------------------------------------------------------------
if ((do_build)); then
  generator=()
  if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  echo "building in $build_dir ..." >&2
  cmake -S "$ROOT" -B "$build_dir" "${generator[@]}" >"$work/cmake.log" 2>&1
  cmake --build "$build_dir" -j2 --target cachegate cachegate_loadgen >"$work/build.log" 2>&1
fi
loadgen="$build_dir/cachegate_loadgen"
for bin in "$loadgen" "$cachegate_bin"; do
  [[ -x $bin ]] || { echo "idle_connections.sh: no $bin (build it, or drop --no-build)" >&2; exit 1; }
done
if want twemproxy && ! command -v nutcracker >/dev/null; then
  echo "note: no nutcracker installed; the twemproxy row is skipped" >&2
  targets=${targets//twemproxy/}
fi

# Every connection is a descriptor here and in the proxy; the children inherit this.
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < connections + 100)); then
  echo "idle_connections.sh: the open files limit ($(ulimit -n)) is below $((connections + 100))" >&2
  exit 1
fi

# ---- servers -----------------------------------------------------------------------------------
read -r mc_port plain_port tls_port stats_port nc_port nc_stats_port < <("$loadgen" --free-ports 6)

wait_port() {  # port pid
  local i
  for ((i = 0; i < 200; i++)); do
    if ! kill -0 "$2" 2>/dev/null; then return 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# A throwaway CA and a server certificate it signed (EC P-256, CN=localhost), made for this run.
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$work/ca-key.pem" -out "$work/ca.pem" -subj "/CN=cachegate bench CA" &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$work/server-key.pem" -out "$work/server.csr" -subj "/CN=localhost" &&
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$work/server-ext.cnf" &&
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
      -CAcreateserial -days 1 -extfile "$work/server-ext.cnf" -out "$work/server.pem"
} >"$work/certs.log" 2>&1

user_opt=()
if [[ $(id -u) -eq 0 ]]; then user_opt=(-u nobody); fi
memcached "${user_opt[@]}" -l 127.0.0.1 -p "$mc_port" -U 0 -t 1 -m 64 >"$work/memcached.log" 2>&1 &
mc_pid=$!
pids+=("$mc_pid")
wait_port "$mc_port" "$mc_pid" || { echo "idle_connections.sh: memcached did not start" >&2; exit 1; }

# A separate listener for `stats`, so that reading the connection count adds nothing to the
# listeners being measured.
cg_pid=""
start_cachegate() {
  cat >"$work/cachegate.yaml" <<EOF
workers: $workers
listeners:
  - {name: stats, listen: "127.0.0.1:$stats_port", pool: cache}
  - {name: plain, listen: "127.0.0.1:$plain_port", pool: cache}
  - name: tls
    listen: "127.0.0.1:$tls_port"
    pool: cache
    tls: {cert: "$work/server.pem", key: "$work/server-key.pem"}
pools:
  cache:
    servers: ["127.0.0.1:$mc_port:1 m0"]
EOF
  "$cachegate_bin" -c "$work/cachegate.yaml" >>"$work/cachegate.log" 2>&1 &
  cg_pid=$!
  pids+=("$cg_pid")
  # The other listeners are bound once the log says it runs.
  local i
  for ((i = 0; i < 200; i++)); do
    if grep -q " running with " "$work/cachegate.log"; then return 0; fi
    kill -0 "$cg_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "idle_connections.sh: cachegate did not start" >&2
  exit 1
}
stop_cachegate() {
  kill "$cg_pid" 2>/dev/null || true
  wait "$cg_pid" || true
  : >"$work/cachegate.log"
}

if want twemproxy; then
  cat >"$work/nutcracker.yml" <<EOF
cache:
  listen: 127.0.0.1:$nc_port
  hash: fnv1a_64
  distribution: ketama
  servers:
    - 127.0.0.1:$mc_port:1 m0
EOF
  nutcracker -c "$work/nutcracker.yml" -s "$nc_stats_port" -a 127.0.0.1 >"$work/nutcracker.log" 2>&1 &
  nc_pid=$!
  pids+=("$nc_pid")
  wait_port "$nc_port" "$nc_pid" || { echo "idle_connections.sh: nutcracker did not start" >&2; exit 1; }
fi

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# cachegate's own count of open client connections (the `stats` connection included).
curr_connections() {
  local line value="?"
  exec 5<>"/dev/tcp/127.0.0.1/$stats_port"
  printf 'stats\r\n' >&5
  while IFS= read -r -t 5 line <&5; do
    line=${line%$'\r'}
    if [[ $line == "STAT curr_connections "* ]]; then value=${line##* }; fi
    if [[ $line == END ]]; then break; fi
  done
  exec 5>&-
  echo "$value"
}

# measure NAME PID PORT [loadgen options...]: opens the connections, reads RSS, closes them.
rows=()
measure() {
  local name=$1 pid=$2 port=$3
  shift 3
  local before after closed line
  sleep "$settle"
  before=$(rss_kib "$pid")
  rm -f "$work/hold"
  mkfifo "$work/hold"
  "$loadgen" --host 127.0.0.1 --port "$port" --idle "$connections" "$@" \
    <"$work/hold" >"$work/idle-$name.out" 2>"$work/idle-$name.log" &
  local lg_pid=$!
  pids+=("$lg_pid")
  # Holding the fifo open holds the connections; closing it lets the load generator finish.
  exec {holder_fd}>"$work/hold"
  local i
  for ((i = 0; i < 1200; i++)); do
    [[ -s $work/idle-$name.out ]] && break
    kill -0 "$lg_pid" 2>/dev/null || break
    sleep 0.1
  done
  line=$(cat "$work/idle-$name.out")
  [[ -n $line ]] || { echo "idle_connections.sh: $name: the connections did not open" >&2; exit 1; }
  echo "$name: $line" >&2
  sleep "$settle"
  after=$(rss_kib "$pid")
  local open="-"
  if [[ $name == cachegate* ]]; then open=$(curr_connections); fi
  exec {holder_fd}>&-
  holder_fd=""
  wait "$lg_pid" || { echo "idle_connections.sh: $name: errors (see above)" >&2; exit 1; }
  sleep "$settle"
  closed=$(rss_kib "$pid")
  rows+=("$(printf '%-16s %11s %10s %15s %14s %15s %14s' "$name" "$connections" "$open" "$before" \
    "$after" "$(((after - before) * 1024 / connections))" "$closed")")
}

if want cachegate; then
  start_cachegate
  measure cachegate "$cg_pid" "$plain_port"
  stop_cachegate
fi
if want cachegate-tls; then
  start_cachegate
  measure cachegate-tls "$cg_pid" "$tls_port" --tls --tls-ca "$work/ca.pem"
  stop_cachegate
fi
if want twemproxy; then measure twemproxy "$nc_pid" "$nc_port"; fi

echo
echo "idle client connections, one get each before going idle; RSS in KiB"
printf '%-16s %11s %10s %15s %14s %15s %14s\n' target connections "counted" "rss_before" \
  "rss_idle" "bytes_per_conn" "rss_closed"
printf '%s\n' "${rows[@]}"
echo "(counted: cachegate's curr_connections while they were open, its stats connection included)"
