#!/bin/bash
# Small real clusters on one machine: each host is a network namespace with
# its own address, joined to the others through a bridge (the switch) by a
# veth pair, and, for the programs started in it, its own host name.
#
#   hosts.sh up N          hosts n1..nN at $NET.1..$NET.N, the bridge at
#                          $NET.254 in this (the root) namespace
#   hosts.sh shape RATE    every host's sending rate limited to RATE (a tc
#                          rate: 10gbit, 1gbit, 200mbit), or 'none'
#   hosts.sh run HOST CMD  runs CMD on HOST: in its network namespace, with
#                          HOST as host name, on its own cores (CORES)
#   hosts.sh down          removes all of it (also when half made)
#   hosts.sh bits RATE     prints RATE in bits per second
#
# Environment: MN_PREFIX (namespace names, default trn: trn1, trn2, ...),
# MN_NET (the /24 subnet's first three numbers, default 10.77.0),
# MN_BRIDGE (default trbr0), MN_CORES (cores per host: host i runs on cores
# i-1, i-1+N, ... when unset, so that N hosts share the machine's cores
# evenly; 'all' for no binding).
set -euo pipefail
PREFIX=${MN_PREFIX:-trn}
NET=${MN_NET:-10.77.0}
BR=${MN_BRIDGE:-trbr0}
STATE=/run/trainer-hosts-$PREFIX

die() { echo "hosts.sh: $*" >&2; exit 1; }

hosts() { [ -f "$STATE" ] && cat "$STATE" || echo 0; }

up() {
    local n=$1
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "up: the number of hosts must be 1 to 99, not '$n'"
    command -v ip >/dev/null && command -v tc >/dev/null || die "needs ip and tc (iproute2)"
    down >/dev/null 2>&1 || true
    # leftovers of a run that lost its record (a crash, another record)
    ip link del "$BR" 2>/dev/null || true
    for i in $(seq "$n"); do ip netns del "$PREFIX$i" 2>/dev/null || true; done
    echo "$n" >"$STATE"
    ip link add "$BR" type bridge
    ip addr add "$NET.254/24" dev "$BR"
    ip link set "$BR" up
    for i in $(seq "$n"); do
        local ns=$PREFIX$i
        ip netns add "$ns"
        ip link add "$PREFIX$i-sw" type veth peer name eth0 netns "$ns"
        ip link set "$PREFIX$i-sw" master "$BR" up
        ip -n "$ns" addr add "$NET.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done
    # the bridge must not filter what crosses it (br_netfilter, if loaded)
    sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
}

# RATE: every host's egress (its eth0) through a token bucket; the burst
# scales with the rate (about 1 ms of it, at least 256 kB) so that fast
# links are not held back by a bucket smaller than one TCP window.
shape() {
    local rate=$1 n
    n=$(hosts)
    [ "$n" -gt 0 ] || die "shape: no hosts (up first)"
    for i in $(seq "$n"); do
        tc -n "$PREFIX$i" qdisc del dev eth0 root 2>/dev/null || true
    done
    [ "$rate" = none ] && return 0
    local bits
    bits=$(rate_bits "$rate") || die "shape: '$rate' is not a rate like 10gbit, 1gbit or 200mbit"
    local burst=$((bits / 8 / 1000))
    [ "$burst" -lt 262144 ] && burst=262144
    for i in $(seq "$n"); do
        tc -n "$PREFIX$i" qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
    done
}

rate_bits() {
    local r=${1,,}
    case "$r" in
    *gbit) echo $((${r%gbit} * 1000000000)) ;;
    *mbit) echo $((${r%mbit} * 1000000)) ;;
    *kbit) echo $((${r%kbit} * 1000)) ;;
    *) return 1 ;;
    esac
}

run() {
    local host=$1 n i cores
    shift
    [[ "$host" =~ ^n([0-9]+)$ ]] || die "run: no host '$host' (n1, n2, ...)"
    i=${BASH_REMATCH[1]}
    n=$(hosts)
    [ "$i" -ge 1 ] && [ "$i" -le "$n" ] || die "run: no host '$host' ($n hosts up)"
    cores=${MN_CORES:-}
    if [ -z "$cores" ]; then
        local online c
        online=$(nproc --all)
        cores=$(((i - 1) % online))
        for ((c = i - 1 + n; c < online; c += n)); do cores+=",$c"; done
    fi
    local bind=()
    [ "$cores" != all ] && bind=(taskset -c "$cores")
    exec nsenter --net="/var/run/netns/$PREFIX$i" unshare --uts \
        "${bind[@]}" sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}

down() {
    local n
    n=$(hosts)
    for i in $(seq "$n"); do
        ip netns pids "$PREFIX$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$PREFIX$i" 2>/dev/null || true
    done
    ip link del "$BR" 2>/dev/null || true
    rm -f "$STATE"
}

cmd=${1:-}
shift || true
case "$cmd" in
up) up "$@" ;;
shape) shape "$@" ;;
run) run "$@" ;;
down) down ;;
bits) rate_bits "${1:-}" || die "bits: '${1:-}' is not a rate like 10gbit, 1gbit or 200mbit" ;;
*) die "usage: hosts.sh up N | shape RATE|none | run HOST CMD... | down | bits RATE" ;;
esac
