/* jsontext: JSON text whose numbers read back exactly.
 *
 * cJSON prints numbers with %1.15g and accepts that text when it is merely
 * close to the value, so 9007199254740991 came back as ...990 and
 * 0.1 + 0.2 as 0.3 after a resume. Here an integral double within 2^53 is
 * printed as an integer, and any other double in the shortest of %.15g,
 * %.16g and %.17g that strtod reads back as the very same double. The rest
 * of the text (layout, string escapes) is cJSON's own. */
#ifndef DRCTL_JSONTEXT_H
#define DRCTL_JSONTEXT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Room for any number's text, NUL included ("-2.2250738585072014e-308"). */
#define JSON_NUMBER_MAX 32

/* Writes v's exact JSON text into out and returns its length. NaN and the
 * infinities, which JSON cannot carry, are written as null, as cJSON does. */
size_t json_number_text(char out[JSON_NUMBER_MAX], double v);

/* The length of s (len bytes, no NUL inside) as a JSON string literal,
 * quotes and escapes included, as cJSON prints it. */
size_t json_string_size(const char *s, size_t len);

/* cJSON_Print (formatted) or cJSON_PrintUnformatted, with exact numbers.
 * The number nodes of tree are rewritten in place while it prints and are
 * restored before it returns, so the tree must not be read by another
 * thread meanwhile. Caller frees; running out of memory aborts, as
 * xmalloc does. A NULL tree gives NULL, as with cJSON. */
char *json_print_exact(const cJSON *tree, int formatted);

#endif
