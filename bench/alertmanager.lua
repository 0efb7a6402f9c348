-- wrk script: POSTs Alertmanager webhook notifications (version 4) with keep-alive and a
-- bearer token (AUTH). BODIES names a file of one JSON body per line; each request takes the
-- next line, so a file of one line repeats one group's state (the repeat_interval path) and
-- a large file sends a new alert group per request. Each wrk thread starts at its own offset.
local requests = {}
local index = 0
local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
end

-- Requests are formatted once, up front, as in ingest.lua.
function init(args)
  local auth = "Bearer " .. os.getenv("AUTH")
  for line in io.lines(os.getenv("BODIES")) do
    requests[#requests + 1] = wrk.format("POST", "/webhooks/alertmanager", {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "Alertmanager/0.25.0",
      ["Authorization"] = auth,
    }, line)
  end
  index = (offset or 0) * math.floor(#requests / 4)
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
