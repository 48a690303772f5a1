/* SigV4 as drctl's S3 client signs, checked against AWS's published
 * vectors (expected values copied from the published sources, never from
 * our own output):
 *  - the Signature Version 4 test suite (AKIDEXAMPLE, region us-east-1,
 *    service "service", 20150830T123600Z), as AWS ships it in
 *    https://github.com/awslabs/aws-c-auth/tree/main/tests/aws-signing-test-suite/v4
 *    (get-vanilla, get-vanilla-query-order-key-case, get-unreserved,
 *    get-utf8, get-vanilla-query-unreserved, get-vanilla-with-session-token);
 *  - the examples of "Signature Calculations for the Authorization Header:
 *    Transferring Payload in a Single Chunk",
 *    https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 *    (AKIAIOSFODNN7EXAMPLE, examplebucket, 20130524T000000Z).
 *
 * Each request goes through libcurl as a real transfer to a local socket
 * that never answers: the test takes the Authorization header from the
 * request head exactly as libcurl sent it. */
#include "test.h"

#include "buf.h"
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const s3_signer suite = {
    .region = "us-east-1", .service = "service", .key_id = "AKIDEXAMPLE",
    .secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

static const s3_signer s3_docs = {
    .region = "us-east-1", .service = "s3", .key_id = "AKIAIOSFODNN7EXAMPLE",
    .secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The request as libcurl sent it, and whether its head went out. */
typedef struct capture {
    buf head;
    int sent;
} capture;

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)h;
    capture *c = ud;
    if (type == CURLINFO_HEADER_OUT) {
        buf_append(&c->head, data, size);
        c->sent = 1;
    }
    return 0;
}

/* Once the request is out, the transfer stops: nobody answers it. */
static int stop_once_sent(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return ((capture *)ud)->sent;
}

/* A listening socket on 127.0.0.1 that takes connections (into its
 * backlog) and never answers; *port gets its port. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* The Authorization header (its value) of the request libcurl sends for
 * method and url, with extra headers (NULL-terminated, may be NULL), signed
 * by signer at amz_date; NULL if the request did not go out. Caller frees. */
static char *signed_authorization(const s3_signer *signer, const char *method, const char *url,
                                  const char *const *extra, const char *amz_date, const char *payload_sha256,
                                  const char *body)
{
    int port;
    int listener = silent_listener(&port);
    if (listener < 0)
        return NULL;
    CURL *h = curl_easy_init();
    struct curl_slist *headers = NULL, *here = NULL;
    char route[64], *date = NULL, *authorization = NULL;
    capture sent = { .head = BUF_INIT };
    for (const char *const *e = extra; e && *e; e++)
        headers = curl_slist_append(headers, *e);
    date = malloc(strlen(amz_date) + 13);
    sprintf(date, "X-Amz-Date: %s", amz_date);
    headers = curl_slist_append(headers, date);
    s3_sign_request(&headers, h, signer, payload_sha256);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    /* The URL's host stays in the request (it is signed); the connection
     * goes to the listener. */
    snprintf(route, sizeof route, "::127.0.0.1:%d", port);
    here = curl_slist_append(NULL, route);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, here);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &sent);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_once_sent);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &sent);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    curl_slist_free_all(here);
    free(date);
    close(listener);
    const char *line = sent.sent ? strstr(buf_cstr(&sent.head), "\r\nAuthorization: ") : NULL;
    if (line) {
        line += strlen("\r\nAuthorization: ");
        authorization = xstrndup(line, strcspn(line, "\r"));
    }
    buf_dispose(&sent.head);
    return authorization;
}

#define CHECK_SIGNED(authorization, expected)                                      \
    do {                                                                           \
        char *got_ = (authorization);                                              \
        int same_ = got_ && strcmp(got_, expected) == 0;                           \
        if (!same_)                                                                \
            test_fail(__FILE__, __LINE__, #authorization " == " #expected, got_);  \
        free(got_);                                                                \
        if (!same_)                                                                \
            return;                                                                \
    } while (0)

/* ---- the Signature Version 4 test suite ---- */

static void get_vanilla(void)
{
    CHECK_SIGNED(signed_authorization(&suite, "GET", "http://example.amazonaws.com/", NULL, "20150830T123600Z",
                                      NULL, NULL),
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/* The vector's request is "/?Param2=value2&Param1=value1"; its signature is
 * over the sorted query, which is the order in which drctl builds every
 * query it sends. */
static void get_vanilla_query_order_key_case(void)
{
    CHECK_SIGNED(signed_authorization(&suite, "GET", "http://example.amazonaws.com/?Param1=value1&Param2=value2",
                                      NULL, "20150830T123600Z", NULL, NULL),
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void get_unreserved(void)
{
    buf url = BUF_INIT;
    buf_puts(&url, "http://example.amazonaws.com/");
    s3_escape(&url, "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 1);
    CHECK_STR(buf_cstr(&url),
              "http://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    char *authorization = signed_authorization(&suite, "GET", buf_cstr(&url), NULL, "20150830T123600Z", NULL, NULL);
    buf_dispose(&url);
    CHECK_SIGNED(authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                                "SignedHeaders=host;x-amz-date, "
                                "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

static void get_utf8(void)
{
    buf url = BUF_INIT;
    buf_puts(&url, "http://example.amazonaws.com/");
    s3_escape(&url, "\xe1\x88\xb4", 1); /* U+1234, the vector's path */
    CHECK_STR(buf_cstr(&url), "http://example.amazonaws.com/%E1%88%B4");
    char *authorization = signed_authorization(&suite, "GET", buf_cstr(&url), NULL, "20150830T123600Z", NULL, NULL);
    buf_dispose(&url);
    CHECK_SIGNED(authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                                "SignedHeaders=host;x-amz-date, "
                                "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void get_vanilla_query_unreserved(void)
{
    static const char unreserved[] = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    buf url = BUF_INIT;
    buf_puts(&url, "http://example.amazonaws.com/?");
    s3_escape(&url, unreserved, 0);
    buf_putc(&url, '=');
    s3_escape(&url, unreserved, 0);
    char *authorization = signed_authorization(&suite, "GET", buf_cstr(&url), NULL, "20150830T123600Z", NULL, NULL);
    buf_dispose(&url);
    CHECK_SIGNED(authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                                "SignedHeaders=host;x-amz-date, "
                                "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

static void get_vanilla_with_session_token(void)
{
    s3_signer with_token = suite;
    with_token.token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    CHECK_SIGNED(signed_authorization(&with_token, "GET", "http://example.amazonaws.com/", NULL,
                                      "20150830T123600Z", NULL, NULL),
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                 "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

/* ---- the S3 examples ---- */

static void the_payload_hashes_are_the_published_ones(void)
{
    char hex[65];
    s3_payload_sha256(hex, NULL, 0);
    CHECK_STR(hex, EMPTY_SHA256);
    s3_payload_sha256(hex, "Welcome to Amazon S3.", 21);
    CHECK_STR(hex, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

static void s3_get_object_with_range(void)
{
    static const char *const range[] = { "Range: bytes=0-9", NULL };
    CHECK_SIGNED(signed_authorization(&s3_docs, "GET", "http://examplebucket.s3.amazonaws.com/test.txt", range,
                                      "20130524T000000Z", EMPTY_SHA256, NULL),
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void s3_put_object_with_a_key_that_needs_escaping(void)
{
    static const char *const extra[] = { "Date: Fri, 24 May 2013 00:00:00 GMT",
                                         "x-amz-storage-class: REDUCED_REDUNDANCY", NULL };
    buf url = BUF_INIT;
    buf_puts(&url, "http://examplebucket.s3.amazonaws.com/");
    s3_escape(&url, "test$file.text", 1);
    CHECK_STR(buf_cstr(&url), "http://examplebucket.s3.amazonaws.com/test%24file.text");
    char hex[65];
    s3_payload_sha256(hex, "Welcome to Amazon S3.", 21);
    char *authorization = signed_authorization(&s3_docs, "PUT", buf_cstr(&url), extra, "20130524T000000Z", hex,
                                               NULL);
    buf_dispose(&url);
    CHECK_SIGNED(authorization,
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                 "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                 "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void s3_list_objects(void)
{
    CHECK_SIGNED(signed_authorization(&s3_docs, "GET", "http://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
                                      NULL, "20130524T000000Z", EMPTY_SHA256, NULL),
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                 "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* ---- escaping ---- */

static void keys_are_escaped_byte_by_byte_in_upper_case(void)
{
    buf b = BUF_INIT;
    s3_escape(&b, "a b/c+d=e&f%g?h#i\x7f\xff", 1);
    int same = strcmp(buf_cstr(&b), "a%20b/c%2Bd%3De%26f%25g%3Fh%23i%7F%FF") == 0;
    buf_dispose(&b);
    CHECK(same);
    s3_escape(&b, "dir/file name", 0);
    same = strcmp(buf_cstr(&b), "dir%2Ffile%20name") == 0;
    buf_dispose(&b);
    CHECK(same);
}

TEST_SUITE(s3)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    REGISTER(get_vanilla);
    REGISTER(get_vanilla_query_order_key_case);
    REGISTER(get_unreserved);
    REGISTER(get_utf8);
    REGISTER(get_vanilla_query_unreserved);
    REGISTER(get_vanilla_with_session_token);
    REGISTER(the_payload_hashes_are_the_published_ones);
    REGISTER(s3_get_object_with_range);
    REGISTER(s3_put_object_with_a_key_that_needs_escaping);
    REGISTER(s3_list_objects);
    REGISTER(keys_are_escaped_byte_by_byte_in_upper_case);
}
