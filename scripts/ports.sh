# Loopback port helpers for the scripts that start servers (sourced, not run).
#
#   port_in_use PORT        something answers on 127.0.0.1:PORT
#   random_port             a port below the kernel's ephemeral range, where no outgoing
#                           connection can be holding it
#   free_port               a random port nothing answers on
#   wait_port PORT PID      waits (up to 10 s) until PORT answers; fails at once if PID exits

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
random_port() { echo $((10000 + RANDOM % (ephemeral_low - 10000))); }
free_port() {
  local port
  port=$(random_port)
  while port_in_use "$port"; do port=$(random_port); done
  echo "$port"
}
wait_port() {
  for _ in $(seq 1 200); do
    port_in_use "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
