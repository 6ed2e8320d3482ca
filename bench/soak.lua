-- soak.lua - wrk script for bench/soak.sh: POST /v1/completions round-robin
-- over SOAK_ADAPTERS adapters soak/a<i>; done() prints one SOAK_JSON line
-- (requests, latency percentiles, errors) for bench/soak.py.
local n = tonumber(os.getenv("SOAK_ADAPTERS") or "32")
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format(
    '{"model":"soak/a%d","prompt":"Once upon a time","max_tokens":8,"temperature":0}', counter % n)
  return wrk.format("POST", "/v1/completions", {["Content-Type"] = "application/json"}, body)
end

local status_5xx = 0
local status_4xx = 0

response = function(status, headers, body)
  if status >= 500 then
    status_5xx = status_5xx + 1
  elseif status >= 400 then
    status_4xx = status_4xx + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SOAK_JSON {"requests":%d,"seconds":%.1f,"rps":%.1f,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,' ..
    '"max_ms":%.2f,"non_2xx_3xx":%d,"status_errors_5xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.status, e.status, e.connect + e.read + e.write + e.timeout))
end
