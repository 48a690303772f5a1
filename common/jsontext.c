#include "jsontext.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INTEGER 9007199254740992.0 /* 2^53: every integer up to it is a double */

/* snprintf and strtod follow the locale's decimal point; JSON's is '.'. */
static void use_json_decimal_point(char *text)
{
    char point = localeconv()->decimal_point[0];
    if (point == '.' || point == '\0')
        return;
    for (char *p = text; *p; p++)
        if (*p == point)
            *p = '.';
}

size_t json_number_text(char out[JSON_NUMBER_MAX], double v)
{
    int len;
    if (!isfinite(v)) {
        len = snprintf(out, JSON_NUMBER_MAX, "null");
    } else if (v == floor(v) && fabs(v) <= MAX_SAFE_INTEGER) {
        len = snprintf(out, JSON_NUMBER_MAX, "%.0f", v); /* -0.0 prints as -0 */
    } else {
        /* The shortest of these that reads back as v: 17 significant digits
         * always do, fewer avoid noise such as 0.10000000000000001. */
        for (int digits = 15; digits <= 17; digits++) {
            len = snprintf(out, JSON_NUMBER_MAX, "%.*g", digits, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
    use_json_decimal_point(out);
    return (size_t)len;
}

size_t json_string_size(const char *s, size_t len)
{
    size_t size = 2; /* the quotes */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            size += 2;
        else if (c < 32)
            size += 6; /* \u00XX */
        else
            size += 1;
    }
    return size;
}

/* A number node turned into a raw node for the time of one print. */
typedef struct number_slot {
    cJSON *node;
    int type;
    char text[JSON_NUMBER_MAX];
} number_slot;

static size_t count_numbers(const cJSON *item)
{
    size_t count = cJSON_IsNumber(item) ? 1 : 0;
    for (const cJSON *child = item->child; child; child = child->next)
        count += count_numbers(child);
    return count;
}

/* cJSON prints a raw node's valuestring as it is: each number becomes a raw
 * node carrying its exact text. */
static void numbers_to_raw(cJSON *item, number_slot *slots, size_t *used)
{
    if (cJSON_IsNumber(item)) {
        number_slot *s = &slots[(*used)++];
        s->node = item;
        s->type = item->type;
        json_number_text(s->text, item->valuedouble);
        item->type = cJSON_Raw | (item->type & ~0xFF);
        item->valuestring = s->text;
    }
    for (cJSON *child = item->child; child; child = child->next)
        numbers_to_raw(child, slots, used);
}

static void raw_to_numbers(number_slot *slots, size_t used)
{
    for (size_t i = 0; i < used; i++) {
        slots[i].node->type = slots[i].type;
        slots[i].node->valuestring = NULL; /* a number node has none */
    }
}

char *json_print_exact(const cJSON *tree, int formatted)
{
    if (!tree)
        return NULL;
    /* The tree is only borrowed: every node changed is put back below. */
    cJSON *root = (cJSON *)tree;
    size_t count = count_numbers(root), used = 0;
    number_slot *slots = count ? calloc(count, sizeof *slots) : NULL;
    if (count && !slots)
        goto out_of_memory;
    numbers_to_raw(root, slots, &used);
    char *text = formatted ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    raw_to_numbers(slots, used);
    free(slots);
    if (!text)
        goto out_of_memory;
    return text;
out_of_memory:
    fprintf(stderr, "drctl: out of memory (printing JSON)\n");
    abort();
}
