/*
 * A small pool of worker threads for blocking work the event loop must not
 * do: history queries (each worker owns a PostgreSQL session) and
 * publishes that wait for a JetStream PubAck.
 */
#ifndef CTL_POOL_H
#define CTL_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct ctl_pool ctl_pool;

typedef enum {
    CTL_JOB_DONE = 0, /* finished: answered, or failed and said so */
    CTL_JOB_RETRY     /* `db` was a dead session and nothing was done: run again on a new one */
} ctl_job_result;

/**
 * A job. `db` is the worker's session, or NULL when the pool has no
 * database or PostgreSQL is unreachable right now (the job must then answer
 * "unavailable"). The job owns `arg`.
 *
 * A session can die without libpq knowing until it is used (PostgreSQL
 * restarted): the first statement then fails. A job that only reads may
 * return CTL_JOB_RETRY in that case when `may_retry` is true; the pool then
 * drops the session, connects again at once and calls the job a second time
 * with the new session (or NULL) and `may_retry` false. Otherwise a job
 * returns CTL_JOB_DONE.
 */
typedef ctl_job_result (*ctl_job_cb)(void *arg, PGconn *db, bool may_retry);

/** Start `n` workers; `conninfo` NULL for a pool without database sessions. */
ctl_pool *ctl_pool_start(int n, const char *conninfo, const char *name, int max_queue);

/**
 * Queue a job. Returns 0, or -1 when the queue is full or the pool is
 * stopping; then `cb` will never be called and the caller keeps `arg`.
 */
int ctl_pool_submit(ctl_pool *p, ctl_job_cb cb, void *arg);

/** Run the queued jobs, stop the workers and free the pool. */
void ctl_pool_stop(ctl_pool *p);

/** True when at least one worker holds a live database session (or the pool has none). */
bool ctl_pool_db_ok(ctl_pool *p);

#endif
