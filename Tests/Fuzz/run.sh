#!/usr/bin/env bash
# Builds Herald's libFuzzer targets with AddressSanitizer and runs each for SECONDS
# (default 60), starting from a seed corpus made of Protocol/vectors (every frame vector's
# bytes; for the session target, each prefixed as a feed to a handshaken peer).
#
# usage: Tests/Fuzz/run.sh [SECONDS] [TARGET ...]     targets: FuzzFrameDecoder FuzzBrokerSession
#
# Corpora grow in .build-fuzz/corpus/<target> (ignored by git); a crash leaves
# .build-fuzz/crash-<target>-* and makes this script exit non-zero: turn it into a
# regression test. Prints each target's executions and coverage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzFrameDecoder FuzzBrokerSession)
scratch="$root/.build-fuzz"
# Coverage instrumentation and AddressSanitizer everywhere; libFuzzer linked without its own
# main (the targets' main.swift calls LLVMFuzzerRunDriver: SwiftPM links an executable's main).
fuzzer_lib=$(dirname "$(command -v swiftc)")/../lib/clang
fuzzer_lib=$(ls "$fuzzer_lib"/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
(cd "$here" && swift build -c release --scratch-path "$scratch" \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xswiftc -use-ld=lld \
    -Xlinker "$fuzzer_lib" -Xlinker -lstdc++ 2>&1 | grep -E "error|Compiling Fuzz|Build" || true)
bin="$scratch/release"
for target in "${targets[@]}"; do [ -x "$bin/$target" ] || { echo "run.sh: $target did not build" >&2; exit 1; }; done

# Seed corpus: the hex of every frame vector (python3 reads the JSON).
python3 - "$root/Protocol/vectors" "$scratch/corpus" <<'PY'
import json, os, sys, glob
vectors, out = sys.argv[1], sys.argv[2]
frames = []
for path in sorted(glob.glob(os.path.join(vectors, "*.json"))):
    if path.endswith("topics.json"):
        continue
    for vector in json.load(open(path))["vectors"]:
        frames.append(bytes.fromhex(vector["hex"]))
for target in ("FuzzFrameDecoder", "FuzzBrokerSession"):
    os.makedirs(os.path.join(out, target), exist_ok=True)
for index, frame in enumerate(frames):
    open(os.path.join(out, "FuzzFrameDecoder", f"seed-{index}"), "wb").write(frame)
    # Session script: feed (action 0) to peer 2 (not yet handshaken) and to peer 0 (active),
    # in chunks of at most 255 bytes, then drain both.
    script = bytearray()
    for peer in (2, 0):
        for start in range(0, len(frame), 255):
            chunk = frame[start:start + 255]
            script += bytes([peer, len(chunk)]) + chunk
        script += bytes([(4 << 2) | peer])
    open(os.path.join(out, "FuzzBrokerSession", f"seed-{index}"), "wb").write(bytes(script))
PY

status=0
for target in "${targets[@]}"; do
    log="$scratch/$target.log"
    echo "== $target: $seconds s"
    if ! "$bin/$target" "$scratch/corpus/$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$scratch/crash-$target-" >"$log" 2>&1; then
        status=1
        echo "run.sh: $target FAILED; see $log and $scratch/crash-$target-*" >&2
        tail -30 "$log" >&2
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss|cov:" "$log" | tail -3
done
exit $status
