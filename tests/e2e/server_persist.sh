#!/usr/bin/env bash
# server_persist.sh - persistence end to end: the write order before a 2xx
# (temp file, fsync, rename, directory fsync; traced by SLORA_FSIO_TRACE),
# restart restores every adapter, and kill -9 during a stream of uploads
# loses no acknowledged version and never loads a partial file.
. "$(dirname "$0")/lib/daemon.sh"

for i in $(seq 1 12); do
    "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a$i.safetensors" --seed "$i" --rank $((2 + i % 5))
done
ver() { sha256sum "$1" | cut -c1-16; }

# durable write order, all before the reply
export SLORA_FSIO_TRACE=$TMP/trace
start_daemon "$TMP/state"
check "upload" 201 "$(status PUT "$URL/v1/adapters/acme/t" -T "$TMP/a1.safetensors")"
order=$(awk '{print $1}' "$TMP/trace" | grep -E '^(open|write|fsync|rename|dirsync)$' | uniq | tr '\n' ' ' | sed 's/ $//')
check_contains "temp file written, fsync'd, renamed, directory fsync'd" "open write fsync rename dirsync" "$order"
grep -q "rename .*/acme/\..*tmp.* .*/acme/t.safetensors ok" "$TMP/trace" || fail "rename of a temporary file not traced: $(cat "$TMP/trace")"
echo "ok - rename from a dot-temp file"
unset SLORA_FSIO_TRACE

# restart restores every adapter
for i in $(seq 1 6); do
    status PUT "$URL/v1/adapters/t$((i % 2))/n$i" -T "$TMP/a$i.safetensors" >/dev/null
done
before=$(curl -s "$URL/v1/adapters" | grep -o '"id":"[^"]*","object":"adapter","tenant":"[^"]*","name":"[^"]*","version":"[^"]*"' | sort)
stop_daemon
start_daemon "$TMP/state"
after=$(curl -s "$URL/v1/adapters" | grep -o '"id":"[^"]*","object":"adapter","tenant":"[^"]*","name":"[^"]*","version":"[^"]*"' | sort)
check "restart restores all adapters with their versions" "$before" "$after"
check "7 adapters restored" 7 "$(printf '%s\n' "$after" | wc -l)"
for i in $(seq 1 6); do
    check "restored t$((i % 2))/n$i byte-equal" "$(sha256sum <"$TMP/a$i.safetensors")" \
        "$(curl -s "$URL/v1/adapters/t$((i % 2))/n$i/file" | sha256sum)"
done

# kill -9 during a stream of uploads
"$PYTHON" - "$PORT" "$TMP" >"$TMP/acked" <<'PY' &
import http.client, sys
port, tmp = int(sys.argv[1]), sys.argv[2]
files = [open("%s/a%d.safetensors" % (tmp, i), "rb").read() for i in range(1, 13)]
i = 0
while True:
    name = "c%d" % (i % 3)
    body = files[i % len(files)]
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        print("try %s %d" % (name, i % len(files) + 1), flush=True)
        c.request("PUT", "/v1/adapters/crash/" + name, body=body)
        r = c.getresponse()
        r.read()
        if r.status in (200, 201):
            print("ack %s %d" % (name, i % len(files) + 1), flush=True)
    except Exception:
        break
    i += 1
PY
client=$!
wait_for "6 acknowledged uploads" count_at_least 6 sh -c "grep -c '^ack' '$TMP/acked' || true"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
wait "$client" || true
n_acked=$(grep -c '^ack' "$TMP/acked" || true)
[ "$n_acked" -gt 5 ] || fail "only $n_acked uploads acknowledged before the kill"
echo "ok - $n_acked uploads acknowledged before kill -9"

start_daemon "$TMP/state"
check_contains "restore skipped nothing" "0 skipped" "$(grep 'adapter(s) restored' "$DAEMON_LOG")"
for name in c0 c1 c2; do
    last=$(grep "^ack $name " "$TMP/acked" | tail -1 | cut -d' ' -f3)
    [ -n "$last" ] || continue
    tried=$(grep "^try $name " "$TMP/acked" | tail -1 | cut -d' ' -f3)
    got=$(curl -s "$URL/v1/adapters/crash/$name" | grep -o '"version":"[^"]*"' | cut -d'"' -f4)
    want=$(ver "$TMP/a$last.safetensors")
    inflight=$(ver "$TMP/a$tried.safetensors")
    if [ "$got" != "$want" ] && [ "$got" != "$inflight" ]; then
        fail "crash/$name: version $got is neither the last acknowledged ($want) nor the in-flight one ($inflight)"
    fi
    echo "ok - crash/$name holds the last acknowledged version (or the in-flight one)"
    check "crash/$name intact (bytes hash to its version)" "$got" "$(curl -s "$URL/v1/adapters/crash/$name/file" | sha256sum | cut -c1-16)"
done
leftovers=$(find "$TMP/state" -name '.*' -type f | wc -l)
check "no temporary files left after restore" 0 "$leftovers"
stop_daemon
echo "server_persist: $N_CHECKS checks passed"
