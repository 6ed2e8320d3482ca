#!/usr/bin/env bash
# server_backpressure.sh - per-connection back-pressure with the smallest
# queue limits (max_queued_reply_bytes 4 KiB, max_queued_replies 2), small
# kernel buffers (tcp_send_buffer_bytes 4 KiB; the client's receive buffer
# too): a streamed completion that the client does not read blocks
# (slorad_blocked_connections), then arrives whole and equal to the same
# completion unstreamed; with a short idle_timeout_ms (300), a 2 MiB download read slowly for
# longer than idle_timeout_ms arrives whole (progress keeps the connection);
# a client that pipelines and never reads is closed once nothing was
# written for idle_timeout_ms.
. "$(dirname "$0")/lib/daemon.sh"

conf() { # conf IDLE_TIMEOUT_MS: the smallest queue limits and kernel buffers
    printf '{"max_queued_reply_bytes": 4096, "max_queued_replies": 2, "idle_timeout_ms": %d,
  "tcp_send_buffer_bytes": 4096}' "$1" >"$TMP/conf.json"
}
slow() { "$PYTHON" "$E2E_LIB/hostile.py" "$1" "$PORT" 0 "${@:2}"; }

# a stream the client does not read. A blocked connection nobody reads is
# closed after idle_timeout_ms, so this daemon gets 10 s: the client has to
# see the gauge and start reading within it, even on a loaded machine.
conf 10000
start_daemon "$TMP/state" --config "$TMP/conf.json"
want=$(curl -s "$URL/v1/completions" \
    -d '{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 400, "temperature": 0}' |
    "$PYTHON" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["choices"][0]["text"]))')
out=$(slow stream 400)
check_contains "unread stream: the daemon blocked it" "blocked=1" "$out"
check_contains "unread stream: complete once read ([DONE])" "done=1" "$out"
check "unread stream: the same text as unstreamed" "$want" "${out#*text=}"
stop_daemon

conf 300
start_daemon "$TMP/state" --config "$TMP/conf.json"

# a slow, steady reader of a large response
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/big.safetensors" --rank 92 --modules wq,wk,wv,wo,w1,w2,w3
check "upload a 2 MiB adapter" 201 "$(status PUT "$URL/v1/adapters/acme/big" -T "$TMP/big.safetensors")"
out=$(slow download /v1/adapters/acme/big/file 256)
check "slow download: every byte" "bytes=$(stat -c %s "$TMP/big.safetensors")" "${out%% *}"
check "slow download: the stored file" "sha256=$(sha256sum <"$TMP/big.safetensors" | cut -d' ' -f1)" "${out#* }"

# a client that never reads
check "a client that never reads is closed" "closed=1" "$(slow stall)"
check "blocked gauge back to 0" "slorad_blocked_connections 0" \
    "$(curl -s "$URL/metrics" | grep '^slorad_blocked_connections ')"

stop_daemon
echo "server_backpressure: $N_CHECKS checks passed"
