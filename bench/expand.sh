#!/usr/bin/env bash
# expand.sh - the expansion budget over HTTP on stories260K (issue 13):
#   - issue 13's 2 MB CP adapter (276 x 276 x 1, rank 1800, on layer 0 w1):
#     dry-run upload time and the daemon's peak RSS growth (the naive
#     contraction order took 0.94 s and 740 MB);
#   - a 20 MB CP adapter (61 x 61 x 61, rank 54000, every module) whose
#     cheapest order needs 800 MB of intermediates: refused with 422 by
#     max_expand_bytes; time from the PUT to the answer (curl, body
#     included) over 10 uploads, target < 100 ms, and peak RSS growth.
# Writes bench/results/expand.{json,md}.
. "$(dirname "$0")/../tests/e2e/lib/daemon.sh" # start_daemon, stop_daemon, $TMP
gen() { "$PYTHON" "$E2E_LIB/gen_adapter.py" "$@"; }
gen "$TMP/issue.st" --cp 276x276x1 --rank 1800 --layers 0 --dtype F16
gen "$TMP/attack.st" --cp 61x61x61 --rank 54000 --modules wq,wk,wv,wo,w1,w2,w3 --dtype F16
start_daemon "$TMP/state"

uploads() { # FILE N: N dry-run uploads, "status ms" lines to $TMP/times
    for i in $(seq 1 "$2"); do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -T "$1" "$URL/v1/adapters/bench/x$i?dry_run=1"
    done >"$TMP/times"
}
# put FILE N: prints "status p50_ms max_ms peak_growth_mb"
put() {
    local growth
    growth=$(peak_growth uploads "$1" "$2")
    sort -k2 -n "$TMP/times" | awk -v n="$2" -v g=$((growth >> 20)) \
        '{s[NR] = $1; t[NR] = $2 * 1000} END {printf "%s %.1f %.1f %d\n", s[1], t[int((n + 1) / 2)], t[n], g}'
}
read -r issue_status issue_ms _ issue_mb < <(put "$TMP/issue.st" 1)
read -r attack_status attack_p50 attack_max attack_mb < <(put "$TMP/attack.st" 10)
[ "$issue_status" = 200 ] && [ "$attack_status" = 422 ] ||
    { echo "expand.sh: unexpected status $issue_status / $attack_status" >&2; exit 1; }
stop_daemon >/dev/null

mkdir -p bench/results
printf '{"issue13_adapter": {"status": %s, "ms": %s, "peak_rss_growth_mb": %s}, "attack": {"status": %s, "ms_p50": %s, "ms_max": %s, "peak_rss_growth_mb": %s, "target_ms": 100}}\n' \
    "$issue_status" "$issue_ms" "$issue_mb" "$attack_status" "$attack_p50" "$attack_max" "$attack_mb" \
    >bench/results/expand.json
cat >bench/results/expand.md <<MD
## Expansion budget (issue 13)

Dry-run uploads (\`curl -T\`, time includes the body) against the daemon's default limits; peak RSS growth from \`VmHWM\` after \`clear_refs\`.

| adapter | answer | time | peak RSS growth | before |
|---|---:|---:|---:|---|
| issue 13's 2 MB CP (276 x 276 x 1, rank 1800, w1 of layer 0) | $issue_status | $issue_ms ms | $issue_mb MB | 0.94 s, 740 MB (naive order) |
| 20 MB CP (61 x 61 x 61, rank 54000, every module), 800 MB of intermediates | $attack_status | p50 $attack_p50 ms, max $attack_max ms (10 uploads; target < 100 ms) | $attack_mb MB | would allocate 1.6 GB (naive order) |
MD
cat bench/results/expand.md
