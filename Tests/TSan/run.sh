#!/usr/bin/env bash
# Runs the whole test suite under ThreadSanitizer with the narrow suppressions in
# suppressions.txt (each explained there). Any report left is a finding.
#
# usage: Tests/TSan/run.sh [swift test arguments...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TSAN_OPTIONS="suppressions=$here/suppressions.txt ${TSAN_OPTIONS:-}"
cd "$root" && swift test --sanitize=thread --scratch-path "$root/.build-tsan" "$@"
