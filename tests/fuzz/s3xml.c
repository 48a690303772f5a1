/* s3xml: the XML answers S3 gives drctl: ListObjectsV2 pages, <Error>
 * bodies and the one-value answers (an upload id).
 *
 * s3.c keeps its readers static behind s3_list and the uploads, so this
 * harness compiles s3.c into itself (fuzz.mk leaves s3.o out of its link)
 * and hands each reader the input as the body of a 200 answer. Pages are
 * separated by a form feed and read in order as s3_list reads them, with
 * its token check between them.
 *
 * Beyond "no crash": a page that is accepted holds only objects with a
 * non-empty key without control bytes a URL decoding could have made from
 * nothing (no NUL), a size that is not negative, and a last-modified text;
 * a refusal has a message naming the listing; a listing that goes on
 * always has a token never given before; an error summary is one line of
 * printable text. */
#include "fuzz.h"

#include "../../engine/s3.c"

static const s3_url fuzz_url = { (char *)"bucket", (char *)"prefix/" };

static s3_reply reply_of(const char *body, size_t len)
{
    s3_reply r;
    memset(&r, 0, sizeof r);
    r.status = 200;
    r.body = (buf)BUF_INIT;
    buf_append(&r.body, body, len);
    return r;
}

static void check_objects(const s3_object *objects, size_t from, size_t count)
{
    for (size_t i = from; i < count; i++) {
        FUZZ_CHECK(objects[i].key && *objects[i].key);
        FUZZ_CHECK(objects[i].size >= 0);
        FUZZ_CHECK(objects[i].last_modified != NULL);
    }
}

static void fuzz_listing(const char *data, size_t size)
{
    s3_object *objects = NULL;
    size_t count = 0, pages = 0, tokens = 0;
    char **seen = NULL, *token = NULL;
    s3_call call = { .method = "GET", .url = &fuzz_url, .bucket_only = 1 };
    int rc = 0;
    size_t pos = 0;
    do {
        const char *end = memchr(data + pos, '\f', size - pos);
        size_t len = end ? (size_t)(end - (data + pos)) : size - pos;
        s3_reply r = reply_of(data + pos, len);
        list_page page = { .objects = &objects, .count = &count, .first = count };
        pages++;
        rc = read_list_page(&call, &r, &page);
        if (rc == 0) {
            check_objects(objects, page.first, count);
            rc = next_token(&fuzz_url, &page, pages, &seen, &tokens, &token);
            if (rc == 0 && token)
                FUZZ_CHECK(*token);
        } else {
            FUZZ_CHECK(strstr(err_last(), "listing") != NULL);
        }
        buf_dispose(&r.body);
        list_page_free(&page);
        pos += len + 1;
    } while (rc == 0 && token && pos <= size);
    for (size_t i = 0; i < tokens; i++)
        free(seen[i]);
    free(seen);
    s3_objects_free(objects, count);
}

static void fuzz_error_summary(const char *data, size_t size)
{
    s3_reply r = reply_of(data, size);
    char *summary = error_summary(&r.body);
    for (const unsigned char *p = (const unsigned char *)summary; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
    free(summary);
    buf_dispose(&r.body);
    s3_call call = { .method = "POST", .url = &fuzz_url };
    r = reply_of(data, size);
    char *upload_id = NULL;
    if (read_answer(&call, &r, "upload", "InitiateMultipartUploadResult", "UploadId", &upload_id) == 0)
        FUZZ_CHECK(upload_id && *upload_id);
    free(upload_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_listing((const char *)data, size);
    fuzz_error_summary((const char *)data, size);
    return 0;
}
