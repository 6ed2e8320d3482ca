# wait.sh - waiting on conditions, never on time (sourced by daemon.sh and
# the scripts that run without it).

# wait_for WHAT COMMAND...: run COMMAND (a condition: a log line, a metric,
# a file) every 20 ms until it succeeds; after WAIT_S seconds (default 60,
# so that sanitizer builds never hit it) fail naming WHAT.
wait_for() {
    local what=$1 end=$((SECONDS + ${WAIT_S:-60}))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$end" ]; then
            if declare -F fail >/dev/null; then fail "timed out waiting for $what"; fi
            echo "FAIL: timed out waiting for $what" >&2
            exit 1
        fi
        sleep 0.02
    done
}

# file_has FILE PATTERN: FILE exists and has a line matching PATTERN (grep -E).
file_has() {
    grep -qE -- "$2" "$1" 2>/dev/null
}

# count_at_least N COMMAND...: COMMAND prints a number >= N.
count_at_least() {
    local n=$1 got
    shift
    got=$("$@") || true
    [ "${got:-0}" -ge "$n" ] 2>/dev/null
}
