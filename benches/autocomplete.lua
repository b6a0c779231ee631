-- wrk script: a realistic autocomplete mix (keystroke prefixes, whole names, typos, organisations, cities,
-- filters). Each thread walks the list from its own offset, half the list apart: the server sees a query
-- again only after tens of thousands of others, as with real users (its caches keep what is frequent).
local queries = {}
for line in io.lines(os.getenv("MSS_QUERIES") or "benches/autocomplete-queries.txt") do
  if line ~= "" then table.insert(queries, line) end
end
local counter = 0
local errors = 0
-- MSS_API_KEY set: every request carries that client key (the cost of authentication)
local key = os.getenv("MSS_API_KEY")
local headers = {}
if key and key ~= "" then headers["X-Api-Key"] = key end

function setup(thread)
  thread:set("offset", counter * math.floor(#queries / 2))
  counter = counter + 1
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  local q = queries[(i % #queries) + 1]
  return wrk.format("GET", "/v1/directory/autocomplete?" .. q, headers)
end

function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("requests=%d errors_non2xx=%d socket_errors=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
