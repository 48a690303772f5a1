/* cmd_docs: drctl docs, the runbooks' documentation as Markdown (docs.h
 * says what a page holds). */
#ifndef DRCTL_CMD_DOCS_H
#define DRCTL_CMD_DOCS_H

#include "cli.h"

int cmd_docs(cli *c);

#endif
