#!/usr/bin/env bash
# Builds the example package (against this checkout's library, by path) and runs each pair
# against a private broker: CI runs this, so the examples keep building and working.
#   bash examples/swift/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"
swift build --scratch-path "$root/.build-examples" 2>&1 | tail -3
bin=$(swift build --scratch-path "$root/.build-examples" --show-bin-path)
(cd "$root" && swift build --product heraldd 2>&1 | tail -1 && swift build --product herald 2>&1 | tail -1)
tools=$(cd "$root" && swift build --show-bin-path)
heraldd=$tools/heraldd
export HERALD_ADDRESS="@herald-examples-$$"
log=$(mktemp -d)
"$heraldd" --log-level warning 2> "$log/heraldd.log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$log"' EXIT
# Ready once it answers a ping (a readiness signal, not a fixed sleep).
for _ in $(seq 200); do "$tools/herald" ping > /dev/null 2>&1 && break; sleep 0.05; done

fail() { echo "examples: $*" >&2; cat "$log"/*.log >&2; exit 1; }

# State: the service publishes 3 levels; a panel started afterwards still sees the current one first.
timeout 30 "$bin/battery-service" --steps 3 --interval-ms 50 > "$log/service.out" || fail "battery-service failed"
timeout 30 "$bin/battery-panel" --count 2 > "$log/panel.out" || fail "battery-panel failed"
grep -q "level = 94 (current value)" "$log/panel.out" || fail "the panel did not see the current level first: $(cat "$log/panel.out")"
grep -q "state = stopped (current value)" "$log/panel.out" || fail "the panel did not see the service's state: $(cat "$log/panel.out")"

# Request/reply: no service yet means no responders, at once.
if timeout 10 "$bin/settings-client" theme > "$log/client0.out"; then fail "a request without a service succeeded"; fi
grep -q "no responder" "$log/client0.out" || fail "expected 'no responders': $(cat "$log/client0.out")"
timeout 30 "$bin/settings-service" --count 2 > "$log/settings.out" &
service=$!
for _ in $(seq 200); do grep -q ready "$log/settings.out" 2>/dev/null && break; sleep 0.05; done
timeout 10 "$bin/settings-client" theme > "$log/client1.out" || fail "settings-client theme failed: $(cat "$log/client1.out")"
grep -q "theme = dark" "$log/client1.out" || fail "unexpected answer: $(cat "$log/client1.out")"
if timeout 10 "$bin/settings-client" colour > "$log/client2.out"; then fail "an unknown key did not fail"; fi
grep -q "404" "$log/client2.out" || fail "expected the service's 404: $(cat "$log/client2.out")"
wait $service || fail "settings-service failed"

# Large buffers: 1080p frames (8 MiB each, over the broker's 1 MiB frame limit) as sealed memfds.
timeout 60 "$bin/frame-viewer" --count 3 > "$log/viewer.out" &
viewer=$!
for _ in $(seq 200); do grep -q ready "$log/viewer.out" 2>/dev/null && break; sleep 0.05; done
timeout 60 "$bin/frame-producer" --frames 3 > "$log/producer.out" || fail "frame-producer failed: $(cat "$log/producer.out")"
wait $viewer || fail "frame-viewer failed: $(cat "$log/viewer.out")"
[ "$(grep -c 'bytes mapped, centre pixel .* ok' "$log/viewer.out")" = 3 ] || fail "the viewer did not map 3 intact frames: $(cat "$log/viewer.out")"
cat "$log/panel.out" "$log/client1.out" "$log/client2.out" "$log/viewer.out"
echo "examples: all ran"
