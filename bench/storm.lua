-- wrk script for bench/storm.py: POSTs each signed PagerDuty webhook of BODIES once, in
-- order, paced to RATE requests/s over all connections, then stops sending (wrk itself
-- runs for its whole -d).
-- BODIES names a file of "signature<TAB>body" lines.
local requests = {}
local index = 0
local answered = 0

function init(args)
  for line in io.lines(os.getenv("BODIES")) do
    local tab = line:find("\t", 1, true)
    requests[#requests + 1] = wrk.format("POST", "/webhooks/pagerduty", {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "PagerDuty-Webhook/V3.0",
      ["X-Webhook-Id"] = "wh-" .. (#requests + 1),
      ["X-PagerDuty-Signature"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
  end
end

-- Pacing on the monotonic clock (LuaJIT's FFI; Lua's own clocks are CPU time or whole
-- seconds): page i is due RATE * i after the first request, and a connection waits until
-- the next page is due.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } storm_timespec;
int clock_gettime(int clk_id, storm_timespec *tp);
]]
local ts = ffi.new("storm_timespec")
local CLOCK_MONOTONIC = 1
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local rate = tonumber(os.getenv("RATE"))
local start = nil

function delay()
  start = start or now()
  local due = start + index / rate
  return math.max(0, math.floor((due - now()) * 1000))
end

local probe = nil
local verified = false

function request()
  if not verified then
    -- wrk calls request() once after init to check what it returns (script_verify_request),
    -- and sends nothing: that call must not use up a page.
    verified = true
    return requests[1]
  end
  index = index + 1
  if index > #requests then
    -- Every page is out: this connection asks for /healthz (not a page, not counted) until
    -- the pages still in flight are answered and the thread stops.
    probe = probe or wrk.format("GET", "/healthz")
    return probe
  end
  return requests[index]
end

function response(status, headers, body)
  if body == "ok\n" then
    return
  end
  answered = answered + 1
  if answered >= #requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
