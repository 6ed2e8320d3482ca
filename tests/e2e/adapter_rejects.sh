#!/usr/bin/env bash
# adapter_rejects.sh - invalid adapter files over HTTP, and the expansion
# budget:
#   1. every invalid adapter of tests/check_adapter.c's tables (written by
#      the unit suite itself) and of `make_fixtures.py bad` is answered 422
#      with the validator's message, and nothing is stored;
#   2. a 20 MB CP adapter whose cheapest expansion needs 800 MB of
#      intermediates is refused with 422 naming max_expand_bytes, and the
#      daemon's RSS grows by less than 64 MB;
#   3. with max_expand_bytes set to exactly an adapter's intermediates
#      ((3715 x 2048 + 32768) floats: the Khatri-Rao product of its cheapest
#      split and one worker tile), that adapter is accepted with a peak RSS
#      growth within the estimate, and one rank more is refused.
. "$(dirname "$0")/lib/daemon.sh"
# RSS bounds hold under ASan too: freed memory is not kept in quarantine
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=16"

gen() { "$PYTHON" "$E2E_LIB/gen_adapter.py" "$@"; }

mkdir -p "$TMP/table" "$TMP/fixtures"
SLORA_BAD_ADAPTERS=$TMP/table CK_RUN_SUITE=adapter CK_RUN_CASE=core "$BUILD/check_slora" >/dev/null ||
    fail "the adapter unit suite failed while writing its invalid adapters"
"$PYTHON" tests/ref/make_fixtures.py bad --model models/stories260K.bin --out "$TMP/fixtures" >/dev/null

start_daemon "$TMP/state"
"$PYTHON" "$E2E_LIB/upload_rejects.py" "$PORT" "$TMP/table" "$TMP/fixtures" || fail "invalid adapters"
check "no invalid adapter was stored" '{"object":"list","data":[]}' "$(curl -s "$URL/v1/adapters")"

gen "$TMP/attack.st" --cp 61x61x61 --rank 54000 --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16
growth=$(peak_growth curl -s -o "$TMP/out" -w '%{http_code}' -T "$TMP/attack.st" "$URL/v1/adapters/e2e/attack?dry_run=1")
check_contains "expansion attack -> 422 naming the limit" \
    '"message":"expanding the adapter needs 802571072 bytes of intermediates, over the limit of 268435456 (max_expand_bytes)"' \
    "$(cat "$TMP/out")"
check "expansion attack: RSS growth under 64 MB" 1 $((growth < 64 << 20))
echo "   (RSS growth $((growth >> 20)) MB for a $(($(stat -c %s "$TMP/attack.st") >> 20)) MB upload)"
stop_daemon

budget=$(((3715 * 2048 + 32768) * 4))
printf '{"max_expand_bytes": %d}' "$budget" >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
gen "$TMP/under.st" --cp 61x61x61 --rank 2048 --modules wq,wk,wv,wo,w1,w2,w3
gen "$TMP/over.st" --cp 61x61x61 --rank 2049 --modules wq,wk,wv,wo,w1,w2,w3
growth=$(peak_growth curl -s -o "$TMP/out" -T "$TMP/under.st" "$URL/v1/adapters/e2e/under")
check_contains "adapter at max_expand_bytes is accepted" '"id":"e2e/under"' "$(cat "$TMP/out")"
# scratch + the body and its float32 parameters + the output + 16 MB slack
held=$(($(stat -c %s "$TMP/under.st") * 3 + 226560 * 4 + (16 << 20)))
check "its peak RSS growth is within the estimate" 1 $((growth <= budget + held && growth >= budget / 2))
echo "   (peak growth $((growth >> 20)) MB, estimate $((budget >> 20)) MB of intermediates)"
check "one rank more -> 422" 422 "$(status PUT "$URL/v1/adapters/e2e/over" -T "$TMP/over.st")"
stop_daemon
echo "adapter_rejects: ok"
