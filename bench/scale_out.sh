#!/usr/bin/env bash
# scale_out.sh - three replicas on one redis-server behind haproxy
# (conf/haproxy.cfg), on loopback: upload-to-servable on the other
# replicas (p99 over 100 uploads, target 200 ms), hot-swap propagation to
# every replica, and the affinity benchmark: 300 adapters whose deltas fit
# in the three delta caches together but not in one, Zipf-distributed
# requests, hit ratio and requests/s with the consistent hash vs round
# robin (target: hit ratio >= 0.9 with affinity). Writes
# bench/results/scale_out.{json,md}.
set -euo pipefail
export BUILD=${BUILD:-build} PYTHON=${PYTHON:-/usr/bin/python3}
. tests/e2e/lib/daemon.sh
. "$E2E_LIB/cluster.sh"

N_ADAPTERS=${N_ADAPTERS:-300}
N_UPLOADS=${N_UPLOADS:-100}
N_SWAPS=${N_SWAPS:-50}
WARMUP=${WARMUP:-3000}
REQUESTS=${REQUESTS:-9000}
CLIENTS=${CLIENTS:-8}
ZIPF_S=${ZIPF_S:-1.0}
CACHE_BYTES=${CACHE_BYTES:-16777216} # per replica: 136 of the 120 KiB adapters
CLUSTER_CONF_EXTRA=", \"delta_cache_bytes\": $CACHE_BYTES"
OUT=bench/results
mkdir -p "$OUT" "$TMP/a"
echo "scale_out: generating $N_ADAPTERS adapters" >&2
for i in $(seq 1 "$N_ADAPTERS"); do "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a/$i.safetensors" --seed "$i"; done

start_redis
for i in 1 2 3; do start_replica "$i"; done
start_lb
LB=http://127.0.0.1:$LB_PORT
IDS=()
for i in $(seq 1 "$N_ADAPTERS"); do
    st=$(curl -s -o /dev/null -w '%{http_code}' -T "$TMP/a/$i.safetensors" "$LB/v1/adapters/bench/z$i")
    [ "$st" = 201 ] || fail "upload bench/z$i: $st"
    IDS+=("bench/z$i")
done
entry_bytes=$(curl -s "$LB/v1/adapters/bench/z1" | sed -n 's/.*"dense_bytes":\([0-9]*\).*/\1/p')

echo "scale_out: upload-to-servable, $N_UPLOADS uploads" >&2
files=()
for i in $(seq 1 "$N_UPLOADS"); do files+=("$TMP/a/$i.safetensors"); done
"$PYTHON" bench/scale_out.py propagate "$TMP/propagate.json" "$(rurl 1)" "$(rurl 2)" "$(rurl 3)" "${files[@]}"
echo "scale_out: hot swap, $N_SWAPS swaps" >&2
"$PYTHON" bench/scale_out.py swap "$TMP/swap.json" "$(rurl 1)" "$(rurl 2)" "$(rurl 3)" \
    "$TMP/a/1.safetensors" "$TMP/a/2.safetensors" "$N_SWAPS"

# affinity: fresh replicas (empty caches) and haproxy for each routing
sed -e 's/^    balance hash var(txn.adapter)/    balance roundrobin/' -e '/hash-type consistent/d' \
    -e '/hash-balance-factor/d' conf/haproxy.cfg >"$TMP/haproxy-rr.cfg"
for mode in hash roundrobin; do
    kill "$LB_PID"; wait "$LB_PID" 2>/dev/null || true
    for i in 1 2 3; do stop_replica "$i"; done
    for i in 1 2 3; do start_replica "$i"; done
    if [ "$mode" = hash ]; then LB_CONF=; else LB_CONF=$TMP/haproxy-rr.cfg; fi
    start_lb
    echo "scale_out: affinity ($mode): $WARMUP warm-up + $REQUESTS Zipf($ZIPF_S) requests" >&2
    "$PYTHON" bench/scale_out.py zipf "$TMP/warm-$mode.json" "$LB" "$WARMUP" "$CLIENTS" "$ZIPF_S" \
        "${IDS[@]}" -- "$(rurl 1)" "$(rurl 2)" "$(rurl 3)"
    "$PYTHON" bench/scale_out.py zipf "$TMP/zipf-$mode.json" "$LB" "$REQUESTS" "$CLIENTS" "$ZIPF_S" \
        "${IDS[@]}" -- "$(rurl 1)" "$(rurl 2)" "$(rurl 3)"
done
for i in 1 2 3; do stop_replica "$i"; done

"$PYTHON" - "$TMP" "$OUT" "$N_ADAPTERS" "$entry_bytes" "$CACHE_BYTES" "$ZIPF_S" "$CLIENTS" <<'PY'
import json, sys
tmp, out, n, entry, cache, s, clients = sys.argv[1:]
r = {"adapters": int(n), "entry_bytes": int(entry), "cache_bytes_per_replica": int(cache),
     "replicas": 3, "zipf_s": float(s), "clients": int(clients),
     "propagate": json.load(open(tmp + "/propagate.json")),
     "swap": json.load(open(tmp + "/swap.json"))}
for m in ("hash", "roundrobin"):
    r["warmup_" + m] = json.load(open("%s/warm-%s.json" % (tmp, m)))
    r["affinity_" + m] = json.load(open("%s/zipf-%s.json" % (tmp, m)))
json.dump(r, open(out + "/scale_out.json", "w"), indent=1)
total = r["adapters"] * r["entry_bytes"]
p, w, h, rr = r["propagate"], r["swap"], r["affinity_hash"], r["affinity_roundrobin"]
md = f"""## Scale-out (bench/scale_out.sh): 3 replicas, redis-server, haproxy, loopback

| measurement | n | p50 ms | p99 ms | max ms | target |
|---|---|---|---|---|---|
| upload through replica 1 until replicas 2 and 3 serve it | {p['n']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} | p99 <= 200 ms |
| hot swap until all 3 replicas serve the new version | {w['n']} | {w['p50_ms']} | {w['p99_ms']} | {w['max_ms']} | <= 200 ms |

Affinity: {r['adapters']} adapters of {r['entry_bytes']} delta bytes each ({total/2**20:.1f} MiB
together), delta cache {r['cache_bytes_per_replica']/2**20:.0f} MiB per replica
({3*r['cache_bytes_per_replica']/2**20:.0f} MiB in all three: they fit together, not in one),
Zipf(s={r['zipf_s']}) over the adapters, {r['clients']} clients through haproxy, measured after a
warm-up of {r['warmup_hash']['requests']} requests on fresh replicas.

| routing | requests | hit ratio | hits | misses | req/s |
|---|---|---|---|---|---|
| consistent hash on the adapter (conf/haproxy.cfg) | {h['requests']} | **{h['hit_ratio']}** | {h['hits']} | {h['misses']} | {h['req_per_s']} |
| round robin | {rr['requests']} | {rr['hit_ratio']} | {rr['hits']} | {rr['misses']} | {rr['req_per_s']} |

Target: hit ratio >= 0.9 with affinity.
"""
open(out + "/scale_out.md", "w").write(md)
print(md)
PY
