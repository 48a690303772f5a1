-- dr.exec against children that misbehave: a grandchild in its own session
-- that keeps stdout open past a timeout, a child that leaves a daemon holding
-- its outputs, and a child that looks for drctl's secrets.
local dr = require "dr"

-- A grandchild in a new session (so a kill of the child's process group
-- misses it) that holds the inherited stdout while DIR/hold exists, and
-- gives up after a minute so that nothing outlives a test for long; it
-- touches DIR/released when it lets go.
local DAEMON = 'setsid sh -c \'echo $$ > "$1/grandchild.pid"; i=0; ' ..
               'while [ -e "$1/hold" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; ' ..
               'touch "$1/released"\' sh "$1" &'

-- Touches DIR/started once the grandchild is out, then waits for a kill.
local function hold_with_grandchild(dir)
  dr.exec({ "sh", "-c", DAEMON .. ' while [ ! -s "$1/grandchild.pid" ]; do sleep 0.05; done; ' ..
            'echo x; touch "$1/started"; sleep 30', "sh", dir })
end

return runbook {
  name = "exec-hardening", version = "1.0.0",
  summary = "Test runbook: dr.exec children that hold their outputs open or look for secrets",
  params = {
    dir = { type = "string", required = true, doc = "the test's directory" },
    mode = { type = "enum", values = { "timeout", "interrupt", "daemon", "environ" }, required = true },
  },
  steps = {
    { name = "timeout", timeout = "3s",
      run = function(ctx) if ctx.params.mode == "timeout" then hold_with_grandchild(ctx.params.dir) end end },
    { name = "interrupt", timeout = "10m",
      run = function(ctx) if ctx.params.mode == "interrupt" then hold_with_grandchild(ctx.params.dir) end end },
    { name = "daemon",
      run = function(ctx)
        if ctx.params.mode ~= "daemon" then return end
        local r = dr.exec({ "sh", "-c", DAEMON .. ' while [ ! -s "$1/grandchild.pid" ]; do sleep 0.05; done; ' ..
                            'echo x', "sh", ctx.params.dir })
        return { code = r.code, stdout = r.stdout }
      end },
    { name = "environ",
      run = function(ctx)
        if ctx.params.mode ~= "environ" then return end
        -- What a child can learn of drctl: its environment block, its
        -- memory and its status, and the child's own environment.
        local r = dr.exec({ "sh", "-c",
          'p=$PPID; ' ..
          'if cat /proc/$p/environ > "$1/parent-environ" 2>"$1/parent-environ.err"; then echo read; else echo refused; fi; ' ..
          'grep ^Dumpable: /proc/$p/status > "$1/parent-status" || true; ' ..
          'stat -c "%U:%G" /proc/$p/environ > "$1/parent-environ.owner"; ' ..
          'env > "$1/child-environ"', "sh", ctx.params.dir })
        return { read = r.stdout:match("%a+") }
      end },
  },
}
