#!/bin/bash
# run-one.sh VARIANT WORKLOAD REP -- DRIVER-ARGS...
#
# Starts a fresh broker of VARIANT on a private socket/port, runs one
# bench-<peer> invocation against it, appends the RESULT line (prefixed
# with variant/workload/rep) to $RESULTS (default results/raw.txt), then
# stops every process it started, by pid.  Meant to be called as
#   flock /tmp/bench.lock ./run-one.sh ...
# so that timed runs never overlap with another job's.
#
# VARIANT: mosquitto | redis | redis-nolimit | nats | dbus-daemon |
#          dbus-broker | zmq | zmq-nodrop | herald | herald-backpressure
#
# herald variants run the release heraldd of this repository (two levels
# up from this directory; override with HERALDD=/path/to/heraldd), with
# HERALDD_ARGS (word-split) added to its command line, e.g.
# HERALDD_ARGS="--config $PWD/hundred-rules.toml" to measure a 100-rule policy.  If the
# binary is missing it is built first (`swift build -c release --product
# heraldd` at the repo root); ../compare.sh always runs that build once
# before its loop, outside the lock.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HERALDD=${HERALDD:-$ROOT/.build/release/heraldd}
VARIANT=$1 WL=$2 REP=$3
shift 3
[ "${1:-}" = "--" ] && shift
RESULTS=${RESULTS:-$HERE/results/raw.txt}
LOGDIR=${LOGDIR:-$HERE/results/logs}
mkdir -p "$(dirname "$RESULTS")" "$LOGDIR"

D=$(mktemp -d /tmp/peers-run.XXXXXX)
PIDS=()        # every process this script started (killed at exit)
BPID=""        # the broker process whose CPU/RSS is sampled
ADDR=""
CLIENT=""
ENVV=()
LOG="$LOGDIR/$VARIANT-$WL-r$REP.log"
: > "$LOG"

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "run-one: $*" >&2; echo "variant=$VARIANT wl=$WL rep=$REP RESULT status=fail what=\"$*\"" >> "$RESULTS"; exit 1; }

free_port() {
    local p
    for p in $(seq 14222 14262); do
        if ! "$HERE/waitsock" "tcp:127.0.0.1:$p" 0 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

start_broker() {
    case "$VARIANT" in
    mosquitto)
        cat > "$D/mosquitto.conf" <<EOF
# mosquitto 2.0 broker for the benchmark: unix socket only, no persistence
per_listener_settings false
allow_anonymous true
persistence false
user root
log_dest stderr
log_type error
log_type warning
listener 0 $D/mosq.sock
EOF
        mosquitto -c "$D/mosquitto.conf" >>"$LOG" 2>&1 &
        BPID=$!; PIDS+=($BPID)
        "$HERE/waitsock" "unix:$D/mosq.sock" 10000 || die "mosquitto did not start"
        ADDR="unix:$D/mosq.sock"; CLIENT=bench-mqtt
        ;;
    redis|redis-nolimit)
        local extra=()
        [ "$VARIANT" = redis-nolimit ] && extra=(--client-output-buffer-limit "pubsub 0 0 0")
        redis-server --port 0 --unixsocket "$D/redis.sock" --unixsocketperm 700 \
            --save '' --appendonly no --daemonize no --logfile '' "${extra[@]}" >>"$LOG" 2>&1 &
        BPID=$!; PIDS+=($BPID)
        "$HERE/waitsock" "unix:$D/redis.sock" 10000 || die "redis did not start"
        echo "client-output-buffer-limit: $(redis-cli -s "$D/redis.sock" config get client-output-buffer-limit | tail -1)" >> "$LOG"
        ADDR="unix:$D/redis.sock"; CLIENT=bench-redis
        ;;
    nats)
        local port
        port=$(free_port) || die "no free tcp port"
        nats-server -a 127.0.0.1 -p "$port" >>"$LOG" 2>&1 &
        BPID=$!; PIDS+=($BPID)
        "$HERE/waitsock" "tcp:127.0.0.1:$port" 10000 || die "nats-server did not start"
        ADDR="tcp:127.0.0.1:$port"; CLIENT=bench-nats
        ;;
    dbus-daemon)
        local name="bench-dbus-$$-$RANDOM"
        dbus-daemon --config-file=/usr/share/dbus-1/session.conf --address="unix:abstract=$name" \
            --nofork --print-address=1 >"$D/addr" 2>>"$LOG" &
        BPID=$!; PIDS+=($BPID)
        "$HERE/waitsock" "unix:@$name" 10000 || die "dbus-daemon did not start"
        ADDR="unix:abstract=$name"; CLIENT=bench-dbus
        ;;
    dbus-broker)
        # dbus-broker-launch needs a listening socket passed by socket
        # activation (systemd-socket-activate provides it without a running
        # systemd) and insists on connecting to journald's socket; a private
        # mount namespace gets a tmpfs on /run/systemd with our logsink bound
        # at /run/systemd/journal/socket.  Nothing outside changes.
        cat > "$D/inner.sh" <<EOF
mount -t tmpfs -o size=1m,mode=755 tmpfs /run/systemd || exit 97
mkdir -p /run/systemd/journal
"$HERE/logsink" /run/systemd/journal/socket >> "$LOG" 2>&1 &
echo \$! > "$D/logsink.pid"
for i in \$(seq 1 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.02; done
exec systemd-socket-activate -E XDG_RUNTIME_DIR="$D" -l "$D/bus" dbus-broker-launch --scope user
EOF
        unshare --mount --propagation private bash "$D/inner.sh" >>"$LOG" 2>&1 &
        local lpid=$!; PIDS+=($lpid)
        "$HERE/waitsock" "unix:$D/bus" 10000 || die "dbus-broker: socket not listening (see $LOG)"
        for _ in $(seq 1 200); do [ -s "$D/logsink.pid" ] && break; sleep 0.02; done
        [ -s "$D/logsink.pid" ] && PIDS+=($(cat "$D/logsink.pid"))
        for _ in $(seq 1 250); do
            BPID=$(pgrep -P "$lpid" -x dbus-broker | head -1)
            [ -n "$BPID" ] && break
            sleep 0.02
        done
        [ -n "$BPID" ] || die "dbus-broker did not start (see $LOG)"
        PIDS+=($BPID)
        ADDR="unix:path=$D/bus"; CLIENT=bench-dbus
        ;;
    zmq|zmq-nodrop)
        local x="ipc://@bench-xsub-$$-$RANDOM" p="ipc://@bench-xpub-$$-$RANDOM" flag=()
        if [ "$VARIANT" = zmq-nodrop ]; then flag=(--nodrop); ENVV=(BENCH_ZMQ_NODROP=1); fi
        "$HERE/zmq_broker" "${flag[@]}" "$x" "$p" >"$D/zmq.out" 2>>"$LOG" &
        BPID=$!; PIDS+=($BPID)
        for _ in $(seq 1 250); do grep -q READY "$D/zmq.out" 2>/dev/null && break; sleep 0.02; done
        grep -q READY "$D/zmq.out" || die "zmq_broker did not start"
        cat "$D/zmq.out" >> "$LOG"
        ADDR="$x,$p"; CLIENT=bench-zmq
        ;;
    herald|herald-backpressure)
        # heraldd defaults: slow-consumer policy drop, 8 MiB output limit per
        # subscriber, 1 MiB frames, log level info (one line per connection
        # and per drop episode; the final "stopped" line has the totals).
        # herald-backpressure: lossless, a full subscriber pauses the publisher.
        # The client's HELLO asks for the broker default (policy 0xFF, limit 0).
        if [ ! -x "$HERALDD" ]; then
            echo "building heraldd (swift build -c release --product heraldd in $ROOT)" >> "$LOG"
            (cd "$ROOT" && swift build -c release --product heraldd) >>"$LOG" 2>&1 || die "heraldd build failed (see $LOG)"
        fi
        local name="herald-peers-$$-$RANDOM" flag=()
        [ "$VARIANT" = herald-backpressure ] && flag=(--slow-consumer backpressure)
        # shellcheck disable=SC2086
        "$HERALDD" --address "@$name" "${flag[@]}" ${HERALDD_ARGS:-} >>"$LOG" 2>&1 &
        BPID=$!; PIDS+=($BPID)
        "$HERE/waitsock" "unix:@$name" 10000 || die "heraldd did not start (see $LOG)"
        ADDR="unix:@$name"; CLIENT=bench-herald
        ;;
    *) die "unknown variant $VARIANT" ;;
    esac
}

# heraldd stops cleanly on SIGTERM (GOODBYE to every client, flush, exit 0);
# stop it by pid and note its exit status in the log.
stop_herald() {
    case "$VARIANT" in herald*) ;; *) return 0 ;; esac
    kill -TERM "$BPID" 2>/dev/null || return 0
    local t=0
    while kill -0 "$BPID" 2>/dev/null && [ $t -lt 100 ]; do sleep 0.05; t=$((t + 1)); done
    if kill -0 "$BPID" 2>/dev/null; then
        echo "run-one: heraldd did not exit within 5 s of SIGTERM" >> "$LOG"
    else
        wait "$BPID" 2>/dev/null
        echo "run-one: heraldd exit status $?" >> "$LOG"
    fi
}

start_broker
sleep 0.2   # let the broker settle (startup work, GC of startup garbage)
OUT=$(env "${ENVV[@]}" timeout 240 "$HERE/$CLIENT" --addr "$ADDR" --broker-pid "$BPID" "$@" 2>>"$LOG")
rc=$?
stop_herald
LINE=$(printf '%s\n' "$OUT" | grep '^RESULT' | tail -1)
[ -n "$LINE" ] || LINE="RESULT status=fail what=no-result rc=$rc"
# broker-side events worth reporting (slow-consumer disconnects etc.)
# (heraldd: "over its output limit" = start of a drop episode, logged at most
# once a second per subscriber; "herald: ERROR" = an ERROR frame a client got)
EV=$(grep -c -i -E 'slow consumer|overcoming of output buffer|being disconnected|over its output limit|herald: ERROR' "$LOG" 2>/dev/null)
echo "variant=$VARIANT wl=$WL rep=$REP $LINE log_events=${EV:-0}" | tee -a "$RESULTS"
exit 0
