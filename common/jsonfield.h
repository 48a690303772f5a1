/* jsonfield: reading one field of a cJSON object, the way every module
 * needs it: absent or of another type reads as the fallback. */
#ifndef DRCTL_JSONFIELD_H
#define DRCTL_JSONFIELD_H

#include <cjson/cJSON.h>

/* object.name when it is a string, else fallback (which may be NULL). */
const char *json_text(const cJSON *object, const char *name, const char *fallback);

/* object.name when it is a number, else fallback. */
double json_number(const cJSON *object, const char *name, double fallback);

#endif
