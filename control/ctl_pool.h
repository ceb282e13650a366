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

/**
 * A job. `db` is the worker's session, or NULL when the pool has no
 * database or PostgreSQL is unreachable right now (the job must then answer
 * "unavailable"). The job owns `arg`.
 */
typedef void (*ctl_job_cb)(void *arg, PGconn *db);

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
