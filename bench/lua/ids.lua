-- GET {BENCH_PREFIX}/<id> for each ObjectId of the file BENCH_IDS, in turn.
-- Each thread starts at another place of the list.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")

local reqs, i = {}, 0

function init(args)
  local prefix = os.getenv("BENCH_PREFIX") or "/mongo/items"
  for id in io.lines(os.getenv("BENCH_IDS")) do
    reqs[#reqs + 1] = wrk.format(nil, prefix .. "/" .. id)
  end
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
