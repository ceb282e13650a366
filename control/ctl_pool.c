/*
 * Worker pool: a mutex-protected FIFO of jobs and N threads. A worker with a
 * database connects lazily and, after a failure, waits at least one second
 * before trying again, so that while PostgreSQL is down jobs fail fast with
 * "unavailable" instead of each waiting for a connect time-out. A session
 * that a job finds dead (PostgreSQL restarted since the last job) is
 * replaced at once and the job run again once (see ctl_job_cb), so the
 * first query after a restart does not fail. An idle worker without a
 * session keeps trying to connect (every RETRY_CONNECT_US), so the pool
 * is back as soon as PostgreSQL is, not at the first query after it.
 */
#include "ctl_pool.h"
#include "ctl_db.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_CONNECT_US 1000000

typedef struct job {
    ctl_job_cb cb;
    void *arg;
    struct job *next;
} job;

typedef struct worker {
    ctl_pool *pool;
    pthread_t thread;
    PGconn *db;
    int64_t next_try_us;
    bool down_logged; /* the current outage has been logged */
    int index;
} worker;

struct ctl_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int queued, max_queue;
    bool stop;
    char *conninfo;
    char name[32];
    int n;
    worker *workers;
    _Atomic int live_sessions;
};

static void worker_drop_db(worker *w)
{
    if (!w->db)
        return;
    PQfinish(w->db);
    w->db = NULL;
    atomic_fetch_sub(&w->pool->live_sessions, 1);
}

static PGconn *worker_db(worker *w)
{
    ctl_pool *p = w->pool;
    if (!p->conninfo)
        return NULL;
    if (w->db && PQstatus(w->db) != CONNECTION_OK)
        worker_drop_db(w);
    if (!w->db && mr_now_us() >= w->next_try_us) {
        char err[512], app[96];
        snprintf(app, sizeof app, "meridian-control/%s/%d", p->name, w->index);
        w->db = ctl_db_open(p->conninfo, app, err, sizeof err);
        if (w->db) {
            atomic_fetch_add(&p->live_sessions, 1);
            if (w->down_logged)
                mr_log_info("%s worker %d: connected to PostgreSQL again", p->name, w->index);
            w->down_logged = false;
        } else {
            /* Once per outage: the idle retries would otherwise log every second. */
            if (!w->down_logged)
                mr_log_warn("%s worker %d: PostgreSQL: %s; retrying every %d ms", p->name, w->index,
                            err, RETRY_CONNECT_US / 1000);
            w->down_logged = true;
            w->next_try_us = mr_now_us() + RETRY_CONNECT_US;
        }
    }
    return w->db;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ctl_pool *p = w->pool;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop) {
            if (!p->conninfo || w->db) {
                pthread_cond_wait(&p->cv, &p->mu);
                continue;
            }
            /* No session: connect when the pause after the last failure is over. */
            struct timespec until = mr_deadline_ms((w->next_try_us - mr_now_us()) / 1000);
            if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT) {
                pthread_mutex_unlock(&p->mu);
                worker_db(w);
                pthread_mutex_lock(&p->mu);
            }
        }
        job *j = p->head;
        if (!j) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        if (j->cb(j->arg, worker_db(w), true) == CTL_JOB_RETRY) {
            mr_log_warn("%s worker %d: the PostgreSQL session was lost; reconnecting", p->name,
                        w->index);
            worker_drop_db(w);
            w->next_try_us = 0; /* now, not after the usual pause */
            j->cb(j->arg, worker_db(w), false);
        }
        free(j);
    }
    worker_drop_db(w);
    return NULL;
}

ctl_pool *ctl_pool_start(int n, const char *conninfo, const char *name, int max_queue)
{
    ctl_pool *p = mr_calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    if (mr_cond_init_monotonic(&p->cv) != 0) {
        mr_log_error("%s: cannot create a condition variable", name);
        abort();
    }
    p->conninfo = conninfo ? mr_strdup(conninfo) : NULL;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->max_queue = max_queue;
    p->n = n;
    p->workers = mr_calloc((size_t)n, sizeof *p->workers);
    for (int i = 0; i < n; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            mr_log_error("%s: cannot start worker thread", name);
            abort();
        }
    }
    return p;
}

int ctl_pool_submit(ctl_pool *p, ctl_job_cb cb, void *arg)
{
    job *j = mr_malloc(sizeof *j);
    j->cb = cb;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->queued >= p->max_queue) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return -1;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void ctl_pool_stop(ctl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    free(p->conninfo);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

bool ctl_pool_db_ok(ctl_pool *p)
{
    return !p->conninfo || atomic_load(&p->live_sessions) > 0;
}
