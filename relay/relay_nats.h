/*
 * The relay's NATS bridge. libnats delivers messages on its own threads;
 * they are queued here and the lws thread is woken to take them, so all
 * session and room state stays single-threaded.
 */
#ifndef RELAY_NATS_H
#define RELAY_NATS_H

#include "mr_proto.h"
#include "relay_config.h"

#include <nats/nats.h>
#include <stdbool.h>

typedef struct relay_inbound {
    struct relay_inbound *next;
    natsMsg *msg; /* owned: destroy after use */
} relay_inbound;

typedef struct relay_nats relay_nats;
/** Called on a NATS thread when the inbound queue becomes non-empty or the link state changes. */
typedef void (*relay_nats_wake_cb)(void *ud);

relay_nats *relay_nats_new(const relay_config *cfg, relay_nats_wake_cb wake, void *ud);
/**
 * Start connecting. The relay starts even when NATS is down: libnats keeps
 * retrying in the background. Returns 0, or -1 with `err` set on bad options.
 */
int relay_nats_connect(relay_nats *n, char *err, size_t errlen);
/** Whether the connection is up right now (any thread). */
bool relay_nats_connected(relay_nats *n);
/** Subscribe to the fast path of `room` (meridian.msg.*.<room>). */
int relay_nats_subscribe(relay_nats *n, const char *room, natsSubscription **out);
void relay_nats_unsubscribe(natsSubscription *sub);
/**
 * Publish `data` to `subject` with a Nats-Msg-Id header. Returns 0, or -1
 * when NATS is not connected or refuses the message (the caller answers
 * `unavailable`).
 */
int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id, const char *data,
                       size_t len);
/** Take every queued inbound message, oldest first (lws thread). */
relay_inbound *relay_nats_take(relay_nats *n);
/** Close the connection: no callbacks run after this returns. */
void relay_nats_close(relay_nats *n);
/** Close (if needed) and free everything still queued. */
void relay_nats_free(relay_nats *n);

#endif
