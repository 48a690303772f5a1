/* checkpoint: a run's state, derived from its journal (the checkpoint
 * contract, docs/design.md).
 *
 * Replaying the events in order gives each step's state and outputs and the
 * run's status; state.json is that replay written durably after each event
 * that changes it. Because the state is a pure function of the journal,
 * resume and `audit verify` reach the same answer by the same code. */
#ifndef DRCTL_CHECKPOINT_H
#define DRCTL_CHECKPOINT_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum {
    STEP_PENDING,
    STEP_STARTED,       /* began and never ended: the process died inside it */
    STEP_DONE,
    STEP_FAILED,
    STEP_INTERRUPTED,   /* stopped by a signal */
    STEP_PAUSED         /* stopped at a confirmation refused inside it */
} step_state;

typedef enum {
    RUN_RUNNING,
    RUN_PAUSED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_DONE,
    RUN_ABORTED
} run_status;

typedef struct step_record {
    char *name;
    step_state state;
    int attempts;
    cJSON *outputs;       /* NULL until done */
    char *error;          /* last error, or NULL */
    char *started_at;     /* of the last attempt */
    char *ended_at;
} step_record;

typedef struct checkpoint {
    char *run_id;
    run_status status;
    char *status_detail;  /* why paused/failed, or NULL */
    step_record *steps;
    size_t step_count;
    long seq;             /* last journal event applied */
    char *updated_at;
} checkpoint;

const char *checkpoint_step_state_name(step_state state);
const char *checkpoint_run_status_name(run_status status);
int checkpoint_run_status_from_name(run_status *out, const char *name);

/* Applies one journal event. Returns 1 when the state changed, 0 when the
 * event does not touch it (a log line), DR_EUSAGE when the event does not
 * fit the run (names a step it does not have). */
int checkpoint_apply(checkpoint *cp, const cJSON *event);

/* Replays a whole journal; the first event must be run-started. */
int checkpoint_replay(checkpoint **out, const char *run_id, const cJSON *events);

cJSON *checkpoint_to_json(const checkpoint *cp);
int checkpoint_write(const checkpoint *cp, const char *path);

/* The index of a step, or -1. */
int checkpoint_step_index(const checkpoint *cp, const char *name);

void checkpoint_free(checkpoint *cp);

#endif
