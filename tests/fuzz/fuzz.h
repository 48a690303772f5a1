/* What the harnesses share: the libFuzzer entry points, the input as a C
 * string, and a check that crashes loudly (a failed invariant is a
 * finding like any crash: libFuzzer saves the input). */
#ifndef DRCTL_FUZZ_H
#define DRCTL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A failed invariant aborts with what was expected, so the saved input
 * comes with a reason. */
#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* The input as a NUL-terminated string (it ends at its first NUL, as a C
 * caller would see it). Caller frees. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

/* Cuts text at the first sep: returns what follows it (or "" when there
 * is none) and ends text there. */
static inline char *fuzz_split(char *text, char sep)
{
    char *at = strchr(text, sep);
    if (!at)
        return text + strlen(text);
    *at = '\0';
    return at + 1;
}

/* Whether needle is in a redacted text outside the "<redacted>" markers
 * themselves: a secret like "redacted" is in every marker, and that is no
 * leak. */
static inline int fuzz_leaks(const char *redacted, const char *needle)
{
    if (!*needle || strchr(needle, '\x01'))
        return 0;
    char *flat = malloc(strlen(redacted) + 1);
    if (!flat)
        abort();
    char *out = flat;
    for (const char *p = redacted; *p;) {
        if (strncmp(p, "<redacted>", 10) == 0) {
            *out++ = '\x01';
            p += 10;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
    int found = strstr(flat, needle) != NULL;
    free(flat);
    return found;
}

#endif
