-- Test runbook: values too large to save as JSON. The engine must refuse
-- them by name, before it builds a copy of them.
local json = require "json"

local function big_string() return { blob = ("x"):rep(20 * 1024 * 1024) } end

local function many(n, make)
  local rows = {}
  for i = 1, n do rows[i] = make(i) end
  return { rows = rows }
end

-- Members five levels down: about 11 MB compact, over 16 MiB with
-- cJSON_Print's tabs and newlines.
local function deep_members()
  local members = {}
  for i = 1, 950000 do members[("k%06d"):format(i)] = 1 end
  return { a = { b = { c = { d = { e = members } } } } }
end

return runbook {
  name = "json-big", version = "1.0.0",
  summary = "Test runbook: outputs and json.encode over the size limits",
  params = {
    mode = { type = "enum", required = true,
             values = { "string", "strings", "numbers", "encode", "encode-pretty", "under", "decode" } },
  },
  steps = {
    { name = "make", idempotent = true,
      run = function(ctx)
        local mode = ctx.params.mode
        if mode == "string" then return big_string() end
        -- 700,000 strings of 24 bytes: 18.9 MB as JSON, within the count
        if mode == "strings" then return many(700000, function(i) return ("row %020d"):format(i) end) end
        -- 2,500,000 numbers: over the count of values
        if mode == "numbers" then return many(2500000, function(i) return i * 1000 end) end
        if mode == "encode" then return { text = json.encode(big_string()) } end
        if mode == "encode-pretty" then
          local v = deep_members()
          local compact = #json.encode(v)
          return { compact = compact, pretty = json.encode(v, true) }
        end
        if mode == "decode" then
          -- 17 MiB of text is refused as bad JSON is, with the reason
          local value, message = json.decode('"' .. ("z"):rep(17 * 1024 * 1024) .. '"')
          local small = json.decode('{"n":[1,2,3]}')
          return { refused = value == nil, message = message, small = #small.n }
        end
        -- just under the limit: a 15 MiB string is encoded
        return { encoded = #json.encode({ blob = ("y"):rep(15 * 1024 * 1024) }) }
      end },
  },
}
