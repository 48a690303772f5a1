/* drillmod: the `drill` module, the drill's own machinery for lua/drctl/drill.lua.
 *
 *   drill.active()                 true inside drctl drill
 *   drill.scope()                  what the drill made and what it refused:
 *                                  {projects=, branches=, endpoints=, snapshots=, hosts=, refused=, default=}
 *   drill.clear_default()          forgets the drill's own default branch (before its cleanup)
 *   drill.writer_start(uri, rate)  starts the writer (drillwriter.h) unless it runs
 *   drill.writer_stop()            stops it -> {inserted=, updated=, failed=, reconnects=, last_error=}
 *   drill.writer_stats()           the same, while it runs (nil when it does not)
 *   drill.clock()                  the wall clock, epoch seconds with microseconds
 *   drill.lock_key                 the advisory lock the writer's writes hold shared
 *
 * Outside a drill every function but active and clock raises. */
#ifndef DRCTL_DRILLMOD_H
#define DRCTL_DRILLMOD_H

#include "drmod.h"

typedef struct drill_module drill_module;

drill_module *drillmod_register(sandbox *sb, dr_host *host);

/* Stops the writer if it runs, and frees the module. */
void drillmod_free(drill_module *m);

#endif
