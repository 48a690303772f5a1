-- Test runbook: outputs whose metatables try to change them while the engine
-- saves them as JSON. The engine must read tables raw and run no metamethod:
-- the saved value is the table's own content, whatever its metatable says.
local dr = require "dr"
local json = require "json"

local ran = {} -- the metamethods that ran, in order

local function note(name) ran[#ran + 1] = name end

-- Long keys made at run time, so that only the table holds them: once it
-- forgets them, the collector frees them.
local function hostile(with_nul_key)
  local t = {}
  for i = 1, 40 do t[("key-%02d-"):format(i) .. ("x"):rep(48)] = ("value-%02d"):format(i) end
  if with_nul_key then t["a\0b"] = "nul" end
  return setmetatable(t, {
    __index = function(self, k)
      note("__index")
      for key in next, self do rawset(self, key, nil) end
      collectgarbage()
      collectgarbage()
      return "injected by __index"
    end,
    __newindex = function() note("__newindex") end,
    __pairs = function(self)
      note("__pairs")
      return function(_, k) if not k then return "injected", "by __pairs" end end, self, nil
    end,
    __len = function() note("__len") return 3 end,
    __tostring = function() note("__tostring") return "injected by __tostring" end,
    __name = "Hostile",
  })
end

-- The same as a list: a metatable on an array, and on a nested table.
local function hostile_list()
  local inner = setmetatable({ 1, 2, 3 }, { __len = function() note("__len") return 10 end,
                                              __index = function() note("__index") return 0 end })
  return { list = inner, n = 3 }
end

return runbook {
  name = "json-hostile", version = "1.0.0",
  summary = "Test runbook: outputs with metamethods that change them during their conversion",
  params = {
    mode = { type = "enum", values = { "output", "encode", "nul-output", "nul-encode" }, required = true },
  },
  steps = {
    { name = "make", idempotent = true,
      run = function(ctx)
        local mode = ctx.params.mode
        if mode == "output" then return hostile(false) end
        if mode == "nul-output" then return hostile(true) end
        if mode == "encode" then
          return { text = json.encode(hostile(false)), list = json.encode(hostile_list()) }
        end
        return { text = json.encode(hostile(true)) }
      end },
    { name = "check", idempotent = true,
      run = function(ctx)
        local made = ctx.outputs.make
        local t = ctx.params.mode == "encode" and json.decode(made.text) or made
        local n = 0
        for k, v in pairs(t) do
          n = n + 1
          if k ~= k:sub(1, 7) .. ("x"):rep(48) or v ~= "value-" .. k:sub(5, 6) then
            dr.fail("unexpected member " .. k .. " = " .. tostring(v))
          end
        end
        if n ~= 40 then dr.fail("expected 40 members, got " .. n) end
        if ctx.params.mode == "encode" and made.list ~= '{"list":[1,2,3],"n":3}' then
          dr.fail("list encoded as " .. made.list)
        end
        return { members = n }
      end },
    { name = "report", always = true, idempotent = true,
      run = function() return { ran = table.concat(ran, ",") } end },
  },
}
