#!/usr/bin/env bash
# ctest's step_exact.two_hosts: test_step_exact on two "hosts" that share
# nothing but a network cable. Two network namespaces joined by a veth pair
# stand in for two machines; Open MPI starts one rank in each (mpirun in the
# first namespace, an orted in the second through a launch agent that enters
# it) and may talk only TCP over the veth: pml ob1, btl tcp,self, the btl and
# the out-of-band channel both restricted to the veth. Both runs (plain and
# --positives) must match the single-process gradient, the veth's byte
# counters must move, and the btl log must show a tcp connection between the
# two namespaces' addresses.
# With VLP_TWO_HOSTS_RUN="PROGRAM ARGS" it runs that instead of the test,
# on the same two namespaces, and prints its output (scripts/scaling.sh
# times collectives over TCP this way); VLP_TWO_HOSTS_TIMEOUT seconds
# (default 12) bound each mpirun, and VLP_TWO_HOSTS_SLOTS ranks (default 1)
# run in each namespace.
# Exits 77, "skipped", only when this machine cannot make network namespaces
# and veth pairs (not root, no iproute2, no kernel support).
#   mpi_two_hosts.sh BUILD [MPIRUN]
set -euo pipefail
build=${1:?usage: mpi_two_hosts.sh BUILD [MPIRUN]} mpirun=${2:-mpirun}
exe=$build/tests/test_step_exact
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
start=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) $1" | awk '{printf "%.2f", $1 - $2}'; }

skip() { echo "SKIP step_exact.two_hosts: $*"; exit 77; }
[ -x "$exe" ] || { echo "no $exe: build first"; exit 1; }
command -v "$mpirun" > /dev/null || { echo "no $mpirun"; exit 1; }
[ "$(id -u)" = 0 ] || skip "creating network namespaces needs root (running as uid $(id -u))"
command -v ip > /dev/null || skip "no ip command (iproute2) to create network namespaces"

# Unique per run, so that parallel runs do not collide. The addresses need not
# be: each pair of namespaces is a network of its own.
nsA=vlp2h-$$-a nsB=vlp2h-$$-b dev=vlp0 ipA=10.77.5.1 ipB=10.77.5.2
tmp=$(mktemp -d /tmp/vlp2h.$$.XXXXXX)
made=() mpipid=
cleanup() {
  local rc=$? ns pids
  trap - EXIT INT TERM
  [ -z "$mpipid" ] || kill -9 "$mpipid" 2> /dev/null || true # the timeout wrapping mpirun
  for ns in "${made[@]}"; do
    # Only processes this script started can be in these namespaces: mpirun,
    # the orted and the ranks, if a failure or a signal left them behind.
    pids=$(ip netns pids "$ns" 2> /dev/null || true)
    if [ -n "$pids" ]; then
      echo "cleanup: killing leftover processes in $ns:" $pids
      kill -9 $pids 2> /dev/null || true
      for _ in $(seq 40); do [ -z "$(ip netns pids "$ns" 2> /dev/null)" ] && break; sleep 0.05; done
    fi
    ip netns del "$ns" 2> /dev/null || echo "cleanup: could not delete namespace $ns"
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces of earlier runs that were killed before their trap could run
# (SIGKILL, e.g. a ctest timeout): the PID in the name is no longer alive.
for ns in $(ip netns list 2> /dev/null | grep -oE '^vlp2h-[0-9]+-[ab]' || true); do
  pid=${ns#vlp2h-} pid=${pid%-*}
  if ! kill -0 "$pid" 2> /dev/null; then
    echo "removing stale namespace $ns"
    pids=$(ip netns pids "$ns" 2> /dev/null || true)
    [ -z "$pids" ] || kill -9 $pids 2> /dev/null || true
    ip netns del "$ns" 2> /dev/null || true
  fi
done
for ns in "$nsA" "$nsB"; do
  err=$(ip netns add "$ns" 2>&1) || skip "cannot create a network namespace: ip netns add: $err"
  made+=("$ns")
done
# Each end is created directly inside its namespace, so both can be called vlp0.
err=$(ip -n "$nsA" link add "$dev" type veth peer name "$dev" netns "$nsB" 2>&1) ||
  skip "cannot create a veth pair between namespaces: $err"
for ns in "$nsA" "$nsB"; do
  # IPv4 only, so that every connection uses the addresses below (best effort).
  ip netns exec "$ns" sh -c "for c in all default $dev; do echo 1 > /proc/sys/net/ipv6/conf/\$c/disable_ipv6; done" 2> /dev/null || true
done
ip -n "$nsA" addr add "$ipA/24" dev "$dev"
ip -n "$nsB" addr add "$ipB/24" dev "$dev"
for ns in "$nsA" "$nsB"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$dev" up
done
echo "network: $nsA/$dev $ipA <-veth-> $nsB/$dev $ipB"

# The launch agent, used by Open MPI like ssh: "agent HOST COMMAND...", where
# COMMAND is the orted command line written for a remote shell. It runs that
# line with sh inside HOST's namespace instead of on another machine.
cat > "$tmp/agent" << EOF
#!/bin/sh
host=\$1
shift
case \$host in
  $ipA) ns=$nsA ;;
  $ipB) ns=$nsB ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
echo "agent: host \$host -> ip netns exec \$ns sh -c '...orted...', orted to call mpirun back at \$(echo "\$*" | sed -n 's/.*orte_hnp_uri "\([^"]*\)".*/\1/p')" >> "$tmp/agent.log"
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x "$tmp/agent"
# The hosts are named by their addresses: nothing to resolve.
slots=${VLP_TWO_HOSTS_SLOTS:-1}
printf '%s slots=%s\n%s slots=%s\n' "$ipA" "$slots" "$ipB" "$slots" > "$tmp/hosts"

mca=(--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$dev" --mca oob_tcp_if_include "$dev"
     --mca plm_rsh_agent "$tmp/agent")
# --bind-to none: each "host" would bind its ranks from core 0 on, so the
# two hosts' ranks would share this machine's first cores.
launch=(timeout -k 3 "${VLP_TWO_HOSTS_TIMEOUT:-12}" ip netns exec "$nsA" "$mpirun" -n $((2 * slots)) --hostfile "$tmp/hosts" --map-by node
        --bind-to none -x OPENBLAS_NUM_THREADS "${mca[@]}")
echo "mpirun (in $nsA): ${launch[*]:8}"

# mpi OUT ERR ARGS...: mpirun in the background, so that a signal to this
# script runs the traps at once rather than after mpirun returns (and with
# this script's own stdout: the redirections are on mpirun only).
mpi() {
  local out=$1 err=$2
  shift 2
  "${launch[@]}" "$@" > "$out" 2> "$err" &
  mpipid=$!
  wait "$mpipid"
}
counters() { ip netns exec "$nsA" cat /sys/class/net/$dev/statistics/rx_bytes /sys/class/net/$dev/statistics/tx_bytes | paste -sd' '; }

# Where the ranks run, and the settings they see.
probe='echo "rank $OMPI_COMM_WORLD_RANK: netns $(ip netns identify) $(ip -br -4 addr show '$dev' | tr -s " " | cut -d" " -f1,3) pml=$OMPI_MCA_pml btl=$OMPI_MCA_btl btl_tcp_if_include=$OMPI_MCA_btl_tcp_if_include oob_tcp_if_include=$OMPI_MCA_oob_tcp_if_include"'
if ! mpi "$tmp/probe.out" "$tmp/probe.err" --tag-output /bin/sh -c "$probe"; then
  cat "$tmp/probe.out" "$tmp/probe.err" "$tmp/agent.log" 2> /dev/null; echo "FAIL: could not start a rank in each namespace"; exit 1
fi
sort "$tmp/probe.out"
grep -q "rank 0: netns $nsA $dev@[a-z0-9]* $ipA/24 pml=ob1 btl=tcp,self" "$tmp/probe.out" &&
  grep -q "rank 1: netns $nsB $dev@[a-z0-9]* $ipB/24 pml=ob1 btl=tcp,self" "$tmp/probe.out" ||
  { echo "FAIL: ranks are not one per namespace with the tcp-only settings"; exit 1; }

if [ -n "${VLP_TWO_HOSTS_RUN:-}" ]; then
  # shellcheck disable=SC2086 # a command line, split on purpose
  mpi "$tmp/out" "$tmp/err" $VLP_TWO_HOSTS_RUN || { tail -40 "$tmp/err"; echo "FAIL: $VLP_TWO_HOSTS_RUN"; exit 1; }
  cat "$tmp/out"
  exit 0
fi

total=0
for args in "" "--positives"; do
  name="test_step_exact${args:+ $args}"
  read -r rx0 tx0 <<< "$(counters)"
  t0=$(date +%s.%N)
  status=0
  mpi "$tmp/out" "$tmp/err" --mca btl_base_verbose 30 "$exe" $args || status=$?
  read -r rx1 tx1 <<< "$(counters)"
  echo "== $name: exit $status in $(elapsed "$t0") s"
  cat "$tmp/out"
  if [ "$status" != 0 ] || ! grep -q "^rank 0 of 2," "$tmp/out"; then
    grep -v 'mca: base: \|btl:tcp: \(Attempting\|Successfully\|my listening\|examining\|using ipv\)' "$tmp/err" | tail -40 || true
    echo "FAIL: $name on two namespaces (exit $status)"; exit 1
  fi
  # The btl's own account of how each rank reached the other.
  grep -E 'bml: Using [a-z0-9]+ btl|btl:tcp: now connected' "$tmp/err" | sed 's/^/  /'
  used=$(grep -oE 'bml: Using [a-z0-9]+ btl' "$tmp/err" | awk '{print $3}' | sort -u | paste -sd, -)
  [ "$used" = "self,tcp" ] || { echo "FAIL: btls used: $used (want only self,tcp)"; exit 1; }
  # One TCP connection carries both directions, and only the side that opened
  # it logs "now connected" (which side does is a race: CI once saw only one).
  grep -qE "now connected to ($ipA|$ipB)" "$tmp/err" ||
    { echo "FAIL: no tcp connection between $ipA and $ipB in the btl log"; exit 1; }
  drx=$((rx1 - rx0)) dtx=$((tx1 - tx0))
  echo "  veth $nsA/$dev bytes: rx $rx0 -> $rx1 (+$drx), tx $tx0 -> $tx1 (+$dtx)"
  [ "$drx" -gt 0 ] && [ "$dtx" -gt 0 ] || { echo "FAIL: no traffic crossed the veth"; exit 1; }
  total=$((total + drx + dtx))
done

echo "== launches through the agent:"
cat "$tmp/agent.log"
echo "== ip -s link, both ends:"
ip -n "$nsA" -s link show "$dev"
ip -n "$nsB" -s link show "$dev"
echo "mca settings used: ${mca[*]}"
echo "two hosts: rank 0 in ns $nsA ($ipA), rank 1 in ns $nsB ($ipB), TCP over veth ($total bytes)," \
     "gradients match the single-process run (plain and --positives), $(elapsed "$start") s"
