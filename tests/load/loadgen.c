/* loadgen: a bounded load on one neon-local project, from many concurrent
 * clients on loopback, then a check of what it left.
 *
 *   loadgen --url URL --key KEY --setup NAME
 *       makes a project NAME (its answer lost to a fault, it is found by
 *       listing), waits until it is ready, prints "PROJECT_ID MAIN_BRANCH_ID".
 *   loadgen --url URL --key KEY --project ID --main BRANCH [--clients 200]
 *           [--requests 20000] [--creations 40] [--prefix load] [--seed 1]
 *       the load: mostly reads, a bounded number of branch creations (each a
 *       real PostgreSQL server) and deletions of most of them, hard and soft
 *       in turn. Then it waits for the operations to end, lists the branches
 *       and checks them against what the answers said; prints a summary;
 *       exits 0 when everything checks, 1 when not.
 *
 * Faults (neon-local --faults) make some answers lie by omission: a reset
 * connection, a 5xx, a 429. A creation or deletion whose answer was lost may
 * or may not have happened, so it is asked again later under the same name
 * (409: it had happened) or id (404: it had), and whatever is still unknown
 * at the end is settled by the final listing. No answer may take longer
 * than --timeout seconds, and the whole load must end by --deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1000
#define MAX_BRANCHES 1000
#define MAX_OPS 4000

/* ---- small helpers ------------------------------------------------------------ */

static void *must(void *p)
{
    if (!p) {
        fputs("loadgen: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

static char *text_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return must(out);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* xorshift64: the mix of requests is the same for a seed. */
static unsigned long long rng_state = 88172645463325252ULL;
static unsigned rng_below(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

typedef struct growbuf {
    char *data;
    size_t len, cap;
} growbuf;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    growbuf *b = ud;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        b->cap = (b->len + add + 1) * 2;
        b->data = must(realloc(b->data, b->cap));
    }
    memcpy(b->data + b->len, data, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- options ---------------------------------------------------------------------- */

static struct {
    const char *url, *key, *project, *main_branch, *setup, *prefix;
    int clients, requests, creations;
    unsigned long long seed;
    long timeout, deadline, think_ms;
} opt = { NULL, NULL, NULL, NULL, NULL, "load", 200, 20000, 40, 1, 60, 900, 0 };

static void usage_exit(void)
{
    fputs("usage: loadgen --url URL --key KEY (--setup NAME | --project ID --main BRANCH_ID) [--clients N]\n"
          "               [--requests N] [--creations N] [--prefix NAME] [--seed N] [--timeout S] [--deadline S]\n"
          "               [--think-ms MS]\n",
          stderr);
    exit(2);
}

static void parse_options(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage_exit();
        i++;
        if (!strcmp(a, "--url")) opt.url = v;
        else if (!strcmp(a, "--key")) opt.key = v;
        else if (!strcmp(a, "--project")) opt.project = v;
        else if (!strcmp(a, "--main")) opt.main_branch = v;
        else if (!strcmp(a, "--setup")) opt.setup = v;
        else if (!strcmp(a, "--prefix")) opt.prefix = v;
        else if (!strcmp(a, "--clients")) opt.clients = atoi(v);
        else if (!strcmp(a, "--requests")) opt.requests = atoi(v);
        else if (!strcmp(a, "--creations")) opt.creations = atoi(v);
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--timeout")) opt.timeout = atol(v);
        else if (!strcmp(a, "--deadline")) opt.deadline = atol(v);
        else if (!strcmp(a, "--think-ms")) opt.think_ms = atol(v);
        else usage_exit();
    }
    if (!opt.url || !opt.key || (!opt.setup && (!opt.project || !opt.main_branch)) || opt.clients < 1 ||
        opt.clients > MAX_CLIENTS || opt.requests < 1 || opt.creations < 0 || opt.creations > MAX_BRANCHES)
        usage_exit();
}

/* ---- one request, and how its answer is classed ----------------------------------- */

/* What an answer was: the faults by kind (told by neon-local's message),
 * the transport's failures, and the answers themselves. */
enum outcome { O_OK, O_FAULT_429, O_FAULT_500, O_FAULT_503, O_RESET, O_TIMEOUT, O_OTHER_CURL, O_4XX, O_UNEXPECTED,
               O_COUNT };
static const char *const outcome_names[O_COUNT] = { "ok",      "fault-429",  "fault-500", "fault-503", "reset",
                                                    "timeout", "curl-other", "4xx",       "unexpected" };

typedef struct answer {
    CURLcode curl;
    long status;
    growbuf body;
    double seconds;
} answer;

static enum outcome classify(const answer *a)
{
    if (a->curl == CURLE_OPERATION_TIMEDOUT)
        return O_TIMEOUT;
    if (a->curl == CURLE_GOT_NOTHING || a->curl == CURLE_RECV_ERROR || a->curl == CURLE_SEND_ERROR ||
        a->curl == CURLE_PARTIAL_FILE)
        return O_RESET;
    if (a->curl != CURLE_OK)
        return O_OTHER_CURL;
    int injected = a->body.data && strstr(a->body.data, "fault injected by neon-local");
    if (injected && a->status == 429) return O_FAULT_429;
    if (injected && a->status == 500) return O_FAULT_500;
    if (injected && a->status == 503) return O_FAULT_503;
    if (a->status >= 200 && a->status < 300)
        return O_OK;
    if (a->status >= 400 && a->status < 500)
        return O_4XX;
    return O_UNEXPECTED;
}

static int lost_to_fault(enum outcome o)
{
    return o == O_FAULT_429 || o == O_FAULT_500 || o == O_FAULT_503 || o == O_RESET;
}

static struct curl_slist *auth_headers;

static void prepare_handle(CURL *h, answer *a, const char *method, const char *path, const char *body)
{
    char *url = text_printf("%s%s", opt.url, path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, auth_headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, opt.timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opt.timeout);
    /* As drctl does: libcurl sends a request again, silently, when a reused
     * connection turns out dead; harmless for a read, not for a change. */
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a->body);
    a->body.len = 0;
    if (a->body.data)
        a->body.data[0] = '\0';
    a->status = 0;
}

/* One request, waited for (the setup and the final checks). */
static enum outcome request_now(answer *a, const char *method, const char *path, const char *body)
{
    CURL *h = must(curl_easy_init());
    prepare_handle(h, a, method, path, body);
    a->curl = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_cleanup(h);
    return classify(a);
}

/* A read asked until an answer gets through the faults (at most 200 tries). */
static cJSON *read_through_faults(const char *path)
{
    answer a = { 0 };
    cJSON *out = NULL;
    for (int i = 0; i < 200 && !out; i++) {
        enum outcome o = request_now(&a, "GET", path, NULL);
        if (o == O_OK)
            out = cJSON_Parse(a.body.data ? a.body.data : "");
        else if (!lost_to_fault(o))
            break;
        else
            usleep(20000);
    }
    free(a.body.data);
    return out;
}

/* ---- what the load tracks ------------------------------------------------------------- */

enum bstate { B_PLANNED, B_MAYBE_CREATED, B_EXISTS_NO_ID, B_EXISTS, B_MAYBE_DELETED, B_DELETED };

typedef struct tracked {
    char name[96];
    char id[96];
    enum bstate state;
    int in_flight;
    int want_delete, hard;
    long due;        /* its creation goes from this request number on */
    double not_before; /* and any next action from this time on */
    int tries;
} tracked;

static tracked branches[MAX_BRANCHES];
static char *operation_ids[MAX_OPS];
static int operation_count;

static struct {
    long issued, answered;
    long by_outcome[O_COUNT];
    long reads, creates, deletes, lookups;
    long created, deleted, conflicts, busy;
    long unexpected_shown;
    double *read_ms;
    long read_n;
} stats;

static int failures;

static void failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failure(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static void remember_operations(const cJSON *body)
{
    const cJSON *op;
    cJSON_ArrayForEach(op, cJSON_GetObjectItemCaseSensitive(body, "operations")) {
        const char *id = json_str(op, "id");
        if (id && operation_count < MAX_OPS)
            operation_ids[operation_count++] = must(strdup(id));
    }
}

/* ---- choosing the next request --------------------------------------------------------- */

enum action { A_READ, A_CREATE, A_DELETE, A_LOOKUP };

typedef struct slot {
    CURL *h;
    answer a;
    enum action action;
    int branch;          /* index in branches, for the branch actions */
    int read_kind;
    double started;
    double wake_at;      /* thinking until then (--think-ms); 0: busy */
} slot;

/* A tracked branch whose next action is due now, or -1. */
static int due_branch(void)
{
    for (int i = 0; i < opt.creations; i++) {
        tracked *b = &branches[i];
        if (b->in_flight || b->due > stats.issued || b->not_before > now_seconds())
            continue;
        if (b->state == B_PLANNED || b->state == B_MAYBE_CREATED || b->state == B_EXISTS_NO_ID)
            return i;
        if (b->want_delete && (b->state == B_EXISTS || b->state == B_MAYBE_DELETED))
            return i;
    }
    return -1;
}

/* Known ids, for reads of one branch or operation (any may be gone: 404). */
static const char *some_branch_id(void)
{
    for (int tries = 0; tries < 4; tries++) {
        const tracked *b = &branches[rng_below((unsigned)(opt.creations ? opt.creations : 1))];
        if (opt.creations && b->id[0])
            return b->id;
    }
    return opt.main_branch;
}

#define READ_KINDS 13

static char *read_path(int kind)
{
    const char *p = opt.project, *m = opt.main_branch;
    switch (kind) {
    case 0: return text_printf("/projects");
    case 1: return text_printf("/projects/%s", p);
    case 2: return text_printf("/projects/%s/branches", p);
    case 3: return text_printf("/projects/%s/branches/count", p);
    case 4: return text_printf("/projects/%s/branches/%s", p, m);
    case 5: return text_printf("/projects/%s/branches/%s", p, some_branch_id());
    case 6: return text_printf("/projects/%s/endpoints", p);
    case 7: return text_printf("/projects/%s/branches/%s/endpoints", p, m);
    case 8: return text_printf("/projects/%s/operations?limit=20", p);
    case 9:
        if (operation_count)
            return text_printf("/projects/%s/operations/%s", p, operation_ids[rng_below((unsigned)operation_count)]);
        return text_printf("/projects/%s/operations", p);
    case 10: return text_printf("/projects/%s/branches/%s/roles", p, m);
    case 11: return text_printf("/projects/%s/branches/%s/databases", p, m);
    default: return text_printf("/projects/%s/snapshots", p);
    }
}

static void start_request(CURLM *multi, slot *s)
{
    int i = due_branch();
    char *path = NULL, *body = NULL;
    const char *method = "GET";
    if (i >= 0) {
        tracked *b = &branches[i];
        b->in_flight = 1;
        s->branch = i;
        if (b->state == B_PLANNED || b->state == B_MAYBE_CREATED) {
            s->action = A_CREATE;
            method = "POST";
            path = text_printf("/projects/%s/branches", opt.project);
            body = text_printf("{\"branch\":{\"name\":\"%s\",\"parent_id\":\"%s\"},"
                               "\"endpoints\":[{\"type\":\"read_write\"}]}", b->name, opt.main_branch);
            stats.creates++;
        } else if (b->state == B_EXISTS_NO_ID) {
            s->action = A_LOOKUP;
            path = text_printf("/projects/%s/branches?search=%s", opt.project, b->name);
            stats.lookups++;
        } else {
            s->action = A_DELETE;
            method = "DELETE";
            path = text_printf("/projects/%s/branches/%s%s", opt.project, b->id, b->hard ? "?hard_delete=true" : "");
            stats.deletes++;
        }
    } else {
        s->action = A_READ;
        s->read_kind = (int)rng_below(READ_KINDS);
        path = read_path(s->read_kind);
        stats.reads++;
    }
    prepare_handle(s->h, &s->a, method, path, body);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s); /* after the reset */
    free(path);
    free(body);
    s->started = now_seconds();
    stats.issued++;
    curl_multi_add_handle(multi, s->h);
}

/* ---- what an answer tells ---------------------------------------------------------------- */

/* The delete of a branch starts a while after its creation; most are
 * deleted, in turn for good (hard_delete) and recoverably. */
static void schedule_deletion(tracked *b, int index)
{
    b->want_delete = index % 4 != 3;
    b->hard = index % 2 == 0;
    b->not_before = now_seconds() + 1;
}

/* Its next action a while later; never again when tried too often (the
 * final listing settles what is still unknown). */
static void try_later(tracked *b, double seconds, int max_tries)
{
    b->not_before = now_seconds() + seconds;
    if (++b->tries > max_tries)
        b->due = LONG_MAX;
}

static void after_create(tracked *b, int index, enum outcome o, const answer *a)
{
    if (o == O_OK && a->status == 201) {
        cJSON *body = cJSON_Parse(a->body.data);
        const char *id = json_str(cJSON_GetObjectItemCaseSensitive(body, "branch"), "id");
        if (!id) {
            failure("creation of %s: 201 without a branch id", b->name);
        } else {
            snprintf(b->id, sizeof b->id, "%s", id);
            b->state = B_EXISTS;
            stats.created++;
            schedule_deletion(b, index);
        }
        remember_operations(body);
        cJSON_Delete(body);
    } else if (o == O_4XX && a->status == 409) {
        /* Asked again after a lost answer: it had been made. */
        stats.conflicts++;
        if (b->state != B_MAYBE_CREATED)
            failure("creation of %s: 409 on its first attempt", b->name);
        b->state = B_EXISTS_NO_ID;
        stats.created++;
    } else if (o == O_4XX && a->status == 423) {
        /* The parent is busy (Neon's answer too): asked again later. */
        stats.busy++;
        try_later(b, 1, 60);
    } else if (lost_to_fault(o) || (o == O_OK && a->status != 201)) {
        if (o == O_OK) /* a slow fault still answers: never anything but 201 */
            failure("creation of %s: %ld", b->name, a->status);
        b->state = B_MAYBE_CREATED;
        try_later(b, 0.5, 5);
    } else {
        failure("creation of %s: %s %ld %s", b->name, outcome_names[o], a->status, a->body.data ? a->body.data : "");
        b->due = LONG_MAX;
    }
}

static void after_lookup(tracked *b, int index, enum outcome o, const answer *a)
{
    if (o != O_OK) {
        try_later(b, 0.2, 50);
        return;
    }
    cJSON *body = cJSON_Parse(a->body.data);
    const cJSON *br;
    cJSON_ArrayForEach(br, cJSON_GetObjectItemCaseSensitive(body, "branches")) {
        const char *name = json_str(br, "name"), *id = json_str(br, "id");
        if (name && id && !strcmp(name, b->name)) {
            snprintf(b->id, sizeof b->id, "%s", id);
            b->state = B_EXISTS;
            schedule_deletion(b, index);
        }
    }
    if (b->state != B_EXISTS)
        failure("%s: 409 said it exists, the listing does not show it", b->name);
    cJSON_Delete(body);
}

static void after_delete(tracked *b, enum outcome o, const answer *a)
{
    if (o == O_OK && a->status == 200) {
        b->state = B_DELETED;
        stats.deleted++;
    } else if (o == O_4XX && a->status == 404 && b->state == B_MAYBE_DELETED) {
        b->state = B_DELETED; /* the lost answer's deletion had happened */
        stats.deleted++;
    } else if (o == O_4XX && a->status == 423) {
        /* Still being made, so there and not deleted: later. */
        stats.busy++;
        b->state = B_EXISTS;
        b->not_before = now_seconds() + 1;
    } else if (lost_to_fault(o)) {
        b->state = B_MAYBE_DELETED;
        try_later(b, 0.5, 8);
    } else {
        failure("deletion of %s (%s): %s %ld %s", b->name, b->id, outcome_names[o], a->status,
                a->body.data ? a->body.data : "");
        b->due = LONG_MAX;
    }
}

static void after_read(const slot *s, enum outcome o)
{
    if (o == O_OK) {
        cJSON *body = cJSON_Parse(s->a.body.data ? s->a.body.data : "");
        if (!cJSON_IsObject(body))
            failure("a read (kind %d) answered 200 with no JSON object", s->read_kind);
        cJSON_Delete(body);
        stats.read_ms[stats.read_n++] = s->a.seconds * 1000;
    } else if (o == O_4XX && s->a.status == 404 && (s->read_kind == 5 || s->read_kind == 9)) {
        /* a branch deleted meanwhile */
    } else if (!lost_to_fault(o)) {
        if (stats.unexpected_shown++ < 10)
            failure("a read (kind %d): %s %ld %s", s->read_kind, outcome_names[o], s->a.status,
                    s->a.body.data ? s->a.body.data : "");
        else
            failures++;
    }
}

static void finish_request(CURLM *multi, slot *s, CURLcode code)
{
    curl_multi_remove_handle(multi, s->h);
    s->a.curl = code;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->a.status);
    s->a.seconds = now_seconds() - s->started;
    enum outcome o = classify(&s->a);
    stats.answered++;
    stats.by_outcome[o]++;
    if (o == O_TIMEOUT)
        failure("no answer within %ld s (a deadlock?)", opt.timeout);
    if (s->action == A_READ) {
        after_read(s, o);
        return;
    }
    tracked *b = &branches[s->branch];
    b->in_flight = 0;
    if (s->action == A_CREATE)
        after_create(b, s->branch, o, &s->a);
    else if (s->action == A_LOOKUP)
        after_lookup(b, s->branch, o, &s->a);
    else
        after_delete(b, o, &s->a);
}

/* ---- the load ------------------------------------------------------------------------------ */

static void plan_branches(void)
{
    /* Creations spread over the first half of the requests, so that most
     * can be made, then deleted, before the end. */
    for (int i = 0; i < opt.creations; i++) {
        snprintf(branches[i].name, sizeof branches[i].name, "%s-%d", opt.prefix, i);
        branches[i].state = B_PLANNED;
        branches[i].due = (long)((double)i * 0.5 * opt.requests / (opt.creations ? opt.creations : 1));
    }
}

static int run_load(void)
{
    CURLM *multi = must(curl_multi_init());
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)opt.clients * 2);
    slot *slots = must(calloc((size_t)opt.clients, sizeof *slots));
    stats.read_ms = must(calloc((size_t)opt.requests, sizeof *stats.read_ms));
    double deadline = now_seconds() + (double)opt.deadline;
    int running = 0, thinking = 0;
    for (int i = 0; i < opt.clients && stats.issued < opt.requests; i++) {
        slots[i].h = must(curl_easy_init());
        start_request(multi, &slots[i]);
        running++;
    }
    while (running > 0 || thinking > 0) {
        int still = 0;
        curl_multi_perform(multi, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            finish_request(multi, s, msg->data.result);
            running--;
            if (stats.issued < opt.requests) {
                /* A client thinks between requests: 0 to twice --think-ms. */
                s->wake_at = now_seconds() + (double)rng_below((unsigned)(2 * opt.think_ms + 1)) / 1000.0;
                thinking++;
            }
        }
        for (int i = 0; i < opt.clients && thinking; i++) {
            slot *s = &slots[i];
            if (s->wake_at <= 0 || s->wake_at > now_seconds())
                continue;
            s->wake_at = 0;
            thinking--;
            if (stats.issued < opt.requests) {
                start_request(multi, s);
                running++;
            }
        }
        if (now_seconds() > deadline) {
            failure("the load did not end within %ld s: %d requests still unanswered", opt.deadline, running);
            break;
        }
        curl_multi_poll(multi, NULL, 0, thinking ? 5 : 100, NULL);
    }
    for (int i = 0; i < opt.clients; i++) {
        if (!slots[i].h)
            continue;
        curl_multi_remove_handle(multi, slots[i].h);
        curl_easy_cleanup(slots[i].h);
        free(slots[i].a.body.data);
    }
    free(slots);
    curl_multi_cleanup(multi);
    return running == 0 ? 0 : -1;
}

/* ---- the checks after the load -------------------------------------------------------------- */

/* Until no operation of the project runs (every creation and deletion
 * done), at most wait_s seconds; 0 when they all ended. */
static int settle(double wait_s)
{
    double until = now_seconds() + wait_s;
    char *path = text_printf("/projects/%s/operations", opt.project);
    int rc = -1;
    while (now_seconds() < until && rc != 0) {
        cJSON *body = read_through_faults(path);
        int running = body ? 0 : 1;
        const cJSON *op;
        cJSON_ArrayForEach(op, cJSON_GetObjectItemCaseSensitive(body, "operations")) {
            const char *status = json_str(op, "status");
            if (status && !strcmp(status, "running"))
                running++;
        }
        cJSON_Delete(body);
        if (running == 0)
            rc = 0;
        else
            usleep(250000);
    }
    free(path);
    return rc;
}

static int count_named(const cJSON *list, const char *name, const cJSON **found)
{
    int n = 0;
    const cJSON *br;
    cJSON_ArrayForEach(br, list) {
        const char *bn = json_str(br, "name");
        if (bn && !strcmp(bn, name)) {
            n++;
            *found = br;
        }
    }
    return n;
}

/* Whether a listed name is one this load made (prefix-N). */
static int is_ours(const char *name)
{
    size_t n = strlen(opt.prefix);
    return !strncmp(name, opt.prefix, n) && name[n] == '-';
}

static void check_final_state(long *final_ours, long *maybe_present, long *maybe_absent)
{
    char *path = text_printf("/projects/%s/branches", opt.project);
    cJSON *body = read_through_faults(path);
    free(path);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "branches");
    if (!cJSON_IsArray(list)) {
        failure("the final branch list cannot be read");
        cJSON_Delete(body);
        return;
    }
    const cJSON *found = NULL, *br;
    int main_seen = 0;
    cJSON_ArrayForEach(br, list) {
        if (!json_str(br, "id") || strcmp(json_str(br, "id"), opt.main_branch))
            continue;
        main_seen++;
        if (!json_str(br, "current_state") || strcmp(json_str(br, "current_state"), "ready"))
            failure("the default branch %s is %s, not ready", opt.main_branch, json_str(br, "current_state"));
    }
    if (main_seen != 1)
        failure("the default branch %s is listed %d times", opt.main_branch, main_seen);
    cJSON_ArrayForEach(br, list) {
        const char *name = json_str(br, "name");
        if (!name)
            continue;
        if (count_named(list, name, &found) != 1)
            failure("branch %s is listed %d times", name, count_named(list, name, &found));
        if (!is_ours(name))
            continue;
        (*final_ours)++;
        int index = atoi(name + strlen(opt.prefix) + 1);
        if (index < 0 || index >= opt.creations || strcmp(branches[index].name, name))
            failure("branch %s is listed, and no client made it", name);
        const char *state = json_str(br, "current_state");
        if (!state || strcmp(state, "ready"))
            failure("branch %s is %s, not ready", name, state ? state : "(no state)");
    }
    for (int i = 0; i < opt.creations; i++) {
        const tracked *b = &branches[i];
        int n = count_named(list, b->name, &found);
        switch (b->state) {
        case B_PLANNED:
        case B_DELETED:
            if (n)
                failure("branch %s is listed, and it was %s", b->name, b->state == B_DELETED ? "deleted" : "never made");
            break;
        case B_EXISTS:
        case B_EXISTS_NO_ID:
            if (n != 1)
                failure("branch %s was made, and it is not listed (lost)", b->name);
            else if (b->id[0] && strcmp(json_str(found, "id"), b->id))
                failure("branch %s is listed with id %s, made as %s", b->name, json_str(found, "id"), b->id);
            break;
        case B_MAYBE_CREATED:
        case B_MAYBE_DELETED:
            (*(n ? maybe_present : maybe_absent))++;
            break;
        }
    }
    cJSON_Delete(body);
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double percentile(const double *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)ceil(p / 100.0 * (double)n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void print_summary(long final_ours, long maybe_present, long maybe_absent, double seconds)
{
    printf("load: %ld requests answered of %ld issued in %.1f s, %d clients thinking 0-%ld ms (%ld reads, %ld creations, %ld "
           "deletions, %ld look-ups)\n",
           stats.answered, stats.issued, seconds, opt.clients, 2 * opt.think_ms, stats.reads, stats.creates, stats.deletes,
           stats.lookups);
    printf("load: outcomes:");
    for (int o = 0; o < O_COUNT; o++)
        printf(" %s=%ld", outcome_names[o], stats.by_outcome[o]);
    printf(" (of the 4xx: 409 after a lost answer=%ld, 423 busy=%ld)\n", stats.conflicts, stats.busy);
    printf("load: branches created=%ld deleted=%ld final=%ld (lost answers settled by the listing: %ld there, "
           "%ld not)\n",
           stats.created, stats.deleted, final_ours, maybe_present, maybe_absent);
    qsort(stats.read_ms, (size_t)stats.read_n, sizeof *stats.read_ms, by_value);
    long fast = 0;
    while (fast < stats.read_n && stats.read_ms[fast] < 1400) /* the slow fault sleeps 1.5 s */
        fast++;
    printf("load: read latency ms: p50=%.1f p99=%.1f max=%.1f over %ld answered reads; without the slow fault's "
           "1.5 s: p50=%.1f p99=%.1f\n",
           percentile(stats.read_ms, stats.read_n, 50), percentile(stats.read_ms, stats.read_n, 99),
           stats.read_n ? stats.read_ms[stats.read_n - 1] : 0, stats.read_n, percentile(stats.read_ms, fast, 50),
           percentile(stats.read_ms, fast, 99));
    printf("load: %s (%d failed checks)\n", failures ? "FAILED" : "passed", failures);
}

/* ---- setup -------------------------------------------------------------------------------- */

/* The project named name, made unless there: its id and its default branch. */
static int setup_project(const char *name)
{
    answer a = { 0 };
    char *body = text_printf("{\"project\":{\"name\":\"%s\"}}", name);
    cJSON *found = NULL;
    for (int tries = 0; tries < 50 && !found; tries++) {
        cJSON *list = read_through_faults("/projects");
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(list, "projects"))
            if (!found && json_str(p, "name") && !strcmp(json_str(p, "name"), name))
                found = cJSON_Duplicate(p, 1);
        cJSON_Delete(list);
        if (!found)
            request_now(&a, "POST", "/projects", body);
    }
    free(body);
    free(a.body.data);
    if (!found)
        return -1;
    opt.project = must(strdup(json_str(found, "id")));
    cJSON_Delete(found);
    if (settle(300) != 0)
        return -1;
    char *path = text_printf("/projects/%s/branches", opt.project);
    cJSON *branches_body = read_through_faults(path);
    free(path);
    const cJSON *br;
    const char *main_id = NULL;
    cJSON_ArrayForEach(br, cJSON_GetObjectItemCaseSensitive(branches_body, "branches")) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(br, "default")))
            continue;
        main_id = json_str(br, "id");
        const char *state = json_str(br, "current_state");
        if (!state || strcmp(state, "ready")) {
            fprintf(stderr, "loadgen: the project's default branch %s is %s, not ready\n", main_id, state);
            main_id = NULL;
        }
    }
    if (main_id)
        printf("%s %s\n", opt.project, main_id);
    cJSON_Delete(branches_body);
    return main_id ? 0 : -1;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    rng_state ^= opt.seed * 2654435761ULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *auth = text_printf("Authorization: Bearer %s", opt.key);
    auth_headers = curl_slist_append(NULL, auth);
    auth_headers = curl_slist_append(auth_headers, "Content-Type: application/json");
    free(auth);
    int rc;
    if (opt.setup) {
        rc = setup_project(opt.setup) == 0 ? 0 : 1;
    } else {
        plan_branches();
        double started = now_seconds();
        int ended = run_load();
        double seconds = now_seconds() - started;
        long final_ours = 0, maybe_present = 0, maybe_absent = 0;
        if (ended == 0 && settle(600) != 0)
            failure("operations still running 600 s after the load");
        if (ended == 0)
            check_final_state(&final_ours, &maybe_present, &maybe_absent);
        print_summary(final_ours, maybe_present, maybe_absent, seconds);
        free(stats.read_ms);
        rc = failures ? 1 : 0;
    }
    for (int i = 0; i < operation_count; i++)
        free(operation_ids[i]);
    curl_slist_free_all(auth_headers);
    curl_global_cleanup();
    return rc;
}
