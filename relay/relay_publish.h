/*
 * Publishing a client's message: checks (membership, rate limit), identity,
 * the NATS publish (core, or JetStream acked on the stream's PubAck), local
 * delivery and the `ack`.
 */
#ifndef RELAY_PUBLISH_H
#define RELAY_PUBLISH_H

#include "mr_proto.h"
#include "relay.h"
#include "relay_conn.h"
#include "relay_nats.h"

#include <stdbool.h>
#include <stdint.h>

/* JetStream publishes waiting for their PubAck at most; more are answered `unavailable`. */
#define RELAY_PUBLISH_MAX_INFLIGHT 65536

/** What a publish did, for the caller to tell other features. */
typedef struct relay_published {
    relay_room *room;               /* the room published to */
    char msg_id[MR_MSG_ID_LEN + 1]; /* the message's identity */
    bool delivered;                 /* new here: delivered to this relay's members */
} relay_published;

/**
 * Handle a `publish` frame from `c`. Returns 0 when the message went to NATS
 * (and `out` says what was delivered here), or -1 when it was refused; the
 * client got an `error` then.
 */
int relay_publish(relay *r, relay_conn *c, const mr_frame *f, relay_published *out);
/**
 * A reply on this relay's inbox with token RELAY_INBOX_PUBACK + `token`:
 * the PubAck of a JetStream publish (or the server's error or status in its
 * place). Sends the publisher its `ack`, or `unavailable`; a token of no
 * publish waiting (answered already, late) is ignored. Returns false when
 * `token` is not one the relay makes (slot.gen in hex), true otherwise.
 */
bool relay_publish_ack(relay *r, const char *token, const char *data, size_t len);
/**
 * Housekeeping: publish again, with the same Nats-Msg-Id, what has waited
 * publish.ack_timeout_ms for its PubAck, and fail what has no retries left.
 */
void relay_publish_tick(relay *r, int64_t now_us);
/** Forget every pending publish (shutdown). */
void relay_publish_free_all(relay *r);

#endif
