-- Pages of 1,000 keys from a random place in /bench/k0000000..k0999999:
-- `?list` (both masters) or, with env LIST=v2, ListObjectsV2. A random
-- start costs what the next page of a walk costs: a seek and 1,000 keys.
math.randomseed(os.time())
local v2 = os.getenv("LIST") == "v2"
request = function()
  local k = string.format("k%07d", math.random(0, 998999))
  if v2 then
    return wrk.format("GET", "/bench?list-type=2&max-keys=1000&start-after=" .. k)
  end
  return wrk.format("GET", "/bench/?list&limit=1000&start=/bench/" .. k)
end
