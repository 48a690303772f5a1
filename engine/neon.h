/* neon: a Neon API v2 client (libcurl + cJSON), the API client contract
 * (docs/design.md).
 *
 * One call is one logical request: it is retried on 423, 429, 500, 502,
 * 503, 504 and on connection failures, with exponential backoff and
 * jitter, honouring Retry-After, within a bounded number of attempts and a
 * whole-call deadline. A POST whose connection dropped after the request
 * was sent is never repeated: its outcome is unknown, and the caller (who
 * knows how to look for what it created) decides. TLS is always verified.
 * The API key goes in the Authorization header and nowhere else. */
#ifndef DRCTL_NEON_H
#define DRCTL_NEON_H

#include <cjson/cJSON.h>

typedef struct neon_client neon_client;

typedef struct neon_policy {
    int attempts;            /* at most this many tries of one call (default 6) */
    double deadline;         /* seconds for the whole call, retries included (default 120) */
    double connect_timeout;  /* per try (default 10) */
    double transfer_timeout; /* per try (default 60) */
    double first_backoff;    /* seconds before the first retry (default 0.2) */
    double max_backoff;      /* cap of one wait (default 8) */
} neon_policy;

/* What one call did, for the journal and for structured errors. */
typedef struct neon_reply {
    long status;          /* last HTTP status; 0: no answer */
    int attempts;
    double duration;      /* seconds, retries included */
    int outcome_unknown;  /* a POST sent whose answer never came */
    char *code;           /* Neon's error code, when the call failed with one */
    char *message;        /* what went wrong, for a person */
    char *request_id;
} neon_reply;

void neon_reply_dispose(neon_reply *r);

/* Called between tries and while waiting; a non-zero return stops the call
 * (DR_EINTR). seconds_left, when not NULL, gets how long the caller still
 * allows (a negative value: no limit). */
typedef int (*neon_stop_fn)(void *ud, double *seconds_left);

/* Refuses (DR_EUSAGE) a base URL or a key holding a control character. */
int neon_client_new(neon_client **out, const char *base_url, const char *api_key);
void neon_client_free(neon_client *c);
void neon_client_set_policy(neon_client *c, const neon_policy *policy);
void neon_client_set_stop(neon_client *c, neon_stop_fn stop, void *ud);
const char *neon_client_base_url(const neon_client *c);

/* 1 when method is one drctl sends: GET, POST, PATCH, PUT or DELETE. */
int neon_valid_method(const char *method);

/* 0 when path can be sent as it is: it starts with '/' and holds no
 * control character (a CR or LF would split the request) and no space.
 * Otherwise DR_EUSAGE, with a message naming the character and where it is. */
int neon_check_path(const char *path);

/* METHOD path (relative to the base, starting with '/') with an optional
 * JSON body. On success (2xx) returns 0 and *response gets the decoded body
 * (an empty object when there is none). Otherwise DR_EFAIL (or DR_EINTR)
 * with err_last() and reply->message saying why, reply->status the last
 * status (401: the key was refused; 0 with outcome_unknown: see above).
 * A bad method or path (neon_check_path) is refused with DR_EUSAGE before
 * anything is sent, and a request libcurl finds malformed is not retried. */
int neon_call(cJSON **response, neon_reply *reply, neon_client *c, const char *method, const char *path,
              const cJSON *body);

/* Waits until each operation (objects with "id" and "project_id", as the
 * API returns them) is finished or skipped, polling each with a backoff
 * from about 100 ms, capped at 2 s. An operation that ends failed, error or
 * cancelled fails the wait with its error. *polls (may be NULL) gets how
 * many polls were made. */
int neon_wait_operations(neon_reply *reply, int *polls, neon_client *c, const cJSON *operations);

/* ---- the retry policy, as pure functions (neon_call is made of them) ---- */

/* What one try's outcome means for the call. */
typedef enum neon_verdict {
    NEON_SUCCEEDED,       /* a 2xx answer */
    NEON_ALREADY_DONE,    /* a DELETE answered 404 after an earlier try's answer was lost: that one did it */
    NEON_RETRY,           /* 423, 429, 500, 502, 503, 504, or a connection failure before a POST was sent */
    NEON_REQUEST_REFUSED, /* libcurl finds the request itself malformed: no retry mends it */
    NEON_OUTCOME_UNKNOWN, /* a POST was sent and its answer never came: never repeated blindly */
    NEON_KEY_REFUSED,     /* 401 */
    NEON_FAILED,          /* any other answer (400, 403, 404, 409, 422, ...) */
} neon_verdict;

/* The verdict on one try of method: curl_code is its CURLcode (0: an
 * answer came, with status), sent whether the request left this machine,
 * dropped_before whether an earlier try of the same call was sent and its
 * answer lost. */
neon_verdict neon_classify(const char *method, int curl_code, long status, int sent, int dropped_before);

/* 1 for the statuses that are retried: 423, 429, 500, 502, 503, 504. */
int neon_retryable_status(long status);

/* The seconds a Retry-After header's value (the text after the colon)
 * asks to wait, or 0 when it gives none drctl uses: only a positive,
 * finite number of seconds is read (as strtod reads it, so "1.5" and "12
 * seconds" count); an HTTP date, garbage, 0, a negative number, inf or nan
 * give 0, and the call backs off on its own instead. A huge value is not
 * cut: neon_gives_up ends the call when it would outlast the time left. */
double neon_parse_retry_after(const char *value);

/* The wait before the next try: Retry-After when the answer gave one
 * (above 0), else the backoff with jitter, between half of it and all of
 * it (unit_random is uniform in [0, 1]). */
double neon_retry_wait(double retry_after, double backoff, double unit_random);

/* The backoff after one more failed try: doubled, capped at max_backoff. */
double neon_next_backoff(double backoff, double max_backoff);

/* 1 when a call that would retry stops instead: it has made max_attempts
 * tries, or the wait is longer than the seconds it has left. */
int neon_gives_up(int attempts, int max_attempts, double seconds_left, double wait);

#endif
