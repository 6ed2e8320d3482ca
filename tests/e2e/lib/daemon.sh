# daemon.sh - shared by tests/e2e/server_*.sh (sourced): start/stop a real
# daemon on 127.0.0.1 with an ephemeral port and a temporary state dir,
# assertions that print what they checked. Sanitizer reports of the daemon
# (make check-asan) go to $TMP/san/daemon.<pid>: stop_daemon and the exit
# trap fail on any.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SLORAD=$BUILD/slorad
E2E_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$(cd "$E2E_LIB/../../fixtures" 2>/dev/null && pwd || true)
TMP=$(mktemp -d /tmp/slorad-e2e.XXXXXX)
DAEMON_PID=
PORT=
URL=
N_CHECKS=0
SAN_LOG=$TMP/san/daemon
mkdir -p "$TMP/san"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_LOG"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SAN_LOG"

# sanitizer_reports: the daemons' sanitizer logs so far (empty when clean).
sanitizer_reports() {
    cat "$SAN_LOG".* 2>/dev/null || true
}

cleanup() {
    local rc=$?
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -9 "$DAEMON_PID" 2>/dev/null || true
    fi
    local reports
    reports=$(sanitizer_reports)
    if [ -n "$reports" ]; then
        printf 'FAIL: sanitizer reports from the daemon:\n%s\n' "$reports" >&2
        rc=1
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${DAEMON_LOG:-}" ] && [ -f "$DAEMON_LOG" ]; then
        echo "--- daemon log (tail)" >&2
        tail -20 "$DAEMON_LOG" >&2
    fi
    exit 1
}

# check DESCRIPTION EXPECTED ACTUAL
check() {
    N_CHECKS=$((N_CHECKS + 1))
    if [ "$2" != "$3" ]; then
        fail "$1: expected '$2', got '$3'"
    fi
    echo "ok - $1"
}

# check_contains DESCRIPTION NEEDLE HAYSTACK
check_contains() {
    N_CHECKS=$((N_CHECKS + 1))
    case "$3" in
    *"$2"*) echo "ok - $1" ;;
    *) fail "$1: '$2' not in '$3'" ;;
    esac
}

# start_daemon STATE_DIR [flags...]: sets DAEMON_PID, PORT, URL, DAEMON_LOG.
# The model is stories260K unless DAEMON_MODEL gives other model flags.
start_daemon() {
    local state=$1
    shift
    DAEMON_LOG=$TMP/daemon.$RANDOM.log
    # shellcheck disable=SC2086 # DAEMON_MODEL is a list of flags
    "$SLORAD" serve --listen 127.0.0.1:0 --state-dir "$state" \
        ${DAEMON_MODEL:---model models/stories260K.bin --tokenizer models/tok512.bin} \
        "$@" 2>"$DAEMON_LOG" &
    DAEMON_PID=$!
    wait_for "the daemon to listen" listening_or_exited
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DAEMON_LOG" | head -1)
    URL=http://127.0.0.1:$PORT
}

listening_or_exited() {
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon exited at start: $(cat "$DAEMON_LOG")"
    file_has "$DAEMON_LOG" "listening on"
}

# log_has PATTERN: the daemon's log has a line matching PATTERN (grep -E).
log_has() {
    file_has "$DAEMON_LOG" "$1"
}

# metric NAME: its value on /metrics ($METRICS_KEY as the bearer key, if set).
metric() {
    curl -s ${METRICS_KEY:+-H "Authorization: Bearer $METRICS_KEY"} "$URL/metrics" |
        awk -v k="$1" '$1 == k {print $2}'
}

# metric_is NAME VALUE: a condition for wait_for.
metric_is() {
    [ "$(metric "$1")" = "$2" ]
}

# stop_daemon: SIGTERM, must exit 0.
stop_daemon() {
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    check "daemon exits 0 on SIGTERM" 0 "$rc"
    check "no sanitizer report from the daemon" "" "$(sanitizer_reports)"
}

# status METHOD URL [curl args...]: prints the HTTP status code only.
status() {
    local m=$1 u=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' -X "$m" "$@" "$u"
}

# key_hash KEY: sha256 hex of a key, as the config stores it.
key_hash() {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# auth_conf FILE: a config with the admin key "admin-key" and tenants acme
# ("acme-key") and beta ("beta-key").
auth_conf() {
    cat >"$1" <<JSON
{"admin_key_sha256": "$(key_hash admin-key)",
 "tenants": [{"name": "acme", "key_sha256": "$(key_hash acme-key)"},
             {"name": "beta", "key_sha256": "$(key_hash beta-key)"}]}
JSON
}

# raw: send stdin to the daemon over one TCP connection, print everything
# received until the peer closes or ${RAW_WAIT:-1} s of silence.
raw() {
    "$PYTHON" "$E2E_LIB/raw.py" "$PORT" "${RAW_WAIT:-1}"
}

# peak_growth CMD...: run CMD (output discarded) and print the daemon's peak
# RSS growth over it, in bytes (VmHWM restarted by clear_refs first).
peak_growth() {
    echo 5 >"/proc/$DAEMON_PID/clear_refs"
    local before
    before=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status")
    "$@" >/dev/null
    echo $((($(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status") - before) * 1024))
}
