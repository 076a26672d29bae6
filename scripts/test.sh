#!/usr/bin/env bash
# THE test command: installs dependencies, builds the release, asan (ASan+UBSan) and tsan trees,
# starts a fresh private PostgreSQL, Redis and anvil (SERVICES_DIR=.local/test-services) whose
# URLs the tests get from the environment, runs ctest in build/ and build-asan/, and the tests
# labelled `tsan` in build-tsan/. Stops the services on exit, also on failure. Ends with the line
# "N passed, N failed" and exits non-zero if anything failed. Test logs: .local/test-logs/.
# Quiet unless something fails; VERBOSE=1 shows ctest's output as it runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export SERVICES_DIR=$ROOT/.local/test-services
LOG_DIR=$ROOT/.local/test-logs

scripts/deps.sh
for flavour in release asan tsan; do
    scripts/build.sh "$flavour"
done

# ---- services ---------------------------------------------------------------------------------
trap 'scripts/services.sh stop || echo "test: could not stop the test services" >&2' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/services.sh clean # every run starts from empty data
scripts/services.sh start pg redis anvil
# shellcheck source=/dev/null
. "$SERVICES_DIR.env" # exports DATABASE_URL, REDIS_URL, RPC_URL, CHAIN_ID

# ---- ctest ------------------------------------------------------------------------------------
passed=0
failed=0
ok=1
mkdir -p "$LOG_DIR"

# run_ctest NAME DIR [CTEST_ARGS...]: runs ctest in DIR and adds its counts to the totals.
run_ctest() {
    local name=$1 dir=$2 log=$LOG_DIR/ctest-$1.log rc=0 line total bad
    shift 2
    if [[ ${VERBOSE:-} == 1 ]]; then
        ctest --test-dir "$dir" --output-on-failure --timeout 600 "$@" 2>&1 | tee "$log" ||
            rc=$?
    else
        ctest --test-dir "$dir" --output-on-failure --timeout 600 "$@" >"$log" 2>&1 || rc=$?
    fi
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of' "$log" | tail -n 1 || true)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        bad=${BASH_REMATCH[1]} total=${BASH_REMATCH[2]}
        passed=$((passed + total - bad))
        failed=$((failed + bad))
        if ((bad > 0 || rc != 0)); then
            [[ ${VERBOSE:-} == 1 ]] || cat "$log" >&2
            echo "test: $name: $bad of $total tests failed (log: $log)" >&2
            ok=0
        fi
    elif ((rc == 0)) && grep -q 'No tests were found' "$log"; then
        echo "test: warning: $name: no tests found in $dir${*:+ ($*)}" >&2
    else
        [[ ${VERBOSE:-} == 1 ]] || cat "$log" >&2
        echo "test: $name: ctest did not finish (exit $rc, log: $log)" >&2
        ok=0
    fi
}

run_ctest release build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest asan build-asan
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
    run_ctest tsan build-tsan -L tsan

echo "$passed passed, $failed failed"
((ok))
