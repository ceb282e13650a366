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
 * confirmations as "s.<id>.<room>", JetStream PubAcks as "a.<slot>.<gen>"
 * (relay_publish.c), resume pages as the request's decimal id.
 */
#define RELAY_INBOX_PUBACK     "a."
#define RELAY_INBOX_PRESENCE   "p."
#define RELAY_INBOX_REPAIR     "c."
#define RELAY_INBOX_SUBSCRIBED "s."
/* How long a join waits for the server to confirm a new room's subscriptions. */
#define RELAY_SUBSCRIBE_CONFIRM_MS 2000
/* A round trip to the server (PING/PONG) at least this often while connected... */
#define RELAY_NATS_PROBE_MS 1000
/* ...and the relay is not ready when the last one that succeeded is older than this. */
#define RELAY_NATS_STALE_MS 5000

/* A message from NATS for the lws thread: a subscription's or a reply on the inbox. */
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
/**
 * Whether NATS works (any thread): connected, and the server answered a
 * round trip (PING/PONG) within the last RELAY_NATS_STALE_MS. A server
 * that stopped reading this connection (SIGSTOPped, wedged) keeps the TCP
 * connection open, so relay_nats_connected() alone stays true for minutes.
 * This is what /readyz reports.
 */
bool relay_nats_healthy(relay_nats *n);
/**
 * Append `"nats":"connected"` when `healthy` (the caller's reading of
 * relay_nats_healthy()); else `"nats":"unresponsive","nats_error":"no answer
 * from the server for N ms (...)"` while the connection is up, or
 * `"nats":"disconnected","nats_error":"WHY"` (authorization violation, TLS,
 * not reachable...), for /readyz.
 */
void relay_nats_describe(relay_nats *n, bool healthy, mr_buf *detail);
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
 * Publish `data` to `subject` with a Nats-Msg-Id header; with `reply_token`,
 * replies (a JetStream PubAck) come to this relay's inbox as
 * `<prefix><reply_token>`. The message is buffered in the connection and
 * written by libnats' flusher, so publishes made in one pass of the lws
 * loop leave in few writes. Returns 0, or -1 when NATS is not connected or
 * refuses the message (the caller answers `unavailable`).
 */
int relay_nats_publish(relay_nats *n, const char *subject, const char *msg_id,
                       const char *reply_token, const char *data, size_t len);
/**
 * The end of one pass of the lws loop (lws thread): the messages published
 * in it are released together. libnats hands every released message to its
 * collector thread and wakes that thread when it sleeps: one wake per
 * publish was the relay's costliest system call (docs/benchmarks.md,
 * "Durable publishes"); one per pass is cheap.
 */
void relay_nats_pass_done(relay_nats *n);
/** True once the region's stream exists (JetStream mode), or always in core mode. */
bool relay_nats_stream_ready(relay_nats *n);
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
