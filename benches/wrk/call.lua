-- wrk script: call a method by selector over the API gateway.
-- Usage (see README "API gateway"): AURA_GATEWAY_TOKEN=… wrk -t2 -c32 -d10s \
--   -s benches/wrk/call.lua http://127.0.0.1:8080/v1/objects/bench/messages
local token = os.getenv("AURA_GATEWAY_TOKEN") or ""
wrk.method = "POST"
wrk.body = '{"selector": "fibonacci", "args": [20]}'
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local failures = 0
function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
    end
  end
end
