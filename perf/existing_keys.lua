-- GETs of /key/I for a random I in [0, 1000): keys that exist (302s).
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/key/" .. math.random(0, 999))
end
