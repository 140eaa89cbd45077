-- GETs of /NN/MM/fI for a random I in [0, 1000), as harness.make_files lays
-- the files out. wrk runs LuaJIT (Lua 5.1): no integer division operator.
math.randomseed(os.time())
request = function()
  local i = math.random(0, 999)
  local path = string.format("/%02d/%02d/f%d", i % 100, math.floor(i / 100), i)
  return wrk.format("GET", path)
end
