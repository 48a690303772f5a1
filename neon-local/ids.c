#include "ids.h"

#include "buf.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

char *nl_now_text(void)
{
    char t[48];
    timefmt_format_utc(t, sizeof t, floor(timefmt_now()));
    return xstrdup(t);
}

/* Passwords come from here: /dev/urandom, rand() only when it cannot be read. */
static void random_bytes(unsigned char *out, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(out, 1, n, f) != n)
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rand();
    if (f)
        fclose(f);
}

char *nl_new_id(const char *prefix)
{
    static const char *const adjectives[] = { "spring", "wispy", "silent", "autumn", "bold", "calm",
                                              "dry", "lucky", "misty", "quiet", "rapid", "young" };
    static const char *const nouns[] = { "meadow", "smoke", "river", "forest", "field", "cloud",
                                         "frost", "leaf", "moon", "rain", "sea", "sun" };
    unsigned char r[6];
    random_bytes(r, sizeof r);
    unsigned number = (unsigned)(r[2] << 16 | r[3] << 8 | r[4]) % 900000u + 100000u;
    return xasprintf("%s%s%s-%s-%u", prefix, *prefix ? "-" : "", adjectives[r[0] % 12], nouns[r[1] % 12], number);
}

char *nl_new_uuid(void)
{
    unsigned char r[16];
    random_bytes(r, sizeof r);
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
                     r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

char *nl_new_password(void)
{
    unsigned char r[12];
    random_bytes(r, sizeof r);
    buf b = BUF_INIT;
    buf_puts(&b, "npg_");
    for (size_t i = 0; i < sizeof r; i++)
        buf_printf(&b, "%02x", r[i]);
    return buf_detach(&b);
}
