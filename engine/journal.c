#include "journal.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsontext.h"
#include "redact.h"
#include "testhook.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct journal {
    int fd;
    char *path;
    long seq;
    char head[JOURNAL_HASH_SIZE]; /* the next event's prev */
    journal_listener listener;
    void *listener_ud;
};

static journal *journal_new(int fd, char *path, long seq, const char *head)
{
    journal *j = xcalloc(1, sizeof *j);
    j->fd = fd;
    j->path = path;
    j->seq = seq;
    snprintf(j->head, sizeof j->head, "%s", head);
    return j;
}

/* ---- the hash chain ------------------------------------------------------ */

static void sha256_hex(char out[JOURNAL_HASH_SIZE], const void *data, size_t len)
{
    unsigned char digest[32];
    EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

void journal_chain_start(char out[JOURNAL_HASH_SIZE], const char *run_id)
{
    sha256_hex(out, run_id, strlen(run_id));
}

/* The run id a journal in run_dir belongs to: the folder's name. */
static const char *run_id_of_dir(const char *run_dir)
{
    const char *slash = strrchr(run_dir, '/');
    return slash && slash[1] ? slash + 1 : run_dir;
}

static void chain_break(journal_chain *c, long line, const char *what)
{
    if (c->broken_line)
        return;
    c->broken_line = line;
    c->why = xasprintf("line %ld: %s", line, what);
}

/* Line by line: an event with prev must carry the hash of the line before
 * it (of the run id, for the first); one without is accepted only before
 * the first chained event (a journal begun by an older drctl). */
static void chain_line(journal_chain *c, const char *line, size_t len, char expected[JOURNAL_HASH_SIZE])
{
    long n = ++c->events;
    cJSON *event = cJSON_ParseWithLength(line, len);
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(event, "prev");
    if (cJSON_IsString(prev)) {
        if (strcmp(prev->valuestring, expected) != 0)
            chain_break(c, n, n == 1 ? "its prev is not the hash of the run id (the first event was edited or "
                                       "removed)"
                                     : "its prev is not the hash of the line before it (an event was edited, "
                                       "inserted or removed before it)");
    } else if (n - 1 > c->unchained) {
        chain_break(c, n, "it has no prev although the events before it are chained (an event was added by "
                          "hand)");
    } else {
        c->unchained++;
    }
    cJSON_Delete(event);
    sha256_hex(expected, line, len);
}

void journal_chain_check(journal_chain *c, const char *run_id, const char *text, size_t len)
{
    memset(c, 0, sizeof *c);
    char expected[JOURNAL_HASH_SIZE];
    journal_chain_start(expected, run_id);
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl)
            break; /* a torn last line is no event */
        chain_line(c, text + pos, (size_t)(nl - (text + pos)), expected);
        pos = (size_t)(nl - text) + 1;
    }
    snprintf(c->head, sizeof c->head, "%s", expected);
}

void journal_chain_dispose(journal_chain *c)
{
    free(c->why);
    c->why = NULL;
}

int journal_rebase(char **out, const char *run_id, const char *onto, const char *base, const char *local)
{
    *out = NULL;
    size_t base_len = strlen(base);
    if (strncmp(local, base, base_len) != 0)
        return err_set(DR_EFAIL, "run %s: the local journal is not the one it was appended to", run_id);
    journal_chain chain;
    journal_chain_check(&chain, run_id, onto, strlen(onto));
    buf merged = BUF_INIT;
    buf_puts(&merged, onto);
    long seq = chain.events;
    char prev[JOURNAL_HASH_SIZE];
    snprintf(prev, sizeof prev, "%s", chain.head);
    journal_chain_dispose(&chain);
    int rc = 0;
    for (const char *p = local + base_len; rc == 0 && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cJSON *event = cJSON_ParseWithLength(p, len);
        if (!cJSON_IsObject(event)) {
            rc = err_set(DR_EFAIL, "run %s: a local journal line is not an event", run_id);
        } else {
            cJSON_ReplaceItemInObjectCaseSensitive(event, "seq", cJSON_CreateNumber((double)++seq));
            if (cJSON_GetObjectItemCaseSensitive(event, "prev"))
                cJSON_ReplaceItemInObjectCaseSensitive(event, "prev", cJSON_CreateString(prev));
            /* its time stays the one it happened at, which may be before
             * the other clone's last event */
            if (!cJSON_GetObjectItemCaseSensitive(event, "rebased"))
                cJSON_AddTrueToObject(event, "rebased");
            char *line = json_print_exact(event, 0);
            sha256_hex(prev, line, strlen(line));
            buf_printf(&merged, "%s\n", line);
            free(line);
        }
        cJSON_Delete(event);
        p += len + (nl ? 1 : 0);
    }
    if (rc) {
        buf_dispose(&merged);
        return rc;
    }
    *out = buf_detach(&merged);
    return 0;
}

const char *journal_head(const journal *j)
{
    return j->head;
}

int journal_create(journal **out, const char *run_dir)
{
    *out = NULL;
    char *path = xasprintf("%s/journal.jsonl", run_dir);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = err_set(DR_EFAIL, "cannot create %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    char head[JOURNAL_HASH_SIZE];
    journal_chain_start(head, run_id_of_dir(run_dir));
    *out = journal_new(fd, path, 0, head);
    return fsio_fsync_dir(run_dir);
}

int journal_parse(cJSON **events, long *torn, const char *path, const char *text, size_t len)
{
    cJSON *list = cJSON_CreateArray();
    size_t pos = 0;
    long line_number = 0;
    *torn = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        line_number++;
        if (!nl) {
            *torn = (long)(len - pos);
            break;
        }
        size_t line_len = (size_t)(nl - line);
        cJSON *event = cJSON_ParseWithLength(line, line_len);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(event, "seq");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "kind");
        if (!cJSON_IsObject(event) || !cJSON_IsNumber(seq) || !cJSON_IsString(kind)) {
            cJSON_Delete(event);
            cJSON_Delete(list);
            return err_set(DR_EUSAGE, "%s line %ld is not a journal event (corrupt checkpoint); "
                           "nothing was changed", path, line_number);
        }
        if (seq->valuedouble != (double)line_number) {
            double found = seq->valuedouble; /* any number: a cast to long past its range is undefined */
            cJSON_Delete(event);
            cJSON_Delete(list);
            return err_set(DR_EUSAGE, "%s line %ld has seq %.17g where %ld was expected (a gap or an "
                           "edit: corrupt checkpoint); nothing was changed", path, line_number, found,
                           line_number);
        }
        cJSON_AddItemToArray(list, event);
        pos += line_len + 1;
    }
    *events = list;
    return 0;
}

/* Reads and parses a journal file; with chain, checks its chain too. */
static int read_journal(cJSON **events, long *torn_bytes, journal_chain *chain, const char *path, const char *run_id)
{
    *events = NULL;
    char *text;
    size_t len;
    if (fsio_read_file(&text, &len, path) != 0)
        return DR_EUSAGE;
    long torn;
    int rc = journal_parse(events, &torn, path, text, len);
    if (rc == 0 && chain)
        journal_chain_check(chain, run_id, text, len);
    free(text);
    if (torn_bytes)
        *torn_bytes = torn;
    return rc;
}

int journal_read_chained(cJSON **events, journal_chain *chain, const char *path, const char *run_id)
{
    memset(chain, 0, sizeof *chain);
    return read_journal(events, NULL, chain, path, run_id);
}

int journal_read(cJSON **events, long *torn_bytes, const char *path)
{
    return read_journal(events, torn_bytes, NULL, path, NULL);
}

int journal_open(journal **out, cJSON **events, long *repaired_bytes, const char *run_dir)
{
    *out = NULL;
    *events = NULL;
    *repaired_bytes = 0;
    char *path = xasprintf("%s/journal.jsonl", run_dir);
    char *text = NULL;
    size_t len = 0;
    long torn = 0;
    journal_chain chain = { 0 };
    int rc = fsio_read_file(&text, &len, path) != 0 ? DR_EUSAGE : journal_parse(events, &torn, path, text, len);
    if (rc)
        goto fail;
    /* an edited journal is refused before anything is appended to it */
    journal_chain_check(&chain, run_id_of_dir(run_dir), text, len);
    if (chain.broken_line) {
        rc = err_set(DR_EUSAGE, "%s %s; nothing was changed. drctl audit verify lists what differs", path, chain.why);
        goto fail;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        rc = err_set(DR_EFAIL, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (torn > 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        if (ftruncate(fd, size - torn) != 0 || fsync(fd) != 0) {
            rc = err_set(DR_EFAIL, "cannot repair %s: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
        *repaired_bytes = torn;
    }
    *out = journal_new(fd, path, (long)cJSON_GetArraySize(*events), chain.head);
    free(text);
    return 0;
fail:
    journal_chain_dispose(&chain);
    free(text);
    cJSON_Delete(*events);
    *events = NULL;
    free(path);
    return rc;
}

int journal_append(journal *j, const char *kind, const char *step, cJSON *data)
{
    char now[48];
    timefmt_format_utc(now, sizeof now, timefmt_now());
    cJSON *event = cJSON_CreateObject();
    cJSON_AddNumberToObject(event, "seq", (double)(j->seq + 1));
    cJSON_AddStringToObject(event, "prev", j->head);
    cJSON_AddStringToObject(event, "time", now);
    cJSON_AddStringToObject(event, "kind", kind);
    if (step)
        cJSON_AddStringToObject(event, "step", step);
    else
        cJSON_AddNullToObject(event, "step");
    cJSON_AddItemToObject(event, "data", data ? data : cJSON_CreateObject());
    redact_json(event);
    char *line = json_print_exact(event, 0);
    size_t len = strlen(line);
    line = xrealloc(line, len + 2);
    line[len] = '\n';
    line[len + 1] = '\0';
    int rc = fsio_append_durable(j->fd, j->path, line, len + 1);
    if (rc == 0)
        sha256_hex(j->head, line, len);
    free(line);
    if (rc == 0) {
        j->seq++;
        testhook_journal_durable(j->seq);
        if (j->listener)
            rc = j->listener(j->listener_ud, event);
    }
    cJSON_Delete(event);
    return rc;
}

/* By allow-list: what a module reports (neon calls, queries, dumps, logs)
 * rides along with the next transition's commit instead of making one of
 * its own, so a run's history stays one commit per state change. */
int journal_is_transition(const char *kind)
{
    static const char *const prefixes[] = { "step-", "run-", "confirmation-", "approval-" };
    static const char *const kinds[] = { "abort-requested", "journal-repaired", "lock-takeover", "runbook-changed" };
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(kind, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return 1;
    return 0;
}

char *journal_transition_message(const char *run_id, const char *kind, const char *step)
{
    if (strncmp(kind, "step-", 5) == 0)
        return xasprintf("%s: %s %s", run_id, step ? step : "?", kind + 5);
    if (step)
        return xasprintf("%s: %s %s", run_id, step, kind);
    return xasprintf("%s: run %s", run_id, strncmp(kind, "run-", 4) == 0 ? kind + 4 : kind);
}

void journal_set_listener(journal *j, journal_listener fn, void *ud)
{
    j->listener = fn;
    j->listener_ud = ud;
}

long journal_last_seq(const journal *j)
{
    return j->seq;
}

void journal_free(journal *j)
{
    if (!j)
        return;
    close(j->fd);
    free(j->path);
    free(j);
}
