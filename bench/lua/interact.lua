-- POST <BENCH_PATH> with an InteractEvent for a random user and item (like or dislike).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
require("common")
local path = os.getenv("BENCH_PATH") or "/interact"
local users = tonumber(os.getenv("BENCH_USERS") or "50000")
local items = tonumber(os.getenv("BENCH_ITEMS") or "20000")
local headers = { ["Content-Type"] = "application/json" }

function request()
  local action = "like"
  if math.random() < 0.3 then action = "dislike" end
  local body = string.format(
    '{"user_id": "u%d", "item_ids": ["i%d"], "actions": ["%s"]}',
    math.random(0, users - 1), math.random(0, items - 1), action)
  return wrk.format("POST", path, headers, body)
end
