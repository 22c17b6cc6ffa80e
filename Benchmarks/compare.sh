#!/bin/bash
# compare.sh - Herald against Mosquitto, Redis, NATS, D-Bus (dbus-daemon,
# dbus-broker) and ZeroMQ: same workloads, same client-side method, same
# machine, one run.  Prints Herald/peer ratios at the end.
#
# usage: Benchmarks/compare.sh [--variants "herald nats ..."] [--workloads "W1 W4"]
#                              [--reps N] [--scale F] [--no-install] [--out DIR]
#
#   --variants   default: herald herald-backpressure mosquitto redis redis-nolimit
#                nats dbus-daemon dbus-broker zmq zmq-nodrop
#   --workloads  default: W1 W2 W3 W4 W5 W6 W8 (see peers/run-all.sh for what they are;
#                W8, request/reply, runs for herald, nats and the D-Bus daemons only)
#   --reps       repetitions of every cell, default 3 (the tables show medians)
#   --scale      multiplies every message count N (0.5: half-length runs; 0.05: smoke test)
#   --no-install do not apt-get missing peer brokers
#   --out        where to write (default: results/ beside this script)
#
# Steps: apt-get the peer brokers that are missing (Debian packages, as
# peers/run-all.sh does), build heraldd (`swift build -c release --product
# heraldd` at the repo root) and the C clients, run every variant x workload
# x rep through peers/run-all.sh (each timed run: fresh broker, `flock
# /tmp/bench.lock`), then write
#   results/latest.json  every RESULT line as a JSON object + machine facts,
#                        medians per cell and the ratio table
#   results/latest.md    the peers tables (like peers/results.md) + the
#                        Herald / best peer ratio tables
# and `python3 chart.py` turns latest.json into results/latest.svg.
# Raw RESULT lines, machine facts and broker logs of the run stay in
# results/raw-*.txt, results/meta-*.txt and results/logs-*/.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
PEERS="$BENCH/peers"
OUT="$BENCH/results"

VARIANTS="herald herald-backpressure mosquitto redis redis-nolimit nats dbus-daemon dbus-broker zmq zmq-nodrop"
WORKLOADS="W1 W2 W3 W4 W5 W6 W8"
REPS=3
SCALE=1
INSTALL=1
while [ $# -gt 0 ]; do
    case "$1" in
    --variants) VARIANTS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --out) mkdir -p "$2" && OUT=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for w in $WORKLOADS; do
    case "$w" in W[1-6]|W8) ;; *) echo "compare.sh: unknown workload $w" >&2; exit 2 ;; esac
done
for v in $VARIANTS; do
    case "$v" in
    herald|herald-backpressure|mosquitto|redis|redis-nolimit|nats|dbus-daemon|dbus-broker|zmq|zmq-nodrop) ;;
    *) echo "compare.sh: unknown variant $v" >&2; exit 2 ;;
    esac
done

T0=$(date +%s)

# python3 renders the JSON, the ratio tables and the chart (standard library only)
if ! command -v python3 >/dev/null 2>&1; then
    if [ $INSTALL = 1 ]; then
        (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
            apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null) ||
            { echo "compare.sh: python3 is needed" >&2; exit 1; }
    else
        echo "compare.sh: python3 is needed" >&2; exit 1
    fi
fi

# heraldd: the release build of this checkout (incremental; a no-op when up to date).
case " $VARIANTS " in *" herald"*)
    # heraldd links libsystemd (target CSystemd, found with pkg-config)
    if [ $INSTALL = 1 ]; then
        missing=""
        for p in pkg-config libsystemd-dev; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
        done
        if [ -n "$missing" ]; then
            echo "installing:$missing"
            (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
                apt-get install -y -qq --no-install-recommends $missing >/dev/null) ||
                { echo "compare.sh: apt-get install failed" >&2; exit 1; }
        fi
    fi
    export HERALDD=${HERALDD:-$ROOT/.build/release/heraldd}
    if command -v swift >/dev/null 2>&1; then
        echo "building heraldd: (cd $ROOT && swift build -c release --product heraldd)"
        (cd "$ROOT" && swift build -c release --product heraldd) || { echo "compare.sh: heraldd build failed" >&2; exit 1; }
    elif [ -x "$HERALDD" ]; then
        echo "compare.sh: no swift toolchain; using the existing $HERALDD" >&2
    else
        echo "compare.sh: no swift toolchain and no $HERALDD" >&2; exit 1
    fi
    ;;
esac

# install (peers/run-all.sh: missing Debian packages), build the clients, run the matrix
args=(--reps "$REPS" --scale "$SCALE" --variants "$VARIANTS" --workloads "$WORKLOADS" --out "$OUT" --report "$OUT/latest.md")
[ $INSTALL = 0 ] && args+=(--no-install)
"$PEERS/run-all.sh" "${args[@]}" || { echo "compare.sh: run-all.sh failed" >&2; exit 1; }

T1=$(date +%s)
# re-render the tables with repository-relative paths, add the ratio tables, write the JSON
META=$(readlink -f "$OUT/meta-latest.txt")
RAW=$(readlink -f "$OUT/raw-latest.txt")
if [ "$OUT" = "$BENCH/results" ]; then
    (cd "$BENCH" && peers/report.sh "results/$(basename "$META")" "results/$(basename "$RAW")") > "$OUT/latest.md.tmp"
else
    "$PEERS/report.sh" "$META" "$RAW" > "$OUT/latest.md.tmp"
fi &&
python3 "$PEERS/summarize.py" --meta "$META" --raw "$RAW" --json "$OUT/latest.json" \
    --md "$OUT/latest.md.tmp" --run-seconds $((T1 - T0)) > "$OUT/ratios.txt" ||
    { echo "compare.sh: summarize failed" >&2; exit 1; }
mv "$OUT/latest.md.tmp" "$OUT/latest.md"
python3 "$BENCH/chart.py" "$OUT/latest.json" "$OUT/latest.svg" || echo "compare.sh: chart.py failed" >&2

echo
echo "=============================================================================="
cat "$OUT/ratios.txt"
rm -f "$OUT/ratios.txt"
echo
echo "wrote $OUT/latest.json, $OUT/latest.md, $OUT/latest.svg (run took $(( (T1 - T0) / 60 )) min $(( (T1 - T0) % 60 )) s)"
