#!/usr/bin/env bash
# Side-by-side benchmark: direct memcached vs twemproxy (nutcracker) vs cachegate, on the same two
# memcached servers and the same workloads, rounds alternating between targets.
# See bench/README.md for what is measured and how to read the table.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir="$ROOT/build"
do_build=1
rounds=3
duration=5
warmup=1
workloads="getset,multiget,pipeline"
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

usage() {
  cat <<EOF
usage: bash bench/run.sh [options]
  --build-dir DIR            CMake build directory (default: build)
  --no-build                 use the binaries already in the build directory
  --cachegate PATH           cachegate binary (default: BUILD/cachegate)
  --rounds N                 rounds per workload, targets alternate in each (default $rounds)
  --duration S               measured seconds per run (default $duration)
  --warmup S                 warm-up seconds per run, not measured (default $warmup)
  --workloads LIST           comma-separated: getset,multiget,pipeline (default all)
  --targets LIST             comma-separated: direct,twemproxy,cachegate (default all)
  --connections C            connections for getset and multiget (default $connections)
  --pipeline-connections C   connections for pipeline (default $pipeline_connections)
  --pipeline-depth D         requests in flight per connection for pipeline (default $pipeline_depth)
  --value-size B             value size in bytes (default $value_size)
  --keys N                   key space (default $keys)
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
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ -n $cachegate_bin ]] || cachegate_bin="$build_dir/cachegate"
case "$pin" in split | none) ;; *) echo "run.sh: --pin must be split or none" >&2; exit 2 ;; esac
if [[ $pin == split && $(nproc) -lt 2 ]]; then pin=none; fi

for tool in memcached nutcracker taskset awk; do
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
keep_logs=0

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $loadgen_pid ]]; then pids+=("$loadgen_pid"); fi
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
    # The rest of the tree may not configure yet; the load generator has no dependencies, so it
    # is built on its own and only the cachegate column is lost.
    note "cmake configure failed (log: $logs/cmake.log); load generator built with g++ alone"
    loadgen="$build_dir/bench-standalone/cachegate_loadgen"
    mkdir -p "$(dirname "$loadgen")"
    "${CXX:-g++}" -std=c++20 -O2 -g -pthread "$ROOT"/bench/*.cc -o "$loadgen"
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

read -r mc1_port mc2_port nc_port nc_stats_port cg_port < <("$loadgen" --free-ports 5)

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
mc1_pid="" mc2_pid=""
start_memcached "$mc1_port" mc1_pid
start_memcached "$mc2_port" mc2_pid
mc_pids="$mc1_pid,$mc2_pid"

nc_pid=""
if want_target twemproxy; then
  cat >"$work/nutcracker.yml" <<EOF
cache:
  listen: 127.0.0.1:$nc_port
  hash: fnv1a_64
  distribution: ketama
  timeout: 1000
  server_connections: 1
  servers:
    - 127.0.0.1:$mc1_port:1
    - 127.0.0.1:$mc2_port:1
EOF
  "${core_server[@]}" nutcracker -c "$work/nutcracker.yml" -s "$nc_stats_port" -a 127.0.0.1 \
    -o "$work/nutcracker.log" &
  nc_pid=$!
  pids+=("$nc_pid")
  wait_port "$nc_port" "$nc_pid" || { echo "run.sh: nutcracker did not start" >&2; exit 1; }
fi

cg_pid=""
if want_target cachegate; then
  cat >"$work/cachegate.yaml" <<EOF
workers: 1
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
      - 127.0.0.1:$mc2_port:1
EOF
  "${core_server[@]}" "$cachegate_bin" -c "$work/cachegate.yaml" >"$work/cachegate.log" 2>&1 &
  cg_pid=$!
  pids+=("$cg_pid")
  if ! wait_port "$cg_port" "$cg_pid"; then
    note "cachegate did not start (log: $logs/cachegate.log): the cachegate column is skipped"
    tail -5 "$work/cachegate.log" >&2 || true
    kill "$cg_pid" 2>/dev/null || true
    targets=$(echo ",$targets," | sed 's/,cachegate,/,/; s/^,//; s/,$//')
  fi
fi

# ---- runs --------------------------------------------------------------------------------------
IFS=, read -r -a target_list <<<"$targets"
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

machine() {
  echo "date:        $(date -Iseconds)"
  echo "machine:     $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel:      $(uname -srm)"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
  echo "memcached:   $(memcached -V 2>&1 | head -1)"
  echo "twemproxy:   $(nutcracker --version 2>&1 | head -1)"
  if want_target cachegate; then
    echo "cachegate:   $cachegate_bin $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' +local changes')"
  else
    echo "cachegate:   not measured"
  fi
  echo "settings:    $rounds rounds x ${duration}s (+${warmup}s warm-up), keys $keys, value ${value_size}B," \
    "getset/multiget $connections conns depth 1, pipeline $pipeline_connections conns depth $pipeline_depth," \
    "loadgen threads $lg_threads"
  if [[ $pin == split ]]; then
    echo "pinning:     load generator on CPU 1; memcached x2 and the proxy on CPU 0"
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
  for ((r = 1; r <= rounds; r++)); do
    # Rotate the order each round so no target always runs first (or right after another).
    n=${#target_list[@]}
    for ((i = 0; i < n; i++)); do
      run_one "$workload" "${target_list[$(((i + r - 1) % n))]}" "$r"
    done
  done
done
elapsed=$(($(date +%s) - start_time))

# ---- table -------------------------------------------------------------------------------------
table() {
  awk -v workloads="$workloads" -v targets="$targets" '
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
      add(w SUBSEP t SUBSEP "mc", field($0, "backend_cpu_us_per_req"))
      add(w SUBSEP t SUBSEP "lg", field($0, "loadgen_cpu_us_per_req"))
      o = field($0, "other_cpu_pct") + 0
      if (o > other[w, t]) other[w, t] = o
      if (o > worst) worst = o
      errors[w, t] += field($0, "errors"); misses[w, t] += field($0, "misses")
    }
    END {
      nw = split(workloads, W, ","); nt = split(targets, T, ",")
      fmt = "%-9s %-10s %8s %6s %7s %7s %8s %7s %7s %6s %6s %6s %6s %6s\n"
      printf fmt, "workload", "target", "req/s", "spread", "p50 us", "p99 us", "CPU us/r", "mc us/r", \
        "lg us/r", "rps/tw", "CPU/tw", "other", "errors", "misses"
      for (a = 1; a <= nw; a++) {
        w = W[a]
        tw_rps = median(w SUBSEP "twemproxy" SUBSEP "rps"); tw_cpu = median(w SUBSEP "twemproxy" SUBSEP "cpu")
        for (b = 1; b <= nt; b++) {
          t = T[b]; k = w SUBSEP t SUBSEP
          if (cnt[k "rps"] == 0) { printf fmt, w, t, "failed", "", "", "", "", "", "", "", "", "", "", ""; continue }
          rps = median(k "rps"); cpu = median(k "cpu")
          r_rps = tw_rps > 0 ? sprintf("%.2f", rps / tw_rps) : "-"
          # For direct, "CPU" is memcached itself, which has no proxy counterpart to compare.
          r_cpu = (t != "direct" && tw_cpu > 0) ? sprintf("%.2f", cpu / tw_cpu) : "-"
          printf fmt, w, t, sprintf("%.0f", rps), spread(k "rps"), sprintf("%.0f", median(k "p50")), \
            sprintf("%.0f", median(k "p99")), sprintf("%.1f", cpu), sprintf("%.1f", median(k "mc")), \
            sprintf("%.1f", median(k "lg")), r_rps, r_cpu, sprintf("%.0f%%", other[w, t]), \
            errors[w, t] + 0, misses[w, t] + 0
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
  echo "CPU us/r: the proxy's utime+stime per request (direct: both memcached together);"
  echo "mc us/r: both memcached per request; lg us/r: the load generator. rps/tw, CPU/tw: vs twemproxy."
  echo "other: the most CPU (% of one core) used by anything else on the machine during a measured run."
  for n in "${notes[@]}"; do echo "note: $n"; done
  echo
  echo "raw results (one line per run):"
  cat "$raw"
} >"$report"

sed '/^raw results/,$d' "$report"
echo "written to $report"
