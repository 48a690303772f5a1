-- A runbook for the hostile-code tests: the param `attack` picks what a
-- step does to the engine (see tests/e2e/22-lua-hostile.sh). Without an
-- attack every step succeeds, so the runbook loads and lists like any other.
local dr = require "dr"

-- Backtracks for ages inside one C call, where no hook ever fires.
local function long_c_call(ctx, marker)
  if ctx.params.dir ~= "" then
    dr.exec({ "touch", ctx.params.dir .. "/" .. marker })
  end
  return string.find(("a"):rep(20000), ".-.-.-.-b")
end

local function loop() while true do end end

local attacks = {
  ["find-once"] = function(ctx)
    if ctx.attempt == 1 then long_c_call(ctx, "inside-attack") end
  end,
  ["gc"] = function() setmetatable({}, { __gc = loop }) end,
  ["gc-later"] = function()
    local mt = {}
    local t = setmetatable({}, mt)
    mt.__gc = loop
    t = nil
    collectgarbage()
  end,
  ["string-index"] = function() getmetatable("").__index = function() return "hijacked" end end,
  ["string-tostring"] = function()
    getmetatable("").__tostring = loop
    error("a plain error")
  end,
  ["error-tostring-loop"] = function() error(setmetatable({}, { __tostring = loop })) end,
  ["error-tostring-fails"] = function()
    error(setmetatable({}, { __tostring = function() error("tostring exploded") end }))
  end,
  ["error-index-loop"] = function()
    error(setmetatable({ message = "the real failure" }, { __index = loop }))
  end,
  -- dr.log turns its arguments into text: one that raises must leave nothing behind
  ["log-tostring-fails"] = function()
    local ok, e = pcall(dr.log, "before", setmetatable({}, { __tostring = function() error("log tostring exploded") end }))
    dr.log("after: " .. tostring(ok) .. " " .. tostring(e))
    return { logged = ok }
  end,
  ["output-index-loop"] = function()
    return setmetatable({ kept = 1 }, { __index = loop, __pairs = loop })
  end,
}

return runbook {
  name = "hostile-steps", version = "1.0.0",
  summary = "Test runbook: steps that attack the engine from Lua",
  params = {
    attack = { type = "string", default = "none" },
    dir = { type = "string", default = "", doc = "where markers go" },
  },
  steps = {
    { name = "hang", -- no timeout: only signals can stop it
      run = function(ctx)
        if ctx.params.attack == "find-forever" then long_c_call(ctx, "inside-hang") end
        return { ok = true }
      end },
    { name = "attack", timeout = "2s",
      run = function(ctx)
        local f = attacks[ctx.params.attack]
        local result = f and f(ctx)
        return result or { ok = true }
      end },
    { name = "promote", destructive = true,
      confirm = function(ctx)
        if ctx.params.attack == "confirm-index-fails" then
          return setmetatable({}, { __index = function() error("confirm index exploded") end })
        end
        return { summary = "promote the copy", challenge = "promote" }
      end,
      run = function() return { promoted = true } end },
  },
}
