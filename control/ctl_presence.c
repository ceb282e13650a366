/*
 * Presence for webhooks.
 *
 * Relays already tell each other, per room, how many sessions each user
 * has on them (meridian.presence.<room> {"op":"set","node","user",
 * "sessions","seq"}) and heartbeat on meridian.relay.hb (a "bye" when they
 * leave for good); relay_presence.c. A control plane with "presence" in
 * webhook.events reads the same subjects and applies every delta to
 * PostgreSQL (migration 0005), where a user's total over all relays going
 * from 0 to more is a presence.join event and back to 0 a presence.leave,
 * written to the webhook outbox in the same transaction and sent by
 * ctl_webhook.c like committed messages.
 *
 * Every presence-tracking control plane, in every region, receives every
 * delta (core NATS crosses the gateways) and applies it: they share one
 * database, and the per-(room, user, relay) seq makes a second copy, or a
 * late one, change nothing. So one change is one event however many
 * control planes run, and any one of them suffices to track presence.
 *
 * A relay that dies says no bye: its heartbeats stop. Each control plane
 * looks once a second for relays whose last delta or heartbeat is older
 * than webhook.presence_expire_ms and drops them (reason relay_lost); a
 * bye drops the relay at once (reason relay_stopped). Users that moved to
 * another relay meanwhile (a drain) do not leave: their total stays above 0.
 *
 * What arrives from NATS is untrusted: libnats' delivery threads parse and
 * validate each message (ctl_presence_parse.c: bounded sizes, the relays'
 * own formats), drop and count what does not fit, and queue the rest
 * (bounded: a full queue drops and counts) for one thread with its own
 * PostgreSQL session.
 */
#include "ctl_presence.h"
#include "ctl_db.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SUBJ_HEARTBEAT "meridian.relay.hb"
/* Items waiting for PostgreSQL; about 600 bytes each. */
#define QUEUE_MAX 16384
/* Expiry is looked for this often, pruning (migration 0005) less often. */
#define TICK_MS        1000
#define PRUNE_EVERY_US (60 * 1000000LL)
/* A reconnect to PostgreSQL is tried this often while it is away. */
#define RECONNECT_MS 1000

static mr_metric m_applied =
    MR_COUNTER("meridian_control_presence_applied_total",
               "Presence deltas applied (new to the database; copies from other control planes "
               "and stale ones are counted in ..._presence_stale_total).");
static mr_metric m_stale =
    MR_COUNTER("meridian_control_presence_stale_total",
               "Presence deltas already applied (by another control plane) or older than one "
               "applied: ignored.");
static mr_metric m_rejected =
    MR_COUNTER("meridian_control_presence_rejected_total",
               "Malformed presence or heartbeat messages from NATS: dropped.");
static mr_metric m_dropped =
    MR_COUNTER("meridian_control_presence_dropped_total",
               "Valid presence messages dropped: the queue to PostgreSQL was full.");
static mr_metric m_expired = MR_COUNTER("meridian_control_presence_relays_lost_total",
                                        "Relays whose users this control plane removed because "
                                        "their heartbeats stopped.");

void ctl_presence_metrics_register(void)
{
    mr_metric_register(&m_applied);
    mr_metric_register(&m_stale);
    mr_metric_register(&m_rejected);
    mr_metric_register(&m_dropped);
    mr_metric_register(&m_expired);
}

struct ctl_presence {
    const ctl_config *cfg;
    natsSubscription *sub_presence, *sub_hb;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool stop;                /* under lock */
    ctl_presence_item *queue; /* ring of QUEUE_MAX, under lock */
    size_t head, count;
    int64_t warned_us; /* under lock: rate limit of the rejection log */
    uint64_t unlogged;
    PGconn *db; /* the worker's */
    int64_t next_tick_us, next_prune_us;
};

/* ---- NATS side (libnats' delivery threads) ---- */

static void reject(ctl_presence *p, const char *subject, const char *why)
{
    mr_metric_inc(&m_rejected);
    pthread_mutex_lock(&p->lock);
    p->unlogged++;
    int64_t now = mr_now_us();
    if (now - p->warned_us >= 1000000) {
        char clean[200];
        mr_log_sanitize(subject, clean, sizeof clean);
        mr_log_warn("presence: dropped a malformed message on %s: %s (%llu since the last "
                    "warning)",
                    clean, why, (unsigned long long)p->unlogged);
        p->warned_us = now;
        p->unlogged = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

static void enqueue(ctl_presence *p, const ctl_presence_item *it)
{
    pthread_mutex_lock(&p->lock);
    if (p->count == QUEUE_MAX) {
        pthread_mutex_unlock(&p->lock);
        mr_metric_inc(&m_dropped);
        return;
    }
    p->queue[(p->head + p->count) % QUEUE_MAX] = *it;
    p->count++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->lock);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    ctl_presence *p = closure;
    const char *subject = natsMsg_GetSubject(msg);
    ctl_presence_item it;
    const char *why = "";
    int rc = sub == p->sub_hb
                 ? ctl_presence_parse_heartbeat(natsMsg_GetData(msg),
                                                (size_t)natsMsg_GetDataLength(msg), &it, &why)
                 : ctl_presence_parse_delta(subject, natsMsg_GetReply(msg), natsMsg_GetData(msg),
                                            (size_t)natsMsg_GetDataLength(msg), &it, &why);
    if (rc == CTL_PRESENCE_OK)
        enqueue(p, &it);
    else if (rc == CTL_PRESENCE_BAD)
        reject(p, subject, why);
    natsMsg_Destroy(msg);
}

/* ---- PostgreSQL side (the worker thread) ---- */

typedef enum { DB_OK, DB_FAILED, DB_LOST } db_result;

/* Run one statement; on success *out (may be NULL) gets the first value as an integer. */
static db_result run(ctl_presence *p, const char *sql, int n, const char *const *params,
                     long long *out)
{
    PGresult *r = PQexecParams(p->db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (out)
            *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                       ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                       : 0;
        PQclear(r);
        return DB_OK;
    }
    PQclear(r);
    if (ctl_db_lost(p->db)) {
        mr_log_warn("presence: lost the PostgreSQL session: %s", PQerrorMessage(p->db));
        PQfinish(p->db);
        p->db = NULL;
        return DB_LOST;
    }
    mr_log_error("presence: PostgreSQL: %s", PQerrorMessage(p->db));
    return DB_FAILED;
}

static db_result apply(ctl_presence *p, const ctl_presence_item *it)
{
    long long v = 0;
    db_result rc;
    switch (it->kind) {
    case CTL_PRESENCE_SET: {
        char seq[24], sessions[24];
        snprintf(seq, sizeof seq, "%lld", (long long)it->seq);
        snprintf(sessions, sizeof sessions, "%ld", it->sessions);
        const char *params[] = {it->room, it->user, it->node, seq, sessions};
        rc = run(p, "SELECT meridian_presence_set($1, $2, $3, $4::bigint, $5::int)", 5, params, &v);
        if (rc == DB_OK)
            mr_metric_inc(v ? &m_applied : &m_stale);
        return rc;
    }
    case CTL_PRESENCE_SEEN: {
        const char *params[] = {it->node};
        return run(p, "SELECT meridian_presence_seen($1)", 1, params, NULL);
    }
    case CTL_PRESENCE_BYE:
    default: {
        const char *params[] = {it->node};
        rc = run(p, "SELECT meridian_presence_drop($1, 'relay_stopped')", 1, params, &v);
        if (rc == DB_OK && v > 0)
            mr_log_info("presence: relay %s stopped; %lld of its entries dropped", it->node, v);
        return rc;
    }
    }
}

/* Drop the relays that fell silent, each in a transaction of its own. */
static db_result expire(ctl_presence *p)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)p->cfg->webhook.presence_expire_ms);
    const char *params[] = {ms};
    PGresult *r = PQexecParams(p->db,
                               "SELECT node FROM presence_nodes WHERE gone_at IS NULL AND "
                               "last_seen < now() - $1::bigint * interval '1 millisecond'",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        mr_log_warn("presence: cannot look for silent relays: %s", PQerrorMessage(p->db));
        return run(p, "SELECT 1", 0, NULL, NULL); /* tells a lost session from an error */
    }
    db_result rc = DB_OK;
    for (int i = 0; i < PQntuples(r) && rc == DB_OK; i++) {
        const char *node[] = {PQgetvalue(r, i, 0)};
        long long v = 0;
        rc = run(p, "SELECT meridian_presence_drop($1, 'relay_lost')", 1, node, &v);
        if (rc == DB_OK) {
            mr_metric_inc(&m_expired);
            mr_log_info("presence: relay %s missed its heartbeats; %lld of its entries dropped",
                        node[0], v);
        }
    }
    PQclear(r);
    return rc;
}

/* Wait for the queue, at most until the next tick; true when stopping. */
static bool wait_work(ctl_presence *p, int64_t until_us)
{
    pthread_mutex_lock(&p->lock);
    while (!p->stop && p->count == 0) {
        int64_t left = until_us - mr_now_us();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (left % 1000000) * 1000;
        ts.tv_sec += (time_t)(left / 1000000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&p->cv, &p->lock, &ts);
    }
    bool stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

static void *presence_main(void *arg)
{
    ctl_presence *p = arg;
    for (;;) {
        if (wait_work(p, p->next_tick_us))
            break;
        if (!p->db) {
            char err[256];
            p->db = ctl_db_open(p->cfg->postgres, "meridian-control/presence", err, sizeof err);
            if (!p->db) {
                mr_log_warn("presence: PostgreSQL: %s; retrying", err);
                p->next_tick_us = mr_now_us() + RECONNECT_MS * 1000;
                /* Queued items wait (the queue is bounded); sleep until the retry. */
                pthread_mutex_lock(&p->lock);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += RECONNECT_MS / 1000;
                if (!p->stop)
                    pthread_cond_timedwait(&p->cv, &p->lock, &ts);
                pthread_mutex_unlock(&p->lock);
                continue;
            }
        }
        int64_t now = mr_now_us();
        if (now >= p->next_tick_us) {
            p->next_tick_us = now + TICK_MS * 1000;
            if (expire(p) == DB_LOST)
                continue;
            if (now >= p->next_prune_us) {
                p->next_prune_us = now + PRUNE_EVERY_US;
                if (run(p, "SELECT meridian_presence_prune()", 0, NULL, NULL) == DB_LOST)
                    continue;
            }
        }
        /* Only this thread removes items, so the head stays put while it is applied. */
        pthread_mutex_lock(&p->lock);
        bool have = p->count > 0;
        ctl_presence_item it;
        if (have)
            it = p->queue[p->head];
        pthread_mutex_unlock(&p->lock);
        if (!have)
            continue;
        /* A lost session keeps the item for the next one; any other failure drops it (logged). */
        if (apply(p, &it) == DB_LOST)
            continue;
        pthread_mutex_lock(&p->lock);
        p->head = (p->head + 1) % QUEUE_MAX;
        p->count--;
        pthread_mutex_unlock(&p->lock);
    }
    PQfinish(p->db);
    return NULL;
}

/* ---- life cycle ---- */

static void unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    /* Drain waits for callbacks in progress, which use the struct freed next. */
    if (natsSubscription_Drain(sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(sub, 5000);
    natsSubscription_Destroy(sub);
}

static natsSubscription *subscribe(ctl_presence *p, natsConnection *nc, const char *subject)
{
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_Subscribe(&sub, nc, subject, on_msg, p);
    if (s == NATS_OK)
        /* What libnats holds before on_msg runs: bounded, drops counted by the server side. */
        s = natsSubscription_SetPendingLimits(sub, 65536, 64 * 1024 * 1024);
    if (s != NATS_OK) {
        mr_log_error("presence: cannot subscribe to %s: %s", subject, natsStatus_GetText(s));
        unsubscribe(sub);
        return NULL;
    }
    return sub;
}

ctl_presence *ctl_presence_start(const ctl_config *cfg, natsConnection *nc)
{
    if (!cfg->webhook.url || !cfg->webhook.presence)
        return NULL;
    ctl_presence *p = mr_calloc(1, sizeof *p);
    p->cfg = cfg;
    p->queue = mr_malloc(QUEUE_MAX * sizeof *p->queue);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, presence_main, p) != 0) {
        mr_log_error("presence: cannot start the presence thread");
        goto err;
    }
    p->sub_presence = subscribe(p, nc, CTL_PRESENCE_SUBJECT_PREFIX "*");
    p->sub_hb = subscribe(p, nc, SUBJ_HEARTBEAT);
    if (!p->sub_presence || !p->sub_hb) {
        ctl_presence_stop(p);
        return NULL;
    }
    mr_log_info("presence: tracking presence for webhooks (relays silent for %lld ms have left)",
                (long long)cfg->webhook.presence_expire_ms);
    return p;
err:
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    free(p->queue);
    free(p);
    return NULL;
}

void ctl_presence_stop(ctl_presence *p)
{
    if (!p)
        return;
    unsubscribe(p->sub_presence);
    unsubscribe(p->sub_hb);
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    free(p->queue);
    free(p);
}
