-- wrk script: POSTs signed PagerDuty V3 webhooks with keep-alive.
-- BODIES names a file of "signature<TAB>body" lines; each request takes the next line, so a
-- file of one line replays the same event (dedupe path) and a large file sends a new
-- incident per request. Each wrk thread starts at its own offset.
local requests = {}
local index = 0
local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
end

-- Requests are formatted once, up front: the generator then does no per-request work
-- (and makes no garbage) beyond handing over a prepared string.
function init(args)
  local path = os.getenv("BODIES")
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    requests[#requests + 1] = wrk.format("POST", "/webhooks/pagerduty", {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "PagerDuty-Webhook/V3.0",
      ["X-Webhook-Id"] = "wh-" .. (#requests + 1),
      ["X-PagerDuty-Signature"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
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
