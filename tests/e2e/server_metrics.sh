#!/usr/bin/env bash
# server_metrics.sh - /metrics of a live daemon passes `promtool check
# metrics` (Debian's prometheus package): every family's samples
# contiguous, after one HELP and one TYPE. The daemon has two tenants with
# adapters, completions (a delta-cache miss, then hits, one streamed), a
# refused upload, a delete and a dry run behind it, so that every family
# it declares has samples; the script checks that too.
. "$(dirname "$0")/lib/daemon.sh"
command -v promtool >/dev/null || fail "promtool missing (make check installs prometheus)"

auth_conf "$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
A=$FIXTURES/lokr.safetensors
as() { local key=$1; shift; curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$@"; }
complete() { as "$1" "$URL/v1/completions" -d "{\"model\":\"$2\",\"prompt\":\"Once\",\"max_tokens\":4${3:-}}"; }

check "acme uploads" 201 "$(as acme-key -T "$A" "$URL/v1/adapters/acme/style")"
check "acme replaces it" 200 "$(as acme-key -T "$FIXTURES/lora_wq_wv.safetensors" "$URL/v1/adapters/acme/style")"
check "beta uploads" 201 "$(as beta-key -T "$A" "$URL/v1/adapters/beta/tone")"
check "beta dry run" 200 "$(as beta-key -T "$A" "$URL/v1/adapters/beta/x?dry_run=1")"
check "a refused upload" 422 "$(as beta-key --data-binary junk -X PUT "$URL/v1/adapters/beta/junk")"
check "beta uploads and deletes" 201 "$(as beta-key -T "$A" "$URL/v1/adapters/beta/gone")"
check "delete" 204 "$(as beta-key -X DELETE "$URL/v1/adapters/beta/gone")"
check "acme completes (miss)" 200 "$(complete acme-key acme/style)"
check "acme completes (hit)" 200 "$(complete acme-key acme/style)"
check "beta streams" 200 "$(complete beta-key beta/tone ',"stream":true')"
check "base model" 200 "$(complete beta-key stories260K)"

curl -s -H 'Authorization: Bearer admin-key' "$URL/metrics" >"$TMP/metrics"
if ! promtool check metrics <"$TMP/metrics" >"$TMP/promtool" 2>&1; then
    fail "promtool check metrics: $(cat "$TMP/promtool")"
fi
check "promtool check metrics: no problems" "" "$(cat "$TMP/promtool")"

# What promtool does not check (its parser merges split families): HELP
# and TYPE once per family, and every sample right under its own family's
# TYPE (so each family's samples are contiguous).
layout() {
    awk '/^# HELP / { if (help[$3]++) print "second HELP for " $3; next }
        /^# TYPE / { if (kind[$3]) print "second TYPE for " $3; kind[$3] = $4; cur = $3; next }
        /^[a-z]/ { n = $1; sub(/[{ ].*/, "", n); f = n
            if (!(f in kind)) { b = f; sub(/_(bucket|sum|count)$/, "", b); if (kind[b] == "histogram") f = b }
            if (f != cur) print "sample " n " is not under its TYPE (it follows " cur ")" }' "$1"
}
check "families contiguous, HELP and TYPE once" "" "$(layout "$TMP/metrics")"
printf '# HELP a_total x\n# TYPE a_total counter\n# HELP b_total y\n# TYPE b_total counter\na_total 1\nb_total 1\n' >"$TMP/split"
check "(the layout check sees a split family)" "sample a_total is not under its TYPE (it follows b_total)" "$(layout "$TMP/split")"

# Every declared family has samples (histograms: _bucket, _sum, _count).
missing=$(awk '/^# TYPE / { fam[$3] = 1; next }
    /^[a-z]/ { n = $1; sub(/[{ ].*/, "", n); seen[n] = 1 }
    END { for (f in fam) if (!seen[f] && !seen[f "_count"]) print f }' "$TMP/metrics" | sort)
check "every family has samples" "" "$missing"
echo "ok - $(grep -c '^# TYPE ' "$TMP/metrics") families, $(grep -c '^[a-z]' "$TMP/metrics") samples"

stop_daemon
echo "server_metrics: $N_CHECKS checks passed"
