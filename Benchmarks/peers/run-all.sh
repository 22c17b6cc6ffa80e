#!/bin/bash
# run-all.sh - install, build, and measure every peer broker with the same
# workloads; print the results table and write results.md.
#
# usage: ./run-all.sh [--reps N] [--variants "mosquitto redis ..."]
#                     [--workloads "W1 W2 ..."] [--no-install] [--scale F]
#                     [--out DIR] [--report FILE]
#
# (Herald repository copy: variants herald and herald-backpressure added;
# --out puts raw-*/meta-*/logs-* in DIR instead of ./results, --report
# writes the markdown to FILE instead of ./results.md.  ../compare.sh
# drives this script.)
#
# Every timed run goes through `flock /tmp/bench.lock ./run-one.sh ...`, so
# it never overlaps another job's timed run on this 2-core machine.  Each
# run starts a fresh broker on a private unix socket (or a free loopback
# TCP port for NATS) and stops it by pid afterwards.
#
# Workloads (payload sizes in bytes, N per variant below):
#   W1 1 pub -> 1 sub, 64 B, N messages, throughput at the subscriber
#   W2 1 pub -> 8 subs, 64 B, N messages (8N deliveries)
#   W3 4 pubs -> 1 sub, 64 B, N messages per publisher (4N deliveries)
#   W4 ping-pong over two topics, 64 B, 1000 warm-up + 20000 measured RTTs
#   W5 1 pub -> 1 sub, 4096 B, N messages, MB/s
#   W6 (extra) 1 pub -> 2 subs, 64 B, N messages; subscriber 0 stops
#      reading for 2 s after its first message (slow-consumer behaviour)
#   W8 request/reply, 64 B, 1000 warm-up + 20000 measured, one in flight:
#      Herald REQUEST/REPLY, NATS request with a reply inbox, a D-Bus method
#      call (sd-bus); skipped for peers without request/reply
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"

REPS=3
VARIANTS="herald herald-backpressure mosquitto redis redis-nolimit nats dbus-daemon dbus-broker zmq zmq-nodrop"
WORKLOADS="W1 W2 W3 W4 W5 W6 W8"
INSTALL=1
SCALE=1
OUT="$HERE/results"
REPORT="$HERE/results.md"
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS=$2; shift 2 ;;
    --variants) VARIANTS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --scale) SCALE=$2; shift 2 ;;   # multiply every N (e.g. 0.1 for a smoke run)
    --out) OUT=$2; shift 2 ;;
    --report) REPORT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- install
PKGS="gcc make pkg-config libc6-dev util-linux procps systemd mosquitto redis-server redis-tools
      nats-server dbus-daemon dbus-broker libsystemd-dev libzmq3-dev"
if [ $INSTALL = 1 ]; then
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
            echo "apt-get install failed" >&2; exit 1; }
    fi
fi
# Debian's packages may have started their services (where a service manager
# runs); the benchmark always starts its own private instances instead.

# ------------------------------------------------------------------ build
make -s all || { echo "build failed" >&2; exit 1; }

# ------------------------------------------------------- N per variant
# Chosen on this machine so that each timed run lasts roughly 2-4 s
# (1-10 s bound).  Lossy peers (zmq default) get N large enough that the
# publishing phase itself lasts ~2 s.
n_for() { # variant workload -> N
    local v=$1 w=$2 n
    case "$w" in
    # herald (both policies; heraldd at 0e0ce2e, Nov 2026, on this machine): W1 ~14 M msg/s,
    # W2 ~20-24 M deliveries/s, W3 ~9-13 M msg/s, W5 ~1.4-1.9 GB/s, W6 fast sub ~7.5 M msg/s.
    W1|W6) case "$v" in
        mosquitto) n=500000 ;; redis|redis-nolimit) n=5000000 ;; nats) n=10000000 ;;
        dbus-daemon) n=400000 ;; dbus-broker) n=500000 ;; zmq) n=30000000 ;; zmq-nodrop) n=6000000 ;;
        herald|herald-backpressure) n=30000000 ;;
        esac ;;
    W2) case "$v" in
        mosquitto) n=50000 ;; redis|redis-nolimit) n=1500000 ;; nats) n=2500000 ;;
        dbus-daemon) n=40000 ;; dbus-broker) n=100000 ;; zmq) n=30000000 ;; zmq-nodrop) n=1200000 ;;
        herald|herald-backpressure) n=8000000 ;;
        esac ;;
    W3) case "$v" in   # per publisher
        mosquitto) n=125000 ;; redis|redis-nolimit) n=1500000 ;; nats) n=2500000 ;;
        dbus-daemon) n=100000 ;; dbus-broker) n=80000 ;; zmq) n=8000000 ;; zmq-nodrop) n=1500000 ;;
        herald|herald-backpressure) n=7000000 ;;
        esac ;;
    W5) case "$v" in
        mosquitto) n=300000 ;; redis|redis-nolimit) n=600000 ;; nats) n=700000 ;;
        dbus-daemon) n=200000 ;; dbus-broker) n=280000 ;; zmq) n=6000000 ;; zmq-nodrop) n=320000 ;;
        herald|herald-backpressure) n=1000000 ;;
        esac ;;
    W4|W8) n=20000 ;;
    esac
    [ "$w" = W6 ] && case "$v" in nats|zmq-nodrop|dbus-daemon) n=$((n * 6 / 10)) ;; esac
    # herald W6: two subscribers halve the fast one's rate; with backpressure the
    # publisher is also held back during the 2 s stall
    [ "$w" = W6 ] && case "$v" in herald) n=20000000 ;; herald-backpressure) n=10000000 ;; esac
    awk -v n="$n" -v s="$SCALE" 'BEGIN { x = int(n * s); if (x < 1000) x = 1000; print x }'
}

args_for() { # workload N -> driver arguments
    case "$1" in
    W1) echo "--mode tput --pubs 1 --subs 1 --size 64 --n $2" ;;
    W2) echo "--mode tput --pubs 1 --subs 8 --size 64 --n $2" ;;
    W3) echo "--mode tput --pubs 4 --subs 1 --size 64 --n $2" ;;
    W4) echo "--mode lat --size 64 --n $2 --warmup 1000" ;;
    W5) echo "--mode tput --pubs 1 --subs 1 --size 4096 --n $2" ;;
    W6) echo "--mode tput --pubs 1 --subs 2 --size 64 --n $2 --stall-ms 2000" ;;
    W8) echo "--mode rr --size 64 --n $2 --warmup 1000" ;;
    esac
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export RESULTS="$OUT/raw-$STAMP.txt"
export LOGDIR="$OUT/logs-$STAMP"
: > "$RESULTS"

# machine facts and versions, recorded before the runs
{
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc=$(nproc)"
    echo "uname=$(uname -srvmo)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "hypervisor=$(lscpu 2>/dev/null | awk -F: '/Hypervisor vendor/ {gsub(/^ +/, "", $2); print $2}')"
    echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "debian=$(cat /etc/debian_version)"
    echo "gcc=$(gcc -dumpfullversion)"
    echo "ver_mosquitto=$(dpkg-query -W -f='${Version}' mosquitto)"
    echo "ver_redis=$(dpkg-query -W -f='${Version}' redis-server)"
    echo "ver_nats=$(dpkg-query -W -f='${Version}' nats-server)"
    echo "ver_dbus_daemon=$(dpkg-query -W -f='${Version}' dbus-daemon)"
    echo "ver_dbus_broker=$(dpkg-query -W -f='${Version}' dbus-broker)"
    echo "ver_libzmq=$(dpkg-query -W -f='${Version}' libzmq5)"
    echo "ver_libsystemd=$(dpkg-query -W -f='${Version}' libsystemd0)"
    case " $VARIANTS " in *" herald"*)
        ROOT=$(cd "$HERE/../.." && pwd)
        HD=${HERALDD:-$ROOT/.build/release/heraldd}
        echo "ver_heraldd=$("$HD" --version 2>/dev/null || echo missing)"
        echo "heraldd_path=$HD"
        echo "heraldd_built=$(date -u -r "$HD" '+%Y-%m-%d %H:%M:%S' 2>/dev/null)"
        echo "herald_commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
        echo "swift=$(swift --version 2>/dev/null | head -1)"
        ;;
    esac
    echo "reps=$REPS scale=$SCALE"
    for v in $VARIANTS; do
        for w in $WORKLOADS; do echo "n_${v}_${w}=$(n_for "$v" "$w")"; done
    done
} > "$OUT/meta-$STAMP.txt"

total=0
# W8 (request/reply) runs only where the peer has request/reply: Herald, NATS, D-Bus.
has_rr() { case "$1" in herald|herald-backpressure|nats|dbus-daemon|dbus-broker) return 0 ;; esac; return 1; }
for r in $(seq 1 "$REPS"); do for v in $VARIANTS; do for w in $WORKLOADS; do
    [ "$w" = W8 ] && ! has_rr "$v" && continue
    total=$((total + 1))
done; done; done
i=0
# repetitions outermost: the 3 runs of one cell are spread over time
for r in $(seq 1 "$REPS"); do
    for v in $VARIANTS; do
        for w in $WORKLOADS; do
            [ "$w" = W8 ] && ! has_rr "$v" && continue
            i=$((i + 1))
            n=$(n_for "$v" "$w")
            printf '[%d/%d] %s %s rep %d (N=%s)\n' "$i" "$total" "$v" "$w" "$r" "$n"
            # shellcheck disable=SC2046
            flock /tmp/bench.lock "$HERE/run-one.sh" "$v" "$w" "$r" -- $(args_for "$w" "$n") > /dev/null
        done
    done
done

ln -sf "raw-$STAMP.txt" "$OUT/raw-latest.txt"
ln -sf "meta-$STAMP.txt" "$OUT/meta-latest.txt"
"$HERE/report.sh" "$OUT/meta-$STAMP.txt" "$RESULTS" > "$REPORT"
cat "$REPORT"
