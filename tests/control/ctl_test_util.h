/*
 * Helpers shared by the control plane suites: running meridian-control as a
 * child process against servers the test started, publishing envelopes the
 * way a relay does, and reading the database directly to check invariants.
 */
#ifndef CTL_TEST_UTIL_H
#define CTL_TEST_UTIL_H

#include "mr_stream.h"
#include "mr_test_pg.h"

#include <jansson.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_TEST_KEY "test-api-key-0123456789"

typedef struct ctl_proc {
    pid_t pid;
    int http_port, admin_port;
    char *dir;
    char cfg[600];
    char log[600];
} ctl_proc;

/**
 * Write a configuration for one control process. `nats_url` is a URL or a
 * whole `nats` JSON value (mr_test_nats_json()). `extra` is spliced into
 * the top-level object (for example "\"batch\":{\"max_messages\":50}") or NULL.
 */
void ctl_proc_init(ctl_proc *p, const char *nats_url, const char *conninfo, const char *region,
                   const char *regions_json, const char *extra);
/** Spawn it (with `env`, "NAME=value" or NULL) and wait until /readyz says ready. */
void ctl_proc_start(ctl_proc *p, const char *env);
/** Spawn it without waiting for readiness. */
void ctl_proc_spawn(ctl_proc *p, const char *env);
/** Poll /readyz until its body contains `needle` (any status); returns the status, -1 on time-out.
 */
int ctl_proc_wait_readyz(ctl_proc *p, const char *needle, int timeout_ms);
/** True when the process's log contains `needle`. */
bool ctl_proc_log_has(ctl_proc *p, const char *needle);
/** SIGTERM and reap; returns the wait status. */
int ctl_proc_stop(ctl_proc *p);
/** Remove the process's directory (config, log) and free it; call at the end of a passing test. */
void ctl_proc_free(ctl_proc *p);
/** Poll /readyz until 200 or the deadline; returns true when ready. */
bool ctl_proc_wait_ready(ctl_proc *p, int timeout_ms);

/**
 * Create region `region`'s stream the way its relays do (they own it):
 * mr_stream_ensure with the defaults, or with `cfg` when not NULL. Aborts
 * the test on failure.
 */
void ctl_test_stream(jsCtx *js, const char *region, const mr_stream_config *cfg);

/** A connection to the test's nats-server (aborts the test on failure). */
natsConnection *ctl_test_nats(const char *url);

/**
 * Publish one relay-style envelope with JetStream to meridian.msg.<region>.<room>.
 * `msg_id_header` false publishes without Nats-Msg-Id (so the stream keeps
 * duplicates and only the database can drop them). Fills `msg_id` (33
 * bytes). Returns 0 after the PubAck, -1 otherwise.
 */
int ctl_test_publish(jsCtx *js, const char *region, const char *room, const char *from,
                     const char *mid, int64_t ts, bool msg_id_header, char *msg_id);

/**
 * The same with a payload of about `data_bytes` bytes: "data" is
 * {"text":"<mid>","pad":"xxx..."}.
 */
int ctl_test_publish_sized(jsCtx *js, const char *region, const char *room, const char *from,
                           const char *mid, int64_t ts, size_t data_bytes, char *msg_id);

/**
 * A history request over NATS (the relays' path) for `room` with `body`;
 * returns the parsed reply (aborts the test when none arrives within 10 s
 * or it is not JSON). `reply_len` (may be NULL) gets the payload size.
 */
json_t *ctl_test_history(natsConnection *nc, const char *room, const char *body, size_t *reply_len);

/** Poll until the messages table holds `want` rows; false after `timeout_ms`. */
bool ctl_test_wait_rows(mr_test_pg *pg, int64_t want, int timeout_ms);

/** First column of the first row of `sql` as an integer (-1 on error). */
int64_t ctl_test_sql_int(mr_test_pg *pg, const char *sql);

/**
 * Check the history invariants for every room: seqs are exactly 1..count,
 * and no (room, msg_id) appears twice. Returns the total number of rows.
 */
int64_t ctl_test_check_history(mr_test_pg *pg);

#endif
