-- Test runbook: numbers that JSON must carry exactly across a resume. The
-- first step returns them; the second fails until DIR/ready exists, so the
-- run stops and is resumed; the third compares what it reads back (after
-- the resume, from the journal) with the exact Lua values.
local dr = require "dr"

local function expected()
  return {
    max_safe = 9007199254740991,
    two53_float = 2^53,
    two53_int = 1 << 53,
    neg_max_safe = -9007199254740991,
    sum = 0.1 + 0.2,
    huge = 1e300,
    tiny = 5e-324,
    neg_zero = -0.0,
    decimal = 123.456,
    third = 1 / 3,
    list = { 0.1 + 0.2, 2^53, 1e15, 1e21, -1.5 },
  }
end

local function same(a, b)
  if type(a) == "table" then
    if type(b) ~= "table" or #a ~= #b then return false end
    for i = 1, #a do if not same(a[i], b[i]) then return false end end
    return true
  end
  -- -0.0 == 0.0 in Lua: the sign shows through division.
  return a == b and (a ~= 0 or 1 / a == 1 / b)
end

local function show(v)
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return math.type(v) == "float" and ("%.17g"):format(v) or tostring(v)
end

return runbook {
  name = "json-numbers", version = "1.0.0",
  summary = "Test runbook: numbers that must survive a resume exactly",
  params = { dir = { type = "string", required = true } },
  steps = {
    { name = "make", idempotent = true, run = function() return expected() end },
    { name = "gate", idempotent = true,
      run = function(ctx)
        local r = dr.exec({ "test", "-e", ctx.params.dir .. "/ready" })
        if r.code ~= 0 then dr.fail("not ready yet") end
      end },
    { name = "check", idempotent = true,
      run = function(ctx)
        local got, bad = ctx.outputs.make, {}
        for name, want in pairs(expected()) do
          if not same(got[name], want) then
            bad[#bad + 1] = ("%s: got %s, expected %s"):format(name, show(got[name]), show(want))
          end
        end
        table.sort(bad)
        if #bad > 0 then dr.fail("changed: " .. table.concat(bad, "; ")) end
        return { checked = true }
      end },
  },
}
