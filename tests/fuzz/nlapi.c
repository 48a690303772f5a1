/* nlapi: neon-local's request handling, without a socket: method, path,
 * query, headers and body through the router (nl_api_handle) and every
 * handler, against a scratch state.
 *
 * The input is up to four requests separated by a 0x1e byte, each
 *     METHOD /path?query
 *     Header: value
 *     (empty line)
 *     body
 * read as server.c hands them on: the query percent-decoded into
 * {name: value} ('+' a space, a name without '=' the empty value), the
 * path percent-decoded, X-Request-ID as the request id, a body that is not
 * JSON answered 400 before any handler. The Authorization check stays in
 * server.c (libmicrohttpd's connection), which this harness has none of.
 *
 * The scratch state is made once, by the API itself: POST /projects, a
 * branch, a snapshot and a deleted branch (a role and a database are
 * written in as their handlers record them, since making them needs the
 * branch's server), with the worker's part done by hand (branches ready, endpoints active, operations
 * finished), since no worker thread runs here. Every input starts from a
 * copy of it, in a folder of its own on tmpfs.
 *
 * What is skipped, and why: the two schema handlers (GET .../schema and
 * .../compare_schema) run pg_dump and start a scratch PostgreSQL server on
 * a copy of the branch's data, with the lock released; nothing else in a
 * handler starts a server (the worker does, and it does not run). Handlers
 * that query a branch's server (roles, databases, an LSN's end of WAL) do
 * run: every endpoint's port is pinned to 1, where nothing listens (checked
 * at start), so they meet a refused connection at once and never reach a
 * server of anyone's.
 *
 * Beyond "no crash": every answer has a status from 200 to 599 and a JSON
 * object body; an error has Neon's shape (a message string); no answer
 * shows a hidden field (a key starting with '_', passwords among them);
 * the state stays a document with a list of projects and prints as JSON
 * that parses back; a GET changes nothing in the state. */
#include "fuzz.h"

#include "api_internal.h"
#include "fsio.h"
#include "jsontext.h"
#include "roles.h"
#include "routes.h"
#include "schema.h"
#include "state.h"
#include "timefmt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REQUESTS 4
#define PINNED_PORT 1
#define FNV_OFFSET 1469598103934665603ULL

static nl_api api;
static cJSON *scratch;   /* the state every input starts from */
static unsigned long long scratch_print; /* its fingerprint */
static char *project_id, *branch_id; /* as the set-up made them */

/* FNV-1a over the text of a string */
static unsigned long long hash_text(unsigned long long h, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)(text ? text : "\x01"); *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

/* A hash of the whole tree, made without allocating: a GET must leave it
 * as it found it. */
static unsigned long long fingerprint(const cJSON *node, unsigned long long h)
{
    h = hash_text(h, node->string);
    h = (h ^ (unsigned)(node->type & 0xFF)) * 1099511628211ULL;
    if (cJSON_IsString(node))
        h = hash_text(h, node->valuestring);
    if (cJSON_IsNumber(node)) {
        unsigned long long bits;
        memcpy(&bits, &node->valuedouble, sizeof bits);
        h = (h ^ bits) * 1099511628211ULL;
    }
    for (const cJSON *c = node->child; c; c = c->next)
        h = fingerprint(c, h);
    return h;
}

static void remove_scratch(void)
{
    fsio_remove_tree(api.data_dir);
}

/* Nothing may listen where the endpoints point. */
static void check_pinned_port_is_closed(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(PINNED_PORT) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        fprintf(stderr, "nlapi: something listens on 127.0.0.1:%d; the harness will not send it queries\n",
                PINNED_PORT);
        abort();
    }
    close(fd);
}

/* What the worker would have done, done at once: every branch ready, every
 * endpoint running on the pinned port, every operation finished. */
static void finish_jobs(cJSON *state)
{
    const cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(state)) {
        cJSON *item;
        cJSON_ArrayForEach(item, nl_state_list((cJSON *)project, NL_BRANCHES)) {
            if (nl_state_is(item, NL_BRANCH_INIT))
                nl_state_set_text(item, "current_state", NL_BRANCH_READY);
            cJSON_DeleteItemFromObjectCaseSensitive(item, NL_RESTORE);
            nl_state_set(item, NL_HISTORY_FROM, cJSON_CreateNumber(timefmt_now() - 3600));
        }
        cJSON_ArrayForEach(item, nl_state_list((cJSON *)project, NL_ENDPOINTS)) {
            nl_state_set_text(item, "current_state", NL_ENDPOINT_ACTIVE);
            cJSON_DeleteItemFromObjectCaseSensitive(item, NL_PENDING);
            cJSON_DeleteItemFromObjectCaseSensitive(item, NL_FROM);
        }
        cJSON_ArrayForEach(item, nl_state_list((cJSON *)project, NL_OPERATIONS))
            nl_state_set_text(item, "status", NL_OPERATION_FINISHED);
    }
}

/* Every endpoint, new ones too, points at the port nothing listens on. */
static void pin_ports(cJSON *state)
{
    const cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(state)) {
        cJSON *endpoint;
        cJSON_ArrayForEach(endpoint, nl_state_list((cJSON *)project, NL_ENDPOINTS))
            if (cJSON_GetObjectItemCaseSensitive(endpoint, NL_PORT))
                nl_state_set(endpoint, NL_PORT, cJSON_CreateNumber(PINNED_PORT));
    }
}

/* One request of the set-up; its answer's body (caller frees). */
static cJSON *setup(const char *method, const char *path, const char *body_text)
{
    cJSON *query = cJSON_CreateObject();
    cJSON *body = body_text ? cJSON_Parse(body_text) : NULL;
    nl_request req = { method, path, query, body, "setup" };
    nl_response r = nl_api_handle(&api, &req);
    cJSON_Delete(query);
    cJSON_Delete(body);
    if (r.status >= 300) {
        char *text = json_print_exact(r.body, 0);
        fprintf(stderr, "nlapi: set-up %s %s answered %u: %s\n", method, path, r.status, text);
        abort();
    }
    finish_jobs(api.state);
    pin_ports(api.state);
    return r.body;
}

static char *setup_id(const char *method, const char *path, const char *body, const char *key)
{
    cJSON *answer = setup(method, path, body);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(answer, key);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
    char *copy = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    cJSON_Delete(answer);
    if (!copy)
        abort();
    return copy;
}

/* The ids the set-up made are random; seeds name them, so each becomes a
 * fixed one ("fz-project-1", "fz-branch-2", ...) wherever it is written. */
static void collect_ids(cJSON *list, const char *kind, char ***from, char ***to, size_t *n)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        if (!cJSON_IsString(id))
            continue;
        *from = realloc(*from, (*n + 1) * sizeof **from);
        *to = realloc(*to, (*n + 1) * sizeof **to);
        (*from)[*n] = strdup(id->valuestring);
        char fixed[64];
        snprintf(fixed, sizeof fixed, "fz-%s-%zu", kind, *n + 1);
        (*to)[*n] = strdup(fixed);
        (*n)++;
    }
}

static char *replace_all(char *text, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), count = 0;
    for (const char *p = strstr(text, from); p; p = strstr(p + from_len, from))
        count++;
    char *out = malloc(strlen(text) + count * (to_len + 1) + 1), *o = out;
    const char *p = text;
    for (const char *hit = strstr(p, from); hit; hit = strstr(p, from)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, to, to_len);
        o += to_len;
        p = hit + from_len;
    }
    strcpy(o, p);
    free(text);
    return out;
}

static cJSON *with_fixed_ids(cJSON *state)
{
    char **from = NULL, **to = NULL;
    size_t n = 0;
    collect_ids(nl_state_projects(state), "project", &from, &to, &n);
    cJSON *project = cJSON_GetArrayItem(nl_state_projects(state), 0);
    static const char *const lists[] = { NL_BRANCHES, NL_KEPT_BRANCHES, NL_ENDPOINTS, NL_OPERATIONS };
    static const char *const kinds[] = { "branch", "branch", "endpoint", "op" };
    for (size_t i = 0; i < 4; i++)
        collect_ids(nl_state_list(project, lists[i]), kinds[i], &from, &to, &n);
    char *text = json_print_exact(state, 0);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "nlapi: scratch id %s\n", to[i]);
        text = replace_all(text, from[i], to[i]);
        free(from[i]);
        free(to[i]);
    }
    free(from);
    free(to);
    cJSON *fixed = cJSON_Parse(text);
    free(text);
    if (!fixed)
        abort();
    return fixed;
}

static void make_scratch_state(void)
{
    char path[512];
    project_id = setup_id("POST", "/projects", "{\"project\":{\"name\":\"fuzz\"}}", "project");
    snprintf(path, sizeof path, "/projects/%s/branches", project_id);
    branch_id = setup_id("POST", path, "{\"branch\":{\"name\":\"dev\"},\"endpoints\":[{\"type\":\"read_write\"}]}",
                         "branch");
    char *doomed = setup_id("POST", path, "{\"branch\":{\"name\":\"doomed\"}}", "branch");
    /* A role and a database are made on the branch's server by the API:
     * here they are written into the state as the handlers record them. */
    cJSON *project = nl_state_live_project(api.state, project_id);
    nl_role_add(project, branch_id, "alice", "fuzz-password-not-secret");
    nl_database_add(project, branch_id, "shop", "alice");
    snprintf(path, sizeof path, "/projects/%s/branches/%s/snapshot", project_id, branch_id);
    cJSON_Delete(setup("POST", path, NULL));
    snprintf(path, sizeof path, "/projects/%s/branches/%s", project_id, doomed);
    cJSON_Delete(setup("DELETE", path, NULL));
    free(doomed);
    scratch = with_fixed_ids(api.state);
    cJSON_Delete(api.state);
    api.state = cJSON_Duplicate(scratch, 1);
    scratch_print = fingerprint(scratch, FNV_OFFSET);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    check_pinned_port_is_closed();
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char dir[256];
    snprintf(dir, sizeof dir, "%s/drctl-fuzz-nlapi-%d", base, (int)getpid());
    mkdir(dir, 0700);
    api.data_dir = strdup(dir);
    atexit(remove_scratch);
    char state_path[300];
    snprintf(state_path, sizeof state_path, "%s/state.json", dir);
    api.state_path = strdup(state_path);
    api.state = nl_state_new();
    pthread_mutex_init(&api.lock, NULL);
    pthread_cond_init(&api.wake, NULL);
    api.clock_speed = 1;
    api.clock_origin = timefmt_now();
    make_scratch_state();
    return 0;
}

/* ---- a request's text, as server.c hands it to the API ---- */

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                                                      : -1;
}

/* In place; a %00 ends the text, as it would a C string. */
static void percent_decode(char *text, int plus_is_space)
{
    char *out = text;
    for (char *p = text; *p; p++) {
        if (*p == '%' && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
            *out++ = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
            p += 2;
        } else {
            *out++ = plus_is_space && *p == '+' ? ' ' : *p;
        }
    }
    *out = '\0';
}

static cJSON *parse_query(char *query)
{
    cJSON *args = cJSON_CreateObject();
    while (query && *query) {
        char *next = fuzz_split(query, '&');
        char *value = fuzz_split(query, '='); /* the empty end of query when there is no '=' */
        percent_decode(query, 1);
        percent_decode(value, 1);
        cJSON_AddStringToObject(args, query, value);
        query = next;
    }
    return args;
}

static int has_hidden_key(const cJSON *node)
{
    for (const cJSON *c = node->child; c; c = c->next)
        if ((c->string && c->string[0] == '_') || has_hidden_key(c))
            return 1;
    return 0;
}

static int is_schema_route(const char *method, const char *path)
{
    nl_route_match match;
    return nl_route_find(&match, method, path) == 0 &&
           (match.route->handler == nl_branch_schema_get || match.route->handler == nl_branch_schema_compare);
}

static void check_state(void)
{
    FUZZ_CHECK(cJSON_IsObject(api.state) && cJSON_IsArray(nl_state_projects(api.state)));
}

static nl_response answer(char *text)
{
    char *rest = fuzz_split(text, '\n');
    char *url = fuzz_split(text, ' ');
    const char *method = text;
    char *query_text = strchr(url, '?') ? fuzz_split(url, '?') : NULL;
    percent_decode(url, 0);
    const char *request_id = "fuzz-request";
    while (*rest && *rest != '\n' && *rest != '\r') {
        char *line = rest;
        rest = fuzz_split(rest, '\n');
        if (strncasecmp(line, "X-Request-ID:", 13) == 0)
            request_id = line + 13 + strspn(line + 13, " ");
    }
    if (*rest == '\r')
        rest++;
    if (*rest == '\n')
        rest++;
    cJSON *body = NULL;
    if (*rest && !(body = cJSON_ParseWithLength(rest, strlen(rest))))
        return nl_error(400, "", "the request body is not valid JSON");
    const char *path = *url ? url : "/";
    if (is_schema_route(method, path)) {
        cJSON_Delete(body);
        return nl_json(200, cJSON_CreateObject());
    }
    cJSON *query = parse_query(query_text);
    nl_request req = { method, path, query, body, request_id };
    int get = strcmp(method, "GET") == 0;
    unsigned long long before = get ? fingerprint(api.state, FNV_OFFSET) : 0;
    nl_response r = nl_api_handle(&api, &req);
    if (get)
        FUZZ_CHECK(fingerprint(api.state, FNV_OFFSET) == before);
    cJSON_Delete(query);
    cJSON_Delete(body);
    if (r.status >= 400 && r.body)
        cJSON_AddStringToObject(r.body, "request_id", request_id);
    return r;
}

static void check_answer(const nl_response *r)
{
    FUZZ_CHECK(r->status >= 200 && r->status <= 599);
    FUZZ_CHECK(cJSON_IsObject(r->body));
    if (r->status >= 400)
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r->body, "message")));
    FUZZ_CHECK(!has_hidden_key(r->body));
    char *text = json_print_exact(r->body, 0);
    cJSON *back = cJSON_Parse(text);
    FUZZ_CHECK(back != NULL);
    cJSON_Delete(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fuzz_cstring(data, size);
    char *request = input;
    for (int i = 0; i < MAX_REQUESTS && *request; i++) {
        char *next = fuzz_split(request, '\x1e');
        nl_response r = answer(request);
        check_answer(&r);
        cJSON_Delete(r.body);
        check_state();
        pin_ports(api.state);
        request = next;
    }
    /* Most requests are refused and change nothing: the state is copied
     * again only when one did change it (copying it is most of the cost). */
    if (fingerprint(api.state, FNV_OFFSET) != scratch_print) {
        cJSON_Delete(api.state);
        api.state = cJSON_Duplicate(scratch, 1);
    }
    free(input);
    return 0;
}
