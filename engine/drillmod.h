/* drillmod: the `drill` module, the drill's own machinery for
 * lua/drctl/drill.lua: the scope of what the drill made, the writer
 * (drillwriter.h) and the clock (every function: docs/runbooks.md, "The
 * drill module"). Outside a drill every function but active and clock
 * raises. */
#ifndef DRCTL_DRILLMOD_H
#define DRCTL_DRILLMOD_H

#include "drmod.h"

typedef struct drill_module drill_module;

drill_module *drillmod_register(sandbox *sb, dr_host *host);

/* Stops the writer if it runs, and frees the module. */
void drillmod_free(drill_module *m);

#endif
