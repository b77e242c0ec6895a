-- GET {BENCH_PREFIX}?filter={"group":N}&limit=20, N cycling over 0..BENCH_GROUPS-1.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")

local reqs, i = {}, 0

function init(args)
  local prefix = os.getenv("BENCH_PREFIX") or "/mongo/items"
  for g = 0, tonumber(os.getenv("BENCH_GROUPS") or "20") - 1 do
    -- {"group":N} percent-encoded
    reqs[#reqs + 1] = wrk.format(nil, prefix .. "?filter=%7B%22group%22%3A" .. g .. "%7D&limit=20")
  end
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
