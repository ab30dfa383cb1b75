-- Shared by the bench scripts: per-thread counters and one JSON summary line from done().
-- BENCH_COLLECT_IDS=1 keeps the event_id of every 200 response (ingestion loss check).
local threads = {}
local counter = 0
local collect_ids = os.getenv("BENCH_COLLECT_IDS") == "1"

function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  ok = 0
  ids = {}
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if collect_ids then
      local id = string.match(body, '"event_id":"(%x+)"')
      if id then ids[#ids + 1] = id end
    end
  end
end

function done(summary, latency, requests)
  local total_ok = 0
  local path = os.getenv("BENCH_IDS_FILE")
  local out = nil
  if collect_ids and path then out = io.open(path, "w") end
  for _, thread in ipairs(threads) do
    total_ok = total_ok + (thread:get("ok") or 0)
    if out then
      local thread_ids = thread:get("ids") or {}
      for _, id in ipairs(thread_ids) do out:write(id, "\n") end
    end
  end
  if out then out:close() end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "ok": %d, "non_2xx": %d, "socket_errors": %d, "duration_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, total_ok, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
