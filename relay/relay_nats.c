/*
 * NATS bridge.
 *
 * Inbound: every room subscription shares one callback that appends the
 * message to a mutex-protected FIFO and wakes the lws thread only when the
 * FIFO goes from empty to non-empty; the lws thread swaps the whole list out
 * in one lock, so the lock is held for a few instructions per batch.
 *
 * Outbound: publishes are made from the lws thread. libnats buffers
 * publishes while reconnecting, which would turn an outage into acks for
 * messages that may never arrive; so we refuse to publish unless the
 * connection is up, and the client gets a retryable `unavailable`.
 */
#include "relay_nats.h"
#include "mr_alloc.h"
#include "mr_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_nats {
    const relay_config *cfg;
    natsConnection *conn;
    natsOptions *opts;
    relay_nats_wake_cb wake;
    void *wake_ud;
    pthread_mutex_t lock;
    relay_inbound *head, *tail;
    _Atomic bool connected;
    bool closing; /* under lock: no more wake-ups once set */
};

/* Wake the lws thread unless shutdown has begun (the lws context may be gone then). */
static void wake_locked(relay_nats *n)
{
    if (!n->closing)
        n->wake(n->wake_ud);
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    relay_nats *n = closure;
    relay_inbound *in = mr_malloc(sizeof *in);
    in->next = NULL;
    in->msg = msg;
    pthread_mutex_lock(&n->lock);
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

static void on_disconnected(natsConnection *nc, void *closure)
{
    relay_nats *n = closure;
    if (atomic_exchange(&n->connected, false))
        mr_log_warn("nats: disconnected; reconnecting in the background");
    pthread_mutex_lock(&n->lock);
    wake_locked(n);
    pthread_mutex_unlock(&n->lock);
}

static void on_connected(natsConnection *nc, void *closure)
{
    relay_nats *n = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&n->connected, true);
    mr_log_info("nats: connected to %s", url);
    pthread_mutex_lock(&n->lock);
    wake_locked(n);
    pthread_mutex_unlock(&n->lock);
}

relay_nats *relay_nats_new(const relay_config *cfg, relay_nats_wake_cb wake, void *ud)
{
    relay_nats *n = mr_calloc(1, sizeof *n);
    n->cfg = cfg;
    n->wake = wake;
    n->wake_ud = ud;
    pthread_mutex_init(&n->lock, NULL);
    return n;
}

int relay_nats_connect(relay_nats *n, char *err, size_t errlen)
{
    natsStatus s = natsOptions_Create(&n->opts);
    char name[160];
    snprintf(name, sizeof name, "meridian-relay %s/%s", n->cfg->region, n->cfg->node_id);
    if (s == NATS_OK)
        s = natsOptions_SetServers(n->opts, (const char **)n->cfg->nats_urls,
                                   (int)n->cfg->nats_count);
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
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(n->opts, true, on_connected, n);
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats options: %s", natsStatus_GetText(s));
        return -1;
    }
    s = natsConnection_Connect(&n->conn, n->opts);
    if (s == NATS_OK) {
        on_connected(n->conn, n);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        mr_log_warn("nats: not reachable yet at %s; retrying in the background",
                    n->cfg->nats_urls[0]);
    } else {
        snprintf(err, errlen, "nats connect: %s", natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

bool relay_nats_connected(relay_nats *n)
{
    return atomic_load(&n->connected);
}

int relay_nats_subscribe(relay_nats *n, const char *room, natsSubscription **out)
{
    char subject[MR_ROOM_MAX + 32];
    snprintf(subject, sizeof subject, "meridian.msg.*.%s", room);
    *out = NULL;
    if (!relay_nats_connected(n))
        return -1;
    natsStatus s = natsConnection_Subscribe(out, n->conn, subject, on_message, n);
    if (s == NATS_OK) {
        /* A busy lws thread must not make libnats drop messages: allow a deep backlog. */
        natsSubscription_SetPendingLimits(*out, 1000000, 512 * 1024 * 1024);
        /*
         * The member is told `joined` only once the server has the interest:
         * a round trip to the local NATS server (PING/PONG) makes sure no
         * message published after `joined` can miss this relay, and resume
         * relies on subscribing before it reads history.
         */
        s = natsConnection_FlushTimeout(n->conn, 2000);
        if (s == NATS_OK)
            return 0;
        natsSubscription_Unsubscribe(*out);
        natsSubscription_Destroy(*out);
        *out = NULL;
    }
    mr_log_error("nats: subscribe %s: %s", subject, natsStatus_GetText(s));
    *out = NULL;
    return -1;
}

void relay_nats_unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id, const char *data,
                       size_t len)
{
    if (!relay_nats_connected(n))
        return -1;
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(n->conn, msg);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        mr_log_warn("nats: publish %s: %s", subject, natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

relay_inbound *relay_nats_take(relay_nats *n)
{
    pthread_mutex_lock(&n->lock);
    relay_inbound *h = n->head;
    n->head = n->tail = NULL;
    pthread_mutex_unlock(&n->lock);
    return h;
}

void relay_nats_close(relay_nats *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->closing = true;
    pthread_mutex_unlock(&n->lock);
    if (n->conn)
        natsConnection_Close(n->conn);
}

void relay_nats_free(relay_nats *n)
{
    if (!n)
        return;
    relay_nats_close(n);
    natsConnection_Destroy(n->conn);
    natsOptions_Destroy(n->opts);
    /*
     * libnats runs connection callbacks on threads of its own that may still
     * be about to use `n`; wait for the library to wind down before freeing.
     */
    nats_CloseAndWait(5000);
    relay_inbound *in = relay_nats_take(n);
    while (in) {
        relay_inbound *next = in->next;
        natsMsg_Destroy(in->msg);
        free(in);
        in = next;
    }
    pthread_mutex_destroy(&n->lock);
    free(n);
}
