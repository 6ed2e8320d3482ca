#!/usr/bin/env bash
# fairness.sh - one tenant cannot starve the others:
#   1. uploads: with max_uploads_per_tenant 1, a tenant's burst of slow
#      uploads waits for its own slot (all succeed, in order) while another
#      tenant's upload is served at once; an upload whose client leaves
#      while waiting is never validated (lib/fairness.py uploads);
#   2. pins: max_pinned_bytes_per_tenant bounds one tenant's pinned
#      delta-cache bytes (507 naming the key), other tenants still pin.
# (max_generations_per_tenant: tests/check_engine_mix.c generation_limit.)
. "$(dirname "$0")/lib/daemon.sh"

# validation takes about half a second: (3715, 4000) Khatri-Rao rows and
# 226560 outputs of rank 4000
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/slow.st" --cp 61x61x61 --rank 4000 \
    --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/small.st" --seed 2
printf '{"worker_threads": 2, "max_uploads_per_tenant": 1}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
"$PYTHON" "$E2E_LIB/fairness.py" uploads "$PORT" "$TMP/slow.st" "$TMP/small.st" || fail "upload slots"
stop_daemon

# a 2-D CP adapter over wq, wv of 5 layers is cached as dense F32 deltas:
# 5 * (64*64 + 32*64) * 4 = 122880 bytes
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/pin.st" --cp 160x192 --rank 2 --modules wq,wv
printf '{"max_pinned_bytes_per_tenant": 200000}' >"$TMP/conf.json"
start_daemon "$TMP/state2" --config "$TMP/conf.json"
check "acme pins one adapter" 201 "$(status PUT "$URL/v1/adapters/acme/a?pin=1" -T "$TMP/pin.st")"
out=$(curl -s -w ' %{http_code}' -T "$TMP/pin.st" "$URL/v1/adapters/acme/b?pin=1")
check_contains "acme's second pin -> 507" " 507" "$out"
check_contains "naming the per-tenant limit" \
    "pinning acme/b needs 122880 bytes (245760 pinned by tenant acme); max_pinned_bytes_per_tenant is 200000 bytes" "$out"
check "acme/b was not stored" 404 "$(status GET "$URL/v1/adapters/acme/b")"
check "beta still pins" 201 "$(status PUT "$URL/v1/adapters/beta/a?pin=1" -T "$TMP/pin.st")"
check "acme replaces its own pinned adapter" 200 "$(status PUT "$URL/v1/adapters/acme/a?pin=1" -T "$TMP/pin.st")"
check_contains "pinned bytes: acme's and beta's" "slorad_delta_cache_pinned_bytes 245760" "$(curl -s "$URL/metrics")"
stop_daemon
echo "fairness: ok"
