-- check(cond, what, got, expected): fails the step with the figures that
-- disagree. Shared by the test runbooks (tests/runbooks/*.lua).
local dr = require "dr"

return function(cond, what, got, expected)
  if not cond then
    dr.fail(string.format("%s: got %s, expected %s", what, tostring(got), tostring(expected)))
  end
end
