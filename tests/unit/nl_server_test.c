/* neon-local's HTTP server (server.c): its faults, changed while it serves. */
#include "test.h"

#include "server.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

/* The server logs every request on stderr: kept out of the tests' output. */
static int saved_stderr = -1;

static void quiet_stderr(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    close(null);
}

static void restore_stderr(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
}

static nl_response answer_ok(void *ud, const nl_request *req)
{
    (void)ud;
    (void)req;
    return nl_json(200, cJSON_CreateObject());
}

static size_t discard(char *data, size_t size, size_t n, void *ud)
{
    (void)data;
    (void)ud;
    return size * n;
}

/* The status of GET /api/v2/projects with the right key (0: no answer). */
static long status_of_get(const nl_server *s)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v2/projects", nl_server_port(s));
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Authorization: Bearer k");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return status;
}

/* A spec that is refused leaves the faults as they were. Before, it had
 * already set the rate and cleared the kinds: the next request drew a
 * fault with no kind to pick from, a division by zero that killed the
 * server (SIGFPE). main refuses such a spec at start, but the same
 * half-set faults were what a request saw while main set good ones. */
static void a_refused_fault_spec_changes_nothing(void)
{
    nl_server *s = NULL;
    CHECK(nl_server_start(&s, "127.0.0.1", 0, "k", 10, answer_ok, NULL) == 0);
    quiet_stderr();
    long before = status_of_get(s);
    int set = nl_server_set_faults(s, "rate=1,kinds=503") == 0;
    long with_faults = status_of_get(s);
    int refused = nl_server_set_faults(s, "rate=1,kinds=bogus") != 0;
    long after_refused = status_of_get(s);
    refused += nl_server_set_faults(s, "rate=1,kinds=429,seed=x,nope") != 0;
    long after_refused_again = status_of_get(s);
    set += nl_server_set_faults(s, "rate=0") == 0;
    long without = status_of_get(s);
    nl_server_stop(s);
    restore_stderr();
    CHECK(set == 2 && refused == 2);
    CHECK(before == 200);
    CHECK(with_faults == 503);
    CHECK(after_refused == 503);
    CHECK(after_refused_again == 503);
    CHECK(without == 200);
}

typedef struct hammer {
    const nl_server *s;
    int answered, other;
} hammer;

static void *send_requests(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < 60; i++) {
        long status = status_of_get(h->s);
        if (status == 200 || status == 503)
            h->answered++;
        else
            h->other++;
    }
    return NULL;
}

/* Faults changed again and again while requests arrive: every request gets
 * the old faults or the new ones (200 or 503), never a half-set mix. Under
 * ThreadSanitizer (make load-tsan builds server.c so) this is a data race
 * unless the faults are changed under their lock. */
static void faults_change_safely_while_requests_arrive(void)
{
    nl_server *s = NULL;
    CHECK(nl_server_start(&s, "127.0.0.1", 0, "k", 10, answer_ok, NULL) == 0);
    hammer h = { s, 0, 0 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_requests, &h) == 0);
    quiet_stderr();
    int refused = 0;
    for (int i = 0; i < 2000; i++)
        refused += nl_server_set_faults(s, i % 2 ? "rate=1,kinds=503" : "rate=0.5,kinds=nope") != 0;
    for (int i = 0; i < 200; i++)
        nl_server_set_faults(s, i % 2 ? "rate=1,kinds=503" : "rate=0");
    pthread_join(t, NULL);
    nl_server_stop(s);
    restore_stderr();
    CHECK(refused == 1000);
    CHECK(h.answered == 60);
    CHECK(h.other == 0);
}

TEST_SUITE(nl_server)
{
    REGISTER(a_refused_fault_spec_changes_nothing);
    REGISTER(faults_change_safely_while_requests_arrive);
}
