/*
 * The relay's NATS bridge. libnats delivers messages on its own threads;
 * they are queued here and the lws thread is woken to take them, so all
 * session and room state stays single-threaded.
 */
#ifndef RELAY_NATS_H
#define RELAY_NATS_H

#include "mr_buf.h"
#include "mr_proto.h"
#include "relay_config.h"

#include <nats/nats.h>
#include <stdbool.h>

/*
 * Subjects (docs/architecture.md, "Subjects"). The relay builds them in the
 * features and takes them apart in relay_inbound.c, so both use these.
 */
#define RELAY_SUBJ_MSG      "meridian.msg."      /* + <region>.<room>: the fast path */
#define RELAY_SUBJ_COMMIT   "meridian.commit."   /* + <room>: a message's seq */
#define RELAY_SUBJ_HISTORY  "meridian.history."  /* + <room>: history requests */
#define RELAY_SUBJ_PRESENCE "meridian.presence." /* + <room>: presence deltas, snapshots */
#define RELAY_SUBJ_SIGNAL   "meridian.sig."      /* + <region>.<room>: ephemeral signals */
/* Relay heartbeats and bye: outside meridian.presence.*, so that no room name can clash. */
#define RELAY_SUBJ_HEARTBEAT "meridian.relay.hb"
/* Room for any subject above: the longest prefix, a region (64), a dot and a room. */
#define RELAY_SUBJECT_MAX (MR_ROOM_MAX + 96)
/* The header carrying a message's identity; JetStream de-duplicates on it. */
#define RELAY_HDR_MSG_ID "Nats-Msg-Id"
/*
 * Replies come to this relay's inbox as <inbox prefix><token>: presence
 * snapshots as "p.<room>", repair pages as "c.<room>", subscription
 * confirmations as "s.<id>.<room>", resume pages as the request's decimal id.
 */
#define RELAY_INBOX_PRESENCE   "p."
#define RELAY_INBOX_REPAIR     "c."
#define RELAY_INBOX_SUBSCRIBED "s."
/* How long a join waits for the server to confirm a new room's subscriptions. */
#define RELAY_SUBSCRIBE_CONFIRM_MS 2000

typedef enum {
    RELAY_IN_MSG,   /* a message on a subscription: fast path, commit or history reply */
    RELAY_IN_PUBACK /* the outcome of a JetStream publish */
} relay_inbound_kind;

typedef struct relay_inbound {
    struct relay_inbound *next;
    relay_inbound_kind kind;
    natsMsg *msg;      /* owned: destroy after use (PUBACK: the message that was published) */
    natsStatus status; /* PUBACK: NATS_OK when the stream stored it */
    bool duplicate;    /* PUBACK: the stream already had this Nats-Msg-Id */
    char err[96];      /* PUBACK: the server's error text, if any */
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
/**
 * Append `"nats":"connected"` when `connected` (the caller's reading of
 * relay_nats_connected()), or `"nats":"disconnected","nats_error":"WHY"`
 * (authorization violation, TLS, not reachable...), for /readyz.
 */
void relay_nats_describe(relay_nats *n, bool connected, mr_buf *detail);
/**
 * Subscribe to the fast path of `room` (meridian.msg.*.<room>), its
 * presence and, with JetStream, its commits (meridian.commit.<room>).
 * Returns 0 once the subscriptions are sent (relay_nats_confirm tells when
 * the server has them), or -1.
 */
int relay_nats_subscribe(relay_nats *n, const char *room, natsSubscription **msgs,
                         natsSubscription **commits, natsSubscription **presence);
/**
 * Ask the server to confirm every subscription sent so far, without
 * waiting: a thread of the bridge does the round trip (PING/PONG), and the
 * confirmation arrives like a reply on this relay's inbox, `<prefix><token>`
 * (an empty message), or never when the server does not answer within
 * RELAY_SUBSCRIBE_CONFIRM_MS. Returns 0, or -1 when NATS is down.
 */
int relay_nats_confirm(relay_nats *n, const char *token);
void relay_nats_unsubscribe(natsSubscription *sub);
/** Subscribe to one more subject (a room's signals); confirmed like the others. Returns 0 or -1. */
int relay_nats_subscribe_subject(relay_nats *n, const char *subject, natsSubscription **out);
/**
 * Publish `data` to `subject` with a Nats-Msg-Id header. Returns 0, or -1
 * when NATS is not connected or refuses the message (the caller answers
 * `unavailable`).
 */
int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id, const char *data,
                       size_t len);
/** True once the region's stream exists (JetStream mode), or always in core mode. */
bool relay_nats_stream_ready(relay_nats *n);
/**
 * Publish `*msg` through JetStream; the outcome arrives later as a PUBACK
 * inbound item carrying the same message. On success the library owns the
 * message until then and *msg is cleared. Returns 0, or -1 (the caller
 * still owns *msg).
 */
int relay_nats_js_publish(relay_nats *n, natsMsg **msg);
/** The subject prefix of this relay's reply inbox ("_INBOX.<random>."). */
const char *relay_nats_inbox_prefix(relay_nats *n);
/** Publish a request to `subject` whose reply comes to inbox `<prefix><token>`. */
int relay_nats_request(relay_nats *n, const char *subject, const char *token, const char *data,
                       size_t len);
/** Core publish without headers (presence); `reply` may be NULL. Returns 0 or -1. */
int relay_nats_publish_raw(relay_nats *n, const char *subject, const char *reply, const char *data,
                           size_t len);
/** Take every queued inbound message, oldest first (lws thread). */
relay_inbound *relay_nats_take(relay_nats *n);
/** Send what is buffered, waiting up to a second for the server. */
void relay_nats_flush(relay_nats *n);
/** Close the connection: no callbacks run after this returns. */
void relay_nats_close(relay_nats *n);
/** Close (if needed) and free everything still queued. */
void relay_nats_free(relay_nats *n);

#endif
