#include "jsonfield.h"

const char *json_text(const cJSON *object, const char *name, const char *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

double json_number(const cJSON *object, const char *name, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}
