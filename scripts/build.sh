#!/usr/bin/env bash
# Builds intentd with CMake after making sure the dependencies are installed (scripts/deps.sh).
#   scripts/build.sh [release|asan|tsan]   (default release)
#   release -> build/       Release
#   asan    -> build-asan/  Debug, AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    -> build-tsan/  Debug, ThreadSanitizer
# Quiet unless something fails (then the full CMake output is shown); VERBOSE=1 shows it always.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

flavour=${1:-release}
case $flavour in
release) dir=build opts=(-DCMAKE_BUILD_TYPE=Release) ;;
asan) dir=build-asan opts=(-DCMAKE_BUILD_TYPE=Debug -DINTENTD_SANITIZE=ON) ;;
tsan) dir=build-tsan opts=(-DCMAKE_BUILD_TYPE=Debug -DINTENTD_TSAN=ON) ;;
*)
    echo "usage: scripts/build.sh [release|asan|tsan]" >&2
    exit 2
    ;;
esac

scripts/deps.sh >/dev/null

mkdir -p "$dir"
log=$dir/build.log
if [[ ${VERBOSE:-} == 1 ]]; then
    cmake -S . -B "$dir" "${opts[@]}" 2>&1 | tee "$log"
    cmake --build "$dir" -j"$(nproc)" 2>&1 | tee -a "$log"
else
    if ! { cmake -S . -B "$dir" "${opts[@]}" && cmake --build "$dir" -j"$(nproc)"; } >"$log" 2>&1
    then
        cat "$log" >&2
        echo "build: $flavour build failed (log: $PWD/$log)" >&2
        exit 1
    fi
fi
