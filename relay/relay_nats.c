/*
 * NATS bridge.
 *
 * Inbound: every room subscription shares one callback that appends the
 * message to a mutex-protected FIFO and wakes the lws thread only when the
 * FIFO goes from empty to non-empty; the lws thread swaps the whole list out
 * in one lock, so the lock is held for a few instructions per batch.
 *
 * Subscriptions are confirmed by a PING/PONG on a thread of their own
 * (confirm_main), whose result comes back through the same FIFO. The same
 * thread makes a round trip at least every RELAY_NATS_PROBE_MS even when
 * nothing waits for one: a server that keeps the TCP connection open but
 * no longer reads it (stopped, or wedged as nats-server 2.9's filestore
 * is by a full disk) looks connected to libnats for minutes, and only a
 * round trip tells (relay_nats_healthy, /readyz).
 *
 * Outbound: publishes are made from the lws thread, JetStream ones too:
 * a core publish with a reply subject on the inbox, whose PubAck
 * relay_publish.c matches (libnats' JetStream publish API is used for
 * nothing but the stream's configuration). libnats buffers
 * publishes while reconnecting, which would turn an outage into acks for
 * messages that may never arrive; so we refuse to publish unless the
 * connection is up, and the client gets a retryable `unavailable`.
 */
#include "relay_nats.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_nats_opts.h"
#include "mr_stream.h"
#include "mr_time.h"

#include <openssl/rand.h>
#include <time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Published messages released at once at most; a longer pass releases them in groups. */
#define RELAY_NATS_SPENT_MAX 256

struct relay_nats {
    const relay_config *cfg;
    natsConnection *conn;
    natsOptions *opts;
    mr_nats_watch *watch; /* says why the connection is not up (logs, /readyz) */
    relay_nats_wake_cb wake;
    void *wake_ud;
    pthread_mutex_t lock;
    relay_inbound *head, *tail;
    _Atomic bool connected;
    bool closing; /* under lock: no more wake-ups once set */
    jsCtx *js;
    _Atomic bool stream_ready;
    _Atomic bool stop_stream_thread;
    pthread_t stream_thread;
    bool stream_thread_started;
    natsSubscription *inbox_sub;
    natsSubscription *hb_sub;
    char inbox[64];
    size_t inbox_len;
    /* Published in this pass of the lws loop, released by relay_nats_pass_done (lws thread). */
    natsMsg *spent[RELAY_NATS_SPENT_MAX];
    size_t spent_n;
    /* Subscription confirmations: tokens waiting for a flush (under lock), and its thread. */
    pthread_cond_t confirm_cv;
    char **confirm_tokens;
    size_t confirm_n, confirm_cap;
    bool confirm_stop;
    pthread_t confirm_thread;
    bool confirm_thread_started;
    /* Liveness: when the last round trip to the server succeeded (mr_now_us), and why the last one
     * failed (under lock; "" after a success). */
    _Atomic int64_t rtt_ok_us;
    char rtt_err[64];
    bool rtt_warned; /* under lock: the silence was logged */
};

/* Wake the lws thread unless shutdown has begun (the lws context may be gone then). */
static void wake_locked(relay_nats *n)
{
    if (!n->closing)
        n->wake(n->wake_ud);
}

static void push(relay_nats *n, relay_inbound *in)
{
    pthread_mutex_lock(&n->lock);
    if (n->closing) {
        /*
         * Shutting down: nobody will take this any more. Destroy it here,
         * inside libnats's callback, while the library is certainly alive.
         */
        pthread_mutex_unlock(&n->lock);
        natsMsg_Destroy(in->msg);
        free(in);
        return;
    }
    bool was_empty = n->head == NULL;
    if (n->tail)
        n->tail->next = in;
    else
        n->head = in;
    n->tail = in;
    if (was_empty)
        wake_locked(n);
    pthread_mutex_unlock(&n->lock);
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    relay_inbound *in = mr_malloc(sizeof *in);
    in->next = NULL;
    in->msg = msg;
    push(closure, in);
}

/*
 * Make sure the region's stream exists before accepting publishes. This runs
 * on its own thread because it makes blocking JetStream API requests and must
 * keep retrying while NATS or JetStream is not there yet.
 */
static void *stream_main(void *arg)
{
    relay_nats *n = arg;
    const relay_config *c = n->cfg;
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    sc.max_age_s = c->stream_max_age_s;
    sc.max_bytes = c->stream_max_bytes;
    sc.duplicate_window_s = c->stream_duplicate_window_s;
    sc.replicas = (int)c->stream_replicas;
    sc.placement = c->stream_placement;
    int attempts = 0;
    while (!atomic_load(&n->stop_stream_thread)) {
        if (relay_nats_connected(n)) {
            char err[256];
            if (mr_stream_ensure(n->js, c->region, &sc, err, sizeof err) == 0) {
                char name[MR_STREAM_NAME_MAX];
                mr_stream_name(c->region, name, sizeof name);
                mr_log_info("jetstream: stream %s ready", name);
                atomic_store(&n->stream_ready, true);
                break;
            }
            if (attempts++ % 20 == 0)
                mr_log_warn("jetstream: cannot ensure the region stream yet: %s", err);
        }
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    relay_nats *n = closure;
    pthread_mutex_lock(&n->lock);
    bool was = atomic_exchange(&n->connected, false);
    /* Closing on purpose is not an outage worth a warning. */
    if (was && !n->closing)
        mr_log_warn("nats: disconnected; reconnecting in the background");
    wake_locked(n);
    pthread_mutex_unlock(&n->lock);
}

static void on_connected(natsConnection *nc, void *closure)
{
    relay_nats *n = closure;
    char url[256] = "", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    /* Never log credentials (URLs with them are refused by the config, but still). */
    mr_nats_url_redact(url, shown, sizeof shown);
    /* The handshake ended with a PONG: the server answered just now. */
    atomic_store(&n->rtt_ok_us, mr_now_us());
    atomic_store(&n->connected, true);
    mr_log_info("nats: connected to %s", shown);
    pthread_mutex_lock(&n->lock);
    wake_locked(n);
    pthread_mutex_unlock(&n->lock);
}

/* Record the outcome of a round trip to the server (the confirmation thread). */
static void rtt_done(relay_nats *n, natsStatus s)
{
    int64_t now = mr_now_us();
    pthread_mutex_lock(&n->lock);
    int64_t silent_ms = (now - atomic_load(&n->rtt_ok_us)) / 1000;
    if (s == NATS_OK) {
        if (n->rtt_warned)
            mr_log_info("nats: the server answers again after %lld ms", (long long)silent_ms);
        atomic_store(&n->rtt_ok_us, now);
        n->rtt_err[0] = '\0';
        n->rtt_warned = false;
    } else {
        snprintf(n->rtt_err, sizeof n->rtt_err, "%s", natsStatus_GetText(s));
        if (!n->rtt_warned && silent_ms > RELAY_NATS_STALE_MS) {
            mr_log_warn("nats: connected, but the server has not answered for %lld ms (%s): not "
                        "ready",
                        (long long)silent_ms, n->rtt_err);
            n->rtt_warned = true;
        }
    }
    pthread_mutex_unlock(&n->lock);
}

/*
 * The confirmation thread: a PING/PONG (natsConnection_FlushTimeout) after
 * the subscriptions were sent tells that the server has them. It blocks for
 * a round trip, so it runs here rather than on the lws thread; one flush
 * confirms every subscription sent before it, so the tokens waiting are
 * taken together. A confirmation goes to the lws thread as a message on
 * this relay's inbox (`<inbox><token>`, made here, not sent), handled like
 * any reply; a flush that fails confirms nothing, and the joins waiting for
 * it fail on their deadline.
 *
 * With no token waiting it still flushes every RELAY_NATS_PROBE_MS while
 * connected: each flush that succeeds is the server's latest sign of life
 * (relay_nats_healthy). A flush is sent after what the relay published
 * before it, so it also fails when the server stopped reading them.
 */
static void *confirm_main(void *arg)
{
    relay_nats *n = arg;
    int64_t next_probe_us = mr_now_us() + RELAY_NATS_PROBE_MS * 1000;
    pthread_mutex_lock(&n->lock);
    for (;;) {
        while (!n->confirm_stop && n->confirm_n == 0 &&
               !(mr_now_us() >= next_probe_us && relay_nats_connected(n))) {
            struct timespec until = mr_deadline_ms((next_probe_us - mr_now_us()) / 1000 + 1);
            pthread_cond_timedwait(&n->confirm_cv, &n->lock, &until);
            /* Disconnected: nothing to probe; look again a period later. */
            if (!relay_nats_connected(n) && mr_now_us() >= next_probe_us)
                next_probe_us = mr_now_us() + RELAY_NATS_PROBE_MS * 1000;
        }
        if (n->confirm_stop)
            break;
        char **tokens = n->confirm_tokens;
        size_t count = n->confirm_n;
        n->confirm_tokens = NULL;
        n->confirm_n = n->confirm_cap = 0;
        pthread_mutex_unlock(&n->lock);
        natsStatus s = natsConnection_FlushTimeout(n->conn, RELAY_SUBSCRIBE_CONFIRM_MS);
        /* A flush made while the link was down says nothing about the server. */
        if (s == NATS_OK || relay_nats_connected(n))
            rtt_done(n, s);
        next_probe_us = mr_now_us() + RELAY_NATS_PROBE_MS * 1000;
        for (size_t i = 0; i < count; i++) {
            char subject[RELAY_SUBJECT_MAX + 64];
            snprintf(subject, sizeof subject, "%s%s", n->inbox, tokens[i]);
            natsMsg *msg = NULL;
            if (s == NATS_OK && natsMsg_Create(&msg, subject, NULL, NULL, 0) == NATS_OK) {
                relay_inbound *in = mr_calloc(1, sizeof *in);
                in->msg = msg;
                push(n, in);
            }
            free(tokens[i]);
        }
        if (s != NATS_OK && count)
            mr_log_warn("nats: subscriptions not confirmed: %s", natsStatus_GetText(s));
        free(tokens);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

/* Start the confirmation thread once (under lock). Returns 0 or -1. */
static int confirm_thread_start_locked(relay_nats *n)
{
    if (n->confirm_thread_started)
        return 0;
    if (pthread_create(&n->confirm_thread, NULL, confirm_main, n) != 0) {
        mr_log_error("nats: cannot start the subscription confirmation thread");
        return -1;
    }
    n->confirm_thread_started = true;
    return 0;
}

relay_nats *relay_nats_new(const relay_config *cfg, relay_nats_wake_cb wake, void *ud)
{
    relay_nats *n = mr_calloc(1, sizeof *n);
    n->cfg = cfg;
    n->wake = wake;
    n->wake_ud = ud;
    pthread_mutex_init(&n->lock, NULL);
    mr_cond_init_monotonic(&n->confirm_cv);
    return n;
}

int relay_nats_connect(relay_nats *n, char *err, size_t errlen)
{
    natsStatus s = natsOptions_Create(&n->opts);
    char name[160];
    snprintf(name, sizeof name, "meridian-relay %s/%s", n->cfg->region, n->cfg->node_id);
    if (s == NATS_OK && mr_nats_conf_apply(&n->cfg->nats, n->opts, err, errlen) != 0)
        return -1;
    if (s == NATS_OK)
        s = natsOptions_SetName(n->opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(n->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(n->opts, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(n->opts, 100, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(n->opts, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(n->opts, on_connected, n);
    /*
     * One delivery thread for every subscription: libnats would otherwise
     * start a thread per subscription (three per room), and a single thread
     * keeps the order in which messages arrived on the connection across
     * subscriptions, so a message's commit cannot overtake a later message.
     */
    /*
     * Our own publishes do not come back: the relay delivered them to its
     * members as it published them, and would only drop them as duplicates
     * (docs/relay.md). Presence ignores its own deltas and heartbeats too.
     * That was a third of the relay's NATS traffic in, per publish.
     */
    if (s == NATS_OK)
        s = natsOptions_SetNoEcho(n->opts, true);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(n->opts, true);
    if (s == NATS_OK)
        s = nats_SetMessageDeliveryPoolSize(1);
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats options: %s", natsStatus_GetText(s));
        return -1;
    }
    s = mr_nats_connect(&n->conn, n->opts, on_connected, n);
    if (s == NATS_OK) {
        on_connected(n->conn, n);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        /* The watcher logs why (not reachable, authorization, TLS) in a moment. */
        mr_log_info("nats: not connected yet; retrying in the background");
    } else {
        snprintf(err, errlen, "nats connect: %s", natsStatus_GetText(s));
        return -1;
    }
    n->watch = mr_nats_watch_start(&n->cfg->nats, n->conn);
    /* One wildcard inbox carries every reply this relay asks for. */
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        /* Relays sharing an inbox would get each other's replies. */
        snprintf(err, errlen, "no random bytes for the reply inbox");
        return -1;
    }
    snprintf(n->inbox, sizeof n->inbox, "_INBOX.relay%02x%02x%02x%02x%02x%02x%02x%02x.", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    char wildcard[80];
    n->inbox_len = strlen(n->inbox);
    snprintf(wildcard, sizeof wildcard, "%s>", n->inbox);
    s = natsConnection_Subscribe(&n->inbox_sub, n->conn, wildcard, on_message, n);
    /* PubAcks come here: a busy lws thread must not make libnats drop them. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(n->inbox_sub, 1000000, 512 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&n->hb_sub, n->conn, RELAY_SUBJ_HEARTBEAT, on_message, n);
    if (mr_nats_given_up(n->conn, s)) {
        /*
         * libnats already gave up on a server that refused the handshake
         * (mr_nats_opts.c), maybe between the subscription and its limits:
         * run on, not ready, while the watcher says why.
         */
        return 0;
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats inbox subscription: %s", natsStatus_GetText(s));
        return -1;
    }
    /* Liveness probes run from the start, not only once a room is joined. */
    pthread_mutex_lock(&n->lock);
    int started = confirm_thread_start_locked(n);
    pthread_mutex_unlock(&n->lock);
    if (started != 0) {
        snprintf(err, errlen, "cannot start the NATS confirmation thread");
        return -1;
    }
    if (!n->cfg->jetstream) {
        atomic_store(&n->stream_ready, true);
        return 0;
    }
    /* The context serves the stream's configuration only (stream_main). */
    s = natsConnection_JetStream(&n->js, n->conn, NULL);
    if (s != NATS_OK) {
        snprintf(err, errlen, "jetstream context: %s", natsStatus_GetText(s));
        return -1;
    }
    if (pthread_create(&n->stream_thread, NULL, stream_main, n) != 0) {
        snprintf(err, errlen, "cannot start the stream thread");
        return -1;
    }
    n->stream_thread_started = true;
    return 0;
}

bool relay_nats_connected(relay_nats *n)
{
    return atomic_load(&n->connected);
}

void relay_nats_describe(relay_nats *n, bool healthy, mr_buf *detail)
{
    if (!healthy && relay_nats_connected(n)) {
        /* Connected, but the server has not answered a round trip lately. */
        char why[160];
        pthread_mutex_lock(&n->lock);
        snprintf(why, sizeof why, "no answer from the server for %lld ms (%s)",
                 (long long)((mr_now_us() - atomic_load(&n->rtt_ok_us)) / 1000),
                 n->rtt_err[0] ? n->rtt_err : "round trip pending");
        pthread_mutex_unlock(&n->lock);
        mr_buf_puts(detail, "\"nats\":\"unresponsive\",\"nats_error\":");
        mr_buf_json_str(detail, why, strlen(why));
        return;
    }
    mr_nats_watch_describe(n->watch, healthy, detail);
}

static natsStatus subscribe_one(relay_nats *n, const char *subject, natsSubscription **out)
{
    natsStatus s = natsConnection_Subscribe(out, n->conn, subject, on_message, n);
    if (s == NATS_OK)
        /* A busy lws thread must not make libnats drop messages: allow a deep backlog. */
        s = natsSubscription_SetPendingLimits(*out, 1000000, 512 * 1024 * 1024);
    return s;
}

int relay_nats_subscribe_subject(relay_nats *n, const char *subject, natsSubscription **out)
{
    *out = NULL;
    if (!relay_nats_connected(n))
        return -1;
    natsStatus s = subscribe_one(n, subject, out);
    if (s == NATS_OK)
        return 0;
    relay_nats_unsubscribe(*out);
    *out = NULL;
    mr_log_error("nats: subscribe %s: %s", subject, natsStatus_GetText(s));
    return -1;
}

int relay_nats_subscribe(relay_nats *n, const char *room, natsSubscription **out,
                         natsSubscription **commits, natsSubscription **presence)
{
    char subject[RELAY_SUBJECT_MAX];
    snprintf(subject, sizeof subject, RELAY_SUBJ_MSG "*.%s", room);
    *out = NULL;
    *commits = NULL;
    *presence = NULL;
    if (!relay_nats_connected(n))
        return -1;
    natsStatus s = subscribe_one(n, subject, out);
    if (s == NATS_OK) {
        snprintf(subject, sizeof subject, RELAY_SUBJ_PRESENCE "%s", room);
        s = subscribe_one(n, subject, presence);
    }
    if (s == NATS_OK && n->cfg->jetstream) {
        snprintf(subject, sizeof subject, RELAY_SUBJ_COMMIT "%s", room);
        s = subscribe_one(n, subject, commits);
    }
    if (s == NATS_OK)
        return 0;
    relay_nats_unsubscribe(*out);
    relay_nats_unsubscribe(*commits);
    relay_nats_unsubscribe(*presence);
    *out = *commits = *presence = NULL;
    mr_log_error("nats: subscribe %s: %s", subject, natsStatus_GetText(s));
    return -1;
}

int relay_nats_confirm(relay_nats *n, const char *token)
{
    if (!relay_nats_connected(n))
        return -1;
    pthread_mutex_lock(&n->lock);
    if (confirm_thread_start_locked(n) != 0) {
        pthread_mutex_unlock(&n->lock);
        return -1;
    }
    if (n->confirm_n == n->confirm_cap) {
        n->confirm_cap = n->confirm_cap ? 2 * n->confirm_cap : 8;
        n->confirm_tokens =
            mr_realloc(n->confirm_tokens, n->confirm_cap * sizeof *n->confirm_tokens);
    }
    n->confirm_tokens[n->confirm_n++] = mr_strdup(token);
    pthread_cond_signal(&n->confirm_cv);
    pthread_mutex_unlock(&n->lock);
    return 0;
}

bool relay_nats_healthy(relay_nats *n)
{
    if (!relay_nats_connected(n))
        return false;
    return mr_now_us() - atomic_load(&n->rtt_ok_us) <= (int64_t)RELAY_NATS_STALE_MS * 1000;
}

void relay_nats_unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id,
                       const char *reply_token, const char *data, size_t len)
{
    if (!relay_nats_connected(n))
        return -1;
    char reply[RELAY_SUBJECT_MAX + 64];
    if (reply_token) {
        size_t tl = strlen(reply_token);
        if (n->inbox_len + tl >= sizeof reply)
            return -1;
        memcpy(reply, n->inbox, n->inbox_len);
        memcpy(reply + n->inbox_len, reply_token, tl + 1);
    }
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, reply_token ? reply : NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, RELAY_HDR_MSG_ID, msg_id);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(n->conn, msg);
    if (msg) {
        if (n->spent_n == RELAY_NATS_SPENT_MAX)
            relay_nats_pass_done(n);
        n->spent[n->spent_n++] = msg;
    }
    if (s != NATS_OK) {
        mr_log_warn("nats: publish %s: %s", subject, natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

void relay_nats_pass_done(relay_nats *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->spent_n; i++)
        natsMsg_Destroy(n->spent[i]);
    n->spent_n = 0;
}

bool relay_nats_stream_ready(relay_nats *n)
{
    return atomic_load(&n->stream_ready);
}

int relay_nats_publish_raw(relay_nats *n, const char *subject, const char *reply, const char *data,
                           size_t len)
{
    if (!relay_nats_connected(n))
        return -1;
    natsStatus s = reply ? natsConnection_PublishRequest(n->conn, subject, reply, data, (int)len)
                         : natsConnection_Publish(n->conn, subject, data, (int)len);
    return s == NATS_OK ? 0 : -1;
}

const char *relay_nats_inbox_prefix(relay_nats *n)
{
    return n->inbox;
}

int relay_nats_request(relay_nats *n, const char *subject, const char *token, const char *data,
                       size_t len)
{
    if (!relay_nats_connected(n))
        return -1;
    char reply[128];
    snprintf(reply, sizeof reply, "%s%s", n->inbox, token);
    natsStatus s = natsConnection_PublishRequest(n->conn, subject, reply, data, (int)len);
    return s == NATS_OK ? 0 : -1;
}

relay_inbound *relay_nats_take(relay_nats *n)
{
    pthread_mutex_lock(&n->lock);
    relay_inbound *h = n->head;
    n->head = n->tail = NULL;
    pthread_mutex_unlock(&n->lock);
    return h;
}

void relay_nats_flush(relay_nats *n)
{
    if (n && n->conn && relay_nats_connected(n))
        natsConnection_FlushTimeout(n->conn, 1000);
}

void relay_nats_close(relay_nats *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->closing = true;
    pthread_mutex_unlock(&n->lock);
    mr_nats_watch_stop(n->watch);
    n->watch = NULL;
    if (n->conn)
        natsConnection_Close(n->conn);
}

void relay_nats_free(relay_nats *n)
{
    if (!n)
        return;
    relay_nats_close(n);
    if (n->stream_thread_started) {
        atomic_store(&n->stop_stream_thread, true);
        pthread_join(n->stream_thread, NULL);
    }
    if (n->confirm_thread_started) {
        /* The connection is closed: a flush in progress returns at once. */
        pthread_mutex_lock(&n->lock);
        n->confirm_stop = true;
        pthread_cond_signal(&n->confirm_cv);
        pthread_mutex_unlock(&n->lock);
        pthread_join(n->confirm_thread, NULL);
    }
    for (size_t i = 0; i < n->confirm_n; i++)
        free(n->confirm_tokens[i]);
    free(n->confirm_tokens);
    pthread_cond_destroy(&n->confirm_cv);
    natsSubscription_Destroy(n->inbox_sub);
    natsSubscription_Destroy(n->hb_sub);
    relay_nats_pass_done(n);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->conn);
    natsOptions_Destroy(n->opts);
    /* Queued messages must be destroyed while the library is still up. */
    relay_inbound *in = relay_nats_take(n);
    while (in) {
        relay_inbound *next = in->next;
        natsMsg_Destroy(in->msg);
        free(in);
        in = next;
    }
    /*
     * libnats runs connection callbacks on threads of its own that may still
     * be about to use `n`; wait for the library to wind down before freeing.
     * Nothing is queued any more: the connection is closed and destroyed.
     */
    mr_nats_lib_close(5000);
    for (in = relay_nats_take(n); in;) {
        relay_inbound *next = in->next;
        free(in);
        in = next;
    }
    pthread_mutex_destroy(&n->lock);
    free(n);
}
