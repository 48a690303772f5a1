-- uri(project): the connection string of a project's default branch
-- (database neondb, role neondb_owner), for the test runbooks.
local neon = require "neon"

return function(project)
  return neon.connection_uri(project, { database_name = "neondb", role_name = "neondb_owner" })
end
