-- GET <BENCH_PATH><random user>: known users u0..u(BENCH_USERS-1), a share of cold ones.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
require("common")
local path = os.getenv("BENCH_PATH") or "/recs/u"
local users = tonumber(os.getenv("BENCH_USERS") or "50000")
local cold = tonumber(os.getenv("BENCH_COLD_SHARE") or "0.1")
local suffix = os.getenv("BENCH_SUFFIX") or ""

function request()
  local user
  if math.random() < cold then
    user = "cold" .. math.random(0, 999999)
  else
    user = math.random(0, users - 1)
  end
  return wrk.format("GET", path .. user .. suffix)
end
