#!/usr/bin/env bash
# server_shutdown.sh - SIGTERM with every kind of job in flight and a drain
# timeout that cuts them: uploads validating on the workers and queued for
# them (several tenants), an upload warming the delta cache, and
# completions whose adapters' deltas are queued for generation. The
# daemon waits for the jobs it started before it frees the registry, the
# cache and the engine: it exits 0 and, under `make check-asan`, with no
# sanitizer report (a job touching freed state would be one).
. "$(dirname "$0")/lib/daemon.sh"

gen() { "$PYTHON" "$E2E_LIB/gen_adapter.py" "$@"; }
# a delta generation of heavy.st takes half a second, a validation of
# heavier.st about a second (a few under ASan): the eight tenants' uploads
# keep both workers busy for longer than the drain and the daemon's wait
# for stray calls together
gen "$TMP/heavy.st" --cp 61x61x61 --rank 6000 --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16
gen "$TMP/heavier.st" --cp 61x61x61 --rank 8000 --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16
printf '{"drain_timeout_ms": 100, "worker_threads": 2, "max_uploads_per_tenant": 1}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
for t in t0 t1 t2 t3; do
    check "stored $t/h" 201 "$(status PUT "$URL/v1/adapters/$t/h" -T "$TMP/heavy.st")"
done

# load.py KIND: every request of that kind at once, answers ignored (the
# drain cuts them)
cat >"$TMP/load.py" <<'PY'
import http.client, json, sys, threading
port, kind, body = int(sys.argv[1]), sys.argv[2], open(sys.argv[3], "rb").read()

def req(method, path, data):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request(method, path, body=data)
        c.getresponse().read()
    except Exception:
        pass

if kind == "uploads":  # two per tenant: one validates (or waits for a worker), one waits
    jobs = [("PUT", "/v1/adapters/%s/u%d%s" % (t, i, "?dry_run=1" if i else ""), body)
            for t in "abcdefgh" for i in range(2)]
else:  # four adapters' deltas to generate, and an upload warming the cache
    jobs = [("POST", "/v1/completions", json.dumps({"model": "t%d/h" % i, "prompt": "Once",
                                                    "max_tokens": 4}).encode()) for i in range(4)]
    jobs.append(("PUT", "/v1/adapters/d/w?warm=1", body))
threads = [threading.Thread(target=req, args=j) for j in jobs]
for t in threads:
    t.start()
for t in threads:
    t.join()
PY
# completions first: their requests are prepared on the same workers the
# uploads will occupy
"$PYTHON" "$TMP/load.py" "$PORT" generations "$TMP/heavy.st" &
generations=$!
wait_for "sequences waiting for delta generations" count_at_least 2 metric slorad_engine_acquiring
echo "ok - sequences wait for delta generations"
"$PYTHON" "$TMP/load.py" "$PORT" uploads "$TMP/heavier.st" &
uploads=$!
# at least one: how many are waiting at once depends on how fast the first
# uploads validate against the arrival of the rest (machine load)
wait_for "a tenant's second upload to wait for its slot" count_at_least 1 metric slorad_adapter_uploads_waiting
echo "ok - a tenant's second upload waits for its slot"
check "generations still queued at SIGTERM" 1 "$(($(metric slorad_engine_acquiring) >= 1))"
stop_daemon
wait "$uploads" "$generations" || true
if grep -E "never completed|still has .* users|still held" "$DAEMON_LOG"; then
    fail "shutdown left work behind"
fi
echo "ok - every job finished before the state it uses was freed"
echo "server_shutdown: $N_CHECKS checks passed"
