#!/usr/bin/env bash
# A desktop-style event flow with nothing but the shell: a private heraldd, a script that
# reacts to power events, and a "service" that publishes them.
#
#   swift build -c release --product heraldd && swift build -c release --product herald
#   PATH="$PWD/.build/release:$PATH" examples/shell/power-events.sh
set -euo pipefail

export HERALD_ADDRESS="@herald-example/$$"   # every command below uses it
heraldd --log-level warning &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null' EXIT
herald ping --wait 5 --quiet                 # returns once the broker answers

# The reacting script: one JSON object per message; stops after three.
herald sub --json --count 3 'power/#' | while read -r line; do
    echo "reacting to: $line"
done &
reactor=$!

# Wait until the subscriber is live: publish a probe until it is seen would be the robust
# way; for a demo, the subscriber is up well within this.
sleep 0.5
herald pub power/battery 87
herald pub power/state charging
printf '{"level": 88, "charging": true}\n' | herald pub power/status
wait $reactor
