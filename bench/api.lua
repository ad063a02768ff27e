-- wrk script for bench/api.sh: each request follows or unfollows the broadcaster, as a
-- user taken in turn from the tokens file (TOKENS in the environment).
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  local method = (i % 2 == 1) and "PUT" or "DELETE"
  local token = tokens[math.floor(i / 2) % #tokens + 1]
  return wrk.format(method, "/api/users/star/follow", { ["Authorization"] = "Bearer " .. token })
end
