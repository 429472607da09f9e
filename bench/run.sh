#!/usr/bin/env bash
# Side-by-side benchmark: direct access vs twemproxy (nutcracker) vs cachegate, on the same two
# memcached servers (cachegate_loadgen workloads) and the same two redis-server shards
# (redis-benchmark workloads), rounds alternating between targets; on request, TLS against plain
# TCP on the same redis shards (redis-benchmark --tls, openssl s_time handshakes).
# See bench/README.md for what is measured and how to read the table.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir="$ROOT/build"
do_build=1
rounds=3
duration=5
warmup=1
protocols="memcached,redis"
protocols_given=0
workloads=""
targets="direct,twemproxy,cachegate"
connections=32
pipeline_connections=8
pipeline_depth=16
value_size=100
keys=10000
lg_threads=1
pin="split"
nice_level=0
cachegate_bin=""
redis_clients=50
redis_pipeline=16
redis_duration=3
handshake_duration=3

usage() {
  cat <<EOF
usage: bash bench/run.sh [options]
  --build-dir DIR            CMake build directory (default: build)
  --no-build                 use the binaries already in the build directory
  --cachegate PATH           cachegate binary (default: BUILD/cachegate)
  --protocols LIST           comma-separated: memcached,redis,tls (default memcached,redis; tls
                             is TLS against plain TCP on redis, see bench/README.md)
  --rounds N                 rounds per workload, targets alternate in each (default $rounds)
  --duration S               measured seconds per memcached run (default $duration)
  --warmup S                 warm-up seconds per run, not measured (default $warmup)
  --workloads LIST           comma-separated, of: getset,multiget,pipeline (memcached),
                             redis-set,redis-get,redis-mset,redis-set-P16,redis-get-P16,
                             redis-mset-P16 (redis; the number is --redis-pipeline),
                             tls-redis-get,tls-redis-get-P16,tls-handshakes (tls)
                             (default: all of the selected protocols; without --protocols,
                             the families of the workloads named)
  --targets LIST             comma-separated: direct,twemproxy,cachegate (default all); for tls,
                             direct and cachegate each mean their plain and their TLS rows
  --connections C            connections for getset and multiget (default $connections)
  --pipeline-connections C   connections for pipeline (default $pipeline_connections)
  --pipeline-depth D         requests in flight per connection for pipeline (default $pipeline_depth)
  --value-size B             value size in bytes (default $value_size)
  --keys N                   key space (default $keys)
  --redis-clients C          redis-benchmark clients (default $redis_clients; direct: half per shard)
  --redis-pipeline P         redis-benchmark -P for the pipelined redis workloads (default $redis_pipeline)
  --redis-duration S         measured seconds per redis and tls-redis run, approximate:
                             redis-benchmark runs a request count, sized from the warm-up's rate
                             (default $redis_duration)
  --handshake-duration S     seconds per tls-handshakes run, whole seconds (openssl s_time -time;
                             it runs up to a second longer) (default $handshake_duration)
  --loadgen-threads T        load generator threads (default $lg_threads)
  --pin split|none           split: load generator on CPU 1, everything else on CPU 0
                             (default $pin; needs at least 2 CPUs, else none)
  --nice N                   run servers and load generator at this nice level; a negative one
                             (root only) keeps other work on a shared machine from disturbing
                             the run, at that work's expense (default 0)
EOF
}

while (($#)); do
  case "$1" in
    --build-dir) build_dir=$(realpath -m "$2"); shift ;;
    --no-build) do_build=0 ;;
    --cachegate) cachegate_bin=$(realpath -m "$2"); shift ;;
    --protocols) protocols=$2 protocols_given=1; shift ;;
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --workloads) workloads=$2; shift ;;
    --targets) targets=$2; shift ;;
    --connections) connections=$2; shift ;;
    --pipeline-connections) pipeline_connections=$2; shift ;;
    --pipeline-depth) pipeline_depth=$2; shift ;;
    --value-size) value_size=$2; shift ;;
    --keys) keys=$2; shift ;;
    --loadgen-threads) lg_threads=$2; shift ;;
    --pin) pin=$2; shift ;;
    --nice) nice_level=$2; shift ;;
    --redis-clients) redis_clients=$2; shift ;;
    --redis-pipeline) redis_pipeline=$2; shift ;;
    --redis-duration) redis_duration=$2; shift ;;
    --handshake-duration) handshake_duration=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ -n $cachegate_bin ]] || cachegate_bin="$build_dir/cachegate"
case "$pin" in split | none) ;; *) echo "run.sh: --pin must be split or none" >&2; exit 2 ;; esac
if [[ $pin == split && $(nproc) -lt 2 ]]; then pin=none; fi

if ((redis_clients < 2 || redis_pipeline < 2)); then
  echo "run.sh: --redis-clients and --redis-pipeline must be at least 2" >&2
  exit 2
fi
if [[ ! $handshake_duration =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: --handshake-duration must be a whole number of seconds, at least 1" >&2
  exit 2
fi

# The workloads of each protocol family; --workloads picks among them, --protocols picks families.
mc_all="getset,multiget,pipeline"
redis_all="redis-set,redis-get,redis-mset,redis-set-P$redis_pipeline,redis-get-P$redis_pipeline,redis-mset-P$redis_pipeline"
tls_all="tls-redis-get,tls-redis-get-P$redis_pipeline,tls-handshakes"
in_list() { [[ ",$2," == *",$1,"* ]]; }  # item list
for p in ${protocols//,/ }; do
  in_list "$p" memcached,redis,tls || { echo "run.sh: unknown protocol $p (memcached, redis, tls)" >&2; exit 2; }
done
if [[ -n $workloads ]]; then
  for w in ${workloads//,/ }; do
    in_list "$w" "$mc_all,$redis_all,$tls_all" || { echo "run.sh: unknown workload $w" >&2; usage >&2; exit 2; }
  done
  # Naming a workload is enough to get it; --protocols only narrows when given as well.
  if ((!protocols_given)); then protocols="memcached,redis,tls"; fi
fi
pick_workloads() {  # family all-of-family
  local w picked=""
  in_list "$1" "$protocols" || return 0
  for w in ${2//,/ }; do
    if [[ -z $workloads ]] || in_list "$w" "$workloads"; then picked+="${picked:+,}$w"; fi
  done
  echo "$picked"
}
mc_workloads=$(pick_workloads memcached "$mc_all")
redis_workloads=$(pick_workloads redis "$redis_all")
tls_workloads=$(pick_workloads tls "$tls_all")
if [[ -z $mc_workloads && -z $redis_workloads && -z $tls_workloads ]]; then
  echo "run.sh: no workload selected (--protocols $protocols, --workloads $workloads)" >&2
  exit 2
fi
workloads=$(echo "$mc_workloads,$redis_workloads,$tls_workloads" | sed 's/,,*/,/g; s/^,//; s/,$//')
# The redis shards serve the redis family and the TLS GET rows.
shards_needed=""
if [[ -n $redis_workloads || -n $tls_workloads ]]; then shards_needed=1; fi

tools=(taskset awk)
if [[ -n $mc_workloads || -n $redis_workloads ]]; then tools+=(nutcracker); fi
if [[ -n $mc_workloads ]]; then tools+=(memcached); fi
if [[ -n $shards_needed ]]; then tools+=(redis-server redis-benchmark redis-cli); fi
if [[ -n $tls_workloads ]]; then tools+=(openssl); fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (scripts/setup.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cachegate-bench.XXXXXX")
results_dir="$ROOT/bench/results"
mkdir -p "$results_dir"
stamp=$(date +%Y%m%d-%H%M%S)
report="$results_dir/$stamp.txt"
logs="$results_dir/$stamp-logs"
notes=()
pids=()
autogroup_nice=""
loadgen_pid=""
bench_pids=()
keep_logs=0

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $loadgen_pid ]]; then pids+=("$loadgen_pid"); fi
  pids+=("${bench_pids[@]}")
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n $autogroup_nice ]]; then echo "$autogroup_nice" >"/proc/$$/autogroup" 2>/dev/null || true; fi
  if ((keep_logs || status != 0)); then
    mkdir -p "$logs"
    cp "$work"/*.log "$work"/*.yml "$work"/*.yaml "$logs"/ 2>/dev/null || true
    echo "run.sh: logs kept in $logs" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() {
  notes+=("$*")
  if [[ $* == *"$logs/"* ]]; then keep_logs=1; fi
  echo "note: $*" >&2
}

# ---- build -------------------------------------------------------------------------------------
loadgen="$build_dir/cachegate_loadgen"
if ((do_build)); then
  generator=()
  if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  echo "building in $build_dir ..." >&2
  if cmake -S "$ROOT" -B "$build_dir" "${generator[@]}" >"$work/cmake.log" 2>&1; then
    cmake --build "$build_dir" -j2 --target cachegate_loadgen >"$work/build-loadgen.log" 2>&1 || {
      cat "$work/build-loadgen.log" >&2
      echo "run.sh: the load generator did not build" >&2
      exit 1
    }
    if ! cmake --build "$build_dir" -j2 --target cachegate >"$work/build-cachegate.log" 2>&1; then
      # An older binary may still be there; measuring it would be measuring something else.
      note "cachegate did not build (log: $logs/build-cachegate.log): the cachegate column is skipped"
      targets=$(echo ",$targets," | sed 's/,cachegate,/,/; s/^,//; s/,$//')
    fi
  else
    # The rest of the tree may not configure yet; the load generator needs only OpenSSL, so it
    # is built on its own and only the cachegate column is lost.
    note "cmake configure failed (log: $logs/cmake.log); load generator built with g++ alone"
    loadgen="$build_dir/bench-standalone/cachegate_loadgen"
    mkdir -p "$(dirname "$loadgen")"
    "${CXX:-g++}" -std=c++20 -O2 -g -pthread "$ROOT"/bench/*.cc -o "$loadgen" -lssl -lcrypto
  fi
elif [[ ! -x $loadgen && -x $build_dir/bench-standalone/cachegate_loadgen ]]; then
  loadgen="$build_dir/bench-standalone/cachegate_loadgen"
fi
[[ -x $loadgen ]] || { echo "run.sh: no load generator at $loadgen" >&2; exit 1; }

want_target() { [[ ",$targets," == *",$1,"* ]]; }
if want_target cachegate && [[ ! -x $cachegate_bin ]]; then
  note "no cachegate binary at $cachegate_bin: the cachegate column is skipped"
  targets=$(echo ",$targets," | sed 's/,cachegate,/,/; s/^,//; s/,$//')
fi
# Each family has its own list: a proxy that does not start for one protocol keeps the other.
mc_targets=$targets
redis_targets=$targets
without_cachegate() { echo ",$1," | sed 's/,cachegate,/,/; s/^,//; s/,$//'; }
# TLS has no twemproxy column (it has no TLS): each of direct and cachegate is measured over plain
# TCP and over TLS, the plain row being the reference of its TLS row. Handshakes are cachegate's,
# against `openssl s_server` (OpenSSL's own server: the library's cost with nothing around it).
tls_targets="" hs_targets=""
if [[ -n $tls_workloads ]]; then
  for t in direct cachegate; do
    if want_target "$t"; then tls_targets+="${tls_targets:+,}$t,$t-tls"; fi
  done
  if want_target cachegate; then hs_targets="cachegate-1.3,s_server-1.3,cachegate-1.2,s_server-1.2"; fi
  if [[ -z $tls_targets ]]; then
    note "no target for the tls workloads (they measure direct and cachegate): they are skipped"
    if [[ -z $mc_workloads && -z $redis_workloads ]]; then exit 2; fi
  fi
fi

# ---- servers -----------------------------------------------------------------------------------
core_server=()
core_loadgen=()
if [[ $pin == split ]]; then
  core_server=(taskset -c 0)
  core_loadgen=(taskset -c 1)
fi
if [[ $nice_level != 0 ]]; then
  core_server+=(nice -n "$nice_level")
  core_loadgen+=(nice -n "$nice_level")
  # With autogroup scheduling (the default on desktop-style kernels) each session competes as a
  # whole and a process's own nice only matters inside its session, so the session's nice is
  # what keeps other sessions' builds off the cores. It is put back on exit.
  if [[ $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null) == 1 && -w /proc/$$/autogroup ]]; then
    saved=$(awk '{print $3}' "/proc/$$/autogroup")
    if echo "$nice_level" >"/proc/$$/autogroup" 2>/dev/null; then autogroup_nice=$saved; fi
  fi
fi
user_opt=()
if [[ $(id -u) -eq 0 ]]; then user_opt=(-u nobody); fi

read -r mc1_port mc2_port nc_port nc_stats_port cg_port rd1_port rd2_port ncr_port ncr_stats_port \
  cgr_port rd1_tls_port rd2_tls_port cgt_port cgt_tls_port ss_port < <("$loadgen" --free-ports 15)

wait_port() {  # port pid name
  local i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$2" 2>/dev/null; then return 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

start_memcached() {  # port variable-for-pid
  "${core_server[@]}" memcached "${user_opt[@]}" -l 127.0.0.1 -p "$1" -U 0 -t 1 -m 1024 -c 4096 \
    >"$work/memcached-$1.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_port "$1" "$pid" || { echo "run.sh: memcached on port $1 did not start" >&2; exit 1; }
  printf -v "$2" '%s' "$pid"
}

start_redis() {  # port variable-for-pid [tls-port]; returns 1 if it did not start
  local tls_opts=()
  if [[ -n ${3:-} ]]; then
    # Clients are not asked for certificates, as cachegate's listener does not ask either.
    tls_opts=(--tls-port "$3" --tls-cert-file "$work/server.pem" --tls-key-file "$work/server-key.pem"
      --tls-ca-cert-file "$work/ca.pem" --tls-auth-clients no)
  fi
  # --dir: nothing is saved (no RDB, no AOF), but should anything be written it lands in $work.
  "${core_server[@]}" redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$work" "${tls_opts[@]}" >"$work/redis-$1.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  if ! wait_port "$1" "$pid" || { [[ -n ${3:-} ]] && ! wait_port "$3" "$pid"; }; then
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  printf -v "$2" '%s' "$pid"
}

# A throwaway CA and a server certificate signed by it (EC P-256, CN=localhost, SAN 127.0.0.1),
# used by cachegate's TLS listener and redis-server's --tls-port alike.
make_certs() {
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -keyout "$work/ca-key.pem" -out "$work/ca.pem" -subj "/CN=cachegate bench CA" &&
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/server-key.pem" -out "$work/server.csr" -subj "/CN=localhost" &&
      printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$work/server-ext.cnf" &&
      openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$work/server-ext.cnf" -out "$work/server.pem" &&
      openssl verify -CAfile "$work/ca.pem" "$work/server.pem"
  } >"$work/certs.log" 2>&1 || {
    cat "$work/certs.log" >&2
    echo "run.sh: making the test certificates failed" >&2
    exit 1
  }
}

# One handshake with certificate checking against the CA and the address: "protocol cipher" on
# success. Makes sure the numbers below are of a listener clients would accept.
tls_probe() {  # port version-option
  local out
  out=$(openssl s_client -connect "127.0.0.1:$1" "$2" -CAfile "$work/ca.pem" -verify_return_error \
    -verify_ip 127.0.0.1 -brief </dev/null 2>&1) || { echo "$out" >>"$work/tls-probe.log"; return 1; }
  echo "$out" >>"$work/tls-probe.log"
  awk -F': ' '$1 == "Protocol version" { p = $2 } $1 == "Ciphersuite" { c = $2 }
    $1 == "Verification" && $2 == "OK" { ok = 1 }
    END { if (!ok || p == "") exit 1; print p, c }' <<<"$out"
}

start_nutcracker() {  # name config-body port stats-port variable-for-pid
  printf '%s\n' "$2" >"$work/$1.yml"
  "${core_server[@]}" nutcracker -c "$work/$1.yml" -s "$4" -a 127.0.0.1 -o "$work/$1.log" &
  local pid=$!
  pids+=("$pid")
  wait_port "$3" "$pid" || { echo "run.sh: nutcracker ($1) did not start" >&2; exit 1; }
  printf -v "$5" '%s' "$pid"
}

start_cachegate() {  # name config-body port variable-for-pid; returns 1 if it did not start
  printf '%s\n' "$2" >"$work/$1.yaml"
  "${core_server[@]}" "$cachegate_bin" -c "$work/$1.yaml" >"$work/$1.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  if ! wait_port "$3" "$pid"; then
    tail -5 "$work/$1.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  printf -v "$4" '%s' "$pid"
}

mc1_pid="" mc2_pid="" mc_pids="" nc_pid="" cg_pid=""
if [[ -n $mc_workloads ]]; then
  start_memcached "$mc1_port" mc1_pid
  start_memcached "$mc2_port" mc2_pid
  mc_pids="$mc1_pid,$mc2_pid"

  if in_list twemproxy "$mc_targets"; then
    start_nutcracker nutcracker "cache:
  listen: 127.0.0.1:$nc_port
  hash: fnv1a_64
  distribution: ketama
  timeout: 1000
  server_connections: 1
  servers:
    - 127.0.0.1:$mc1_port:1
    - 127.0.0.1:$mc2_port:1" "$nc_port" "$nc_stats_port" nc_pid
  fi

  if in_list cachegate "$mc_targets" && ! start_cachegate cachegate "workers: 1
listeners:
  - name: mc
    listen: 127.0.0.1:$cg_port
    protocol: memcached
    pool: cache
pools:
  cache:
    protocol: memcached
    distribution: ketama
    hash: fnv1a_64
    timeout: 1000
    servers:
      - 127.0.0.1:$mc1_port:1
      - 127.0.0.1:$mc2_port:1" "$cg_port" cg_pid; then
    note "cachegate (memcached) did not start (log: $logs/cachegate.log): its rows are skipped"
    mc_targets=$(without_cachegate "$mc_targets")
  fi
fi

rd1_pid="" rd2_pid="" ncr_pid="" cgr_pid="" cgt_pid=""
tls_direct=""
if [[ -n $tls_workloads ]]; then
  make_certs
  if in_list direct-tls "$tls_targets"; then tls_direct=1; fi
fi
if [[ -n $shards_needed ]]; then
  if [[ -n $tls_direct ]] && ! { start_redis "$rd1_port" rd1_pid "$rd1_tls_port" &&
    start_redis "$rd2_port" rd2_pid "$rd2_tls_port"; }; then
    # A redis-server built without TLS: only the direct-tls rows are lost.
    for port in "$rd1_port" "$rd2_port"; do
      mv "$work/redis-$port.log" "$work/redis-$port-tls.log" 2>/dev/null || true
    done
    note "redis-server did not start with --tls-port (log: $logs/redis-$rd1_port-tls.log): direct-tls is skipped"
    if [[ -n $rd1_pid ]]; then
      kill "$rd1_pid" 2>/dev/null || true
      wait "$rd1_pid" 2>/dev/null || true
    fi
    rd1_pid=""
    tls_direct=""
    tls_targets=$(echo ",$tls_targets," | sed 's/,direct-tls,/,/; s/^,//; s/,$//')
  fi
  if [[ -z $rd1_pid ]]; then
    start_redis "$rd1_port" rd1_pid || { echo "run.sh: redis-server on port $rd1_port did not start" >&2; exit 1; }
    start_redis "$rd2_port" rd2_pid || { echo "run.sh: redis-server on port $rd2_port did not start" >&2; exit 1; }
  fi

  # Every key of the key space, on both shards: the direct baseline asks each shard for any key,
  # and the proxies' gets hit wherever their ring puts a key. redis-benchmark's -r keys are
  # "key:" and 12 digits; SET and MSET later overwrite them with values of the same size.
  for port in "$rd1_port" "$rd2_port"; do
    awk -v n="$keys" -v size="$value_size" 'BEGIN {
      v = sprintf("%*s", size, ""); gsub(/ /, "x", v)
      for (i = 0; i < n; i++) {
        k = sprintf("key:%012d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
      }
    }' | redis-cli -h 127.0.0.1 -p "$port" --pipe >"$work/redis-prefill-$port.log" 2>&1 ||
      { cat "$work/redis-prefill-$port.log" >&2; echo "run.sh: prefill of redis on $port failed" >&2; exit 1; }
  done
fi

if [[ -n $redis_workloads ]]; then
  if in_list twemproxy "$redis_targets"; then
    start_nutcracker nutcracker-redis "red:
  listen: 127.0.0.1:$ncr_port
  redis: true
  hash: fnv1a_64
  distribution: ketama
  timeout: 1000
  server_connections: 1
  servers:
    - 127.0.0.1:$rd1_port:1
    - 127.0.0.1:$rd2_port:1" "$ncr_port" "$ncr_stats_port" ncr_pid
  fi

  if in_list cachegate "$redis_targets" && ! start_cachegate cachegate-redis "workers: 1
listeners:
  - {name: r, listen: \"127.0.0.1:$cgr_port\", pool: red}
pools:
  red:
    protocol: redis
    distribution: ketama
    hash: fnv1a_64
    timeout: 1000
    servers: [\"127.0.0.1:$rd1_port:1\", \"127.0.0.1:$rd2_port:1\"]" "$cgr_port" cgr_pid; then
    note "cachegate (redis) did not start (log: $logs/cachegate-redis.log): its rows are skipped"
    redis_targets=$(without_cachegate "$redis_targets")
  fi
fi

# TLS: a cachegate of its own with a plain and a TLS listener on one pool, so that the plain and
# the TLS rows are the same process, configuration and backend connections, and only the client
# side differs.
tls_versions=()  # "protocol cipher" negotiated by TLS 1.3 and TLS 1.2 clients, for the header
if [[ -n $tls_workloads ]] && in_list cachegate "$tls_targets"; then
  if ! start_cachegate cachegate-tls "workers: 1
listeners:
  - {name: plain, listen: \"127.0.0.1:$cgt_port\", pool: red}
  - name: tls
    listen: \"127.0.0.1:$cgt_tls_port\"
    pool: red
    tls: {cert: \"$work/server.pem\", key: \"$work/server-key.pem\"}
pools:
  red:
    protocol: redis
    distribution: ketama
    hash: fnv1a_64
    timeout: 1000
    servers: [\"127.0.0.1:$rd1_port:1\", \"127.0.0.1:$rd2_port:1\"]" "$cgt_tls_port" cgt_pid; then
    note "cachegate (tls) did not start (log: $logs/cachegate-tls.log): its tls rows are skipped"
  elif ! v13=$(tls_probe "$cgt_tls_port" -tls1_3) || ! v12=$(tls_probe "$cgt_tls_port" -tls1_2); then
    note "cachegate's TLS listener did not complete a verified handshake" \
      "(log: $logs/tls-probe.log): its tls rows are skipped"
    cgt_pid=""
  else
    tls_versions=("$v13" "$v12")
  fi
  if [[ -z $cgt_pid ]]; then
    tls_targets=$(echo ",$tls_targets," | sed 's/,cachegate,/,/; s/,cachegate-tls,/,/; s/^,//; s/,$//')
    hs_targets=""
  fi
fi
# The handshake reference: -www makes it read the client's request (there is none: s_time closes
# after the handshake) instead of standard input; one connection at a time, as s_time makes them.
ss_pid=""
if in_list tls-handshakes "$tls_workloads" && [[ -n $hs_targets ]]; then
  "${core_server[@]}" openssl s_server -accept "127.0.0.1:$ss_port" -cert "$work/server.pem" \
    -key "$work/server-key.pem" -www -quiet </dev/null >"$work/s_server.log" 2>&1 &
  ss_pid=$!
  pids+=("$ss_pid")
  if ! wait_port "$ss_port" "$ss_pid"; then
    note "openssl s_server did not start (log: $logs/s_server.log): its handshake rows are skipped"
    ss_pid=""
    hs_targets="cachegate-1.3,cachegate-1.2"
  fi
fi
if [[ -n $tls_workloads && -n $tls_direct ]] && ! tls_probe "$rd1_tls_port" -tls1_3 >/dev/null; then
  note "redis-server's TLS port did not complete a verified handshake" \
    "(log: $logs/tls-probe.log): direct-tls is skipped"
  tls_targets=$(echo ",$tls_targets," | sed 's/,direct-tls,/,/; s/^,//; s/,$//')
fi

# ---- runs --------------------------------------------------------------------------------------
IFS=, read -r -a mc_target_list <<<"$mc_targets"
IFS=, read -r -a redis_target_list <<<"$redis_targets"
IFS=, read -r -a tls_target_list <<<"$tls_targets"
IFS=, read -r -a hs_target_list <<<"$hs_targets"
IFS=, read -r -a workload_list <<<"$workloads"
raw="$work/results.jsonl"
: >"$raw"

run_one() {  # workload target round
  local workload=$1 target=$2 conns=$connections depth=1
  local dest cpu_pids
  if [[ $workload == pipeline ]]; then conns=$pipeline_connections depth=$pipeline_depth; fi
  case "$target" in
    direct) dest=(--servers "127.0.0.1:$mc1_port,127.0.0.1:$mc2_port"); cpu_pids=$mc_pids ;;
    twemproxy) dest=(--port "$nc_port"); cpu_pids=$nc_pid ;;
    cachegate) dest=(--port "$cg_port"); cpu_pids=$cg_pid ;;
  esac
  echo "  $workload round $3: $target" >&2
  # In the background with `wait`, so that Ctrl-C or TERM runs the cleanup at once instead of
  # after the run in progress.
  "${core_loadgen[@]}" "$loadgen" --host 127.0.0.1 "${dest[@]}" --workload "$workload" \
    --connections "$conns" --depth "$depth" --threads "$lg_threads" --duration "$duration" \
    --warmup "$warmup" --keys "$keys" --value-size "$value_size" --prefill --label "$target" \
    --seed "$3" --cpu-pids "$cpu_pids" --backend-pids "$mc_pids" >>"$raw" 2>>"$work/loadgen.log" &
  loadgen_pid=$!
  if ! wait "$loadgen_pid"; then
    note "$workload/$target round $3 failed (log: $logs/loadgen.log)"
  fi
  loadgen_pid=""
}

# ---- redis runs (redis-benchmark) --------------------------------------------------------------
# redis-benchmark runs a request count, not a duration, and has no warm-up. Each run is two
# passes: a warm-up pass of about --warmup seconds, not measured, whose rate sizes the measured
# pass to about --redis-duration seconds. CPU is sampled from /proc around the measured pass only.
clk_tck=$(getconf CLK_TCK)
declare -A redis_rate=()  # [workload,target] and [workload]: the last rate measured, req/s

# Sets `ticks` to utime + stime (all threads) of the given processes. No subshell, so that the
# script's own children accounting (used for redis-benchmark's CPU) is not disturbed.
cpu_ticks() {
  local pid line f
  ticks=0
  for pid in "$@"; do
    read -r line 2>/dev/null <"/proc/$pid/stat" || continue
    read -r -a f <<<"${line##*) }"
    ticks=$((ticks + f[11] + f[12]))
  done
}

# Sets `child_ticks` to the CPU of this script's children that have been waited for (cutime +
# cstime): redis-benchmark's CPU is the change across the measured pass.
own_child_ticks() {
  local line f
  read -r line <"/proc/$$/stat"
  read -r -a f <<<"${line##*) }"
  child_ticks=$((f[13] + f[14]))
}

# keyspace misses, error replies and calls of one command on one redis-server: "misses errors calls".
redis_counters() {  # port command
  redis-cli -h 127.0.0.1 -p "$1" info stats commandstats | tr -d '\r' | awk -F'[:,=]' -v cmd="cmdstat_$2" '
    $1 == "keyspace_misses" { m = $2 }
    $1 == "total_error_replies" { e = $2 }
    $1 == cmd { c = $3 }
    END { print m + 0, e + 0, c + 0 }'
}

rb_tls=()  # redis-benchmark's TLS options for the pass being run, empty for plain TCP
redis_start_pass() {  # output port clients requests test depth
  "${core_loadgen[@]}" redis-benchmark -h 127.0.0.1 -p "$2" "${rb_tls[@]}" -c "$3" -n "$4" \
    -r "$keys" -d "$value_size" -P "$6" -t "$5" --csv >"$1" 2>>"$work/redis-benchmark.log" &
  bench_pids+=("$!")
}

# One pass against a target; fails if any redis-benchmark failed (it exits on the first error
# reply or lost connection). Direct: one redis-benchmark per shard with half the clients and half
# the requests each, at the same time, so the two shards together see the same 50 clients.
# The TLS workloads' plain `cachegate` is the plain listener of the TLS family's cachegate.
redis_pass() {  # target test depth requests output-prefix family
  local pid status=0 c1=$((redis_clients / 2)) n1=$(($4 / 2))
  bench_pids=()
  rb_tls=()
  if [[ $1 == *-tls ]]; then rb_tls=(--tls --cacert "$work/ca.pem" --sni localhost); fi
  case "$6:$1" in
    *:direct)
      redis_start_pass "$5.1" "$rd1_port" "$c1" "$n1" "$2" "$3"
      redis_start_pass "$5.2" "$rd2_port" "$((redis_clients - c1))" "$(($4 - n1))" "$2" "$3"
      ;;
    *:direct-tls)
      redis_start_pass "$5.1" "$rd1_tls_port" "$c1" "$n1" "$2" "$3"
      redis_start_pass "$5.2" "$rd2_tls_port" "$((redis_clients - c1))" "$(($4 - n1))" "$2" "$3"
      ;;
    redis:twemproxy) redis_start_pass "$5.1" "$ncr_port" "$redis_clients" "$4" "$2" "$3" ;;
    redis:cachegate) redis_start_pass "$5.1" "$cgr_port" "$redis_clients" "$4" "$2" "$3" ;;
    tls:cachegate) redis_start_pass "$5.1" "$cgt_port" "$redis_clients" "$4" "$2" "$3" ;;
    tls:cachegate-tls) redis_start_pass "$5.1" "$cgt_tls_port" "$redis_clients" "$4" "$2" "$3" ;;
  esac
  for pid in "${bench_pids[@]}"; do wait "$pid" || status=1; done
  bench_pids=()
  return "$status"
}

# redis-benchmark --csv of one pass -> "rps p50_us p95_us p99_us max_us avg_us". With two
# processes (direct), the rate is all requests over the longer of the two elapsed times, the
# percentiles are the larger of the two (an upper bound; the shards are symmetric) and the mean
# is weighted by requests.
redis_parse() {  # total-requests files...
  local total=$1
  shift
  awk -F'"' -v total="$total" -v files=$# '
    BEGIN { split("", n) }
    FNR == 1 { f++; n[f] = (f < files) ? int(total / 2) : total - (files > 1 ? int(total / 2) : 0) }
    FNR > 1 && NF >= 16 && $4 > 0 {
      seen++; t = n[f] / $4; if (t > elapsed) elapsed = t
      avg += $6 * n[f]
      if ($10 > p50) p50 = $10; if ($12 > p95) p95 = $12; if ($14 > p99) p99 = $14; if ($16 > mx) mx = $16
    }
    END {
      if (seen != files || elapsed <= 0) exit 1
      printf "%.1f %.1f %.1f %.1f %.1f %.1f\n", total / elapsed, p50 * 1000, p95 * 1000, p99 * 1000, \
        mx * 1000, avg * 1000 / total
    }' "$@"
}

run_redis_one() {  # workload target round
  local workload=$1 target=$2 round=$3
  local test=${workload#tls-} depth=1 cpu_pids family=redis
  test=${test#redis-}
  if [[ $workload == tls-* ]]; then family=tls; fi
  if [[ $test == *-P* ]]; then depth=$redis_pipeline test=${test%-P*}; fi
  case "$family:$target" in
    *:direct | *:direct-tls) cpu_pids=("$rd1_pid" "$rd2_pid") ;;
    redis:twemproxy) cpu_pids=("$ncr_pid") ;;
    redis:cachegate) cpu_pids=("$cgr_pid") ;;
    tls:cachegate | tls:cachegate-tls) cpu_pids=("$cgt_pid") ;;
  esac
  echo "  $workload round $round: $target" >&2
  local out="$work/rb-$workload-$target-$round" floor=$((redis_clients * depth * 4))
  # A first guess for the first warm-up of a workload; after that, the rates measured.
  local rate=${redis_rate[$workload,$target]:-${redis_rate[$workload]:-}}
  if [[ -z $rate ]]; then
    rate=$((depth > 1 ? 100000 : 20000))
    if [[ $test == mset ]]; then rate=$((rate / 3)); fi
  fi
  local requests result
  if awk -v w="$warmup" 'BEGIN { exit !(w > 0) }'; then
    requests=$(awk -v r="$rate" -v s="$warmup" -v f="$floor" 'BEGIN { n = int(r * s); print n < f ? f : n }')
    if ! redis_pass "$target" "$test" "$depth" "$requests" "$out.warm" "$family" ||
      ! result=$(redis_parse "$requests" "$out".warm.*); then
      note "$workload/$target round $round failed in warm-up (log: $logs/redis-benchmark.log)"
      return
    fi
    rate=${result%% *}
  fi
  requests=$(awk -v r="$rate" -v s="$redis_duration" -v f="$floor" 'BEGIN { n = int(r * s); print n < f ? f : n }')

  local before1 before2 after1 after2
  before1=$(redis_counters "$rd1_port" "$test")
  before2=$(redis_counters "$rd2_port" "$test")
  local m0 m1 cpu0 cpu1 be0 be1 kn0 kn1 lg0 lg1 t0 t1 status=0
  read -r -a m0 </proc/stat
  cpu_ticks "${cpu_pids[@]}"; cpu0=$ticks
  cpu_ticks "$rd1_pid" "$rd2_pid"; be0=$ticks
  cpu_ticks "${cpu_pids[@]}" "$rd1_pid" "$rd2_pid"; kn0=$ticks
  own_child_ticks; lg0=$child_ticks
  t0=${EPOCHREALTIME/[.,]/}
  redis_pass "$target" "$test" "$depth" "$requests" "$out" "$family" || status=1
  t1=${EPOCHREALTIME/[.,]/}
  own_child_ticks; lg1=$child_ticks
  cpu_ticks "${cpu_pids[@]}"; cpu1=$ticks
  cpu_ticks "$rd1_pid" "$rd2_pid"; be1=$ticks
  cpu_ticks "${cpu_pids[@]}" "$rd1_pid" "$rd2_pid"; kn1=$ticks
  read -r -a m1 </proc/stat
  if ((status != 0)) || ! result=$(redis_parse "$requests" "$out".[12]); then
    note "$workload/$target round $round failed (log: $logs/redis-benchmark.log)"
    return
  fi
  after1=$(redis_counters "$rd1_port" "$test")
  after2=$(redis_counters "$rd2_port" "$test")
  redis_rate[$workload,$target]=${result%%.*}
  redis_rate[$workload]=${result%%.*}

  # direct counts both redis-servers as "the target"; they are not counted twice as known CPU.
  if [[ $target == direct* ]]; then kn0=$be0 kn1=$be1; fi
  awk -v label="$target" -v workload="$workload" -v test="$test" -v clients="$redis_clients" \
    -v depth="$depth" -v keys="$keys" -v value_size="$value_size" -v requests="$requests" \
    -v result="$result" -v before="$before1 $before2" -v after="$after1 $after2" \
    -v wall_us=$((t1 - t0)) -v tick_us="$(awk -v t="$clk_tck" 'BEGIN { print 1e6 / t }')" \
    -v cpu=$((cpu1 - cpu0)) -v be=$((be1 - be0)) -v lg=$((lg1 - lg0)) -v known=$(((kn1 - kn0) + (lg1 - lg0))) \
    -v busy=$(((m1[1] + m1[2] + m1[3] + m1[6] + m1[7]) - (m0[1] + m0[2] + m0[3] + m0[6] + m0[7]))) \
    -v steal=$((m1[8] - m0[8])) '
    BEGIN {
      split(result, r, " "); split(before, b, " "); split(after, a, " ")
      secs = wall_us / 1e6
      other = (busy - known) * tick_us / (secs * 1e4); if (other < 0) other = 0
      printf "{\"label\":\"%s\",\"workload\":\"%s\",\"tool\":\"redis-benchmark\",\"command\":\"%s\"," \
        "\"servers\":2,\"connections\":%d,\"depth\":%d,\"keys\":%d,\"value_size\":%d," \
        "\"duration_s\":%.3f,\"requests\":%d,\"rps\":%.1f,\"p50_us\":%.1f,\"p95_us\":%.1f," \
        "\"p99_us\":%.1f,\"max_us\":%.1f,\"avg_us\":%.1f,\"misses\":%d,\"errors\":%d," \
        "\"backend_commands_per_req\":%.3f,\"cpu_us_per_req\":%.3f,\"backend_cpu_us_per_req\":%.3f," \
        "\"loadgen_cpu_us_per_req\":%.3f,\"other_cpu_pct\":%.1f,\"steal_pct\":%.1f}\n",
        label, workload, toupper(test), clients, depth, keys, value_size, secs, requests,
        r[1], r[2], r[3], r[4], r[5], r[6], (a[1] + a[4]) - (b[1] + b[4]), (a[2] + a[5]) - (b[2] + b[5]),
        ((a[3] + a[6]) - (b[3] + b[6])) / requests, cpu * tick_us / requests, be * tick_us / requests,
        lg * tick_us / requests, other, steal * tick_us / (secs * 1e4)
    }' >>"$raw"
}

# ---- TLS handshakes (openssl s_time) -----------------------------------------------------------
# `openssl s_time -new`: one client, every connection a full handshake (no session resumption),
# verified against the test CA and closed right after it; it runs for whole seconds and prints
# how many connections it completed. Any failed connection ends it with an error.
hs_pass() {  # output port version-option seconds
  local status=0
  "${core_loadgen[@]}" openssl s_time -connect "127.0.0.1:$2" -new -time "$4" \
    -CAfile "$work/ca.pem" "$3" >"$1" 2>>"$work/s_time.log" &
  bench_pids=("$!")
  wait "${bench_pids[0]}" || status=1
  bench_pids=()
  return "$status"
}

hs_count() {  # s_time output -> connections completed
  awk '/ connections in [0-9.]+s;/ { print $1; found = 1; exit } END { exit !found }' "$1"
}

run_handshake_one() {  # workload target round
  local workload=$1 target=$2 round=$3 version_opt=-tls1_3 negotiated=${tls_versions[0]:-}
  local port=$cgt_tls_port pid=$cgt_pid
  if [[ $target == *-1.2 ]]; then version_opt=-tls1_2 negotiated=${tls_versions[1]:-}; fi
  if [[ $target == s_server-* ]]; then port=$ss_port pid=$ss_pid; fi
  echo "  $workload round $round: $target" >&2
  local out="$work/hs-$target-$round" warm_s count
  warm_s=$(awk -v w="$warmup" 'BEGIN { s = int(w); if (s < w) s++; print s }')
  if ((warm_s > 0)) && ! { hs_pass "$out.warm" "$port" "$version_opt" "$warm_s" && hs_count "$out.warm" >/dev/null; }; then
    note "$workload/$target round $round failed in warm-up (log: $logs/s_time.log)"
    return
  fi
  local m0 m1 cpu0 cpu1 be0 be1 kn0 kn1 lg0 lg1 t0 t1 status=0
  read -r -a m0 </proc/stat
  cpu_ticks "$pid"; cpu0=$ticks
  cpu_ticks "$rd1_pid" "$rd2_pid"; be0=$ticks
  cpu_ticks "$pid" "$rd1_pid" "$rd2_pid"; kn0=$ticks
  own_child_ticks; lg0=$child_ticks
  t0=${EPOCHREALTIME/[.,]/}
  hs_pass "$out" "$port" "$version_opt" "$handshake_duration" || status=1
  t1=${EPOCHREALTIME/[.,]/}
  own_child_ticks; lg1=$child_ticks
  cpu_ticks "$pid"; cpu1=$ticks
  cpu_ticks "$rd1_pid" "$rd2_pid"; be1=$ticks
  cpu_ticks "$pid" "$rd1_pid" "$rd2_pid"; kn1=$ticks
  read -r -a m1 </proc/stat
  if ((status != 0)) || ! count=$(hs_count "$out") || ((count == 0)); then
    note "$workload/$target round $round failed (log: $logs/s_time.log)"
    return
  fi
  # The rate is over the process's whole life as seen from here (s_time's own "real seconds" are
  # whole seconds); its start-up is a few milliseconds of that.
  awk -v label="$target" -v workload="$workload" -v negotiated="$negotiated" -v count="$count" \
    -v wall_us=$((t1 - t0)) -v tick_us="$(awk -v t="$clk_tck" 'BEGIN { print 1e6 / t }')" \
    -v cpu=$((cpu1 - cpu0)) -v be=$((be1 - be0)) -v lg=$((lg1 - lg0)) -v known=$(((kn1 - kn0) + (lg1 - lg0))) \
    -v busy=$(((m1[1] + m1[2] + m1[3] + m1[6] + m1[7]) - (m0[1] + m0[2] + m0[3] + m0[6] + m0[7]))) \
    -v steal=$((m1[8] - m0[8])) '
    BEGIN {
      split(negotiated, n, " ")
      secs = wall_us / 1e6
      other = (busy - known) * tick_us / (secs * 1e4); if (other < 0) other = 0
      printf "{\"label\":\"%s\",\"workload\":\"%s\",\"tool\":\"openssl s_time -new\"," \
        "\"protocol\":\"%s\",\"cipher\":\"%s\",\"connections\":1,\"duration_s\":%.3f," \
        "\"handshakes\":%d,\"rps\":%.1f,\"errors\":0,\"misses\":0,\"cpu_us_per_req\":%.3f," \
        "\"backend_cpu_us_per_req\":%.3f,\"loadgen_cpu_us_per_req\":%.3f,\"other_cpu_pct\":%.1f," \
        "\"steal_pct\":%.1f}\n",
        label, workload, n[1], n[2], secs, count, count / secs, cpu * tick_us / count,
        be * tick_us / count, lg * tick_us / count, other, steal * tick_us / (secs * 1e4)
    }' >>"$raw"
}

machine() {
  echo "date:        $(date -Iseconds)"
  echo "machine:     $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel:      $(uname -srm)"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
  if [[ -n $mc_workloads ]]; then echo "memcached:   $(memcached -V 2>&1 | head -1)"; fi
  if [[ -n $shards_needed ]]; then
    echo "redis:       $(redis-server --version 2>&1 | head -1 | cut -d' ' -f1-3), $(redis-benchmark --version 2>&1 | head -1)"
  fi
  if [[ -n $mc_workloads || -n $redis_workloads ]]; then echo "twemproxy:   $(nutcracker --version 2>&1 | head -1)"; fi
  if [[ -n $tls_workloads ]]; then
    echo "openssl:     $(openssl version 2>&1 | head -1)"
  fi
  if want_target cachegate; then
    echo "cachegate:   $cachegate_bin $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' +local changes')"
  else
    echo "cachegate:   not measured"
  fi
  echo "settings:    $rounds rounds, +${warmup}s warm-up per run, keys $keys, value ${value_size}B"
  if [[ -n $mc_workloads ]]; then
    echo "mc runs:     ${duration}s each, getset/multiget $connections conns depth 1," \
      "pipeline $pipeline_connections conns depth $pipeline_depth, loadgen threads $lg_threads"
  fi
  if [[ -n $redis_workloads ]]; then
    echo "redis runs:  ~${redis_duration}s each, redis-benchmark -c $redis_clients (direct: $((redis_clients / 2))" \
      "+ $((redis_clients - redis_clients / 2)) on the two shards in parallel), -r $keys -d $value_size," \
      "-P 1 and -P $redis_pipeline"
  fi
  if [[ -n $tls_workloads ]]; then
    echo "tls runs:    GET as the redis runs, with redis-benchmark --tls; handshakes: openssl s_time -new," \
      "${handshake_duration}s (+ up to 1s) each; server certificate EC P-256 signed by a test CA"
    if ((${#tls_versions[@]})); then
      echo "negotiated:  ${tls_versions[0]} (TLS 1.3 clients), ${tls_versions[1]} (TLS 1.2 clients)"
    fi
  fi
  if [[ $pin == split ]]; then
    echo "pinning:     load generator on CPU 1; both servers and the proxy on CPU 0"
  else
    echo "pinning:     none"
  fi
  echo "nice:        $nice_level${autogroup_nice:+, for the whole session (autogroup)}"
}

# Other work on the machine distorts everything here; measure how busy it is before starting.
busy_before() {
  local a b
  read -r -a a < <(head -1 /proc/stat)
  sleep 1
  read -r -a b < <(head -1 /proc/stat)
  local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[6] + a[7])))
  local all=$((busy + (b[4] + b[5] + b[8]) - (a[4] + a[5] + a[8])))
  echo $((all > 0 ? busy * 100 * $(nproc) / all : 0))
}

machine | tee "$work/machine.txt" >&2
busy=$(busy_before)
echo "busy before: ${busy}% of one core in use by other processes" | tee -a "$work/machine.txt" >&2
if ((busy > 10)); then
  note "the machine was busy before the run (${busy}% of one core); expect noisy numbers"
fi
start_time=$(date +%s)
for workload in "${workload_list[@]}"; do
  if [[ $workload == tls-handshakes ]]; then
    runner=run_handshake_one
    target_list=("${hs_target_list[@]}")
  elif [[ $workload == tls-* ]]; then
    runner=run_redis_one
    target_list=("${tls_target_list[@]}")
  elif [[ $workload == redis-* ]]; then
    runner=run_redis_one
    target_list=("${redis_target_list[@]}")
  else
    runner=run_one
    target_list=("${mc_target_list[@]}")
  fi
  for ((r = 1; r <= rounds; r++)); do
    # Rotate the order each round so no target always runs first (or right after another).
    n=${#target_list[@]}
    for ((i = 0; i < n; i++)); do
      "$runner" "$workload" "${target_list[$(((i + r - 1) % n))]}" "$r"
    done
  done
done
elapsed=$(($(date +%s) - start_time))

# ---- table -------------------------------------------------------------------------------------
table() {
  awk -v workloads="$workloads" -v mc_targets="$mc_targets" -v redis_targets="$redis_targets" \
    -v tls_targets="$tls_targets" -v hs_targets="$hs_targets" '
    function field(line, name,   m) {
      if (!match(line, "\"" name "\":(\"[^\"]*\"|[^,}]*)")) return ""
      m = substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
      gsub(/"/, "", m)
      return m
    }
    function median(key,   n, i, j, t, v) {
      n = cnt[key]
      if (n == 0) return -1
      for (i = 1; i <= n; i++) v[i] = vals[key, i]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function spread(key,   n, i, lo, hi, med) {
      n = cnt[key]
      if (n < 2) return "-"
      lo = hi = vals[key, 1]
      for (i = 2; i <= n; i++) { if (vals[key, i] < lo) lo = vals[key, i]; if (vals[key, i] > hi) hi = vals[key, i] }
      med = median(key)
      return med > 0 ? sprintf("%.0f%%", 100 * (hi - lo) / med) : "-"
    }
    function add(key, v) { vals[key, ++cnt[key]] = v + 0 }
    {
      w = field($0, "workload"); t = field($0, "label")
      add(w SUBSEP t SUBSEP "rps", field($0, "rps"))
      add(w SUBSEP t SUBSEP "p50", field($0, "p50_us"))
      add(w SUBSEP t SUBSEP "p99", field($0, "p99_us"))
      add(w SUBSEP t SUBSEP "cpu", field($0, "cpu_us_per_req"))
      add(w SUBSEP t SUBSEP "be", field($0, "backend_cpu_us_per_req"))
      add(w SUBSEP t SUBSEP "lg", field($0, "loadgen_cpu_us_per_req"))
      o = field($0, "other_cpu_pct") + 0
      if (o > other[w, t]) other[w, t] = o
      if (o > worst) worst = o
      errors[w, t] += field($0, "errors"); misses[w, t] += field($0, "misses")
    }
    # mc, redis: against twemproxy; tls: each TLS row against the plain row of the same target;
    # hs (handshakes): cachegate against openssl s_server with the same TLS version.
    function kind(w) { return w == "tls-handshakes" ? "hs" : w ~ /^tls-/ ? "tls" : w ~ /^redis-/ ? "redis" : "mc" }
    function header(k) {
      if (k == "hs") {
        fmt = "%-17s %-13s %8s %6s %7s %7s %9s %8s %8s %7s %7s %6s %6s %6s\n"
        printf fmt, "workload", "target", "hs/s", "spread", "p50 us", "p99 us", "CPU us/hs", "be us/hs", \
          "lg us/hs", "hs/ss", "CPU/ss", "other", "errors", "misses"
      } else if (k == "tls") {
        fmt = "%-17s %-13s %8s %6s %7s %7s %9s %8s %8s %7s %7s %6s %6s %6s\n"
        printf fmt, "workload", "target", "req/s", "spread", "p50 us", "p99 us", "CPU us/r", "be us/r", \
          "lg us/r", "rps/pl", "CPU/pl", "other", "errors", "misses"
      } else {
        fmt = "%-14s %-10s %8s %6s %7s %7s %8s %7s %7s %6s %6s %6s %6s %6s\n"
        printf fmt, "workload", "target", "req/s", "spread", "p50 us", "p99 us", "CPU us/r", "be us/r", \
          "lg us/r", "rps/tw", "CPU/tw", "other", "errors", "misses"
      }
    }
    END {
      nw = split(workloads, W, ",")
      last = ""
      for (a = 1; a <= nw; a++) {
        w = W[a]; k = kind(w)
        nt = split(k == "hs" ? hs_targets : k == "tls" ? tls_targets : k == "redis" ? redis_targets : mc_targets, T, ",")
        if (nt == 0) continue
        # A blank line between families; the TLS families have their own columns.
        if (last == "") header(k)
        else if (k != last) { print ""; if (k == "tls" || k == "hs" || last == "tls" || last == "hs") header(k) }
        last = k
        for (b = 1; b <= nt; b++) {
          t = T[b]; key = w SUBSEP t SUBSEP
          ref = k == "tls" || k == "hs" ? t : "twemproxy"
          if (k == "tls") sub(/-tls$/, "", ref)
          if (k == "hs") sub(/^cachegate-/, "s_server-", ref)
          ref_rps = median(w SUBSEP ref SUBSEP "rps"); ref_cpu = median(w SUBSEP ref SUBSEP "cpu")
          if (cnt[key "rps"] == 0) { printf fmt, w, t, "failed", "", "", "", "", "", "", "", "", "", "", ""; continue }
          rps = median(key "rps"); cpu = median(key "cpu")
          r_rps = ref_rps > 0 ? sprintf("%.2f", rps / ref_rps) : "-"
          # Against twemproxy, direct "CPU" is the servers themselves, with no proxy counterpart;
          # direct-tls against direct compares the servers with themselves, which is meaningful.
          r_cpu = ((k == "tls" || k == "hs" || t != "direct") && ref_cpu > 0) ? sprintf("%.2f", cpu / ref_cpu) : "-"
          p50 = k == "hs" ? "-" : sprintf("%.0f", median(key "p50"))
          p99 = k == "hs" ? "-" : sprintf("%.0f", median(key "p99"))
          printf fmt, w, t, sprintf("%.0f", rps), spread(key "rps"), p50, p99, sprintf("%.1f", cpu), \
            sprintf("%.1f", median(key "be")), sprintf("%.1f", median(key "lg")), r_rps, r_cpu, \
            sprintf("%.0f%%", other[w, t]), errors[w, t] + 0, misses[w, t] + 0
        }
      }
      if (worst > 10)
        printf "\nwarning: up to %.0f%% of a core went to other processes during a measured run;" \
          " those numbers are disturbed\n", worst
    }' "$raw"
}

{
  cat "$work/machine.txt"
  echo "run time:    ${elapsed}s"
  echo
  table
  echo
  echo "req/s, p50, p99 and CPU columns are medians over rounds; spread = (max - min) / median of req/s."
  echo "CPU us/r: the proxy's utime+stime per request (direct: both servers together); be us/r: both"
  echo "backend servers (memcached or redis-server) per request; lg us/r: the load generator"
  echo "(cachegate_loadgen or redis-benchmark). rps/tw, CPU/tw: vs twemproxy in the same workload."
  if [[ -n $tls_workloads ]]; then
    echo "tls-redis-*: cachegate and cachegate-tls are one process's plain and TLS listeners; rps/pl,"
    echo "CPU/pl: each row against the plain row of the same target (direct-tls: redis-server --tls-port)."
    echo "tls-handshakes: full handshakes (openssl s_time -new, one client) per second; CPU us/hs: the"
    echo "server's CPU per handshake, TCP accept and close included; hs/ss, CPU/ss: vs openssl s_server"
    echo "with the same TLS version (1.3 or 1.2)."
  fi
  echo "other: the most CPU (% of one core) used by anything else on the machine during a measured run."
  for n in "${notes[@]}"; do echo "note: $n"; done
  echo
  echo "raw results (one line per run):"
  cat "$raw"
} >"$report"

sed '/^raw results/,$d' "$report"
echo "written to $report"
