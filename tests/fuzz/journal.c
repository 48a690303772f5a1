/* journal + checkpoint: a run's journal as a resume finds it on disk,
 * torn, corrupt or edited, and the state replayed from it.
 *
 * The input is the journal file's bytes. Beyond "no crash":
 * - journal_open agrees with journal_parse: it refuses what the parser
 *   refuses, otherwise it gives the same events, cuts exactly the torn
 *   bytes, and refuses a broken chain that journal_chain_check reports;
 * - after an open, one append and a reread, the journal is whole: no torn
 *   bytes, one event more, its chain unbroken, and replaying it gives the
 *   same steps and status as before (a log line changes no state);
 * - a checkpoint that replays prints, and checkpoint_write writes it;
 * - journal_rebase onto a whole, chained journal leaves that part's chain
 *   intact. */
#include "fuzz.h"

#include "checkpoint.h"
#include "err.h"
#include "fsio.h"
#include "journal.h"
#include "jsontext.h"

#include <fcntl.h>
#include <unistd.h>

#define RUN_ID "20260111-143000-fuzz"

static char top_dir[256], run_dir[300], journal_path[360], state_path[360];

static void remove_scratch(void)
{
    fsio_remove_tree(top_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* tmpfs when there is one: every append is fsynced. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(top_dir, sizeof top_dir, "%s/drctl-fuzz-journal-%d", base, (int)getpid());
    snprintf(run_dir, sizeof run_dir, "%s/" RUN_ID, top_dir);
    atexit(remove_scratch);
    if (fsio_mkdirs(run_dir, 0700) != 0)
        abort();
    snprintf(journal_path, sizeof journal_path, "%s/journal.jsonl", run_dir);
    snprintf(state_path, sizeof state_path, "%s/state.json", run_dir);
    return 0;
}

static void write_journal(const uint8_t *data, size_t size)
{
    int fd = open(journal_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0 && fsio_write_all(fd, data, size) == 0);
    close(fd);
}

/* The steps and status of a replay, as text, or NULL when it does not replay. */
static char *replayed_state(const cJSON *events)
{
    checkpoint *cp = NULL;
    if (checkpoint_replay(&cp, RUN_ID, events) != 0)
        return NULL;
    cJSON *json = checkpoint_to_json(cp);
    cJSON_DeleteItemFromObjectCaseSensitive(json, "journal_seq");
    cJSON_DeleteItemFromObjectCaseSensitive(json, "updated_at");
    char *text = json_print_exact(json, 0);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(checkpoint_write(cp, state_path) == 0);
    cJSON_Delete(json);
    checkpoint_free(cp);
    return text;
}

static void append_and_reread(journal *j, int events, const char *state_before)
{
    FUZZ_CHECK(journal_append(j, "log", NULL, NULL) == 0);
    FUZZ_CHECK(journal_last_seq(j) == events + 1);
    journal_free(j);
    char *text = NULL;
    size_t len = 0;
    FUZZ_CHECK(fsio_read_file(&text, &len, journal_path) == 0 && len > 0 && text[len - 1] == '\n');
    free(text);
    cJSON *again = NULL;
    journal_chain chain;
    FUZZ_CHECK(journal_read_chained(&again, &chain, journal_path, RUN_ID) == 0);
    FUZZ_CHECK(cJSON_GetArraySize(again) == events + 1);
    FUZZ_CHECK(chain.broken_line == 0 && chain.events == events + 1);
    journal_chain_dispose(&chain);
    char *state_after = replayed_state(again);
    FUZZ_CHECK(!state_before == !state_after);
    if (state_before)
        FUZZ_CHECK(strcmp(state_before, state_after) == 0);
    free(state_after);
    cJSON_Delete(again);
}

static void fuzz_open(const uint8_t *data, size_t size, const journal_chain *chain)
{
    cJSON *parsed = NULL;
    long torn = 0;
    int parse_rc = journal_parse(&parsed, &torn, "journal.jsonl", (const char *)data, size);
    write_journal(data, size);
    journal *j = NULL;
    cJSON *events = NULL;
    long repaired = -1;
    int open_rc = journal_open(&j, &events, &repaired, run_dir);
    if (parse_rc != 0 || chain->broken_line) {
        FUZZ_CHECK(open_rc != 0 && j == NULL && events == NULL && *err_last());
    } else {
        FUZZ_CHECK(open_rc == 0 && repaired == torn);
        FUZZ_CHECK(cJSON_GetArraySize(events) == cJSON_GetArraySize(parsed));
        FUZZ_CHECK(strcmp(journal_head(j), chain->head) == 0);
        char *state = replayed_state(events);
        append_and_reread(j, cJSON_GetArraySize(events), state);
        free(state);
    }
    cJSON_Delete(events);
    cJSON_Delete(parsed);
}

/* The input as the other clone's journal, a valid line as ours (only for
 * a whole journal without NUL bytes: rebase reads C strings). */
static void fuzz_rebase(const uint8_t *data, size_t size, const journal_chain *chain)
{
    if (memchr(data, '\0', size) || (size && data[size - 1] != '\n') || chain->broken_line)
        return;
    char *onto = fuzz_cstring(data, size);
    {
        const char *line = "{\"seq\":1,\"prev\":\"x\",\"time\":\"2026-01-11T14:30:00Z\",\"kind\":\"log\",\"step\":null,"
                           "\"data\":{}}\n";
        char *merged = NULL;
        FUZZ_CHECK(journal_rebase(&merged, RUN_ID, onto, "", line) == 0);
        journal_chain after;
        journal_chain_check(&after, RUN_ID, merged, strlen(merged));
        FUZZ_CHECK(after.events == chain->events + 1);
        FUZZ_CHECK(after.broken_line == 0 || after.broken_line > chain->events);
        journal_chain_dispose(&after);
        free(merged);
    }
    free(onto);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    journal_chain chain;
    journal_chain_check(&chain, RUN_ID, (const char *)data, size);
    FUZZ_CHECK(strlen(chain.head) == JOURNAL_HASH_SIZE - 1);
    fuzz_open(data, size, &chain);
    fuzz_rebase(data, size, &chain);
    journal_chain_dispose(&chain);
    return 0;
}
