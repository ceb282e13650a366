/*
 * Webhook sender.
 *
 * Committed messages reach the outbox in their own transaction (trigger of
 * migration 0004), presence changes in the transaction that applies the
 * relay's delta (migration 0005, ctl_presence.c); this thread sends them. One control plane sends
 * at a time: the one whose session holds the advisory lock WEBHOOK_LOCK, so receivers see one
 * stream of requests in commit order per room; when its session or process dies the lock goes with
 * it and a standby takes over within a second.
 *
 * Each round reads the oldest webhook.batch_max rows with their messages,
 * POSTs them as one JSON body signed like Stripe's and Pusher's webhooks
 * (Meridian-Signature: t=<unix time>,v1=<hex HMAC-SHA256 over
 * "<t>.<body>">), and deletes the rows once the receiver answered 2xx. Any
 * other outcome (time-out, connection refused, non-2xx) keeps the rows and
 * waits webhook.retry_min_ms, doubling up to retry_max_ms, before the same
 * rows go again. A crash between the 2xx and the delete sends the batch
 * again: delivery is at least once, and each event's "id" (the message's
 * msg_id) is the idempotency key receivers deduplicate on.
 *
 * libcurl's easy interface, blocking, is right here: the thread has nothing
 * else to do while a request is out, and one easy handle keeps its
 * connection alive between requests.
 */
#include "ctl_webhook.h"
#include "ctl_db.h"
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Advisory lock class and key of the webhook sender ("MRWH"). */
#define WEBHOOK_LOCK_CLASS 0x4d525748
#define WEBHOOK_LOCK_KEY   1
/* How often a standby asks for the lock, and a sender without PostgreSQL reconnects. */
#define STANDBY_MS 1000
/* The backlog gauge is a count(*): at most once a second. */
#define BACKLOG_EVERY_US 1000000
/* Bytes of a receiver's answer kept for the log. */
#define ANSWER_KEEP 200

static mr_metric m_backlog = MR_GAUGE(
    "meridian_control_webhook_backlog",
    "Events (committed messages, presence changes) not yet delivered by webhook (outbox).");
static mr_metric m_delivered =
    MR_COUNTER("meridian_control_webhook_delivered_total",
               "Events delivered by webhook (the receiver answered 2xx).");
static mr_metric m_requests =
    MR_COUNTER("meridian_control_webhook_requests_total", "Webhook requests sent.");
static mr_metric m_failures =
    MR_COUNTER("meridian_control_webhook_failures_total",
               "Webhook requests without a 2xx answer (time-out, connection, status); retried.");
static mr_metric m_sender = MR_GAUGE("meridian_control_webhook_sender",
                                     "1 while this control plane is the webhook sender.");

void ctl_webhook_metrics_register(void)
{
    mr_metric_register(&m_backlog);
    mr_metric_register(&m_delivered);
    mr_metric_register(&m_requests);
    mr_metric_register(&m_failures);
    mr_metric_register(&m_sender);
}

struct ctl_webhook {
    const ctl_config *cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool stop;                 /* under lock */
    _Atomic bool stop_request; /* the same, for the transfer's progress callback */
    PGconn *db;
    bool sender; /* this session holds the lock */
    CURL *curl;
    int64_t backoff_ms;
    int64_t backlog_at_us;
    int64_t warned_us;
    uint64_t unlogged;
};

void ctl_webhook_sign(const unsigned char *secret, size_t secret_len, int64_t t, const char *body,
                      size_t body_len, char *out, size_t outlen)
{
    char ts[24];
    int tl = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    mr_buf signed_text = MR_BUF_INIT;
    mr_buf_append(&signed_text, ts, (size_t)tl);
    mr_buf_append(&signed_text, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)signed_text.data,
         signed_text.len, mac, &mac_len);
    mr_buf_free(&signed_text);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < mac_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    snprintf(out, outlen, "t=%lld,v1=%s", (long long)t, hex);
}

/* Sleep `ms` unless stopped; returns true when the sender must stop. */
static bool nap(ctl_webhook *w, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->lock, &until) == 0)
        ;
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

/*
 * Log a failure, at most once a second with the count since the last line:
 * "webhook: <what>: <detail>; <then> (<count> <noun> since the last warning)".
 * The format stays a literal here so that -Wformat=2 checks it.
 */
static void warn(ctl_webhook *w, const char *what, const char *detail, const char *then,
                 const char *noun)
{
    w->unlogged++;
    int64_t now = mr_now_us();
    if (now - w->warned_us < 1000000)
        return;
    mr_log_warn("webhook: %s: %s%s%s (%llu %s since the last warning)", what, detail,
                then[0] ? "; " : "", then, (unsigned long long)w->unlogged, noun);
    w->warned_us = now;
    w->unlogged = 0;
}

static void drop_db(ctl_webhook *w)
{
    PQfinish(w->db);
    w->db = NULL;
    if (w->sender)
        mr_log_warn("webhook: lost the PostgreSQL session; another control plane may send now");
    w->sender = false;
    mr_metric_set(&m_sender, 0);
}

/* A query on the sender's session; NULL (and the session dropped if it is gone) on error. */
static PGresult *query(ctl_webhook *w, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(w->db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    warn(w, "PostgreSQL", PQerrorMessage(w->db), "", "errors");
    PQclear(r);
    if (ctl_db_lost(w->db))
        drop_db(w);
    return NULL;
}

/* Connect and take the sender's lock; false when this instance is not the sender (yet). */
static bool become_sender(ctl_webhook *w)
{
    if (!w->db) {
        char err[256];
        w->db = ctl_db_open(w->cfg->postgres, "meridian-control/webhook", err, sizeof err);
        if (!w->db) {
            warn(w, "PostgreSQL", err, "", "errors");
            return false;
        }
    }
    if (w->sender)
        return true;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", WEBHOOK_LOCK_CLASS,
             WEBHOOK_LOCK_KEY);
    PGresult *r = query(w, sql, 0, NULL);
    bool got = r && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got)
        return false;
    /* From now on every commit also fills the outbox (until an operator turns it off). */
    const char *kinds[] = {w->cfg->webhook.messages ? "t" : "f",
                           w->cfg->webhook.presence ? "t" : "f"};
    r = query(w, "UPDATE webhook_state SET enabled = true, messages = $1, presence = $2", 2, kinds);
    if (!r)
        return false;
    PQclear(r);
    w->sender = true;
    mr_metric_set(&m_sender, 1);
    mr_log_info("webhook: this control plane sends webhooks to %s", w->cfg->webhook.url);
    return true;
}

static void update_backlog(ctl_webhook *w)
{
    int64_t now = mr_now_us();
    if (now - w->backlog_at_us < BACKLOG_EVERY_US)
        return;
    w->backlog_at_us = now;
    PGresult *r = query(w, "SELECT count(*) FROM webhook_outbox", 0, NULL);
    if (r)
        mr_metric_set(&m_backlog, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
}

/*
 * The body of one request: {"events":[...]} for the rows of `r`; `key`
 * gets the first event's id. A presence row carries its whole event
 * (written by migration 0005's functions, id included).
 */
static char *build_body(PGresult *r, char *key, size_t keylen)
{
    json_t *events = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *ev = PQgetisnull(r, i, 5) ? NULL : json_loads(PQgetvalue(r, i, 5), 0, NULL);
        if (ev) {
            if (i == 0)
                snprintf(key, keylen, "%s", json_string_value(json_object_get(ev, "id")));
            json_array_append_new(events, ev);
            continue;
        }
        if (i == 0)
            snprintf(key, keylen, "%s", PQgetvalue(r, i, 3));
        /* The envelope is the message as members receive it; stored by the ingest, parsed here. */
        json_t *message = PQgetisnull(r, i, 4) ? NULL : json_loads(PQgetvalue(r, i, 4), 0, NULL);
        json_array_append_new(
            events, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "id", PQgetvalue(r, i, 3), "type",
                              "message.committed", "room", PQgetvalue(r, i, 1), "seq",
                              (json_int_t)strtoll(PQgetvalue(r, i, 2), NULL, 10), "msg_id",
                              PQgetvalue(r, i, 3), "message", message ? message : json_null()));
    }
    json_t *root = json_pack("{s:o}", "events", events);
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return body;
}

static size_t keep_answer(char *ptr, size_t size, size_t nmemb, void *ud)
{
    mr_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len < ANSWER_KEEP)
        mr_buf_append(b, ptr, n < ANSWER_KEEP - b->len ? n : ANSWER_KEEP - b->len);
    return n;
}

/* A stop abandons the request in flight instead of waiting for its time-out. */
static int on_progress(void *ud, curl_off_t dlt, curl_off_t dl, curl_off_t ult, curl_off_t ul)
{
    ctl_webhook *w = ud;
    return atomic_load(&w->stop_request) ? 1 : 0;
}

/* POST `body`; returns true on a 2xx answer. `key` is the first event's id. */
static bool post(ctl_webhook *w, const char *body, const char *key)
{
    const ctl_config *c = w->cfg;
    char sig[200], h_sig[240], h_key[120];
    ctl_webhook_sign(c->webhook.secret, c->webhook.secret_len, (int64_t)time(NULL), body,
                     strlen(body), sig, sizeof sig);
    snprintf(h_sig, sizeof h_sig, "Meridian-Signature: %s", sig);
    snprintf(h_key, sizeof h_key, "Meridian-Webhook-Id: %s", key);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = curl_slist_append(hdrs, h_sig);
    hdrs = curl_slist_append(hdrs, h_key);
    mr_buf answer = MR_BUF_INIT;
    CURL *e = w->curl;
    curl_easy_setopt(e, CURLOPT_URL, c->webhook.url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->webhook.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "meridian-control");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, w);
    mr_metric_inc(&m_requests);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    bool ok = rc == CURLE_OK && status >= 200 && status < 300;
    if (!ok) {
        char why[400];
        if (rc != CURLE_OK)
            snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
        else
            snprintf(why, sizeof why, "HTTP status %ld: %.*s", status, (int)answer.len,
                     answer.data ? answer.data : "");
        char clean[400];
        mr_log_sanitize(why, clean, sizeof clean);
        mr_metric_inc(&m_failures);
        warn(w, "delivery failed", clean, "retrying with backoff", "failures");
    }
    mr_buf_free(&answer);
    return ok;
}

/* One round: send the oldest rows. Returns false when there was nothing to send. */
static bool send_batch(ctl_webhook *w)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", w->cfg->webhook.batch_max);
    const char *params[] = {limit};
    PGresult *r = query(w,
                        "SELECT o.id, o.room, o.seq, replace(o.msg_id::text, '-', ''), m.envelope, "
                        "o.event FROM webhook_outbox o "
                        "LEFT JOIN LATERAL (SELECT envelope FROM messages m WHERE m.room = o.room "
                        "AND m.seq = o.seq LIMIT 1) m ON true ORDER BY o.id LIMIT $1::int",
                        1, params);
    if (!r)
        return false;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        mr_metric_set(&m_backlog, 0);
        return false;
    }
    char key[80] = "";
    char *body = build_body(r, key, sizeof key);
    bool ok = post(w, body, key);
    free(body);
    if (!ok) {
        PQclear(r);
        if (nap(w, w->backoff_ms))
            return false;
        w->backoff_ms = w->backoff_ms * 2 > w->cfg->webhook.retry_max_ms
                            ? w->cfg->webhook.retry_max_ms
                            : w->backoff_ms * 2;
        return true;
    }
    w->backoff_ms = w->cfg->webhook.retry_min_ms;
    mr_buf ids = MR_BUF_INIT;
    mr_buf_append(&ids, "{", 1);
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (i)
            mr_buf_append(&ids, ",", 1);
        mr_buf_append(&ids, id, strlen(id));
    }
    mr_buf_append(&ids, "}", 2); /* with the NUL */
    PQclear(r);
    const char *del[] = {ids.data};
    /* Delivered: forget the rows (if this fails they are simply sent again). */
    r = query(w,
              "WITH d AS (DELETE FROM webhook_outbox WHERE id = ANY($1::bigint[]) RETURNING id) "
              "UPDATE webhook_state SET delivered = greatest(delivered, (SELECT max(id) FROM d))",
              1, del);
    PQclear(r);
    mr_buf_free(&ids);
    mr_metric_add(&m_delivered, n);
    mr_metric_add(&m_backlog, -n);
    return true;
}

static void *webhook_main(void *arg)
{
    ctl_webhook *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        if (!become_sender(w)) {
            nap(w, STANDBY_MS);
            continue;
        }
        update_backlog(w);
        if (!w->db)
            continue;
        if (!send_batch(w))
            nap(w, w->cfg->webhook.poll_ms);
    }
    PQfinish(w->db);
    return NULL;
}

ctl_webhook *ctl_webhook_start(const ctl_config *cfg)
{
    if (!cfg->webhook.url)
        return NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ctl_webhook *w = mr_calloc(1, sizeof *w);
    w->cfg = cfg;
    w->backoff_ms = cfg->webhook.retry_min_ms;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->curl = curl_easy_init();
    if (!w->curl || pthread_create(&w->thread, NULL, webhook_main, w) != 0) {
        mr_log_error("webhook: cannot start the sender");
        curl_easy_cleanup(w->curl);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

void ctl_webhook_stop(ctl_webhook *w)
{
    if (!w)
        return;
    atomic_store(&w->stop_request, true);
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    curl_easy_cleanup(w->curl);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cv);
    free(w);
    curl_global_cleanup();
}
