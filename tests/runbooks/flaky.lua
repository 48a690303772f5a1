-- Failure handling: retries, timeouts, unsaveable outputs and cleanup.
local dr = require "dr"

local function bump(dir, name)
  local r = dr.exec({ "sh", "-c", 'n=$(cat "$1/$2" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1/$2"; echo $n',
                      "sh", dir, name })
  return tonumber(r.stdout)
end

return runbook {
  name = "flaky", version = "1.0.0",
  summary = "Test runbook: a step that fails in the ways steps fail",
  params = {
    dir = { type = "string", required = true },
    mode = { type = "enum", values = { "retry", "timeout", "badoutput", "fail", "escape" }, required = true },
  },
  steps = {
    { name = "work", idempotent = true, timeout = "1s", retry = { attempts = 3, backoff = "100ms" },
      run = function(ctx)
        local mode, dir = ctx.params.mode, ctx.params.dir
        local n = bump(dir, "work-attempts")
        if mode == "retry" and n < 3 then dr.fail("transient failure " .. n) end
        if mode == "timeout" then dr.sleep(30) end
        if mode == "badoutput" then return { callback = function() end } end
        if mode == "fail" then
          local r = dr.exec({ "test", "-e", dir .. "/fixed" })
          if r.code ~= 0 then dr.fail("the cause is not fixed yet") end
        end
        if mode == "escape" then return io.open("/etc/passwd") end
        return { attempts = n }
      end },
    { name = "cleanup", always = true, idempotent = true,
      run = function(ctx)
        bump(ctx.params.dir, "cleanup-runs")
        dr.exec({ "sh", "-c", 'echo "$1" >> "$2/cleanup-endings"', "sh", tostring(ctx.ending), ctx.params.dir })
      end },
  },
}
