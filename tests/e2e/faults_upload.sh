#!/usr/bin/env bash
# faults_upload.sh - I/O faults at each step of an upload through HTTP
# (SLORA_FAULT shim, src/fsio.c): ENOSPC/EDQUOT answer 507, other errors
# 500, naming the failed operation; the previous version keeps serving
# (metadata, file bytes, inference on it); nothing partial remains in the
# state directory; a new name under a fault stays absent; after a clean
# restart the previous version is what is restored.
. "$(dirname "$0")/lib/daemon.sh"

"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/v1.safetensors" --seed 1
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/v2.safetensors" --seed 2
ver() { sha256sum "$1" | cut -c1-16; }
V1=$(ver "$TMP/v1.safetensors")
json_field() { "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)'"$1"')'; }

start_daemon "$TMP/state"
check "v1 stored" 201 "$(status PUT "$URL/v1/adapters/acme/x" -T "$TMP/v1.safetensors")"
stop_daemon

# FAULT EXPECTED_STATUS OP_IN_MESSAGE NEW_NAME_STATUS (a first upload has no
# previous version to link, and a numbered fault fires only once); dirsync:...:3 is the adapter directory's
# sync after the rename (1: state dir at start, 2: adapters dir at the first
# upload of the process), so the rollback path runs.
while read -r fault want op new; do
    export SLORA_FAULT=$fault SLORA_FSIO_TRACE=$TMP/trace
    rm -f "$TMP/trace"
    start_daemon "$TMP/state"
    out=$(curl -s -w ' %{http_code}' -T "$TMP/v2.safetensors" "$URL/v1/adapters/acme/x")
    check "$fault: replacing answers $want" "$want" "${out##* }"
    check_contains "$fault: the error names the $op step" "$op " "$out"
    check "$fault: previous version still current" "$V1" \
        "$(curl -s "$URL/v1/adapters/acme/x" | json_field '["version"]')"
    check "$fault: previous bytes still served" "$(sha256sum <"$TMP/v1.safetensors")" \
        "$(curl -s "$URL/v1/adapters/acme/x/file" | sha256sum)"
    check "$fault: inference runs on the previous version" "$V1" \
        "$(curl -s "$URL/v1/completions" -d '{"model":"acme/x","prompt":"Once","max_tokens":2,"temperature":0}' |
            json_field '["adapter_version"]')"
    out=$(curl -s -w ' %{http_code}' -T "$TMP/v2.safetensors" "$URL/v1/adapters/acme/fresh")
    check "$fault: a new name answers $new" "$new" "${out##* }"
    if [ "$new" = 201 ]; then
        check "$fault: the new name is removed again" 204 "$(status DELETE "$URL/v1/adapters/acme/fresh")"
    else
        check "$fault: the new name stays absent" 404 "$(status GET "$URL/v1/adapters/acme/fresh")"
    fi
    check "$fault: nothing partial in the state directory" "x.safetensors" \
        "$(ls -A "$TMP/state/adapters/acme" | tr '\n' ' ' | sed 's/ $//')"
    check "$fault: stored bytes are v1's" "$(sha256sum <"$TMP/v1.safetensors")" \
        "$(sha256sum <"$TMP/state/adapters/acme/x.safetensors")"
    grep -q "^$op .* $(echo "$fault" | cut -d: -f2)\$" "$TMP/trace" ||
        fail "$fault: the fault was not injected: $(cat "$TMP/trace")"
    echo "ok - $fault: the trace shows the injected $op failure"
    stop_daemon
    unset SLORA_FAULT SLORA_FSIO_TRACE
done <<'FAULTS'
open:ENOSPC 507 open 507
open:EIO 500 open 500
write:ENOSPC 507 write 507
write:EDQUOT 507 write 507
write:EIO 500 write 500
fsync:ENOSPC 507 fsync 507
fsync:EIO 500 fsync 500
link:EIO 500 link 201
rename:ENOSPC 507 rename 507
rename:EIO 500 rename 500
dirsync:ENOSPC:3 507 dirsync 201
dirsync:EIO:3 500 dirsync 201
FAULTS

start_daemon "$TMP/state"
check "after every fault, a clean restart restores v1" "$V1" \
    "$(curl -s "$URL/v1/adapters/acme/x" | json_field '["version"]')"
check_contains "restore skipped nothing" "1 adapter(s) restored, 0 skipped" "$(cat "$DAEMON_LOG")"
check "and the replacement now succeeds" 200 "$(status PUT "$URL/v1/adapters/acme/x" -T "$TMP/v2.safetensors")"
stop_daemon
echo "faults_upload: $N_CHECKS checks passed"
